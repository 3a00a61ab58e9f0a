# SPDX-License-Identifier: GPL-2.0-or-later
"""The lab: an N-node Corosync 3 + Pacemaker 2.1 cluster of namespace nodes (lab.netns) on this host.

Layout (everything the lab starts is recorded under its root, so `down` works from a fresh process):
  ROOT/.tandem-lab      marker: ROOT is ours and may be deleted
  ROOT/lab.json         the LabConfig
  ROOT/supervisor.pid   host pid + start time of the supervisor (lab.supervisor), which powers nodes on
                        and off: it is the parent of every node; the fence agent talks to it on control.sock
  ROOT/nodeI/           per-node state: etc-corosync, var-lib-*, var-log-*, run, home, boot.json, boot.log,
                        syslog.log (what the node's programs sent to its /dev/log, see lab.init)
Namespaces: PREFIX-hub holds bridge br0; PREFIX-nodeI is node I's network namespace (eth0 = NET.I/24 on the
bridge, no route anywhere else). With `LabConfig.repl_net` set, a second bridge br1 and eth1 = REPL_NET.I/24
per node make a separate replication network (DRBD's addresses), as production clusters have, so that the
cluster's and the replication's links fail apart. Several labs coexist when their prefixes and roots differ.

Hooks for other parts of the project: `LabConfig.binds` (bind mounts done in every node before anything
starts, e.g. fake drbdsetup over /usr/sbin/drbdsetup), `LabConfig.boot` (commands each node runs at every
boot, before corosync), `LabConfig.env` (added to the environment of the cluster daemons, so of the agents).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, TypeVar

from lab.crm import ClusterState, parse_crm_mon
from lab.init import DEV_LOG, SYSLOG_SOCKET
from lab.netns import TOP, Node, NodeDown, pids_in, proc_starttime

MARKER = ".tandem-lab"
STATE = "lab.json"
SOCKET = "control.sock"
SUPERVISOR = "supervisor.pid"
FENCE_AGENT = TOP / "lab" / "fence_tandemlab"
FENCE_INSTALLED = Path("/usr/sbin/fence_tandemlab")

# node dir entry -> where it is bind-mounted inside the node
NODE_MOUNTS = {
    "etc-corosync": "/etc/corosync",
    "var-lib-pacemaker": "/var/lib/pacemaker",
    "var-lib-corosync": "/var/lib/corosync",
    "var-lib-heartbeat": "/var/lib/heartbeat",
    "var-log-pacemaker": "/var/log/pacemaker",
    "var-log-corosync": "/var/log/corosync",
    "var-log-crmsh": "/var/log/crmsh",
    "run": "/run",
}
HACLUSTER_DIRS = ("var-lib-pacemaker", "var-log-pacemaker", "var-log-crmsh")

T = TypeVar("T")


class LabError(Exception):
    """The lab could not do what was asked; the message says why (with log tails where useful)."""


@dataclass(frozen=True)
class Bind:
    """A bind mount done in every node at boot, before the cluster starts. `source` may use {node}, {index},
    {dir} (the node's state dir) and {root}; `target` is a path inside the node and must exist. A missing
    source is created as an empty directory when the target is a directory."""

    source: str
    target: str


@dataclass(frozen=True)
class LabConfig:
    prefix: str = "tlab"
    root: str = ""  # default: /tmp/<prefix>-lab
    nodes: int = 2
    net: str = "10.213.77"
    repl_net: str = ""  # a second network (br1/eth1) for DRBD's replication; "" = none
    token_ms: int = 1000
    dc_deadtime: str = "1s"
    stonith: bool = True
    binds: tuple[Bind, ...] = ()
    boot: tuple[tuple[str, ...], ...] = ()
    env: tuple[tuple[str, str], ...] = ()
    up_timeout: float = 180.0
    # A fenced (rebooted) node stays off this long before it boots again, as real hardware takes a while:
    # without it a node comes back within a second, before the cluster has even acted on its death.
    reboot_delay: float = 0.0
    extra: Mapping[str, Any] = field(default_factory=dict)  # free-form, for hooks of other parts

    def __post_init__(self) -> None:
        if not 1 <= self.nodes <= 4:
            raise ValueError("a lab has 1 to 4 nodes")
        if not self.prefix.replace("-", "").isalnum() or len(self.prefix) > 12:
            raise ValueError("prefix: up to 12 letters, digits or dashes")
        if not self.root:
            object.__setattr__(self, "root", f"/tmp/{self.prefix}-lab")

    @property
    def path(self) -> Path:
        return Path(self.root)

    def with_hooks(
        self,
        binds: Sequence[Bind | tuple[str, str]] = (),
        boot: Sequence[Sequence[str]] = (),
        env: Mapping[str, str] | None = None,
    ) -> LabConfig:
        """This config plus more things to install into every node before its cluster starts."""
        return replace(
            self,
            binds=self.binds + tuple(b if isinstance(b, Bind) else Bind(*b) for b in binds),
            boot=self.boot + tuple(tuple(argv) for argv in boot),
            env=self.env + tuple((env or {}).items()),
        )

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)

    @classmethod
    def from_json(cls, text: str) -> LabConfig:
        raw = json.loads(text)
        raw["binds"] = tuple(Bind(**b) for b in raw["binds"])
        raw["boot"] = tuple(tuple(argv) for argv in raw["boot"])
        raw["env"] = tuple(tuple(kv) for kv in raw["env"])
        return cls(**raw)

    @classmethod
    def from_env(cls, **overrides: Any) -> LabConfig:
        """Defaults, then TANDEM_LAB_PREFIX / TANDEM_LAB_DIR / TANDEM_LAB_TOKEN / TANDEM_LAB_DC_DEADTIME, then
        the overrides given (None means "not given")."""
        given = {k: v for k, v in overrides.items() if v is not None}
        env = os.environ
        base: dict[str, Any] = {}
        if "TANDEM_LAB_PREFIX" in env:
            base["prefix"] = env["TANDEM_LAB_PREFIX"]
        if "TANDEM_LAB_DIR" in env:
            base["root"] = env["TANDEM_LAB_DIR"]
        if "TANDEM_LAB_TOKEN" in env:
            base["token_ms"] = int(env["TANDEM_LAB_TOKEN"])
        if "TANDEM_LAB_DC_DEADTIME" in env:
            base["dc_deadtime"] = env["TANDEM_LAB_DC_DEADTIME"]
        return cls(**{**base, **given})


def sh(argv: Sequence[str], timeout: float = 30.0, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run a host command (argv, no shell); errors carry its stderr."""
    done = subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout, check=False)
    if check and done.returncode != 0:
        raise LabError(f"{' '.join(argv)} exited {done.returncode}: {done.stderr.strip()}")
    return done


