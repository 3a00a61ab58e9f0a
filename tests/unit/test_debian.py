# SPDX-License-Identifier: GPL-2.0-or-later
"""The Debian packaging: its version is the package's, and `tandem install --destdir` stages a tree whose
launchers name the final paths (debian/rules builds the .deb with it; tests/lab/test_deb.py installs it)."""

from __future__ import annotations

import re
from pathlib import Path

import tandem
from tandem.install import install
from tests.conftest import TOP


def test_changelog_version_is_the_package_version():
    first = (TOP / "debian" / "changelog").read_text().splitlines()[0]
    assert re.fullmatch(rf"tandem \({re.escape(tandem.__version__)}\) unstable; urgency=\w+", first)


def test_control_depends_on_what_the_agents_run_with():
    control = (TOP / "debian" / "control").read_text()
    depends = re.search(r"^Depends: (.*)$", control, re.MULTILINE)
    assert depends is not None
    for package in ("python3 (>= 3.11)", "python3-lxml", "pacemaker-cli-utils"):
        assert package in depends.group(1)
    assert re.search(r"^Recommends: .*drbd-utils.*libvirt-clients", control, re.MULTILINE)


def test_staged_install_names_the_final_paths(tmp_path: Path):
    root = tmp_path / "debian" / "tandem"
    ocf, sbin, man7 = Path("/usr/lib/ocf"), Path("/usr/sbin"), Path("/usr/share/man/man7")
    written = install(ocf, sbin, man7, destdir=root)
    assert all(p.is_relative_to(root) for p in written)
    launcher = (root / "usr" / "sbin" / "tandem-fence-peer").read_text()
    assert "'/usr/lib/ocf/lib/tandem'" in launcher and str(tmp_path) not in launcher
    assert (root / "usr/lib/ocf/resource.d/tandem/domain").is_file()
    assert (root / "usr/lib/ocf/lib/tandem/tandem/operator/cli.py").is_file()
    page = (root / "usr/share/man/man8/tandem.8").read_text()
    assert page.startswith(".TH TANDEM 8") and "can-migrate" in page
    assert (root / "usr/share/man/man8/tandem-unfence-peer.8").read_text() == ".so man8/tandem.8\n"
