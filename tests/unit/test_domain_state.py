# SPDX-License-Identifier: GPL-2.0-or-later
"""Domain states from recorded virsh (libvirt 9.0, qemu:///system) and xl outputs, and what monitor says."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tandem.domain.state import (
    Observed,
    Phase,
    classify_virsh,
    classify_xl,
    emulator_pids,
    job_operation,
    monitor_verdict,
    observed_from_dominfo,
    parse_dominfo,
    parse_domstate,
    parse_xl_list,
    qemu_name,
    virsh_failure,
)
from tandem.ocf.codes import Rc

# Recorded on this machine: virsh dominfo of a running transient TCG guest.
DOMINFO = """Id:             1
Name:           vmx-guest
UUID:           f9deab49-1822-4083-a720-d6912a9a89ab
OS Type:        hvm
State:          running
CPU(s):         1
CPU time:       0.6s
Max memory:     65536 KiB
Used memory:    65536 KiB
Persistent:     no
Autostart:      disable
Managed save:   no
Security model: none
Security DOI:   0
Messages:       tainted: running with undesirable elevated privileges

"""
# virsh domjobinfo on the source during `virsh migrate --live --bandwidth 2`
JOB_OUT = """Job type:         Unbounded
Operation:        Outgoing migration
Time elapsed:     3011         ms
Data processed:   5.900 MiB
Memory bandwidth: 2.035 MiB/s
Expected downtime: 300          ms
"""
NO_JOB = "Job type:         None        \n\n"
# the same moment on the target
TARGET_JOB_ERR = (
    "error: Operation not supported: migration statistics are available only on the source host\n"
)
NOT_FOUND = "error: failed to get domain 'nosuch'\n"
NO_LIBVIRTD = (
    "error: failed to connect to the hypervisor\n"
    "error: Failed to connect socket to '/var/run/libvirt/libvirt-sock': No such file or directory\n"
)
XL_LIST = """Name                                        ID   Mem VCPUs\tState\tTime(s)
Domain-0                                     0  2048     2     r-----     100.0
web                                          3   512     2     -b----      12.1
held                                         4   256     1     --p---       1.0
dead                                         5   256     1     ----c-       1.0
going                                        6   256     1     ---s--       1.0
mig--incoming                                7   256     1     --p---       0.0
out--migratedaway                            8   256     1     --p---       3.0
"""


def test_dominfo() -> None:
    obs = observed_from_dominfo(parse_dominfo(DOMINFO))
    assert obs == Observed(Phase.RUNNING, "running", vcpus=1, memory_mib=64, persistent=False)


@pytest.mark.parametrize(
    "domstate, operation, phase",
    [
        ("running (booted)\n\n", "", Phase.RUNNING),
        ("running (unpaused)\n", "outgoing migration", Phase.MIGRATING_OUT),
        ("paused (user)\n", "", Phase.PAUSED_USER),
        ("paused (migrating)\n", "outgoing migration", Phase.MIGRATING_OUT),
        ("paused (migrating)\n", "", Phase.MIGRATING_IN),
        ("paused (I/O error)\n", "", Phase.PAUSED),
        ("paused (post-copy failed)\n", "", Phase.PAUSED),
        ("shut off (destroyed)\n", "", Phase.SHUT_OFF),
        ("crashed (panicked)\n", "", Phase.CRASHED),
        ("in shutdown (user)\n", "", Phase.SHUTTING_DOWN),
        ("pmsuspended (unknown)\n", "", Phase.PM_SUSPENDED),
        ("idle\n", "", Phase.RUNNING),
        ("no state\n", "", Phase.UNKNOWN),
    ],
)
def test_virsh_states(domstate: str, operation: str, phase: Phase) -> None:
    state, reason = parse_domstate(domstate)
    assert classify_virsh(state, reason, operation) is phase


def test_job_operation() -> None:
    assert job_operation(JOB_OUT) == "outgoing migration"
    assert job_operation(NO_JOB) == ""


@pytest.mark.parametrize(
    "stderr, phase",
    [
        (NOT_FOUND, Phase.ABSENT),
        ("error: Domain not found: no domain with matching name 'x'\n", Phase.ABSENT),
        (NO_LIBVIRTD, Phase.UNKNOWN),
        ("error: Cannot recv data: Connection reset by peer\n", Phase.UNKNOWN),
        ("error: internal error: client socket is closed\n", Phase.UNKNOWN),
        (TARGET_JOB_ERR, Phase.UNKNOWN),
        ("", Phase.UNKNOWN),
    ],
)
def test_virsh_failures_never_read_as_absent_unless_libvirt_said_so(stderr: str, phase: Phase) -> None:
    assert virsh_failure(stderr) is phase


def test_xl_list() -> None:
    rows = parse_xl_list(XL_LIST)
    assert [r.name for r in rows][:2] == ["Domain-0", "web"]
    expect = {
        "web": Phase.RUNNING,
        "held": Phase.PAUSED_USER,
        "dead": Phase.CRASHED,
        "going": Phase.SHUTTING_DOWN,
        "mig": Phase.MIGRATING_IN,
        "out": Phase.MIGRATING_OUT,
        "none": Phase.ABSENT,
    }
    assert {n: classify_xl(rows, n).phase for n in expect} == expect
    web = classify_xl(rows, "web")
    assert (web.vcpus, web.memory_mib) == (2, 512)


@pytest.mark.parametrize(
    "phase, rc",
    [
        (Phase.RUNNING, Rc.SUCCESS),
        (Phase.MIGRATING_OUT, Rc.SUCCESS),
        (Phase.PAUSED_USER, Rc.DEGRADED),
        (Phase.PM_SUSPENDED, Rc.DEGRADED),
        (Phase.MIGRATING_IN, Rc.ERR_GENERIC),
        (Phase.PAUSED, Rc.ERR_GENERIC),
        (Phase.CRASHED, Rc.ERR_GENERIC),
        (Phase.SHUT_OFF, Rc.NOT_RUNNING),
        (Phase.ABSENT, Rc.NOT_RUNNING),
        (Phase.UNKNOWN, Rc.ERR_GENERIC),
    ],
)
def test_monitor_verdict(phase: Phase, rc: Rc) -> None:
    assert monitor_verdict(Observed(phase))[0] is rc


# The qemu command line libvirt 9.0 wrote here (first arguments), and other shapes.
LIBVIRT_QEMU = [
    "/usr/bin/qemu-system-x86_64",
    "-name",
    "guest=vmx-guest,debug-threads=on",
    "-S",
    "-machine",
    "pc",
]


@pytest.mark.parametrize(
    "argv, name",
    [
        (LIBVIRT_QEMU, "vmx-guest"),
        (["qemu-kvm", "-name", "plain"], "plain"),
        (["/usr/bin/qemu-system-x86_64", "-name", "guest=a,,b,debug-threads=on"], "a,b"),
        (["/usr/bin/python3", "-name", "guest=vmx-guest"], None),
        (["/usr/bin/qemu-system-x86_64", "-m", "64"], None),
        ([], None),
    ],
)
def test_qemu_name(argv: list[str], name: str | None) -> None:
    assert qemu_name(argv) == name


def test_emulator_pids() -> None:
    procs = [
        (10, LIBVIRT_QEMU),
        (11, ["bash"]),
        (12, ["/usr/bin/qemu-system-x86_64", "-name", "guest=other"]),
    ]
    assert emulator_pids(procs, "vmx-guest") == (10,)
    assert emulator_pids(procs, "vmx") == ()


@given(st.text(alphabet="0123456789 KiBM\u0663", max_size=12))
def test_dominfo_memory_is_read_as_the_regex_read_it(value: str) -> None:
    """Every domain monitor reads it: by str operations, not `re` (whose import costs a monitor)."""
    match = re.fullmatch(r"(\d+)\s*KiB", value.strip())
    wanted = int(match.group(1)) // 1024 if match else None
    assert observed_from_dominfo({"Max memory": value.strip()}).memory_mib == wanted
