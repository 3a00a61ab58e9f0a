# SPDX-License-Identifier: GPL-2.0-or-later
"""Add the SPDX license line to every source file that lacks it (`--check`: only list them, exit 1 if any).

    python3 tools/spdx.py [--check]

Source files: the checkout's files (tracked, or new and not ignored) that are Python, C, linker scripts, or
scripts with a `#!` line; not test data, not configuration shown verbatim in the README (lab/config).
The line goes first, or right after the `#!` line, as a comment in the file's own syntax.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

TOP = Path(__file__).resolve().parent.parent
TAG = "SPDX-License-Identifier: GPL-2.0-or-later"
C_LIKE = (".c", ".h", ".ld")
SKIP = ("tests/unit/data/", "lab/config/")


def is_source(rel: str, head: bytes) -> bool:
    if rel.startswith(SKIP):
        return False
    return rel.endswith((".py", *C_LIKE)) or head.startswith(b"#!")


def source_files(top: Path = TOP) -> list[Path]:
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=top,
        capture_output=True,
        check=True,
    ).stdout.decode()
    found = []
    for rel in filter(None, listed.split("\0")):
        path = top / rel
        if path.is_file() and not path.is_symlink():
            with open(path, "rb") as fh:
                if is_source(rel, fh.read(2)):
                    found.append(path)
    return found


def has_line(text: str) -> bool:
    """The tag within the first three lines (after a `#!` line and a C comment opener at most)."""
    return any(TAG in line for line in text.splitlines()[:3])


def with_line(text: str, name: str) -> str:
    """`text` with the SPDX line added (unchanged when it has one)."""
    if has_line(text):
        return text
    line = f"/* {TAG} */\n" if name.endswith(C_LIKE) else f"# {TAG}\n"
    if text.startswith("#!"):
        first, _, rest = text.partition("\n")
        return f"{first}\n{line}{rest}"
    return line + text


def main(argv: Sequence[str]) -> int:
    check = "--check" in argv
    missing = [p for p in source_files() if not has_line(p.read_text())]
    for path in missing:
        print(path.relative_to(TOP))
        if not check:
            path.write_text(with_line(path.read_text(), path.name))
    return 1 if check and missing else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