def poll(check: Callable[[], T | None], timeout: float, what: str, interval: float = 0.25) -> T:
    """Call `check` until it returns something other than None; LabError after `timeout` seconds."""
    end = time.monotonic() + timeout
    while True:
        got = check()
        if got is not None:
            return got
        if time.monotonic() >= end:
            raise LabError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


def tail(path: Path, limit: int = 3000) -> str:
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            fh.seek(max(0, fh.tell() - limit))
            return fh.read().decode(errors="replace")
    except OSError:
        return ""


class Lab:
    """One lab, described by its config; every method works from a fresh process (state is on disk)."""

    def __init__(self, config: LabConfig) -> None:
        self.config = config
        self.root = config.path
        self.hub = f"{config.prefix}-hub"
        self.nodes = [
            Node(
                name=f"node{i}",
                index=i,
                dir=self.root / f"node{i}",
                address=f"{config.net}.{i}",
                netns=f"{config.prefix}-node{i}",
                hub=self.hub,
            )
            for i in range(1, config.nodes + 1)
        ]
        self._supervisor: subprocess.Popen[bytes] | None = None
        self.last_seen_from: Node | None = None  # the node whose view satisfied the last wait_for

    @classmethod
    def load(cls, root: Path | str) -> Lab:
        try:
            return cls(LabConfig.from_json((Path(root) / STATE).read_text()))
        except FileNotFoundError:
            raise LabError(f"no lab at {root}") from None

    def node(self, which: str | int | Node) -> Node:
        if isinstance(which, Node):
            return which
        for node in self.nodes:
            if which in (node.name, node.index, str(node.index)):
                return node
        raise LabError(f"no node {which!r} in this lab")

    @property
    def socket_path(self) -> Path:
        return self.root / SOCKET

    # ---------------------------------------------------------------- up / down

    def up(self) -> float:
        """Create the namespaces, start the supervisor, power on every node, wait until all are online.
        Returns the seconds it took. A failed `up` tears itself down (keeping the logs) and raises."""
        t0 = time.monotonic()
        self._check_free()
        try:
            self._create()
            self._start_supervisor()
            self.power_all("on")
            self.wait_online(timeout=self.config.up_timeout)
        except BaseException as exc:
            logs = "\n".join(
                f"--- {n.name} {f}:\n{tail(n.dir / f, 1500)}"
                for n in self.nodes
                for f in ("boot.log", "var-log-corosync/corosync.log", "var-log-pacemaker/pacemaker.log")
            )
            self.down(keep=True)
            if isinstance(exc, LabError):
                raise LabError(f"{exc}\nlogs kept in {self.root}\n{logs}") from exc
            raise
        return time.monotonic() - t0

    def _check_free(self) -> None:
        if (self.root / STATE).exists():
            raise LabError(f"a lab already lives in {self.root}: run down first")
        taken = [p.name for p in Path("/run/netns").glob(f"{self.config.prefix}-*")]
        if taken:
            raise LabError(f"namespaces {' '.join(taken)} exist: run down first")
        if len(str(self.socket_path)) > 100:
            raise LabError(f"{self.socket_path}: too long for a unix socket")

    def _create(self) -> None:
        if (self.root / MARKER).exists():  # logs kept by an earlier lab: a stale CIB must not come back
            shutil.rmtree(self.root)
        elif self.root.exists() and any(self.root.iterdir()):
            raise LabError(f"{self.root} exists and is not a lab dir")
        self.root.mkdir(parents=True, exist_ok=True)
        (self.root / MARKER).touch()
        (self.root / STATE).write_text(self.config.to_json())
        install_fence_agent()
        sh(["ip", "netns", "add", self.hub])
        sh(["ip", "-n", self.hub, "link", "add", "br0", "type", "bridge"])
        sh(["ip", "-n", self.hub, "link", "set", "br0", "up"])
        if self.config.repl_net:
            sh(["ip", "-n", self.hub, "link", "add", "br1", "type", "bridge"])
            sh(["ip", "-n", self.hub, "link", "set", "br1", "up"])
        (self.root / "hosts").write_text(render_hosts(self.nodes))
        corosync_conf = render_corosync_conf(self.config, self.nodes)
        cib = seed_cib(self.config, self.nodes, self.socket_path)
        for node in self.nodes:
            self._create_node(node, corosync_conf, cib)

    def _create_node(self, node: Node, corosync_conf: str, cib: bytes) -> None:
        for sub in [*NODE_MOUNTS, "home"]:
            (node.dir / sub).mkdir(parents=True, exist_ok=True)
        for sub in ("cib", "pengine", "blackbox", "cores"):
            (node.dir / "var-lib-pacemaker" / sub).mkdir(exist_ok=True)
        for sub in HACLUSTER_DIRS:
            for path in [node.dir / sub, *(node.dir / sub).rglob("*")]:
                shutil.chown(path, "hacluster", "haclient")
        (node.dir / "etc-corosync" / "corosync.conf").write_text(corosync_conf)
        cib_file = node.dir / "var-lib-pacemaker" / "cib" / "cib.xml"
        cib_file.write_bytes(cib)
        shutil.chown(cib_file, "hacluster", "haclient")
        cib_file.chmod(0o600)
        (node.dir / "boot.json").write_text(json.dumps(self.boot_plan(node), indent=2))
        sh(["ip", "netns", "add", node.netns])
        veth = ["type", "veth", "peer", "name", "eth0", "netns", node.netns]
        sh(["ip", "-n", self.hub, "link", "add", f"v{node.index}", *veth])
        sh(["ip", "-n", self.hub, "link", "set", f"v{node.index}", "master", "br0", "up"])
        sh(["ip", "-n", node.netns, "link", "set", "lo", "up"])
        sh(["ip", "-n", node.netns, "addr", "add", f"{node.address}/24", "dev", "eth0"])
        sh(["ip", "-n", node.netns, "link", "set", "eth0", "up"])
        if self.config.repl_net:
            peer = ["type", "veth", "peer", "name", "eth1", "netns", node.netns]
            sh(["ip", "-n", self.hub, "link", "add", f"r{node.index}", *peer])
            sh(["ip", "-n", self.hub, "link", "set", f"r{node.index}", "master", "br1", "up"])
            repl = f"{self.config.repl_net}.{node.index}/24"
            sh(["ip", "-n", node.netns, "addr", "add", repl, "dev", "eth1"])
            sh(["ip", "-n", node.netns, "link", "set", "eth1", "up"])

    def boot_plan(self, node: Node) -> dict[str, Any]:
        """What the node's init does at every boot (see lab/init.py)."""
        words = {
            "{node}": node.name,
            "{index}": str(node.index),
            "{dir}": str(node.dir),
            "{root}": str(self.root),
        }

        def fill(text: str) -> str:
            for key, value in words.items():
                text = text.replace(key, value)
            return text

        binds = [[str(node.dir / sub), target] for sub, target in NODE_MOUNTS.items()]
        binds.append([str(self.root / "hosts"), "/etc/hosts"])
        binds += [[fill(b.source), b.target] for b in self.config.binds]
        return {
            "name": node.name,
            "binds": binds,
            "boot": [[fill(word) for word in argv] for argv in self.config.boot],
            "services": True,
            "env": {**node.base_env(), **dict(self.config.env)},
        }

    def _start_supervisor(self) -> None:
        with open(self.root / "supervisor.log", "ab") as out:
            self._supervisor = subprocess.Popen(
                [sys.executable, "-m", "lab.supervisor", str(self.root)],
                cwd=TOP,
                env={**os.environ, "PYTHONPATH": str(TOP)},
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=out,
                start_new_session=True,
            )
        start = proc_starttime(self._supervisor.pid)
        (self.root / SUPERVISOR).write_text(f"{self._supervisor.pid} {start}\n")
        poll(lambda: self._ping(), 30, "the lab supervisor")

    def _ping(self) -> bool | None:
        if self._supervisor is not None and self._supervisor.poll() is not None:
            raise LabError(f"the supervisor exited: {tail(self.root / 'supervisor.log')}")
        try:
            self.request("ping", timeout=5)
        except (OSError, LabError):
            return None
        return True

    def supervisor_pid(self) -> int | None:
        try:
            pid, start = (self.root / SUPERVISOR).read_text().split()
        except (OSError, ValueError):
            return None
        return int(pid) if proc_starttime(int(pid)) == int(start) else None

    def down(self, keep: bool = False) -> float:
        """Tear everything down: nodes (SIGKILL by namespace), supervisor (by recorded pid), namespaces,
        and ROOT unless `keep`. Safe to call on a half-built or already torn-down lab."""
        t0 = time.monotonic()
        if self.supervisor_pid() is not None:
            with contextlib.suppress(OSError, LabError):
                self.request("exit", timeout=60)
        from lab.power import power_off  # the supervisor's job, done here too for a dead supervisor

        for node in self.nodes:
            power_off(node)
        self._detach_emulator_loops()
        pid = self.supervisor_pid()
        if pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        if self._supervisor is not None:
            self._supervisor.wait(timeout=30)
            self._supervisor = None
        for ns in [n.netns for n in self.nodes] + [self.hub]:
            if (Path("/run/netns") / ns).exists():
                sh(["ip", "netns", "del", ns])
        release_dev_log()
        if keep:
            (self.root / STATE).rename(self.root / (STATE + ".old"))
        elif (self.root / MARKER).exists():
            shutil.rmtree(self.root)
        return time.monotonic() - t0

    def _detach_emulator_loops(self) -> None:
        """The DRBD emulator's loop devices (over each node's copy) outlive the nodes: detach them. Its
        directory is where the fake drbdsetup bound over /usr/sbin/drbdsetup lives (install.lab_hooks)."""
        from lab.drbd_emu.devices import detach_loops

        for bind in self.config.binds:
            emu_dir = Path(bind.source).parent.parent
            if bind.target == "/usr/sbin/drbdsetup" and (emu_dir / "nodes").is_dir():
                detach_loops(emu_dir)

    # ---------------------------------------------------------------- power (through the supervisor)

    def request(self, op: str, node: str | None = None, timeout: float = 120.0) -> dict[str, Any]:
        """Send one request to the supervisor (see lab.supervisor) and return its answer."""
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
            conn.settimeout(timeout)
            conn.connect(str(self.socket_path))
            conn.sendall(json.dumps({"op": op, "node": node}).encode() + b"\n")
            answer: dict[str, Any] = json.loads(conn.makefile("rb").readline() or b"{}")
        if not answer.get("ok"):
            raise LabError(f"{op} {node or ''}: {answer.get('error', 'no answer from the supervisor')}")
        return answer

    def power(self, op: str, node: str | int | Node) -> None:
        """on, off (hard power cut), shutdown (clean: stop the cluster services first) or reboot."""
        # a clean shutdown waits for pacemaker to stop every resource (up to 300 s per daemon)
        self.request(op, self.node(node).name, timeout=700.0 if op == "shutdown" else 120.0)

    def power_all(self, op: str, nodes: Sequence[str | int | Node] | None = None) -> None:
        """The same power operation on several nodes at once."""
        targets = [self.node(n) for n in nodes] if nodes is not None else self.nodes
        errors: list[BaseException] = []

        def one(node: Node) -> None:
            try:
                self.power(op, node)
            except BaseException as exc:  # reported below, in the caller's thread
                errors.append(exc)

        threads = [threading.Thread(target=one, args=(n,)) for n in targets]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        if errors:
            raise LabError("; ".join(str(e) for e in errors))

    # ---------------------------------------------------------------- looking at the cluster

    def live_nodes(self) -> list[Node]:
        return [n for n in self.nodes if n.is_on()]

    def run(
        self, node: str | int | Node, argv: Sequence[str], **kwargs: Any
    ) -> subprocess.CompletedProcess[str]:
        return self.node(node).run(argv, **kwargs)

    def crm_mon_xml(self, node: str | int | Node | None = None) -> str | None:
        """crm_mon's XML (with fence history) from `node`, or the first node that answers, or None."""
        for n in [self.node(node)] if node is not None else self.nodes:
            try:
                done = n.run(
                    ["crm_mon", "-1", "--output-as=xml", "--fence-history=3"], timeout=30, check=False
                )
            except (NodeDown, subprocess.TimeoutExpired):
                continue
            if done.returncode == 0 and "<nodes>" in done.stdout:
                return done.stdout
        return None

    def state(self, node: str | int | Node | None = None) -> ClusterState | None:
        xml = self.crm_mon_xml(node)
        return None if xml is None else parse_crm_mon(xml)

    def wait_for(
        self,
        check: Callable[[ClusterState], bool],
        what: str,
        timeout: float = 120.0,
        node: str | int | Node | None = None,
    ) -> ClusterState:
        """Poll crm_mon until `check(state)` holds as seen from `node` (default: from any live node, as
        views differ: a node just rebooted knows no fencing history); returns the state that satisfied it."""

        def once() -> ClusterState | None:
            for n in [self.node(node)] if node is not None else self.live_nodes():
                state = self.state(n)
                if state is not None and check(state):
                    self.last_seen_from = n
                    return state
            return None

        return poll(once, timeout, what, interval=0.5)

    def wait_online(
        self, names: Sequence[str] | None = None, timeout: float = 120.0, node: str | int | Node | None = None
    ) -> ClusterState:
        """Until exactly these nodes (default: all) are online and none is unclean or pending."""
        want = set(names if names is not None else [n.name for n in self.nodes])
        return self.wait_for(
            lambda s: s.online() == want and not s.unclean(), f"online nodes {sorted(want)}", timeout, node
        )

    def status_text(self) -> str:
        for node in self.live_nodes():
            done = node.run(["crm_mon", "-1"], timeout=30, check=False)
            if done.returncode == 0:
                return done.stdout
        raise LabError("no node answers")

    def crm(self, *args: str, node: str | int | Node | None = None, input: str | None = None) -> str:
        """Run crmsh in a node (default: the first live one) and return its output."""
        target = self.node(node) if node is not None else self.first_live()
        return target.run(["crm", *args], input=input, timeout=120).stdout

    def cibadmin(self, *args: str, node: str | int | Node | None = None, input: str | None = None) -> str:
        target = self.node(node) if node is not None else self.first_live()
        return target.run(["cibadmin", *args], input=input, timeout=60).stdout

    def first_live(self) -> Node:
        live = self.live_nodes()
        if not live:
            raise LabError("every node is off")
        return live[0]

    def collect_logs(self, dest: Path) -> Path:
        """Copy every node's logs, CIB, scheduler inputs (the DC's pe-input files: `crm_simulate -x` replays
        each decision), boot log and syslog (and the supervisor's log) into dest."""
        dest.mkdir(parents=True, exist_ok=True)
        for node in self.nodes:
            for sub in (
                "var-log-pacemaker",
                "var-log-corosync",
                "var-log-crmsh",
                "var-lib-pacemaker/cib",
                "var-lib-pacemaker/pengine",
            ):
                src = node.dir / sub
                if src.is_dir():
                    shutil.copytree(
                        src, dest / node.name / sub, dirs_exist_ok=True, ignore_dangling_symlinks=True
                    )
            for name in ("boot.log", "holder.log", "syslog.log"):
                if (node.dir / name).exists():
                    shutil.copy2(node.dir / name, dest / node.name / name)
        if (self.root / "supervisor.log").exists():
            shutil.copy2(self.root / "supervisor.log", dest / "supervisor.log")
        return dest

    def logs(self, pattern: str) -> list[str]:
        """Lines of every node's pacemaker log that contain `pattern` (node name prefixed)."""
        found = []
        for node in self.nodes:
            text = tail(node.dir / "var-log-pacemaker" / "pacemaker.log", 50_000_000)
            found += [f"{node.name}: {line}" for line in text.splitlines() if pattern in line]
        return found


