"""`tandem install` lays out agents, library, handler scripts and man pages that work on the system python."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from lxml import etree

from tandem.install import install


def test_install_into_a_fresh_root(tmp_path: Path) -> None:
    ocf_root, bindir, mandir = tmp_path / "ocf", tmp_path / "sbin", tmp_path / "man7"
    written = install(ocf_root, bindir, mandir)
    agent = ocf_root / "resource.d" / "tandem" / "drbd"
    assert agent in written and os.access(agent, os.X_OK)
    assert (ocf_root / "lib" / "tandem" / "tandem" / "ocf" / "agent.py").is_file()
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
