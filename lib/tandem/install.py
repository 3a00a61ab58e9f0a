# SPDX-License-Identifier: GPL-2.0-or-later
"""`tandem install`: put the agents, the library they load and the DRBD handlers where Pacemaker and DRBD
look for them. Agents run on the system /usr/bin/python3 and load the library copied beside them, so they do
not depend on the virtual environment that ran the installer."""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path

import tandem
from tandem.shipped import AGENT_NAMES, PACKAGE, agent_sources

AGENT_PACKAGE = "tandem_agents"
HANDLERS = {
    "tandem-fence-peer": "fence-peer",
    "tandem-unfence-peer": "unfence-peer",
    "tandem-after-resync-target": "after-resync-target",
    "tandem-disconnected": "disconnected",
}


def launcher(libdir: Path, body: str) -> str:
    """The `tandem` command and DRBD's handlers: started like the agents (-IS: no site, whose start costs
    a fence-peer handler, while DRBD's I/O is frozen, more than a cibadmin call; tandem finds lxml)."""
    return (
        "#!/usr/bin/python3 -IS\n"
        "import os, sys\n"
        f"sys.path.insert(0, os.environ.get('TANDEM_LIBDIR') or {str(libdir)!r})\n"
        f"{body}\n"
    )


def staged(path: Path, destdir: Path | None) -> Path:
    """Where `path` is written: under `destdir` when staging a package (debian/tandem), else itself."""
    return destdir / path.relative_to(path.anchor) if destdir is not None else path


def agent_launcher(libdir: Path, name: str, python: str) -> str:
    """What Pacemaker runs. Python compiles a script on every start but caches the bytecode of what it
    imports: the agent's code is imported from the library, only these lines are compiled each time."""
    return (
        f"#!{python} -IS\n"
        f'"""ocf:tandem:{name} (tandem install): its code is {AGENT_PACKAGE}/{name}.py in the library."""\n'
        "import os\n"
        "import sys\n\n"
        f"sys.path.insert(0, os.environ.get('TANDEM_LIBDIR') or {str(libdir)!r})\n"
        'if sys.argv[1:] == ["meta-data"]:\n'
        "    from tandem.shipped import print_metadata\n\n"
        f"    if print_metadata({name!r}):\n"
        "        sys.exit(0)\n"
        f"from {AGENT_PACKAGE}.{name} import run\n\n"
        "run()\n"
    )


def install(
    ocf_root: Path,
    bindir: Path,
    mandir: Path | None = None,
    python: str = "/usr/bin/python3",
    destdir: Path | None = None,
) -> list[Path]:
    """Install (or refresh) everything; returns what was written. The launchers name the final paths, the
    files go under `destdir` when one is given (a package build)."""
    libdir = ocf_root / "lib" / "tandem"
    provider = staged(ocf_root / "resource.d" / "tandem", destdir)
    bindir, mandir = staged(bindir, destdir), mandir and staged(mandir, destdir)
    written: list[Path] = []
    target = staged(libdir / "tandem", destdir)
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(PACKAGE, target, ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "agent_files"))
    written.append(target)
    provider.mkdir(parents=True, exist_ok=True)
    sources = Path(agent_sources())
    modules = staged(libdir / AGENT_PACKAGE, destdir)
    if modules.exists():
        shutil.rmtree(modules)
    modules.mkdir()
    (modules / "__init__.py").write_text(
        '"""The agents\' code, imported by their launchers (bytecode cached)."""\n'
    )
    for name in AGENT_NAMES:
        shutil.copyfile(sources / name, modules / f"{name}.py")
        dest = provider / name
        dest.write_text(agent_launcher(libdir, name, python))
        dest.chmod(0o755)
        written += [modules / f"{name}.py", dest]
    bindir.mkdir(parents=True, exist_ok=True)
    scripts = {"tandem": "from tandem.cli import main\nsys.exit(main())"}
    scripts |= {  # DRBD waits for its handlers (I/O frozen): no interpreter teardown after the answer
        script: "from tandem import exit_now\nfrom tandem.cli import main\n\n"
        f"exit_now(main([{command!r}, *sys.argv[1:]]))"
        for script, command in HANDLERS.items()
    }
    for script, body in scripts.items():
        dest = bindir / script
        dest.write_text(launcher(libdir, body))
        dest.chmod(0o755)
        written.append(dest)
    if mandir is not None:
        from tandem.docs import agent_metadata, command_man_page, man_page, parse_metadata

        mandir.mkdir(parents=True, exist_ok=True)
        for name in AGENT_NAMES:
            dest = mandir / f"ocf_tandem_{name}.7"
            dest.write_text(man_page(parse_metadata(agent_metadata(name))))
            written.append(dest)
        man8 = mandir.parent / "man8"
        man8.mkdir(parents=True, exist_ok=True)
        (man8 / "tandem.8").write_text(command_man_page(tandem.__version__))
        written.append(man8 / "tandem.8")
        for script in HANDLERS:
            (man8 / f"{script}.8").write_text(".so man8/tandem.8\n")
            written.append(man8 / f"{script}.8")
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
    parser.add_argument("--destdir", type=Path, help="stage under this root (package builds)")
    args = parser.parse_args(list(argv))
    try:
        mandir = args.mandir if str(args.mandir) not in ("", ".") else None
        for path in install(args.ocf_root, args.bindir, mandir, args.python, args.destdir):
            print(f"installed {path}")
    except OSError as exc:
        print(f"tandem install: {exc}", file=sys.stderr)
        return 1
    except ImportError as exc:  # the man pages are read with lxml
        print(
            f"tandem install: {exc.name or exc} is missing (Debian: apt-get install python3-lxml)",
            file=sys.stderr,
        )
        return 1
    return 0
