# SPDX-License-Identifier: GPL-2.0-or-later
"""fence-peer / unfence-peer: the pure decision, the handler environment, and the constraint as real cibadmin
applies it to a CIB file (CIB_file, no cluster needed)."""

from __future__ import annotations

import json
import re
import time
import xml.etree.ElementTree as etree
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tandem.drbd.health import frozen_for_fencing
from tandem.drbd.model import Resource
from tandem.drbd.parse_json import parse_status_json
from tandem.drbd.policy import Decision
from tandem.drbd.tools import PLACED, fence_files
from tandem.fence import (
    BROKEN,
    OUTDATE_MYSELF,
    PEER_FENCED,
    PEER_OUTDATED,
    PEER_UNREACHABLE,
    HandlerEnv,
    Peer,
    Refused,
    after_resync_target,
    allowed_by,
    build_constraint,
    dc_known,
    fence_delay,
    fence_peer,
    finish_fencing,
    local_state,
    node_priority,
    peer_state,
    plan,
    promotable_of,
    resource_priorities,
    resync_decision,
    role_name,
    unfence_peer,
)
from tandem.ocf.deadline import Deadline
from tandem.ocf.log import Logger
from tandem.ocf.runner import CommandTimeout, ProcessRunner, Result
from tests.fakes import RecordingRunner

CIB = """<cib crm_feature_set="3.16.1" validate-with="pacemaker-3.9" epoch="1" num_updates="0" admin_epoch="0"
     have-quorum="{quorum}" dc-uuid="1">
  <configuration>
    <crm_config/>
    <nodes><node id="1" uname="alice"/><node id="2" uname="bob"/></nodes>
    <resources>
      <clone id="ms-r0">
        <meta_attributes id="ms-r0-meta">
          <nvpair id="ms-r0-prom" name="promotable" value="true"/>
        </meta_attributes>
        <primitive id="drbd-r0" class="ocf" provider="tandem" type="drbd">
          <instance_attributes id="drbd-r0-ia"><nvpair id="drbd-r0-res" name="drbd_resource" value="r0"/>
          </instance_attributes>
        </primitive>
      </clone>
    </resources>
    <constraints><rsc_location id="user-pref" rsc="ms-r0" node="alice" score="10"/>{extra}</constraints>
  </configuration>
  <status>
    <node_state id="1" uname="alice" in_ccm="true" crmd="online" join="member" expected="member"/>
    {bob}
  </status>
</cib>
"""
NODE = '<node_state id="2" uname="bob" in_ccm="{}" crmd="{}" join="{}" expected="{}"/>'
BOB = {
    Peer.REACHABLE: NODE.format("true", "online", "member", "member"),
    Peer.DOWN: NODE.format("false", "offline", "down", "down"),
    Peer.UNCLEAN: NODE.format("false", "offline", "member", "member"),
    Peer.UNKNOWN: "",
}
DUMP = "resource r0 {{\n    net {{\n        fencing {fencing};\n        {two}\n    }}\n}}\n"


def status_json(
    role: str, disk: str = "UpToDate", connection: str = "StandAlone", opened: bool = False
) -> str:
    return json.dumps(
        [
            {
                "name": "r0",
                "node-id": 0,
                "role": role,
                "suspended": False,
                "devices": [
                    {
                        "volume": 0,
                        "minor": 0,
                        "disk-state": disk,
                        "client": False,
                        "quorum": True,
                        "open": opened,
                    }
                ],
                "connections": [
                    {
                        "peer-node-id": 1,
                        "name": "bob",
                        "connection-state": connection,
                        "congested": False,
                        "peer-role": "Unknown" if connection != "Connected" else "Secondary",
                        "peer_devices": [
                            {
                                "volume": 0,
                                "replication-state": "Off" if connection != "Connected" else "Established",
                                "peer-disk-state": "DUnknown" if connection != "Connected" else "UpToDate",
                                "peer-client": False,
                                "resync-suspended": "no",
                            }
                        ],
                    }
                ],
            }
        ]
    )


