# SPDX-License-Identifier: GPL-2.0-or-later
"""Build the lab's test guest from source with Debian's gcc (`./run setup` calls this; nothing is downloaded).

`python3 -m lab.guest.build` prints the path of the built kernel.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SRC_DIR = Path(__file__).resolve().parent
SOURCES = (SRC_DIR / "guest.c", SRC_DIR / "guest.ld", Path(__file__).resolve())
BUILD_DIR = SRC_DIR.parent / "build"
ELF = BUILD_DIR / "tandem-guest.elf"

# 32-bit freestanding code needs no multilib packages: nothing from libc or libgcc is linked.
CFLAGS = (
    "-m32",
    "-march=i686",
    "-ffreestanding",
    "-fno-pic",
    "-fno-pie",
    "-no-pie",
    "-nostdlib",
    "-fno-stack-protector",
    "-fno-builtin",
    "-fno-asynchronous-unwind-tables",
    "-O2",
    "-Wall",
    "-Wextra",
    "-Werror",
    "-Wl,--build-id=none",
    "-Wl,--no-warn-rwx-segments",
    "-s",
)


class BuildError(Exception):
    """gcc failed; the message carries its output."""


def gcc_argv(out: Path) -> list[str]:
    return ["gcc", *CFLAGS, f"-Wl,-T,{SRC_DIR / 'guest.ld'}", "-o", str(out), str(SRC_DIR / "guest.c")]


def build(out: Path = ELF) -> Path:
    """Compile into a temporary name and rename, so a reader never sees half a kernel."""
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp")
    proc = subprocess.run(gcc_argv(tmp), capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        tmp.unlink(missing_ok=True)
        raise BuildError(f"gcc exited {proc.returncode}:\n{proc.stderr.strip()}")
    tmp.replace(out)
    return out


def ensure_built(out: Path = ELF) -> Path:
    """The kernel, rebuilt only when a source is newer (tests call this; it costs 0.1 s when needed)."""
    if out.exists() and out.stat().st_mtime >= max(s.stat().st_mtime for s in SOURCES):
        return out
    return build(out)


def main() -> int:
    try:
        path = build()
    except (BuildError, OSError) as exc:
        print(f"lab.guest.build: {exc}", file=sys.stderr)
        return 1
    print(f"lab.guest.build: {path} ({path.stat().st_size} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
