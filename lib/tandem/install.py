"""`tandem install`: put the agents, the library they load and the DRBD handlers where Pacemaker and DRBD
look for them. Agents run on the system /usr/bin/python3 and load the library copied beside them, so they do
not depend on the virtual environment that ran the installer."""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import tandem

PACKAGE = Path(tandem.__file__).resolve().parent
AGENT_NAMES = ("drbd", "domain")
HANDLERS = {
    "tandem-fence-peer": "fence-peer",
    "tandem-unfence-peer": "unfence-peer",
    "tandem-after-resync-target": "after-resync-target",
}


def agent_sources() -> Path:
    """The agents folder: inside the package when installed from a wheel, beside lib/ in a checkout."""
    for candidate in (PACKAGE / "agent_files", PACKAGE.parent.parent / "agents"):
        if (candidate / "drbd").is_file():
            return candidate
    raise FileNotFoundError("cannot find the agents (agents/drbd) beside the tandem package")


def launcher(libdir: Path, body: str) -> str:
    return (
        "#!/usr/bin/python3\n"
        "import os, sys\n"
        f"sys.path.insert(0, os.environ.get('TANDEM_LIBDIR') or {str(libdir)!r})\n"
        f"{body}\n"
    )


def install(
    ocf_root: Path, bindir: Path, mandir: Path | None = None, python: str = "/usr/bin/python3"
) -> list[Path]:
    """Install (or refresh) everything; returns what was written."""
    libdir = ocf_root / "lib" / "tandem"
    provider = ocf_root / "resource.d" / "tandem"
    written: list[Path] = []
    target = libdir / "tandem"
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(PACKAGE, target, ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "agent_files"))
    written.append(target)
    provider.mkdir(parents=True, exist_ok=True)
    sources = agent_sources()
    for name in AGENT_NAMES:
        dest = provider / name
        text = (sources / name).read_text()
        if python != "/usr/bin/python3" and text.startswith("#!/usr/bin/python3"):
            text = f"#!{python}" + text[len("#!/usr/bin/python3") :]
        dest.write_text(text)
        dest.chmod(0o755)
        written.append(dest)
    bindir.mkdir(parents=True, exist_ok=True)
    scripts = {"tandem": "from tandem.cli import main\nsys.exit(main())"}
    scripts |= {
        script: f"from tandem.cli import main\nsys.exit(main([{command!r}, *sys.argv[1:]]))"
        for script, command in HANDLERS.items()
    }
    for script, body in scripts.items():
        dest = bindir / script
        dest.write_text(launcher(libdir, body))
        dest.chmod(0o755)
        written.append(dest)
    if mandir is not None:
        from tandem.docs import agent_metadata, man_page, parse_metadata

        mandir.mkdir(parents=True, exist_ok=True)
        for name in AGENT_NAMES:
            dest = mandir / f"ocf_tandem_{name}.7"
            dest.write_text(man_page(parse_metadata(agent_metadata(name))))
            written.append(dest)
    return written


def main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(prog="tandem install", description=__doc__)
    parser.add_argument("--ocf-root", default=os.environ.get("OCF_ROOT", "/usr/lib/ocf"), type=Path)
    parser.add_argument(
        "--bindir",
        default="/usr/sbin",
        type=Path,
        help="where the DRBD handler scripts and `tandem` go (default /usr/sbin)",
    )
    parser.add_argument(
        "--mandir", default="/usr/share/man/man7", type=Path, help="where the man pages go; empty for none"
    )
    parser.add_argument("--python", default="/usr/bin/python3", help="interpreter for the agents")
    args = parser.parse_args(list(argv))
    try:
        mandir = args.mandir if str(args.mandir) not in ("", ".") else None
        for path in install(args.ocf_root, args.bindir, mandir, args.python):
            print(f"installed {path}")
    except (OSError, subprocess.CalledProcessError) as exc:
        print(f"tandem install: {exc}", file=sys.stderr)
        return 1
    return 0