@dataclass
class Cluster(RecordingRunner):
    """cibadmin is real (on a CIB file); DRBD and stonith_admin answer from canned state."""

    cib: Path
    role: str = "Primary"
    disk: str = "UpToDate"
    connection: str = "StandAlone"
    fencing: str = "resource-only"
    two_primaries: bool = False
    stonith_rc: int = 0
    opened: bool = False  # the device held open here (a VM runs on it)
    cib_down: int = 0  # this many CIB queries fail first (the CIB does not answer yet)
    stonith_lost: int = 0  # this many stonith_admin calls never answer (a fencer that crashed under them)
    fenced_meanwhile: bool = False  # while one does not answer, the cluster's own STONITH fences bob

    def answer(self, argv: tuple[str, ...], timeout: float) -> Result:
        if argv[:2] == ("cibadmin", "--query") and self.cib_down:
            self.cib_down -= 1
            return Result(argv, 107, "", "Could not connect to the CIB: Transport endpoint is not connected")
        if argv[0] == "cibadmin":
            return ProcessRunner().run(argv, timeout=timeout, env={"CIB_file": str(self.cib)})
        if argv[:2] == ("drbdadm", "--version"):
            return Result(argv, 0, "DRBD_KERNEL_VERSION=9.2.12\n", "")
        if argv[0] == "drbdsetup":
            return Result(argv, 0, status_json(self.role, self.disk, self.connection, self.opened), "")
        if argv[0] == "drbdadm" and "dump" in argv:
            two = "allow-two-primaries yes;" if self.two_primaries else ""
            return Result(argv, 0, DUMP.format(fencing=self.fencing, two=two), "")
        if argv[0] == "stonith_admin" and self.stonith_lost:
            self.stonith_lost -= 1
            if self.fenced_meanwhile:
                self.cib.write_text(self.cib.read_text().replace(BOB[Peer.UNCLEAN], BOB[Peer.DOWN]))
            time.sleep(0.5)  # standing for the slice it waited
            raise CommandTimeout(f"{' '.join(argv)} timed out after {timeout:.1f}s")
        if argv[0] == "stonith_admin":
            return Result(argv, self.stonith_rc, "", "" if self.stonith_rc == 0 else "fencing failed")
        if argv[0] == "crm_attribute" or argv[:2] == ("drbdadm", "resume-io"):
            return Result(argv, 0, "", "")
        raise AssertionError(f"unexpected command {argv}")

    def constraints(self) -> list[etree.Element]:
        doc = etree.parse(str(self.cib)).getroot()
        return [c for c in doc.iter("rsc_location") if c.get("id", "").startswith("tandem-fence")]

    @property
    def stonith_calls(self) -> list[tuple[str, ...]]:
        return [c for c in self.calls if c[0] == "stonith_admin"]


def make(
    tmp_path: Path, peer: Peer = Peer.REACHABLE, quorum: str = "1", extra: str = "", **kw: object
) -> Cluster:
    cib = tmp_path / "cib.xml"
    cib.write_text(CIB.format(quorum=quorum, bob=BOB[peer], extra=extra))
    return Cluster(cib, **kw)  # type: ignore[arg-type]


# A fencing constraint that admits only `node` to the promoted role.
LOCATION = (
    '<rsc_location id="{id}" rsc="ms-r0"><rule id="{id}-rule" role="Promoted" score="-INFINITY">'
    '<expression id="{id}-expr-0" attribute="#uname" operation="ne" value="{node}"/></rule></rsc_location>'
)
STALE = LOCATION.format(id="tandem-fence-r0", node="alice")  # as fence-peer on alice leaves it
THEIRS = LOCATION.format(id="tandem-fence-r0", node="bob")
ENV = {
    "DRBD_RESOURCE": "r0",
    "DRBD_MY_NODE_ID": "0",
    "DRBD_PEER_NODE_ID": "1",
    "DRBD_NODE_ID_0": "alice",
    "DRBD_NODE_ID_1": "bob",
    "UP_TO_DATE_NODES": "0x1",
}


def fence(cluster: Cluster, env: Mapping[str, str] = ENV, seconds: float = 10) -> int:
    log = Logger("test")
    try:
        return fence_peer(HandlerEnv.parse(env), cluster, log, Deadline.after(seconds), 5)
    except Refused:
        return BROKEN


# -- pure ------------------------------------------------------------------------------------------------
def test_handler_env_drbd9():
    env = HandlerEnv.parse({**ENV, "UP_TO_DATE_NODES": "0x3"})
    assert (env.resource, env.me, env.peer) == ("r0", "alice", "bob")
    assert env.up_to_date == frozenset({"alice", "bob"})


def test_handler_env_drbd84_has_no_mask():
    env = HandlerEnv.parse({"DRBD_RESOURCE": "r0", "DRBD_PEERS": "bob"}, me="alice")
    assert (env.peer, env.up_to_date) == ("bob", None)


@pytest.mark.parametrize("name", ["", "-rf", "r0; reboot", "a'b", "x" * 200])
def test_handler_env_rejects_bad_names(name):
    with pytest.raises(Refused):
        HandlerEnv.parse({**ENV, "DRBD_RESOURCE": name})


@given(st.sampled_from(list(Peer)), st.booleans(), st.booleans(), st.booleans(), st.booleans())
def test_plan_is_safe(peer, local_ok, stonith, dual, primary):
    p = plan(peer, local_ok, stonith_policy=stonith, dual_primary=dual, primary=primary)
    # A constraint always admits only UpToDate nodes, so only a node with UpToDate data places one.
    assert not p.place or local_ok
    # We never kill a peer that may hold better data than ours, nor one that is already down.
    assert not p.stonith or (local_ok and stonith and peer is not Peer.DOWN)
    # Exit 7 (peer fenced) only when it really is: down in the cluster, or killed by us first.
    assert p.rc != PEER_FENCED or peer is Peer.DOWN or p.stonith
    # Dual primary with resource-and-stonith: a reachable Primary peer is killed before I/O resumes.
    if stonith and dual and primary and local_ok and peer is not Peer.DOWN:
        assert p.stonith
    assert p.rc in (PEER_OUTDATED, PEER_UNREACHABLE, OUTDATE_MYSELF, PEER_FENCED)


