# SPDX-License-Identifier: GPL-2.0-or-later
"""What the monitor path of each agent imports, pinned. The agents start for every monitor of every resource,
and their start is mostly imports: a change that brings back one they shed (dataclasses and inspect, typing,
traceback, pathlib, subprocess, lxml, ...) fails here, not in a benchmark later. Deterministic: the module
names `python3 -X importtime` reports for a real monitor against the emulator and libvirt's test driver,
minus what the bare interpreter imports; no timing. bench/results.md has the times behind the list.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

from tests.agent.test_domain_agent import AGENT as DOMAIN_AGENT
from tests.agent.test_domain_agent import Env
from tests.agent.test_drbd_agent import AGENT as DRBD_AGENT
from tests.agent.test_drbd_agent import EMU_BIN, Emu, start_both

# What the agents' own #! line runs: /usr/bin/python3 -IS
PYTHON = ("/usr/bin/python3", "-IS", "-X", "importtime")
# What the agents shed for start-up time; lxml only where XML is built (never on a monitor).
SHED = frozenset(
    {"dataclasses", "inspect", "typing", "traceback", "pathlib", "subprocess", "lxml", "lxml.etree"}
)
# What a steady monitor of either agent sheds too: the stdlib the framework no longer builds on
# (tandem.enums, tandem.record, tandem.regex, the C JSON scanner and str parsing stand in), and the domain's
# XML parser (its parsed config is remembered while the file is unchanged), so a monitor's start is the
# interpreter's and its own.
MONITOR_SHED = SHED | {
    "enum",
    "re",
    "json",
    "collections",
    "functools",
    "signal",
    "contextlib",
    "fnmatch",
    "xml.etree.ElementTree",
    "pyexpat",
}
# Beyond the bare interpreter's own start: the OCF framework and what it needs, shared by both agents.
FRAMEWORK = frozenset(
    {
        "__future__",
        "_collections_abc",
        "_operator",
        "_sitebuiltins",
        "_stat",
        "genericpath",
        "os",
        "posixpath",
        "select",
        "site",
        "stat",
        "tandem",
        "tandem.enums",
        "tandem.ocf",
        "tandem.ocf.agent",
        "tandem.ocf.codes",
        "tandem.ocf.deadline",
        "tandem.ocf.env",
        "tandem.ocf.log",
        "tandem.ocf.params",
        "tandem.ocf.runner",
        "tandem.ocf.spec",
        "tandem.ocf.state",
        "tandem.record",
    }
)
# DRBD 9 state from `drbdsetup status --json`, through the json package's C scanner alone.
DRBD_MONITOR = FRAMEWORK | {
    "_json",
    "tandem.drbd",
    "tandem.drbd.health",
    "tandem.drbd.model",
    "tandem.drbd.parse_json",
    "tandem.drbd.policy",
    "tandem.drbd.tools",
    "tandem.regex",
}
# The domain's config as parsed on its first monitor (a state file), one virsh call.
DOMAIN_MONITOR = FRAMEWORK | {
    "tandem.domain",
    "tandem.domain.backend",
    "tandem.domain.config",
    "tandem.domain.node",
    "tandem.domain.state",
    "tandem.domain.storage",
    "tandem.domain.uri",
    "tandem.drbd",
    "tandem.drbd.model",
    "tandem.regex",
}


def imports(argv: list[str], env: Mapping[str, str] | None = None) -> tuple[int, frozenset[str]]:
    """The exit code, and every module the process imported (from -X importtime's report on stderr)."""
    proc = subprocess.run([*PYTHON, *argv], env=env, capture_output=True, text=True, timeout=60, check=False)
    names = frozenset(
        line.rsplit("|", 1)[1].strip()
        for line in proc.stderr.splitlines()
        if line.startswith("import time:") and not line.endswith("imported package")
    )
    return proc.returncode, names


@pytest.fixture(scope="module")
def interpreter() -> frozenset[str]:
    rc, names = imports(["-c", "pass"])
    assert rc == 0 and "encodings" in names
    return names


@pytest.fixture
def drbd_pair(tmp_path: Path) -> Iterator[Emu]:
    if not (EMU_BIN / "drbdadm").exists():
        pytest.fail("the DRBD emulator (lab/drbd_emu/bin) is missing")
    emu = Emu(tmp_path, dual=True)
    emu.uptodate_pair()
    start_both(emu)
    yield emu
    for node in ("alice", "bob"):
        emu.adm(node, "down", "r0")


@pytest.mark.parametrize("promoted_max", ["1", "2"])
def test_drbd_monitor_imports(drbd_pair: Emu, interpreter: frozenset[str], promoted_max: str) -> None:
    env = drbd_pair.env(
        "alice", OCF_RESKEY_CRM_meta_interval="10000", OCF_RESKEY_CRM_meta_promoted_max=promoted_max
    )
    assert drbd_pair.agent("alice", "monitor", OCF_RESKEY_CRM_meta_promoted_max=promoted_max).rc == 0
    rc, names = imports([str(DRBD_AGENT), "monitor"], env)
    assert rc == 0
    assert not names & MONITOR_SHED, "the monitor path imports what the agents shed"
    assert names - interpreter == DRBD_MONITOR


def test_domain_monitor_imports(tmp_path: Path, interpreter: frozenset[str]) -> None:
    env = Env(tmp_path)
    xml = tmp_path / "test.xml"
    xml.write_text("<domain type='test'><name>test</name></domain>")
    environ = {
        **env.base("n1"),
        "OCF_RESKEY_CRM_meta_timeout": "20000",
        "OCF_RESKEY_CRM_meta_interval": "10000",
        "OCF_RESKEY_config": str(xml),
        "OCF_RESKEY_hypervisor": "test:///default",
    }
    assert imports([str(DOMAIN_AGENT), "monitor"], environ)[0] == 0  # the first reads the config
    rc, names = imports([str(DOMAIN_AGENT), "monitor"], environ)
    assert rc == 0
    assert not names & MONITOR_SHED, "the monitor path imports what the agents shed"
    assert names - interpreter == DOMAIN_MONITOR


@pytest.mark.parametrize("agent", [DRBD_AGENT, DOMAIN_AGENT], ids=lambda p: p.name)
def test_meta_data_imports_only_the_shipped_file_reader(agent: Path, interpreter: frozenset[str]) -> None:
    rc, names = imports([str(agent), "meta-data"], {"TANDEM_LIBDIR": str(DRBD_AGENT.parent.parent / "lib")})
    assert rc == 0
    assert not names & SHED
    assert names - interpreter <= {*FRAMEWORK, "tandem.shipped"} - {"tandem.ocf", "tandem.enums", "select"}


# DRBD waits for its fence-peer handler with I/O frozen: what it must not load (lxml: the CIB is read with the
# stdlib's ElementTree; argparse: DRBD passes no options).
FENCE_SHED = SHED | {"argparse", "socket", "importlib.util", "shutil"}


def test_fence_peer_imports(tmp_path: Path) -> None:
    from bench.fence import CIB, DRBD_ENV, stand_ins

    stand_ins(tmp_path / "bin", tmp_path / "trace")
    cib = tmp_path / "cib.xml"
    cib.write_text(CIB.read_text())
    env = {
        "PATH": f"{tmp_path / 'bin'}:/usr/sbin:/usr/bin:/bin",
        "CIB_file": str(cib),
        "HA_RSCTMP": str(tmp_path),
        "HA_LOGFACILITY": "none",
        **DRBD_ENV,
    }
    from tandem.install import install

    install(tmp_path / "ocf", tmp_path / "sbin", None)
    rc, names = imports([str(tmp_path / "sbin" / "tandem-fence-peer")], env)
    assert rc == 4 and "tandem-fence-r0" in cib.read_text()
    assert not names & FENCE_SHED, "the fence-peer handler imports what it sheds"
