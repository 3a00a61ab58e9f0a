# SPDX-License-Identifier: GPL-2.0-or-later
"""bench's pure parts: statistics, run order, Markdown tables, strace and CIB parsing, OCF environment."""

from __future__ import annotations

import statistics

import pytest
from bench.agents import Agent, clone_meta, ocf_env
from bench.move import anchor_crm
from bench.report import med_p90, spread, table, times
from bench.stats import paired_ratios, percentile, ratio, round_robin, summarize
from bench.trace import CibVersion, Kind, cib_version, classify, count, parse_execs
from hypothesis import given
from hypothesis import strategies as st

floats = st.floats(min_value=0, max_value=1e6, allow_nan=False)


@given(st.lists(floats, min_size=2, max_size=50))
def test_percentiles_agree_with_statistics_inclusive(values: list[float]) -> None:
    quartiles = statistics.quantiles(values, n=4, method="inclusive")
    assert percentile(values, 25) == pytest.approx(quartiles[0], abs=1e-6)
    assert percentile(values, 50) == pytest.approx(statistics.median(values), abs=1e-6)
    assert percentile(values, 75) == pytest.approx(quartiles[2], abs=1e-6)


@given(st.lists(floats, min_size=1, max_size=50))
def test_summary_is_ordered(values: list[float]) -> None:
    s = summarize(values)
    assert s.minimum <= s.p25 <= s.median <= s.p75 <= s.p90 <= s.maximum
    assert s.n == len(values)
    assert s.scaled(2.0).median == pytest.approx(2 * s.median)


def test_percentile_small_samples() -> None:
    assert percentile([5.0], 90) == 5.0
    assert percentile([1.0, 2.0], 90) == pytest.approx(1.9)
    assert percentile([3.0, 1.0, 2.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0], 90) == pytest.approx(9.1)
    with pytest.raises(ValueError):
        percentile([], 50)
    with pytest.raises(ValueError):
        percentile([1.0], 101)


def test_ratios() -> None:
    assert ratio(1.0, 4.0) == 0.25
    assert ratio(1.0, 0.0) is None
    assert paired_ratios([1.0, 3.0], [2.0, 3.0]) == [0.5, 1.0]
    assert paired_ratios([1.0], [0.0]) == []
    with pytest.raises(ValueError):
        paired_ratios([1.0], [1.0, 2.0])


@given(st.lists(st.text(min_size=1), min_size=1, max_size=4, unique=True), st.integers(0, 12))
def test_round_robin_runs_each_once_per_round_and_rotates(names: list[str], rounds: int) -> None:
    order = round_robin(names, rounds)
    assert len(order) == len(names) * rounds
    for r in range(rounds):
        chunk = order[r * len(names) : (r + 1) * len(names)]
        assert sorted(chunk) == sorted(names)
    if rounds >= len(names):
        firsts = {order[r * len(names)] for r in range(rounds)}
        assert firsts == set(names)  # every agent gets to run first


def test_table_aligns_and_escapes() -> None:
    out = table(["what", "ms"], [["a|b", "1.0"], ["long name", "10.25"]], right=[1])
    lines = out.splitlines()
    assert lines[0] == "| what      |    ms |"
    assert lines[1] == "| --------- | ----: |"
    assert lines[2] == "| a\\|b      |   1.0 |"
    assert lines[3] == "| long name | 10.25 |"
    with pytest.raises(ValueError):
        table(["a", "b"], [["only one"]])


def test_number_formats() -> None:
    s = summarize([1.0, 2.0, 3.0, 4.0, 5.0])
    assert med_p90(s) == "3.0 / 4.6"
    assert spread(s) == "IQR 2.0–4.0, range 1.0–5.0"
    assert times(0.5) == "0.50×"
    assert times(None) == "n/a"
    assert med_p90(None) == "n/a"