@pytest.mark.parametrize(
    ("attrs", "state"),
    [
        ('in_ccm="true" crmd="online"', Peer.REACHABLE),
        ('in_ccm="1700000000" crmd="1700000000"', Peer.REACHABLE),  # Pacemaker 2.1.7+ timestamps
        ('in_ccm="false" crmd="offline" expected="down"', Peer.DOWN),
        ('in_ccm="0" crmd="0" expected="down"', Peer.DOWN),
        ('in_ccm="false" crmd="offline" expected="member"', Peer.UNCLEAN),
        ('in_ccm="true" crmd="offline"', Peer.UNKNOWN),
    ],
)
def test_peer_state_reads_old_and_new_node_state(attrs, state):
    doc = etree.fromstring(f'<cib><status><node_state id="2" uname="bob" {attrs}/></status></cib>')
    assert peer_state(doc, "bob") is state
    assert peer_state(doc, "carol") is Peer.UNKNOWN


@pytest.mark.parametrize(
    ("ops", "state"),
    [
        ([("last_0", "start", "0"), ("monitor_10000", "monitor", "0")], Peer.UNCLEAN),
        ([("last_0", "promote", "0"), ("monitor_10000", "monitor", "8")], Peer.UNCLEAN),
        ([("last_0", "start", "1")], Peer.UNCLEAN),  # a failed start may have left it running
        ([("last_0", "stop", "1")], Peer.UNCLEAN),  # so may a failed stop
        ([("monitor_10000", "monitor", "0"), ("last_0", "stop", "0")], Peer.DOWN),  # a clean shutdown
        ([("last_0", "monitor", "7")], Peer.DOWN),  # probed, not running
        ([("last_0", "start", "193")], Peer.UNCLEAN),  # recorded while pending
        ([], Peer.DOWN),
    ],
)
def test_a_lost_peer_expected_down_is_down_only_with_nothing_thought_active_there(ops, state):
    """tandem-18223: a DC elected anew writes expected="down" for a lost peer it never saw join, and the
    scheduler fences that peer when a resource is thought active there: so do we."""
    text = history("2", "bob", {"vm1": ops}).replace(
        'in_ccm="true" crmd="online" join="member" expected="member"', LOST
    )
    assert peer_state(etree.fromstring(f"<cib><status>{text}</status></cib>"), "bob") is state


def test_constraint_shape_and_role_name():
    doc = etree.fromstring(CIB.format(quorum="1", bob="", extra="").encode())
    assert promotable_of(doc, "r0") == "ms-r0"
    assert promotable_of(doc, "r1") is None
    assert role_name(doc) == "Promoted"
    assert role_name(etree.fromstring(b'<cib validate-with="pacemaker-3.0"/>')) == "Master"
    loc = build_constraint("ms-r0", "r0", ["bob", "alice"], "Promoted")
    assert loc.get("id") == "tandem-fence-r0"
    rule = loc.find("rule")
    assert rule is not None and (rule.get("role"), rule.get("score")) == ("Promoted", "-INFINITY")
    assert allowed_by(loc) == {"alice", "bob"}
    assert dc_known(doc)
    assert not dc_known(etree.fromstring(b"<cib><status/></cib>"))


# -- against real cibadmin on a CIB file -----------------------------------------------------------------
def test_reachable_peer_gets_a_constraint_exit_4_idempotent(tmp_path):
    c = make(tmp_path, Peer.REACHABLE)
    assert fence(c) == PEER_OUTDATED
    (loc,) = c.constraints()
    assert loc.get("rsc") == "ms-r0" and allowed_by(loc) == {"alice"}
    assert fence(c) == PEER_OUTDATED  # again: nothing changes
    assert len(c.constraints()) == 1
    # other constraints are untouched
    assert 'id="user-pref"' in c.cib.read_text()


@pytest.mark.parametrize(("schema", "role"), [("pacemaker-3.9", "Promoted"), ("pacemaker-3.0", "Master")])
def test_constraint_is_valid_for_the_cib_schema(tmp_path, schema, role):
    """cibadmin validates every write against the CIB's schema, so acceptance proves the constraint valid."""
    c = make(tmp_path, Peer.REACHABLE)
    c.cib.write_text(c.cib.read_text().replace("pacemaker-3.9", schema))
    assert fence(c) == PEER_OUTDATED
    (loc,) = c.constraints()
    assert loc.find("rule").get("role") == role  # type: ignore[union-attr]


def test_down_peer_exit_7(tmp_path):
    c = make(tmp_path, Peer.DOWN)
    assert fence(c) == PEER_FENCED
    assert len(c.constraints()) == 1
    assert not c.stonith_calls


def test_the_local_reads_run_while_the_cib_query_runs(tmp_path):
    """I/O is frozen while the handler runs: its CIB query (the slowest wait) is begun first, and DRBD's
    state and configuration are read while cibadmin answers (a recording runner answers in call order)."""
    c = make(tmp_path, Peer.REACHABLE)
    assert fence(c) == PEER_OUTDATED
    first_write = next(i for i, a in enumerate(c.calls) if a[:2] == ("cibadmin", "--create"))
    reads = [a[:2] for a in c.calls[:first_write]]
    assert reads[0] == ("cibadmin", "--query") and reads.count(("cibadmin", "--query")) == 1
    assert ("drbdsetup", "status") in reads and ("drbdadm", "dump") in reads


def test_a_cib_that_does_not_answer_at_first_is_waited_for(tmp_path):
    """The query begun first fails; the handler asks again (a new query, not the collected one)."""
    c = make(tmp_path, Peer.REACHABLE, cib_down=2)
    assert fence(c) == PEER_OUTDATED
    assert [a[:2] for a in c.calls].count(("cibadmin", "--query")) >= 3


