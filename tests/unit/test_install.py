# SPDX-License-Identifier: GPL-2.0-or-later
"""`tandem install` lays out agents, library, handler scripts and man pages that work on the system python."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from lxml import etree

from tandem.install import install
from tests.conftest import LIB, TOP


def test_install_into_a_fresh_root(tmp_path: Path) -> None:
    ocf_root, bindir, mandir = tmp_path / "ocf", tmp_path / "sbin", tmp_path / "man7"
    written = install(ocf_root, bindir, mandir)
    agent = ocf_root / "resource.d" / "tandem" / "drbd"
    assert agent in written and os.access(agent, os.X_OK)
    assert (ocf_root / "lib" / "tandem" / "tandem" / "ocf" / "agent.py").is_file()
    # the launcher is a few lines; the agent's code is imported from the library (its bytecode cached)
    assert len(agent.read_text().splitlines()) < 20
    assert (ocf_root / "lib" / "tandem" / "tandem_agents" / "drbd.py").read_text() == (
        TOP / "agents" / "drbd"
    ).read_text()
    assert not list((ocf_root / "lib" / "tandem").rglob("__pycache__"))
    env = {"PATH": "/usr/bin:/bin", "OCF_ROOT": str(ocf_root)}
    for name in ("drbd", "domain"):
        # the installed agent runs on Debian's python with only what was installed (no checkout, no venv)
        proc = subprocess.run(
            [str(ocf_root / "resource.d" / "tandem" / name), "meta-data"],
            capture_output=True,
            text=True,
            env=env,
            check=False,
        )
        assert proc.returncode == 0, proc.stderr
        assert etree.fromstring(proc.stdout.encode()).get("name") == name
        page = (mandir / f"ocf_tandem_{name}.7").read_text()
        assert page.startswith(f".TH OCF_TANDEM_{name.upper()} 7") and ".SH SUPPORTED PARAMETERS" in page
    proc = subprocess.run(
        [str(bindir / "tandem-fence-peer"), "--help"], capture_output=True, text=True, env=env, check=False
    )
    assert "fence" in (proc.stdout + proc.stderr).lower()
    # installing again refreshes in place
    assert install(ocf_root, bindir, None) and agent.is_file()


def test_install_says_plainly_what_is_missing(tmp_path: Path) -> None:
    """From a checkout copy whose metadata/ is gone: one clear line, no traceback."""
    lib = tmp_path / "lib"
    shutil.copytree(LIB / "tandem", lib / "tandem", ignore=shutil.ignore_patterns("metadata", "__pycache__"))
    proc = subprocess.run(
        [
            "/usr/bin/python3",
            "-m",
            "tandem",
            "install",
            "--ocf-root",
            str(tmp_path / "ocf"),
            "--bindir",
            str(tmp_path / "sbin"),
            "--mandir",
            str(tmp_path / "man7"),
        ],
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(lib)},
        check=False,
    )
    assert proc.returncode == 1
    assert proc.stderr.startswith("tandem install: the metadata of agent drbd is not beside the library")
    assert "Traceback" not in proc.stderr and len(proc.stderr.splitlines()) == 1


def test_render_is_not_shipped(tmp_path: Path) -> None:
    """The emulator's renderers stay in the lab: nodes get only what runs there."""
    install(tmp_path / "ocf", tmp_path / "sbin", None)
    shipped = {p.name for p in (tmp_path / "ocf" / "lib" / "tandem").rglob("*.py")}
    assert "render.py" not in shipped and "agent.py" in shipped