STRACE = """\
100   execve("/usr/lib/ocf/resource.d/linbit/drbd", ["drbd", "monitor"], 0x7ffd /* 40 vars */) = 0
101   execve("/usr/local/sbin/drbdsetup", ["drbdsetup", "status"], 0x55 /* 40 vars */) = -1 ENOENT (No such)
101   execve("/usr/sbin/drbdsetup", ["drbdsetup", "status", "r0", "--json"], 0x55 /* 40 vars */) = 0
102   execve("/usr/sbin/crm_master", ["crm_master", "-Q", "-l", "reboot", "-v", "10000"], 0x5) = 0
103   execve("/usr/sbin/crm_attribute", ["crm_attribute", "-N", "n1", "-l", "reboot", "-v", "1"], 0x5) = 0
104   execve("/usr/sbin/crm_resource", ["crm_resource", "-r", "vm", "-z", "-g", "cpu"], 0x5 /* 4 vars */) = 0
105   execve("/usr/bin/virsh", ["virsh", "-c", "qemu:///system", "domstate", "vm\\t1"], 0x5 /* 4 vars */) = 0
106   execve("/usr/sbin/cibadmin", ["cibadmin", "--modify", "--xml-text", "<x/>"], 0x5) = 0
105   +++ exited with 0 +++
"""


def test_parse_execs_keeps_successful_calls_with_their_arguments() -> None:
    execs = parse_execs(STRACE)
    assert [e.program for e in execs] == [
        "drbd",
        "drbdsetup",
        "crm_master",
        "crm_attribute",
        "crm_resource",
        "virsh",
        "cibadmin",
    ]
    assert execs[1].argv == ("drbdsetup", "status", "r0", "--json")
    assert execs[5].argv[-1] == "vm\t1"  # C escapes decoded
    assert execs[0].pid == 100


def test_classify_and_count() -> None:
    execs = parse_execs(STRACE)
    kinds = [classify(e) for e in execs]
    assert kinds == [
        Kind.OTHER,
        Kind.DRBD,
        Kind.OTHER,  # crm_master: a wrapper, its crm_attribute is what counts
        Kind.CIB_WRITE,
        Kind.CIB_READ,
        Kind.HYPERVISOR,
        Kind.CIB_WRITE,
    ]
    c = count(execs)
    assert (c.processes, c.drbd, c.cib_writes, c.cib_reads, c.hypervisor) == (6, 1, 2, 1, 1)
    assert c.programs[0] == "drbdsetup"


def test_cib_version_and_updates() -> None:
    xml = '<cib crm_feature_set="3.16.2" epoch="7" num_updates="12" admin_epoch="0">'
    v = cib_version(xml + "<configuration/></cib>")
    assert v == CibVersion(0, 7, 12)
    assert CibVersion(0, 7, 15).updates_since(v) == 3
    assert CibVersion(0, 8, 2).updates_since(v) == 3  # a configuration change resets num_updates
    with pytest.raises(ValueError):
        cib_version("<other/>")
    with pytest.raises(ValueError):
        cib_version('<cib epoch="1">')


def test_ocf_env_is_what_execd_adds() -> None:
    agent = Agent("ocf:tandem:drbd", "drbd_r0", {"drbd_resource": "r0"})
    assert agent.path == "/usr/lib/ocf/resource.d/tandem/drbd"
    env = ocf_env(
        {"PATH": "/usr/bin", "OCF_ROOT": "/elsewhere"},
        agent,
        "monitor",
        node="node1",
        node_id="1",
        interval_ms=10000,
        timeout_ms=30000,
        meta=clone_meta(2, "Promoted"),
    )
    assert env["PATH"] == "/usr/bin"
    assert env["OCF_ROOT"] == "/usr/lib/ocf"
    assert env["OCF_RESOURCE_INSTANCE"] == "drbd_r0"
    assert env["OCF_RESOURCE_TYPE"] == "drbd" and env["OCF_RESOURCE_PROVIDER"] == "tandem"
    assert env["OCF_RESKEY_drbd_resource"] == "r0"
    assert env["OCF_RESKEY_CRM_meta_interval"] == "10000"
    assert env["OCF_RESKEY_CRM_meta_timeout"] == "30000"
    assert env["OCF_RESKEY_CRM_meta_promoted_max"] == env["OCF_RESKEY_CRM_meta_master_max"] == "2"


def test_anchor_crm_swaps_only_the_agent_types() -> None:
    ours = "primitive d ocf:tandem:drbd params r=0\nprimitive v ocf:tandem:domain params a=/x\n"
    want = "primitive d ocf:linbit:drbd params r=0\nprimitive v ocf:heartbeat:VirtualDomain params a=/x\n"
    assert anchor_crm(ours) == want
    with pytest.raises(ValueError):
        anchor_crm("primitive d ocf:heartbeat:Dummy\n")