def test_unclean_peer_resource_only_exit_5_with_constraint(tmp_path):
    c = make(tmp_path, Peer.UNCLEAN)
    assert fence(c) == PEER_UNREACHABLE
    assert len(c.constraints()) == 1


def test_not_uptodate_and_unreachable_places_nothing(tmp_path):
    c = make(tmp_path, Peer.UNCLEAN, disk="Consistent", role="Secondary")
    assert fence(c, {**ENV, "UP_TO_DATE_NODES": "0x0"}) == PEER_UNREACHABLE
    assert not c.constraints()


def test_not_uptodate_and_peer_reachable_outdates_ourselves(tmp_path):
    c = make(tmp_path, Peer.REACHABLE, disk="Consistent", role="Secondary")
    assert fence(c, {**ENV, "UP_TO_DATE_NODES": "0x0"}) == OUTDATE_MYSELF
    assert not c.constraints()


def test_a_disk_lost_after_drbd_called_the_handler_places_nothing(tmp_path):
    """tandem-20234: UP_TO_DATE_NODES named us when DRBD called the handler, which hung; our disk failed
    meanwhile. A constraint for us would forbid the peer, which holds the only data."""
    c = make(tmp_path, Peer.REACHABLE, disk="Diskless", role="Secondary")
    assert fence(c) == OUTDATE_MYSELF
    assert not c.constraints()


def test_no_quorum_keeps_io_frozen(tmp_path):
    c = make(tmp_path, Peer.UNCLEAN, quorum="0")
    assert fence(c) == BROKEN
    assert not c.constraints()


def test_dc_election_in_progress_times_out_to_broken(tmp_path):
    c = make(tmp_path, Peer.REACHABLE)
    c.cib.write_text(c.cib.read_text().replace(' dc-uuid="1"', ""))
    assert fence(c, seconds=2.5) == BROKEN
    assert not c.constraints()


def test_conflicting_constraint_is_not_overwritten(tmp_path):
    c = make(tmp_path, Peer.REACHABLE, extra=THEIRS)
    assert fence(c) == BROKEN
    (loc,) = c.constraints()
    assert allowed_by(loc) == {"bob"}


def test_a_peer_the_constraint_favours_is_never_fenced(tmp_path):
    """tandem-20234: the constraint forbids our promotion, so the peer holds the better data: refused
    before the STONITH, not after it (a freeze decided again and again fenced that peer each time)."""
    c = make(tmp_path, Peer.REACHABLE, extra=THEIRS, fencing="resource-and-stonith", two_primaries=True)
    assert fence(c) == BROKEN
    assert not c.stonith_calls
    assert [allowed_by(loc) for loc in c.constraints()] == [{"bob"}]


def test_dual_primary_stonith_fences_a_reachable_primary_peer_first(tmp_path):
    c = make(tmp_path, Peer.REACHABLE, fencing="resource-and-stonith", two_primaries=True)
    assert fence(c) == PEER_FENCED
    assert c.stonith_calls and c.stonith_calls[0][:3] == ("stonith_admin", "--reboot", "bob")
    # STONITH came before the constraint (I/O must not resume before the peer is dead)
    kinds = [a[0] for a in c.calls]
    assert kinds.index("stonith_admin") < max(
        i for i, a in enumerate(c.calls) if a[:2] == ("cibadmin", "--create")
    )


def test_stonith_follows_the_clusters_stonith_action(tmp_path):
    c = make(tmp_path, Peer.REACHABLE, fencing="resource-and-stonith", two_primaries=True)
    off = (
        '<crm_config><cluster_property_set id="p">'
        '<nvpair id="p-a" name="stonith-action" value="off"/></cluster_property_set></crm_config>'
    )
    c.cib.write_text(c.cib.read_text().replace("<crm_config/>", off))
    assert fence(c) == PEER_FENCED
    assert c.stonith_calls[0][:3] == ("stonith_admin", "--fence", "bob")


def test_failed_stonith_keeps_io_frozen(tmp_path):
    """Both nodes race to fence each other: whoever's STONITH fails must not resume I/O."""
    c = make(tmp_path, Peer.REACHABLE, fencing="resource-and-stonith", two_primaries=True, stonith_rc=1)
    assert fence(c) == BROKEN
    assert not c.constraints()


def test_single_primary_stonith_does_not_kill_a_reachable_secondary(tmp_path):
    c = make(tmp_path, Peer.REACHABLE, fencing="resource-and-stonith")
    assert fence(c) == PEER_OUTDATED
    assert not c.stonith_calls


def test_unreachable_peer_with_stonith_policy_is_fenced(tmp_path):
    c = make(tmp_path, Peer.UNCLEAN, fencing="resource-and-stonith")
    assert fence(c) == PEER_FENCED
    assert c.stonith_calls


def test_a_stonith_answer_lost_with_the_fencer_ends_when_the_peer_is_fenced_meanwhile(tmp_path):
    """tandem-18076: the fencer crashed under stonith_admin; the cluster's own request fenced bob."""
    c = make(tmp_path, Peer.UNCLEAN, fencing="resource-and-stonith", stonith_lost=1, fenced_meanwhile=True)
    assert fence(c, seconds=30) == PEER_FENCED
    assert len(c.stonith_calls) == 1
    assert c.calls[-1][:2] == ("cibadmin", "--create")  # the constraint, placed after the peer was fenced


