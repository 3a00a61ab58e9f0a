# SPDX-License-Identifier: GPL-2.0-or-later
"""`tandem status` and `tandem can-migrate` over CIBs, crm_mon XML and DRBD JSON recorded in the lab
(tests/unit/data/operator/README.md): VM running, after a move, with the DRBD link cut."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tandem.cli import main as tandem_main
from tandem.ocf.runner import CommandMissing, Result
from tandem.operator import cli
from tandem.operator.checks import applies
from tandem.operator.cluster import INFINITY, ClusterXmlError, Expression, Location, parse_score, parse_view
from tests.fakes import RecordingRunner

DATA = Path(__file__).parent / "data" / "operator"
NO_DOMAIN = "error: failed to get domain 'vm1'\nerror: Domain not found: no domain with matching name 'vm1'"


@dataclass
class Recorded(RecordingRunner):
    """A node as recorded: its name, its cluster's XML (from the node that was asked) and its DRBD JSON."""

    state: str
    here: str
    cib_from: str = ""
    drbd: str | None = None
    virsh: tuple[int, str, str] = (1, "", NO_DOMAIN)
    missing: frozenset[str] = field(default_factory=frozenset)
    edit: tuple[str, str] = ("", "")  # (old, new) text in the recorded CIB

    def file(self, what: str) -> str:
        text = (DATA / f"{self.state}-{self.cib_from or self.here}-{what}").read_text()
        return text.replace(*self.edit) if what == "cib.xml" and self.edit[0] else text

    def answer(self, argv: tuple[str, ...], timeout: float) -> Result:
        if argv[0] in self.missing:
            raise CommandMissing(f"{argv[0]}: not found")
        out = {
            "crm_node": f"{self.here}\n",
            "cibadmin": self.file("cib.xml") if argv[0] == "cibadmin" else "",
            "crm_mon": self.file("crm_mon.xml") if argv[0] == "crm_mon" else "",
        }.get(argv[0])
        if out is not None:
            return Result(argv, 0, out, "")
        if argv[:3] == ("drbdsetup", "status", "--json"):
            text = self.drbd if self.drbd is not None else self.file("drbd.json")
            return Result(argv, 0, text, "")
        if argv[0] == "virsh":
            return Result(argv, *self.virsh)
        return Result(argv, 127, "", f"{argv[0]}: unexpected in this test")