def render_hosts(nodes: Sequence[Node]) -> str:
    """Node names resolve inside the lab (libvirt migration URIs and VirtualDomain use them)."""
    lines = ["127.0.0.1\tlocalhost", "::1\tlocalhost ip6-localhost ip6-loopback"]
    lines += [f"{node.address}\t{node.name}" for node in nodes]
    return "\n".join(lines) + "\n"


def render_corosync_conf(config: LabConfig, nodes: Sequence[Node]) -> str:
    lines = [
        "totem {",
        "    version: 2",
        f"    cluster_name: {config.prefix}",
        "    transport: knet",
        "    crypto_cipher: none",
        "    crypto_hash: none",
        f"    token: {config.token_ms}",
        "}",
        "nodelist {",
    ]
    for node in nodes:
        lines += ["    node {", f"        ring0_addr: {node.address}", f"        name: {node.name}"]
        lines += [f"        nodeid: {node.index}", "    }"]
    lines += ["}", "quorum {", "    provider: corosync_votequorum"]
    if len(nodes) == 2:
        lines.append("    two_node: 1")
    lines += ["}", "logging {", "    to_stderr: no", "    to_syslog: no", "    to_logfile: yes"]
    lines += ["    logfile: /var/log/corosync/corosync.log", "    timestamp: hires", "}", ""]
    return "\n".join(lines)