def test_a_stonith_answer_lost_with_the_fencer_is_asked_again(tmp_path):
    c = make(tmp_path, Peer.UNCLEAN, fencing="resource-and-stonith", stonith_lost=1)
    assert fence(c, seconds=30) == PEER_FENCED
    assert len(c.stonith_calls) == 2


def test_stonith_that_never_answers_gives_up_inside_the_handlers_time(tmp_path):
    c = make(tmp_path, Peer.UNCLEAN, fencing="resource-and-stonith", stonith_lost=99)
    began = time.monotonic()
    assert fence(c, seconds=8) == BROKEN
    assert not c.constraints() and time.monotonic() - began < 8


# -- unfence ----------------------------------------------------------------------------------------------
def test_unfence_only_when_every_peer_is_uptodate(tmp_path):
    c = make(tmp_path, Peer.REACHABLE)
    assert fence(c) == PEER_OUTDATED
    log = Logger("test")
    env = HandlerEnv.parse(ENV)
    assert unfence_peer(env, c, log, 5) == 0  # still StandAlone: kept
    assert len(c.constraints()) == 1
    c.connection = "Connected"
    assert unfence_peer(env, c, log, 5) == 0
    assert not c.constraints()
    assert 'id="user-pref"' in c.cib.read_text()
    assert unfence_peer(env, c, log, 5) == 0  # nothing left: still fine


@pytest.mark.parametrize(
    "constraint",
    [LOCATION.format(id="drbd-fence-by-handler-r0-ms-r0", node="alice"), THEIRS],
    ids=["crm-fence-peer's", "placed for bob"],
)
def test_unfence_leaves_constraints_that_are_not_ours(tmp_path, constraint):
    c = make(tmp_path, Peer.REACHABLE, extra=constraint, connection="Connected")
    assert unfence_peer(HandlerEnv.parse(ENV), c, Logger("test"), 5) == 0
    assert constraint.split('"')[1] in c.cib.read_text()


def test_a_constraint_this_node_placed_stays_marked_until_it_sees_it_removed(tmp_path):
    """tandem-18523: DRBD's unfence-peer ran once, while the cluster stack restarted, and could not read the
    CIB; the mark (PLACED) is what lets the agent's monitor try again."""
    c = make(tmp_path, Peer.REACHABLE, connection="Connected")
    mark = Path(fence_files("r0").path(PLACED))
    assert fence(c) == PEER_OUTDATED and mark.exists()
    c.cib_down = 1
    with pytest.raises(Refused):
        unfence_peer(HandlerEnv.parse(ENV), c, Logger("test"), 5)
    assert mark.exists() and len(c.constraints()) == 1
    assert unfence_peer(HandlerEnv.parse(ENV), c, Logger("test"), 5) == 0
    assert not mark.exists() and not c.constraints()
    # one placed for another node is not this node's to remove: the mark goes, the constraint stays
    mark.write_text("1\n")
    c.cib.write_text(c.cib.read_text().replace("</constraints>", THEIRS + "</constraints>"))
    assert unfence_peer(HandlerEnv.parse(ENV), c, Logger("test"), 5) == 0
    assert not mark.exists() and len(c.constraints()) == 1


def test_cli_registers_the_handlers():
    from tandem.cli import COMMANDS

    assert COMMANDS["fence-peer"][:2] == ("tandem.fence", "fence_main")
    assert COMMANDS["unfence-peer"][:2] == ("tandem.fence", "unfence_main")


# -- the fence race: the node running the higher-priority resources (the VM) must win ---------------------
PRIORITY_CONFIG = (
    '<crm_config><cluster_property_set id="p">'
    '<nvpair id="p-d" name="priority-fencing-delay" value="{delay}"/></cluster_property_set></crm_config>'
)
VM = (
    '<primitive id="vm1" class="ocf" provider="tandem" type="domain">'
    '<meta_attributes id="vm1-meta"><nvpair id="vm1-prio" name="priority" value="10"/></meta_attributes>'
    "</primitive>"
)


def history(node_id: str, uname: str, ops: dict[str, list[tuple[str, str, str]]]) -> str:
    """A node_state with each resource's operation history: (record id, operation, rc), in call order."""
    rscs = "".join(
        f'<lrm_resource id="{rsc}">'
        + "".join(
            f'<lrm_rsc_op id="{rsc}_{rid}" operation="{op}" rc-code="{rc}" call-id="{call}"/>'
            for call, (rid, op, rc) in enumerate(done, start=10)
        )
        + "</lrm_resource>"
        for rsc, done in ops.items()
    )
    return (
        f'<node_state id="{node_id}" uname="{uname}" in_ccm="true" crmd="online" join="member" '
        f'expected="member"><lrm id="{node_id}"><lrm_resources>{rscs}</lrm_resources></lrm></node_state>'
    )


PROMOTED = [("last_0", "promote", "0"), ("monitor_10000", "monitor", "8")]
STARTED = [("last_0", "start", "0"), ("monitor_10000", "monitor", "0")]
PROBED_NOT_RUNNING = [("last_0", "monitor", "7")]