def run(runner: Recorded, *argv: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    main = cli.can_migrate_main if argv[0] == "can-migrate" else cli.status_main
    rc = main(argv[1:], runner=runner)
    out, err = capsys.readouterr()
    return rc, out, err


def test_running_vm_can_migrate_from_its_node_and_from_the_target(capsys):
    for here in ("node2", "node1"):
        runner = Recorded("running", here, cib_from="node2")
        rc, out, _ = run(runner, "can-migrate", "vm1", "node1", capsys=capsys)
        assert (rc, out.splitlines()[0]) == (0, "yes: vm1 can live-migrate from node2 to node1"), out
        # the target's libvirtd was asked over the URI migrate_to uses (migration_transport=tcp)
        assert ("virsh", "--quiet", "--connect", "qemu+tcp://node1/system", "dominfo", "vm1") in runner.calls


DOMAIN_XML = """<domain type='qemu'><name>vm1</name><memory unit='MiB'>64</memory><devices>
<disk type='block' device='disk'><source dev='{dev}'/><target dev='vda'/></disk></devices></domain>"""


def test_drbd_resources_come_from_the_domain_config_like_the_agent(capsys, tmp_path):
    config = tmp_path / "vm1.xml"
    at_config = ("/etc/libvirt/tandem/vm1.xml", str(config))
    config.write_text(DOMAIN_XML.format(dev="/dev/drbd9271"))  # r0's minor in the lab
    rc, out, _ = run(
        Recorded("running", "node2", edit=at_config), "can-migrate", "vm1", "node1", capsys=capsys
    )
    assert rc == 0, out
    config.write_text(DOMAIN_XML.format(dev="/dev/drbd/by-res/r5/0"))  # migrate_to would refuse: so does this
    rc, out, _ = run(
        Recorded("running", "node2", edit=at_config), "can-migrate", "vm1", "node1", capsys=capsys
    )
    assert rc == 1 and "r5/0 is not a configured DRBD device here (set drbd_resources" in out
    without_drbd = Recorded("running", "node2", edit=at_config, missing=frozenset({"drbdsetup"}))
    rc, out, _ = run(without_drbd, "status", "--json", capsys=capsys)
    assert json.loads(out)["vms"][0]["drbd"] == ["r5"]  # named by the config, not the colocation's r0
    param = '<nvpair name="drbd_resources" value="r9" id="vm1-drbd"/>'
    named = Recorded("running", "node2", edit=('<nvpair name="config"', param + '<nvpair name="config"'))
    rc, out, _ = run(named, "can-migrate", "vm1", "node1", capsys=capsys)
    assert rc == 1 and "no Pacemaker clone manages DRBD resource r9" in out


def test_no_to_the_node_it_runs_on(capsys):
    rc, out, _ = run(Recorded("running", "node2"), "can-migrate", "vm1", "node2", capsys=capsys)
    assert rc == 1
    assert "  - vm1 already runs on node2" in out.splitlines()


def test_after_a_move_the_prefer_constraint_is_a_note_not_a_no(capsys):
    rc, out, _ = run(Recorded("moved", "node1"), "can-migrate", "--json", "vm1", "node2", capsys=capsys)
    answer = json.loads(out)
    assert rc == 0 and answer["can_migrate"] and answer["source"] == "node1"
    assert any(n.startswith("cli-prefer-vm1") for n in answer["notes"])


def test_link_cut_says_no_with_the_reasons(capsys):
    rc, out, _ = run(Recorded("linkcut", "node2"), "can-migrate", "--json", "vm1", "node1", capsys=capsys)
    problems = json.loads(out)["problems"]
    assert rc == 1
    assert "node1 is offline" in problems
    assert any(p.startswith("fencing constraint tandem-fence-r0 is in place") for p in problems)
    assert "r0 connection to node1 is Connecting" in problems  # the agent's own DRBD check


def test_link_still_cut_after_the_fenced_node_returned(capsys):
    rc, out, _ = run(Recorded("linkcut-later", "node2"), "can-migrate", "vm1", "node1", capsys=capsys)
    assert rc == 1
    assert "  - drbd-r0-clone is not running on node1, not Promoted" in out.splitlines()
    assert "  - r0 connection to node1 is Connecting" in out.splitlines()


def test_a_resync_says_no(capsys):
    text = (DATA / "running-node2-drbd.json").read_text()
    syncing = text.replace('"Established"', '"SyncSource"').replace(
        '"peer-disk-state": "UpToDate"', '"peer-disk-state": "Inconsistent"'
    )
    assert syncing != text
    runner = Recorded("running", "node2", drbd=syncing)
    rc, out, _ = run(runner, "can-migrate", "vm1", "node1", capsys=capsys)
    assert rc == 1 and "r0/0 disk on node1 is Inconsistent, not UpToDate" in out
    rc, out, _ = run(runner, "status", "--json", capsys=capsys)
    assert json.loads(out)["resyncs"] == [
        {"resource": "r0", "volume": 0, "peer": "node1", "replication": "SyncSource", "done": None}
    ]


def test_an_unreachable_target_libvirtd_says_no(capsys):
    runner = Recorded("running", "node2", virsh=(1, "", "error: failed to connect to the hypervisor"))
    rc, out, _ = run(runner, "can-migrate", "vm1", "node1", capsys=capsys)
    assert rc == 1 and "libvirtd on node1 does not answer at qemu+tcp://node1/system" in out


def test_a_third_node_cannot_tell(capsys):
    rc, out, _ = run(
        Recorded("running", "node3", cib_from="node2", drbd="[]"),
        "can-migrate",
        "vm1",
        "node1",
        capsys=capsys,
    )
    assert rc == 1
    assert out.startswith("cannot tell whether vm1 can live-migrate to node1")


def test_unknown_vm_and_unknown_node(capsys):
    rc, out, _ = run(Recorded("running", "node2"), "can-migrate", "vm9", "node1", capsys=capsys)
    assert rc == 1 and "vm9 is not an ocf:tandem:domain resource in the CIB" in out
    rc, out, _ = run(Recorded("running", "node2"), "can-migrate", "vm1", "node7", capsys=capsys)
    assert rc == 1 and "node7 is not a node of this cluster" in out


@pytest.mark.parametrize("missing", ["crm_node", "cibadmin", "crm_mon"])
def test_outside_a_cluster_node_a_clear_error(capsys, missing):
    runner = Recorded("running", "node2", missing=frozenset({missing}))
    for command in ("status", "can-migrate"):
        args = ("can-migrate", "vm1", "node1") if command == "can-migrate" else ("status",)
        rc, out, err = run(runner, *args, capsys=capsys)
        assert (rc, out) == (1, "")
        assert err == f"tandem {command}: {missing} is not installed: run this on a Pacemaker cluster node\n"


def test_pacemaker_not_running_is_a_clear_error(capsys):
    class Down(Recorded):
        def answer(self, argv, timeout):
            if argv[0] == "crm_node":
                return Result(argv, 102, "", "crm_node: Could not connect to the cluster: Transport endpoint")
            return super().answer(argv, timeout)

    rc, _, err = run(Down("running", "node2"), "status", capsys=capsys)
    assert rc == 1 and "is this a cluster node with Pacemaker running?" in err


def test_status_text_and_json_of_a_running_cluster(capsys):
    rc, out, _ = run(Recorded("running", "node2"), "status", capsys=capsys)
    assert rc == 0
    lines = out.splitlines()
    assert "vm vm1: Started on node2; DRBD r0" in lines
    assert "drbd r0 (drbd-r0-clone): node1 Promoted, node2 Promoted" in lines
    assert "  to node1: Connected, peer Primary disk 0:UpToDate, 0:Established" in lines
    rc, out, _ = run(Recorded("running", "node2"), "status", "--json", capsys=capsys)
    report = json.loads(out)
    assert report["vms"][0]["nodes"] == ["node2"] and report["fencing_constraints"] == []
    assert report["drbd"][0]["promotion_scores"] == {"node1": "10000", "node2": "10000"}


def test_status_shows_fencing_constraints_and_degraded_reasons(capsys):
    rc, out, _ = run(Recorded("linkcut-later", "node2"), "status", "--json", capsys=capsys)
    assert rc == 0
    report = json.loads(out)
    assert report["fencing_constraints"] == [
        {"id": "tandem-fence-r0", "clone": "drbd-r0-clone", "promoted_allowed_on": ["node2"]}
    ]
    assert {
        "operation": "drbd-r0_monitor_10000",
        "node": "node2",
        "exitcode": 191,
        "reason": "degraded: peer node1 disconnected (Connecting)",
    } in report["degraded"]


def test_status_text_of_a_cut_link(capsys):
    rc, out, _ = run(Recorded("linkcut-later", "node2"), "status", capsys=capsys)
    lines = out.splitlines()
    assert rc == 0 and lines[0] == "seen from node2"
    assert "fencing constraint tandem-fence-r0 on drbd-r0-clone: Promoted only on node2" in lines
    assert "  to node1: Connecting, peer Unknown disk 0:Outdated, 0:Off" in lines
    reason = "degraded: peer node1 disconnected (Connecting)"
    assert f"failed/degraded drbd-r0_monitor_10000 on node2 (rc 191): {reason}" in lines


def test_status_without_drbd_tools_still_shows_the_cluster(capsys, tmp_path):
    runner = Recorded("running", "node2", missing=frozenset({"drbdsetup"}))
    rc, out, _ = run(runner, "status", capsys=capsys)
    assert rc == 0 and "vm vm1: Started on node2; DRBD r0" in out
    assert "DRBD state of this node unavailable: drbdsetup: not found" in out


def test_the_tandem_command_knows_both(capsys):
    assert tandem_main(["--help"]) == 0
    names = [line.split()[0] for line in capsys.readouterr().out.splitlines() if line.startswith("  ")]
    assert {"status", "can-migrate"} <= set(names)
    with pytest.raises(SystemExit) as exc:  # argparse: a missing NODE is a usage error
        tandem_main(["can-migrate", "vm1"])
    assert exc.value.code == 2


def test_not_cluster_xml_is_refused():
    with pytest.raises(ClusterXmlError):
        parse_view("<cib/>", "<pacemaker-result/>")
    with pytest.raises(ClusterXmlError):
        parse_view("<html/>", "<pacemaker-result/>")
    with pytest.raises(ClusterXmlError):
        parse_view("not xml", "")


@given(st.integers(min_value=-(10**9), max_value=10**9))
def test_scores_are_clipped_to_infinity(n):
    assert parse_score(str(n)) == max(-INFINITY, min(INFINITY, n))
    assert parse_score("+INFINITY") == INFINITY and parse_score("-infinity") == -INFINITY


@given(st.sampled_from(["node1", "node2", "node3"]), st.sampled_from(["and", "or"]))
def test_uname_rules_are_evaluated_and_others_are_not(node, op):
    exprs = (Expression("#uname", "ne", "node1"), Expression("#uname", "ne", "node2"))
    loc = Location("x", "r", -INFINITY, None, None, op, exprs)
    assert applies(loc, node) is (node == "node3" if op == "and" else True)
    assert applies(Location("y", "r", -INFINITY, "node1", None), node) is (node == "node1")
    other = Location("z", "r", -INFINITY, None, None, "and", (Expression("pingd", "lt", "1"),))
    assert applies(other, node) is None