def fence_id(target: str) -> str:
    """The lab's fence device for one node."""
    return f"lab-fence-{target}"


def seed_cib(config: LabConfig, nodes: Sequence[Node], control: Path) -> bytes:
    """The CIB every node starts with: short dc-deadtime (no 20 s wait), STONITH with the lab's fence."""
    from lxml import etree

    cib = etree.Element("cib", {"validate-with": "pacemaker-3.9", "crm_feature_set": "3.16.1"})
    cib.attrib.update({"epoch": "1", "num_updates": "0", "admin_epoch": "0"})
    conf = etree.SubElement(cib, "configuration")
    props = etree.SubElement(
        etree.SubElement(conf, "crm_config"), "cluster_property_set", id="cib-bootstrap-options"
    )

    def nvpair(parent: etree._Element, name: str, value: str) -> None:
        etree.SubElement(parent, "nvpair", id=f"{parent.get('id')}-{name}", name=name, value=value)

    nvpair(props, "stonith-enabled", "true" if config.stonith else "false")
    nvpair(props, "dc-deadtime", config.dc_deadtime)
    etree.SubElement(conf, "nodes")
    resources = etree.SubElement(conf, "resources")
    constraints = etree.Element("constraints")
    for node in nodes if config.stonith else ():
        # One device per node, banned from its target, as with per-node BMCs: with one device for all,
        # Pacemaker's fencer lets the target reboot itself when no other node answered its query, and then
        # waits the request's whole timeout for a result that never comes (tandem-17983).
        device = fence_id(node.name)
        fence = etree.SubElement(resources, "primitive", id=device, type="fence_tandemlab")
        fence.set("class", "stonith")
        params = etree.SubElement(fence, "instance_attributes", id=f"{device}-params")
        nvpair(params, "lab_socket", str(control))
        nvpair(params, "pcmk_host_list", node.name)
        ops = etree.SubElement(fence, "operations")
        etree.SubElement(ops, "op", id=f"{device}-monitor-30s", name="monitor", interval="30s")
        etree.SubElement(
            constraints,
            "rsc_location",
            id=f"{device}-not-on-target",
            rsc=device,
            node=node.name,
            score="-INFINITY",
        )
    conf.append(constraints)
    etree.SubElement(cib, "status")
    return bytes(etree.tostring(cib, pretty_print=True))