def race_cib(
    tmp_path: Path,
    vm_on: str | None,
    delay: str = "10s",
    vm_history: dict[str, list[tuple[str, str, str]]] | None = None,
) -> Cluster:
    """Both nodes Primary (dual primary, resource-and-stonith); vm1 (priority 10) running on `vm_on`, or
    with the given per-node history."""
    c = make(tmp_path, Peer.REACHABLE, fencing="resource-and-stonith", two_primaries=True)
    text = c.cib.read_text().replace("<crm_config/>", PRIORITY_CONFIG.format(delay=delay))
    text = text.replace("</clone>", "</clone>" + VM)
    for node_id, uname in (("1", "alice"), ("2", "bob")):
        vm = (vm_history or {}).get(uname) or (STARTED if uname == vm_on else PROBED_NOT_RUNNING)
        ops = {"drbd-r0": PROMOTED, "vm1": vm}
        text = re.sub(rf'<node_state id="{node_id}"[^>]*/>', history(node_id, uname, ops), text)
    c.cib.write_text(text)
    return c


def doc(c: Cluster) -> etree.Element:
    return etree.parse(str(c.cib)).getroot()


LOST = 'in_ccm="false" crmd="offline" join="down" expected="down"'


def lost_to_a_new_dc(c: Cluster, uname: str) -> None:
    """What a DC elected anew (a respawned controller) writes for a lost peer it never saw join
    (join_make_offer: expected down), its operation history left as it was."""
    text = c.cib.read_text()
    c.cib.write_text(re.sub(rf'(<node_state id="\d+" uname="{uname}") [^>]*?(/?>)', rf"\1 {LOST}\2", text))


def fenced_by_the_cluster(c: Cluster, uname: str) -> None:
    """What the DC writes once the fencer reports the peer fenced (send_stonith_update): the same state, and
    the peer's operation history erased."""
    lost_to_a_new_dc(c, uname)
    text = c.cib.read_text()
    c.cib.write_text(re.sub(rf'(<node_state id="\d+" uname="{uname}" [^>]*>)<lrm .*?</lrm>', r"\1", text))


def test_node_priority_counts_active_resources_and_promotion(tmp_path):
    c = race_cib(tmp_path, vm_on="bob")
    assert (node_priority(doc(c), "alice"), node_priority(doc(c), "bob")) == (0, 10)
    # a priority on the clone: each promoted instance adds one more, so a Primary outranks a Secondary
    text = c.cib.read_text().replace(
        '<nvpair id="ms-r0-prom"',
        '<nvpair id="ms-r0-prio" name="priority" value="5"/><nvpair id="ms-r0-prom"',
    )
    alice_secondary = text.replace('operation="monitor" rc-code="8"', 'operation="monitor" rc-code="0"', 1)
    c.cib.write_text(alice_secondary)
    assert (node_priority(doc(c), "alice"), node_priority(doc(c), "bob")) == (5, 16)


def test_after_a_live_migration_the_vm_counts_on_its_new_node(tmp_path):
    """The history Pacemaker 2.1 left in the lab after `crm resource migrate vm1 bob` (tandem-operator-lab:
    the VM's node lost the fence race when both counted 0): on bob `_last_0` stays the probe and the
    migration is in `vm1_migrate_from_0`; on alice `_last_0` is the stop after `vm1_migrate_to_0`."""
    moved = {
        "alice": [
            ("monitor_10000", "monitor", "0"),
            ("migrate_to_0", "migrate_to", "0"),
            ("last_0", "stop", "0"),
        ],
        "bob": [
            *PROBED_NOT_RUNNING,
            ("migrate_from_0", "migrate_from", "0"),
            ("monitor_10000", "monitor", "0"),
        ],
    }
    c = race_cib(tmp_path, None, vm_history=moved)
    assert (node_priority(doc(c), "alice"), node_priority(doc(c), "bob")) == (0, 10)
    assert fence_delay(doc(c), "alice", "bob", holds_open=False) == 10.0


@pytest.mark.parametrize(
    ("vm_on", "delay", "holds_open", "wanted"),
    [
        ("bob", "10s", False, 10.0),
        ("bob", "10s", True, 10.0),  # the scheduler's rule first: a migration's source holds it open too
        ("alice", "10s", False, 0.0),
        (None, "10s", False, 10.0),  # a tie (a history just cleaned up): the peer may run the VM
        (None, "10s", True, 0.0),  # a tie, and the VM's QEMU holds the device open here
        ("bob", "0", False, 0.0),
        ("bob", "x", False, 0.0),
    ],
)
def test_fence_delay_against_a_higher_priority_peer_or_on_a_tie_without_the_device_open(
    tmp_path, vm_on, delay, holds_open, wanted
):
    assert fence_delay(doc(race_cib(tmp_path, vm_on, delay)), "alice", "bob", holds_open) == wanted


@pytest.mark.parametrize("vm_on", ["alice", "bob"])
def test_the_handler_of_the_node_without_the_vm_waits_before_its_stonith(tmp_path, monkeypatch, vm_on):
    slept: list[float] = []
    monkeypatch.setattr(time, "sleep", slept.append)  # (the process runner's short polls sleep too)
    c = race_cib(tmp_path, vm_on)
    assert fence(c, seconds=60) == PEER_FENCED
    assert c.stonith_calls[0][:3] == ("stonith_admin", "--reboot", "bob")
    assert [s for s in slept if s >= 1] == ([1.0] * 10 if vm_on == "bob" else [])  # the CIB read each second


