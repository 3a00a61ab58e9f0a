# SPDX-License-Identifier: GPL-2.0-or-later
"""The lab's pure parts, without a cluster: crm_mon parsing, generated corosync.conf and CIB (checked by
Pacemaker's own crm_verify), a node's syslog lines, and fence_tandemlab's fence-agents protocol against a
stand-in supervisor."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from lab.cluster import FENCE_AGENT, Lab, LabConfig, render_corosync_conf, seed_cib
from lab.crm import parse_crm_mon
from lab.init import syslog_line
from lxml import etree

CRM_MON = """<pacemaker-result api-version="2.25" request="crm_mon -1 --output-as=xml --fence-history=3">
  <nodes>
    <node name="node1" id="1" online="true" standby="false" pending="false" unclean="false" is_dc="true"/>
    <node name="node2" id="2" online="false" standby="false" pending="false" unclean="true" is_dc="false"/>
  </nodes>
  <resources>
    <resource id="lab-fence" resource_agent="stonith:fence_tandemlab" role="Started" active="true"
        failed="false" nodes_running_on="1"><node name="node1" id="1" cached="true"/></resource>
    <clone id="st-clone" multi_state="true" unique="false" failed="false">
      <resource id="st" resource_agent="ocf:pacemaker:Stateful" role="Promoted" active="true" failed="false"
          nodes_running_on="1"><node name="node2" id="2" cached="true"/></resource>
      <resource id="st" resource_agent="ocf:pacemaker:Stateful" role="Unpromoted" active="true" failed="false"
          nodes_running_on="1"><node name="node1" id="1" cached="true"/></resource>
    </clone>
    <resource id="dm" resource_agent="ocf:pacemaker:Dummy" role="Stopped" active="false" failed="false"
        nodes_running_on="0"/>
  </resources>
  <fence_history>
    <fence_event action="reboot" target="node2" client="pacemaker-controld.33" origin="node1"
        status="success" delegate="node1" completed="2026-11-22 00:26:21Z"/>
    <fence_event action="off" target="node1" origin="node2" status="failed" delegate="node2"
        completed="2026-11-22 00:27:00Z"/>
  </fence_history>