def install_fence_agent() -> None:
    """Put the fence agent where Pacemaker looks for fence agents (/usr/sbin, shared by all nodes)."""
    data = FENCE_AGENT.read_bytes()
    with contextlib.suppress(OSError):
        if FENCE_INSTALLED.read_bytes() == data:
            return
    tmp = FENCE_INSTALLED.with_name(f".{FENCE_INSTALLED.name}.{os.getpid()}")
    tmp.write_bytes(data)
    tmp.chmod(0o755)
    tmp.replace(FENCE_INSTALLED)


def teardown(config: LabConfig, keep: bool = False) -> float:
    """Tear down whatever a lab with this config left behind (from its state file, or by its names; but
    never namespaces that a live lab in another dir owns)."""
    try:
        lab = Lab.load(config.path)
    except LabError:
        lab = Lab(replace(config, nodes=4))  # no state: try every node name this prefix can have
        for node in lab.nodes:
            owner = owner_root(node)
            if owner is not None and owner != lab.root and (owner / STATE).exists():
                raise LabError(f"{node.netns} belongs to the lab in {owner}: use --dir {owner}") from None
    return lab.down(keep=keep)


def release_dev_log(dev_log: Path = DEV_LOG, proc: Path = Path("/proc")) -> bool:
    """Remove the /dev/log symlink a node's init made on a host that had none (lab.init.open_dev_log), once
    no lab node runs anywhere: the host is left as it was. True if it was removed."""
    if not dev_log.is_symlink() or Path(os.readlink(dev_log)) != SYSLOG_SOCKET:
        return False
    if any(init_root(int(p.name), proc) for p in proc.iterdir() if p.name.isdigit()):
        return False
    with contextlib.suppress(FileNotFoundError):
        dev_log.unlink()
    return True


def owner_root(node: Node) -> Path | None:
    """The root of the lab whose init runs in this node's network namespace (None: no init there)."""
    inode = node.netns_inode()
    if inode is None:
        return None
    return next((root for pid in pids_in("net", inode) if (root := init_root(pid)) is not None), None)


def init_root(pid: int, proc: Path = Path("/proc")) -> Path | None:
    """The lab root of a node whose init (`init.py boot NODE_DIR`) is this process; None for any other."""
    try:
        argv = (proc / str(pid) / "cmdline").read_bytes().decode(errors="replace").rstrip("\0").split("\0")
    except OSError:
        return None
    if len(argv) >= 3 and argv[-3].endswith("init.py") and argv[-2] == "boot":
        return Path(argv[-1]).parent
    return None