@pytest.mark.parametrize("vm_on", ["alice", "bob"])
def test_a_monitor_finishing_a_freeze_gives_the_vms_node_its_monitors_too(tmp_path, monkeypatch, vm_on):
    """Both handlers failed in a split: the nodes decide through their DRBD monitors, the VM's node by its
    second monitor after the freeze; the other node waits the fence delay and the lag the agent gives
    (two monitor intervals) before its STONITH, and the VM's node does not wait at all."""
    slept: list[float] = []
    monkeypatch.setattr(time, "sleep", slept.append)
    monkeypatch.setenv("HA_RSCTMP", str(tmp_path / "rsctmp"))
    c = race_cib(tmp_path, vm_on)
    assert finish_fencing(primary(frozen=True), None, "alice", c, Logger("test"), 60, 5, lag=20)
    assert c.stonith_calls[0][:3] == ("stonith_admin", "--reboot", "bob")
    assert [s for s in slept if s >= 1] == ([1.0] * 30 if vm_on == "bob" else [])


@pytest.mark.parametrize("opened", [True, False])
def test_on_a_tie_the_handler_where_the_device_is_open_fences_at_once(tmp_path, monkeypatch, opened):
    slept: list[float] = []
    monkeypatch.setattr(time, "sleep", slept.append)
    c = race_cib(tmp_path, None)
    c.opened = opened
    assert fence(c, seconds=60) == PEER_FENCED
    assert [s for s in slept if s >= 1] == ([] if opened else [1.0] * 10)


def test_a_delayed_handler_does_not_fence_a_peer_that_went_down_meanwhile(tmp_path, monkeypatch):
    c = race_cib(tmp_path, vm_on="bob")

    def bob_fenced_us_not(seconds: float) -> None:  # the scheduler fenced bob while we waited
        if seconds >= 1:
            fenced_by_the_cluster(c, "bob")

    monkeypatch.setattr(time, "sleep", bob_fenced_us_not)
    assert fence(c, seconds=60) == PEER_FENCED
    assert c.stonith_calls == []


def test_a_delayed_handler_stops_waiting_once_the_cluster_fenced_the_peer(tmp_path, monkeypatch):
    """tandem-17949: the scheduler's STONITH of the VM's dead node landed 3 s into the handler's 10 s
    delay; the handler slept on, and the VM waited for its constraint. It now reads the CIB each second."""
    c = race_cib(tmp_path, vm_on="bob")
    slept: list[float] = []

    def fenced_on_the_third_second(seconds: float) -> None:
        slept.append(seconds)
        if len([s for s in slept if s >= 1]) == 3:
            fenced_by_the_cluster(c, "bob")

    monkeypatch.setattr(time, "sleep", fenced_on_the_third_second)
    assert fence(c, seconds=60) == PEER_FENCED
    assert c.stonith_calls == []
    assert [s for s in slept if s >= 1] == [1.0, 1.0, 1.0]


@pytest.mark.parametrize(
    ("fencing", "stonith_rc", "wanted"),
    [
        ("resource-and-stonith", 0, PEER_FENCED),
        ("resource-and-stonith", 1, BROKEN),  # the fence device fails: I/O stays frozen, no constraint
        ("resource-only", 0, PEER_UNREACHABLE),  # not "fenced": the peer may still write
    ],
)
def test_a_peer_that_a_new_dc_expects_down_while_it_runs_the_vm_is_not_taken_for_fenced(
    tmp_path, monkeypatch, fencing, stonith_rc, wanted
):
    """tandem-18223: the fence device failing and the network partitioned, alice's controller respawned and
    became DC of its side; it wrote expected="down" for bob, which ran vm1 as Primary. The handler took bob
    for fenced, placed "promotion only on alice" and let I/O resume; vm1 could then never run on bob."""
    monkeypatch.setattr(time, "sleep", lambda seconds: None)
    c = race_cib(tmp_path, vm_on="bob")
    c.fencing, c.stonith_rc = fencing, stonith_rc
    lost_to_a_new_dc(c, "bob")
    assert fence(c, seconds=60) == wanted
    stonith = fencing == "resource-and-stonith"
    assert [a[:3] for a in c.stonith_calls[:1]] == ([("stonith_admin", "--reboot", "bob")] if stonith else [])
    assert [allowed_by(x) for x in c.constraints()] == ([] if stonith_rc else [{"alice"}])


# -- after-resync-target: the score as soon as a resync made our data UpToDate -------------------------
def test_resync_decision_follows_the_agents_policy_and_parameters(tmp_path):
    c = make(tmp_path, Peer.REACHABLE, role="Secondary", connection="Connected")
    res = local_state(c, Logger("test"), HandlerEnv.parse(ENV))
    assert resync_decision(doc(c), "r0", res) == (
        "drbd-r0",
        Decision(10000, "UpToDate, every peer disk state known"),
    )
    tiers = '<nvpair id="drbd-r0-t" name="promotion_scores" value="5 50 500"/>'
    c.cib.write_text(c.cib.read_text().replace('value="r0"/>', 'value="r0"/>' + tiers))
    assert resync_decision(doc(c), "r0", res) == (
        "drbd-r0",
        Decision(50, "UpToDate, every peer disk state known"),
    )
    assert resync_decision(doc(c), "r1", res) is None
    c.cib.write_text(c.cib.read_text().replace('value="5 50 500"', 'value="garbage"'))
    assert resync_decision(doc(c), "r0", res) is None  # the agent refuses such a parameter itself
    linbit = c.cib.read_text().replace('provider="tandem" type="drbd"', 'provider="linbit" type="drbd"')
    c.cib.write_text(linbit.replace('value="garbage"', 'value="5 50 500"'))
    assert resync_decision(doc(c), "r0", res) is None  # another agent's score is not ours to write