</pacemaker-result>
"""


def test_crm_mon_nodes_roles_and_fencing() -> None:
    state = parse_crm_mon(CRM_MON)
    assert state.online() == {"node1"}
    assert state.unclean() == {"node2"}
    assert state.dc() == "node1"
    assert state.roles("st-clone") == {"node2": "Promoted", "node1": "Unpromoted"}
    assert state.roles("st") == state.roles("st-clone")
    assert state.roles("dm") == {}
    assert state.locations("lab-fence") == {"node1"}
    (event,) = state.fenced("node2")
    when = datetime(2026, 11, 22, 0, 26, 21, tzinfo=UTC).timestamp()
    assert (event.action, event.delegate, event.completed) == ("reboot", "node1", when)
    assert state.fenced("node2", since=when + 1) == []
    assert state.fenced("node1") == []  # a failed attempt is no fencing


def test_corosync_conf_lists_every_node_and_two_node_quorum() -> None:
    lab = Lab(LabConfig(prefix="tu", nodes=2, token_ms=1500))
    conf = render_corosync_conf(lab.config, lab.nodes)
    assert "ring0_addr: 10.213.77.2" in conf and "name: node2" in conf and "nodeid: 2" in conf
    assert "two_node: 1" in conf and "token: 1500" in conf
    three = Lab(LabConfig(prefix="tu", nodes=3))
    assert "two_node" not in render_corosync_conf(three.config, three.nodes)


@pytest.mark.parametrize("stonith", [True, False])
def test_seeded_cib_is_valid_for_pacemaker(tmp_path: Path, stonith: bool) -> None:
    lab = Lab(LabConfig(prefix="tu", stonith=stonith, dc_deadtime="2s"))
    cib = seed_cib(lab.config, lab.nodes, lab.socket_path)
    (tmp_path / "cib.xml").write_bytes(cib)
    verify = subprocess.run(
        ["crm_verify", "--xml-file", str(tmp_path / "cib.xml")], capture_output=True, text=True
    )
    assert verify.returncode == 0, verify.stderr
    root = etree.fromstring(cib)
    props = {n.get("name"): n.get("value") for n in root.iterfind(".//cluster_property_set/nvpair")}
    assert props == {"stonith-enabled": str(stonith).lower(), "dc-deadtime": "2s"}
    assert bool(root.findall(".//primitive[@type='fence_tandemlab']")) == stonith


def test_config_round_trips_through_its_state_file() -> None:
    config = LabConfig(prefix="tu").with_hooks(
        binds=[("{dir}/fake-drbdsetup", "/usr/sbin/drbdsetup")], boot=[["true"]], env={"A": "1"}
    )
    assert LabConfig.from_json(config.to_json()) == config
    plan = Lab(config).boot_plan(Lab(config).node(2))
    assert ["/tmp/tu-lab/node2/fake-drbdsetup", "/usr/sbin/drbdsetup"] in plan["binds"]
    assert ["/tmp/tu-lab/node2/run", "/run"] in plan["binds"]
    assert plan["boot"] == [["true"]] and plan["env"]["A"] == "1" and plan["name"] == "node2"


def test_a_syslog_datagram_is_one_line_with_its_priority_in_words() -> None:
    now = time.mktime((2026, 12, 1, 0, 17, 53, 0, 0, -1)) + 0.875
    sent = b"<13>Dec  1 00:17:53 tandem-lab-check: hello\n"  # what `logger -t tandem-lab-check hello` sends
    line = "2026-12-01 00:17:53.875 node1 user.notice Dec  1 00:17:53 tandem-lab-check: hello\n"
    assert syslog_line("node1", sent, now) == line
    assert syslog_line("node2", b"<171>a\nb\0", now).endswith(" node2 local5.err a\\nb\n")
    assert syslog_line("node2", b"<999>no priority", now).endswith(" node2 - <999>no priority\n")


class FakeSupervisor:
    """Answers the control-socket protocol like lab.supervisor, recording the requests."""

    def __init__(self, path: Path) -> None:
        self.power = {"node1": "on", "node2": "off"}
        self.requests: list[dict[str, str]] = []
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(str(path))
        self.sock.listen()
        threading.Thread(target=self.serve, daemon=True).start()

    def serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                req = json.loads(conn.makefile("rb").readline())
                self.requests.append(req)
                conn.sendall(json.dumps(self.answer(req)).encode() + b"\n")

    def answer(self, req: dict[str, str]) -> dict[str, object]:
        op, node = req["op"], req.get("node")
        if op in ("ping", "list"):
            return {"ok": True, "nodes": self.power}
        if node not in self.power:
            return {"ok": False, "error": f"unknown node {node!r}"}
        if op in ("on", "reboot"):
            self.power[node] = "on"
        elif op == "off":
            self.power[node] = "off"
        return {"ok": True, "state": self.power[node]}


@pytest.fixture
def supervisor(tmp_path: Path) -> Iterator[tuple[FakeSupervisor, Path]]:
    path = tmp_path / "control.sock"
    fake = FakeSupervisor(path)
    yield fake, path
    fake.sock.close()


def fence(stdin: str = "", *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(FENCE_AGENT), *argv], input=stdin, capture_output=True, text=True, timeout=30)


def test_fence_agent_metadata_names_its_parameters_and_actions() -> None:
    for done in (fence("action=metadata\n"), fence("", "-o", "metadata")):
        assert done.returncode == 0
        meta = etree.fromstring(done.stdout.encode())
        params = {p.get("name") for p in meta.iterfind("parameters/parameter")}
        assert {"action", "plug", "port", "lab_socket"} <= params
        actions = {a.get("name") for a in meta.iterfind("actions/action")}
        assert {"on", "off", "reboot", "status", "list", "monitor", "metadata"} <= actions


def test_fence_agent_power_actions_as_pacemaker_calls_them(supervisor: tuple[FakeSupervisor, Path]) -> None:
    fake, path = supervisor
    args = f"lab_socket={path}\nnodename=node2\n"
    assert fence(args + "action=status\nport=node2\n").returncode == 2  # off
    assert fence(args + "action=reboot\nport=node2\n").returncode == 0
    assert fence(args + "action=status\nport=node2\n").returncode == 0  # on again
    assert fence(args + "action=off\nplug=node1\n").returncode == 0
    assert fake.power == {"node1": "off", "node2": "on"}
    assert [r["op"] for r in fake.requests] == ["status", "reboot", "status", "off"]
    listed = fence(f"lab_socket={path}\naction=list\n")
    assert listed.stdout.splitlines() == ["node1,", "node2,"]
    assert fence(f"lab_socket={path}\naction=monitor\n").returncode == 0
    by_argv = fence("", "-o", "status", "-n", "node2", f"--lab-socket={path}")
    assert by_argv.returncode == 0


def test_fence_agent_failures_exit_1_with_a_reason(
    supervisor: tuple[FakeSupervisor, Path], tmp_path: Path
) -> None:
    _fake, path = supervisor
    unknown = fence(f"lab_socket={path}\naction=reboot\nport=node9\n")
    assert unknown.returncode == 1 and "unknown node" in unknown.stderr
    nowhere = fence(f"lab_socket={tmp_path}/none.sock\nlogin_timeout=0.3\naction=reboot\nport=node1\n")
    assert nowhere.returncode == 1 and "unable to connect" in nowhere.stderr
    assert fence("action=reboot\nport=node1\n").returncode == 1  # no lab_socket
    assert fence(f"lab_socket={path}\naction=explode\n").returncode == 1
    assert fence(f"lab_socket={path}\nlogin_timeout=soon\naction=monitor\n").returncode == 1


def test_fence_agent_waits_its_login_timeout_for_an_unreachable_switch(
    supervisor: tuple[FakeSupervisor, Path],
) -> None:
    """The campaign's fence-fail moves the switch's socket away: an attempt then ends as against a BMC that
    does not answer, after the login timeout, and succeeds if the switch answers again before that."""
    fake, path = supervisor
    away = path.with_name("control.sock.off")
    path.rename(away)
    threading.Timer(1.0, away.rename, (path,)).start()
    t0 = time.monotonic()
    back = fence(f"lab_socket={path}\nlogin_timeout=10\naction=reboot\nport=node2\n")
    assert back.returncode == 0 and fake.power["node2"] == "on"
    assert time.monotonic() - t0 >= 1.0  # it waited for the switch instead of failing at once


def test_the_dev_log_symlink_goes_with_the_last_lab_node(tmp_path: Path) -> None:
    from lab.cluster import release_dev_log
    from lab.init import SYSLOG_SOCKET

    proc, dev_log = tmp_path / "proc", tmp_path / "log"
    (proc / "7").mkdir(parents=True)
    (proc / "7" / "cmdline").write_bytes(b"python3\0/x/lab/init.py\0boot\0/tmp/tlt-lab/node1\0")
    dev_log.symlink_to(SYSLOG_SOCKET)
    assert not release_dev_log(dev_log, proc) and dev_log.is_symlink()  # a node still runs
    (proc / "7" / "cmdline").write_bytes(b"corosync\0-f\0")
    assert release_dev_log(dev_log, proc) and not dev_log.is_symlink()
    dev_log.symlink_to("/run/systemd/journal/dev-log")  # the host's own: never ours to remove
    assert not release_dev_log(dev_log, proc) and dev_log.is_symlink()


def _process(proc: Path, pid: int, namespace: str, mounts: list[str]) -> None:
    """A fake /proc/PID with its mount namespace and the mount points it sees."""
    (proc / str(pid) / "ns").mkdir(parents=True)
    (proc / str(pid) / "ns" / "mnt").symlink_to(namespace)
    lines = [f"{i} 1 0:{i} / {m} rw - tmpfs none rw" for i, m in enumerate(mounts)]
    (proc / str(pid) / "mountinfo").write_text("".join(f"{line}\n" for line in lines))


def test_the_emulators_placeholders_leave_the_hosts_dev_once_no_lab_mounts_over_them(tmp_path: Path) -> None:
    from lab.drbd_emu.devices import remove_placeholders

    emu, dev, proc = tmp_path / "emu", tmp_path / "dev", tmp_path / "proc"
    (emu / "nodes" / "node1" / "dev").mkdir(parents=True)
    (emu / "nodes" / "node1" / "dev" / "drbd9271").write_bytes(b"")  # stands for the block node
    (dev / "drbd" / "by-res" / "r0").mkdir(parents=True)
    (dev / "drbd9271").touch()
    (dev / "drbd" / "by-res" / "r0" / "0").symlink_to(dev / "drbd9271")
    (dev / "drbd1").write_bytes(b"not ours")  # another device: left alone
    _process(proc, 1, "mnt:[1]", ["/", "/proc"])
    _process(proc, 40, "mnt:[2]", ["/", str(dev / "drbd9271")])  # another lab's node binds the same path
    (proc / "self").mkdir()  # not a process
    assert remove_placeholders(emu, dev, proc) == []
    assert (dev / "drbd9271").exists() and (dev / "drbd" / "by-res" / "r0" / "0").is_symlink()
    shutil.rmtree(proc / "40")  # that node is gone
    gone = remove_placeholders(emu, dev, proc)
    assert sorted(p.name for p in gone) == ["0", "drbd9271"]
    assert sorted(p.name for p in dev.iterdir()) == ["drbd1"]  # the empty by-res tree went too