def test_a_handler_keeps_the_score_of_a_survivor_held_at_consistent(tmp_path):
    """DRBD 9.2.19+ holds a survivor at Consistent until it reconciled: the handlers keep the score it has,
    as the agent does (CI on e5288b1: the watcher removed it and the survivor was promoted only after)."""
    c = make(tmp_path, Peer.REACHABLE, role="Secondary", disk="Consistent", connection="Connecting")
    res = local_state(c, Logger("test"), HandlerEnv.parse(ENV))
    assert res is not None
    reconciling = res._replace(connections=())  # Consistent, no Primary left
    assert resync_decision(doc(c), "r0", reconciling, held=lambda _: 10000) == (
        "drbd-r0",
        Decision(10000, "Consistent while reconciling after a Primary loss: score kept"),
    )


@pytest.mark.parametrize(("disk", "written"), [("UpToDate", ["-v", "10000"]), ("Inconsistent", ["-D"])])
def test_after_resync_target_writes_the_score_at_once(tmp_path, monkeypatch, disk, written):
    monkeypatch.setenv("HA_RSCTMP", str(tmp_path / "rsctmp"))
    c = make(tmp_path, Peer.REACHABLE, role="Secondary", disk=disk, connection="Connected")
    assert after_resync_target(HandlerEnv.parse(ENV), c, Logger("test"), 5) == 0
    (call,) = [a for a in c.calls if a[0] == "crm_attribute"]
    assert call[1] == "--promotion=drbd-r0" and list(call[-len(written) :]) == written


def test_after_resync_target_without_a_clone_writes_nothing(tmp_path):
    c = make(tmp_path, Peer.REACHABLE, role="Secondary", connection="Connected")
    assert after_resync_target(HandlerEnv.parse({**ENV, "DRBD_RESOURCE": "r1"}), c, Logger("test"), 5) == 0
    assert not [a for a in c.calls if a[0] == "crm_attribute"]


def test_resource_priorities_inherit_as_the_scheduler_does():
    cib = etree.fromstring(
        "<cib><configuration><resources>"
        '<group id="g"><meta_attributes id="gm"><nvpair id="gp" name="priority" value="3"/></meta_attributes>'
        '<primitive id="a"/><primitive id="b"><meta_attributes id="bm">'
        '<nvpair id="bp" name="priority" value="7"/></meta_attributes></primitive></group>'
        '<primitive id="c"/><primitive id="d"><meta_attributes id="dm">'
        '<nvpair id="dp" name="priority" value="x"/></meta_attributes></primitive>'
        '</resources><rsc_defaults><meta_attributes id="rd">'
        '<nvpair id="rdp" name="priority" value="1"/></meta_attributes></rsc_defaults></configuration></cib>'
    )
    assert resource_priorities(cib) == {"a": 3, "b": 7, "c": 1, "d": 1}


# -- a fencing freeze a failed fence-peer left behind, finished by the agent -------------------------------
def primary(*, frozen: bool) -> Resource:
    text = status_json("Primary")
    if frozen:
        text = text.replace('"suspended": false', '"suspended-fencing": true')
    (res,) = parse_status_json(text).resources
    return res


def finish(c: Cluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> bool:
    monkeypatch.setenv("HA_RSCTMP", str(tmp_path / "rsctmp"))
    return finish_fencing(primary(frozen=True), None, "alice", c, Logger("test"), 10, 5)


def test_a_frozen_primary_waits_for_its_lost_peers():
    assert frozen_for_fencing(primary(frozen=False)) == []
    assert frozen_for_fencing(primary(frozen=True)) == ["bob"]


def test_a_freeze_left_by_a_failed_handler_is_fenced_again_and_resumed(tmp_path, monkeypatch):
    c = make(tmp_path, Peer.REACHABLE, fencing="resource-and-stonith")
    assert finish(c, tmp_path, monkeypatch)
    (loc,) = c.constraints()
    assert allowed_by(loc) == {"alice"}
    assert c.calls[-1] == ("drbdadm", "resume-io", "r0")


def test_a_freeze_stays_while_the_peer_cannot_be_fenced(tmp_path, monkeypatch):
    c = make(tmp_path, Peer.REACHABLE, fencing="resource-and-stonith", two_primaries=True, stonith_rc=1)
    assert not finish(c, tmp_path, monkeypatch)
    assert not c.constraints()
    assert ("drbdadm", "resume-io", "r0") not in c.calls


def test_a_freeze_is_left_to_the_handler_that_holds_the_lock(tmp_path, monkeypatch):
    import fcntl

    c = make(tmp_path, Peer.REACHABLE, fencing="resource-and-stonith")
    lock = tmp_path / "rsctmp" / "tandem-fence-r0.lock"
    lock.parent.mkdir()
    with open(lock, "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        assert not finish(c, tmp_path, monkeypatch)
    assert c.calls == []
