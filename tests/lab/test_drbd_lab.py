# SPDX-License-Identifier: GPL-2.0-or-later
"""ocf:tandem:drbd and its fence handlers in a 2-node lab cluster on the DRBD emulator, side by side with the
anchor ocf:linbit:drbd + crm-fence-peer.9.sh running the same scenarios.

Scenarios, per agent: a promotable clone, single primary; a DRBD disconnect places the fencing constraint and
a reconnect + resync removes it; the Primary's node is killed, the survivor is promoted, the killed node comes
back Secondary and resyncs; dual primary (promoted-max=2, allow-two-primaries). What each agent showed is
written to /tmp/<prefix>-drbd-agents/drbd-agents-compared.md (see docs/drbd-vs-linbit.md for the summary).

Cost: one cluster (up ~5 s) and a few minutes of scenarios on 2 cores.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from lab.cluster import Lab, LabConfig, poll
from lab.crm import ClusterState
from lab.drbd_emu.devices import detach_loops
from lab.drbd_emu.install import lab_hooks
from lab.drbd_emu.setup import fresh_dir, initial_sync, two_node_conf

from lab import faults
from tandem.install import install
from tests.lab.conftest import record

MINOR = 9250

# The crm configuration of README.md ("ocf:tandem:drbd"), run verbatim.
TANDEM_CIB = """primitive drbd_r0 ocf:tandem:drbd params drbd_resource=r0 \\
    op monitor interval=10s role=Promoted timeout=75s \\
    op monitor interval=20s role=Unpromoted timeout=75s \\
    op start timeout=240s op stop timeout=100s op promote timeout=90s op demote timeout=90s
clone ms_drbd_r0 drbd_r0 meta promotable=true promoted-max=1 promoted-node-max=1 \\
    clone-max=2 clone-node-max=1 notify=true
commit
"""
LINBIT_CIB = TANDEM_CIB.replace("ocf:tandem:drbd", "ocf:linbit:drbd")


@dataclass(frozen=True)
class Flavour:
    name: str
    cib: str
    fence: str
    unfence: str
    constraint: str
    score_handlers: tuple[tuple[str, str], ...] = ()  # the README's, besides fencing (tandem only)


def emu_dir(config: LabConfig) -> Path:
    return Path(f"/tmp/{config.prefix}-drbd-agents")


def flavours(d: Path) -> dict[str, Flavour]:
    return {
        "tandem": Flavour(
            "ocf:tandem:drbd",
            TANDEM_CIB,
            f"{d}/sbin/tandem-fence-peer",
            f"{d}/sbin/tandem-unfence-peer",
            "tandem-fence-r0",
            (
                ("after-resync-target", f"{d}/sbin/tandem-after-resync-target"),
                ("disconnected", f"{d}/sbin/tandem-disconnected"),
            ),
        ),
        "linbit": Flavour(
            "ocf:linbit:drbd",
            LINBIT_CIB,
            "/usr/lib/drbd/crm-fence-peer.9.sh",
            "/usr/lib/drbd/crm-unfence-peer.9.sh",
            "drbd-fence-by-handler-r0-ms_drbd_r0",
        ),
    }


OBSERVED: dict[str, dict[str, object]] = {}


def write_conf(config: LabConfig, flavour: Flavour, *, dual: bool = False, stonith: bool = False) -> None:
    """Rewrite the bind-mounted drbd.conf in place (same inode, so every node sees it)."""
    text = two_node_conf(
        net=config.net,
        minor=MINOR,
        dual=dual,
        fencing="resource-and-stonith" if stonith else "resource-only",
        handlers={
            "fence-peer": flavour.fence,
            "unfence-peer": flavour.unfence,
            **dict(flavour.score_handlers),
        },
        comment="lab drbd.conf for the emulator",
    )
    with open(emu_dir(config) / "drbd.conf", "r+") as fh:
        fh.seek(0)
        fh.write(text)
        fh.truncate()


@pytest.fixture(scope="module")
def lab_config(lab_defaults: LabConfig) -> LabConfig:
    """UpToDate data on both nodes (as after the initial sync); ocf:tandem:drbd installed in every node."""
    d = emu_dir(lab_defaults)
    fresh_dir(d)
    install(d / "ocf", d / "sbin")
    # /usr/lib/ocf/resource.d as every node sees it: Debian's providers plus tandem
    shutil.copytree(
        "/usr/lib/ocf/resource.d", d / "resource.d", symlinks=True, ignore=shutil.ignore_patterns("tandem")
    )
    shutil.copytree(d / "ocf" / "resource.d" / "tandem", d / "resource.d" / "tandem")
    conf = d / "drbd.conf"
    conf.write_text("")
    write_conf(lab_defaults, flavours(d)["tandem"])
    initial_sync(d, conf)
    return lab_defaults.with_hooks(**lab_hooks(d, conf)).with_hooks(  # type: ignore[arg-type]
        binds=[(str(d / "resource.d"), "/usr/lib/ocf/resource.d")],
        env={"TANDEM_LIBDIR": str(d / "ocf" / "lib" / "tandem")},
    )


@pytest.fixture(scope="module", autouse=True)
def loops(lab: Lab) -> Iterator[None]:
    yield
    detach_loops(emu_dir(lab.config))
    write_report(lab)


@pytest.fixture(autouse=True)
def drbd_link_healed(cluster: Lab) -> Iterator[None]:
    """The emulated replication link is whole after every test, also after a failed one (a cut left behind
    would fail every later scenario of the module)."""
    yield
    emu(cluster, "heal", "node1", "node2")


@pytest.fixture(scope="module", params=["tandem", "linbit"])
def flavour(request: pytest.FixtureRequest, lab: Lab) -> Iterator[Flavour]:
    """One agent's clone in the cluster for a run of scenarios; removed (and DRBD down) afterwards."""
    f = flavours(emu_dir(lab.config))[request.param]
    write_conf(lab.config, f)
    # A fenced node stays off until the test powers it on (with the default reboot it rejoins within a
    # second, in the middle of the survivor's promotion transition).
    lab.crm("configure", "property", "stonith-action=off")
    OBSERVED.setdefault(f.name, {})
    yield f
    stop_clone(lab)


def stop_clone(lab: Lab) -> None:
    faults.heal(lab)
    lab.power_all("on", [n for n in lab.nodes if not n.is_on()])
    lab.wait_online(timeout=180)
    if "ms_drbd_r0" in lab.cibadmin("-Q", "-o", "resources"):
        lab.crm("resource", "stop", "ms_drbd_r0")
        lab.wait_for(lambda s: not active(s), "ms_drbd_r0 stopped", timeout=180)
        for c in ("tandem-fence-r0", "drbd-fence-by-handler-r0-ms_drbd_r0"):  # they refer to the clone
            lab.cibadmin("-D", "-A", f"//rsc_location[@id='{c}']")
        lab.cibadmin("-D", "-A", "//clone[@id='ms_drbd_r0']")


def configure(lab: Lab, text: str) -> None:
    done = lab.first_live().run(["crm", "configure"], input=text, timeout=120, check=False)
    assert done.returncode == 0, done.stdout + done.stderr


def active(state: ClusterState) -> dict[str, str]:
    return {n: r for n, r in state.roles("ms_drbd_r0").items() if r in ("Promoted", "Unpromoted")}


def promoted(state: ClusterState) -> list[str]:
    return sorted(n for n, r in active(state).items() if r == "Promoted")


def drbd(lab: Lab, node: str) -> dict[str, object] | None:
    out = lab.node(node).run(["drbdsetup", "status", "r0", "--json"], check=False).stdout
    return json.loads(out)[0] if out.strip().startswith("[") and json.loads(out) else None


def disk(lab: Lab, node: str) -> str:
    status = drbd(lab, node)
    if status is None:
        return "Down"
    return str(status["devices"][0]["disk-state"])  # type: ignore[index]


def role(lab: Lab, node: str) -> str:
    status = drbd(lab, node)
    return "Down" if status is None else str(status["role"])


def constraint_present(lab: Lab, flavour: Flavour) -> bool:
    return flavour.constraint in lab.cibadmin("-Q", "-o", "constraints")


def handler_calls(lab: Lab, handler: str) -> list[tuple[str, int]]:
    log = json.loads((emu_dir(lab.config) / "state.json").read_text()).get("handler_log", [])
    return [(e["node"], e["rc"]) for e in log if e["handler"] == handler]


def emu(lab: Lab, *args: str, node: str | None = None) -> None:
    target = lab.node(node) if node else lab.first_live()
    target.run([str(emu_dir(lab.config) / "bin" / "drbd-emu"), *args])


def monitor_rc(lab: Lab, node: str) -> str:
    """The last recorded monitor result of the instance on `node`, from the CIB's operation history."""
    out = lab.cibadmin("-Q", "-o", "status")
    from lxml import etree

    doc = etree.fromstring(out.encode())
    ops = [
        op
        for st in doc.iter("node_state")
        if st.get("uname") == node
        for op in st.iter("lrm_rsc_op")
        if op.get("operation") == "monitor" and op.get("interval") != "0" and "drbd_r0" in op.get("id", "")
    ]
    ops.sort(key=lambda op: int(op.get("last-rc-change", "0")))
    return ops[-1].get("rc-code", "?") if ops else "none"


def note(flavour: Flavour, key: str, value: object) -> None:
    OBSERVED.setdefault(flavour.name, {})[key] = value


# -- scenarios --------------------------------------------------------------------------------------------
def test_single_primary(cluster: Lab, flavour: Flavour) -> None:
    t0 = time.monotonic()
    configure(cluster, flavour.cib)
    state = cluster.wait_for(
        lambda s: len(promoted(s)) == 1 and len(active(s)) == 2, "one promoted", timeout=180
    )
    note(flavour, "configure to one Promoted (s)", round(time.monotonic() - t0, 1))
    record(f"{flavour.name}: configure to promoted", time.monotonic() - t0)
    for node, r in active(state).items():
        assert role(cluster, node) == ("Primary" if r == "Promoted" else "Secondary")
        assert disk(cluster, node) == "UpToDate"
    assert not [r for r in state.instances("ms_drbd_r0") if r.failed]


def test_disconnect_places_constraint_reconnect_removes_it(cluster: Lab, flavour: Flavour) -> None:
    state = cluster.wait_for(lambda s: len(promoted(s)) == 1, "one promoted", timeout=180)
    primary = promoted(state)[0]
    secondary = next(n for n in active(state) if n != primary)
    before = len(handler_calls(cluster, "fence-peer"))
    emu(cluster, "write", "r0", node=primary)
    emu(cluster, "cut", "node1", "node2")
    calls = poll(lambda: handler_calls(cluster, "fence-peer")[before:] or None, 120, "fence-peer done")
    note(flavour, "fence-peer on DRBD link loss (node, exit)", calls)
    syslog = cluster.node(primary).dir / "syslog.log"  # crm-fence-peer.9.sh says why only there
    said = syslog.read_text().splitlines()[-15:] if syslog.exists() else []
    assert (primary, 4) in calls, f"fence-peer results {calls}; DRBD then: {drbd(cluster, primary)}; {said}"
    assert constraint_present(cluster, flavour)
    time.sleep(25)  # one monitor interval of each role
    note(
        flavour,
        "monitor rc while disconnected (Primary, Secondary)",
        (monitor_rc(cluster, primary), monitor_rc(cluster, secondary)),
    )
    emu(cluster, "heal", "node1", "node2")
    poll(lambda: (not constraint_present(cluster, flavour)) or None, 180, "fencing constraint removed")
    assert disk(cluster, secondary) == "UpToDate"
    note(flavour, "constraint removed after reconnect + resync", True)
    # What an admin does after a degraded period: Pacemaker 2.1.5 keeps a degraded monitor result as the
    # monitor's last failure, and cancelling that monitor in a new DC's first transition (the next test kills
    # the DC) stalls the transition for 80 s (docs/drbd-vs-linbit.md).
    cluster.crm("resource", "cleanup", "ms_drbd_r0")


def score(lab: Lab, node: str) -> str | None:
    """The node's promotion score in the CIB, None when it has none."""
    out = lab.first_live().run(
        ["crm_attribute", "-N", node, "-n", "master-drbd_r0", "-l", "reboot", "-G", "-q"], check=False
    )
    return out.stdout.strip() or None if out.returncode == 0 else None


def steady_score(lab: Lab, node: str) -> str | None:
    """The node's score once it held for 3 s (the last test's heal may still be on its way to the CIB)."""
    first = score(lab, node)
    time.sleep(3)
    return first if first is not None and score(lab, node) == first else None


def test_a_link_back_without_a_resync_gives_the_secondary_its_score_back(
    cluster: Lab, flavour: Flavour
) -> None:
    """Nothing written while the replication link is cut, so no resync when it heals, and DRBD runs no
    handler for a connection that comes back: tandem-disconnected's watcher writes the Secondary's score
    again about a second after the reconnection; otherwise it waits for the next Unpromoted monitor."""
    state = cluster.wait_for(lambda s: len(promoted(s)) == 1 and len(active(s)) == 2, "steady", timeout=180)
    primary = promoted(state)[0]
    secondary = next(n for n in active(state) if n != primary)
    before = poll(lambda: steady_score(cluster, secondary), 60, f"{secondary}'s score, steady")
    resyncs = len(handler_calls(cluster, "after-resync-target"))
    emu(cluster, "cut", "node1", "node2")
    time.sleep(25)  # one monitor interval of each role
    lowered = score(cluster, secondary)
    emu(cluster, "heal", "node1", "node2")
    healed = time.monotonic()
    poll(lambda: score(cluster, secondary) == before or None, 60, f"{secondary}'s score {before} again")
    back = time.monotonic() - healed
    note(
        flavour,
        "link cut without writes: Secondary's score before, cut, back after the heal (s)",
        (before, lowered, round(back, 1)),
    )
    record(f"{flavour.name}: link back without resync to the Secondary's score", back)
    assert disk(cluster, secondary) == "UpToDate"
    assert len(handler_calls(cluster, "after-resync-target")) == resyncs  # no resync brought it back
    if flavour.name == "ocf:tandem:drbd":
        assert lowered != before, "a peer of unknown state did not lower the score"
        assert back <= 5, f"the score came back {back:.1f}s after the link: at a monitor, not by the watcher"
    poll(lambda: (not constraint_present(cluster, flavour)) or None, 180, "fencing constraint removed")
    cluster.crm("resource", "cleanup", "ms_drbd_r0")


def test_kill_primary_node(cluster: Lab, flavour: Flavour) -> None:
    state = cluster.wait_for(lambda s: len(promoted(s)) == 1 and len(active(s)) == 2, "steady", timeout=180)
    primary = promoted(state)[0]
    survivor = next(n for n in active(state) if n != primary)
    note(flavour, "the killed Primary was the DC", state.dc() == primary)
    emu(cluster, "write", "r0", node=primary)
    t0 = time.monotonic()
    faults.kill(cluster, primary)  # its DRBD goes with it: the survivor's emulator kernel sees it gone
    cluster.wait_for(lambda s: promoted(s) == [survivor], f"{survivor} promoted", timeout=240, node=survivor)
    took = time.monotonic() - t0
    note(flavour, "kill Primary's node to survivor Promoted (s)", round(took, 1))
    record(f"{flavour.name}: failover after node kill", took)
    if took > 30:  # not a failure (timings never are), but worth the logs: see docs/drbd-vs-linbit.md
        kept = cluster.collect_logs(emu_dir(cluster.config) / f"slow-failover-{flavour.name.split(':')[1]}")
        note(flavour, "logs of a slow failover", str(kept))
    assert role(cluster, survivor) == "Primary"
    emu(cluster, "write", "r0", node=survivor)
    note(flavour, "fence-peer on the survivor (node, exit)", handler_calls(cluster, "fence-peer")[-1:])
    faults.start(cluster, primary)
    cluster.wait_online(timeout=240)
    cluster.wait_for(
        lambda s: active(s).get(primary) == "Unpromoted" and promoted(s) == [survivor],
        f"{primary} back as Unpromoted",
        timeout=240,
    )
    assert role(cluster, primary) == "Secondary"
    poll(lambda: disk(cluster, primary) == "UpToDate" or None, 180, f"{primary} resynced")
    poll(lambda: (not constraint_present(cluster, flavour)) or None, 180, "constraint removed after resync")
    note(flavour, "killed node back Secondary, resynced, constraint gone", True)


def test_dual_primary(cluster: Lab, flavour: Flavour) -> None:
    stop_clone(cluster)
    write_conf(cluster.config, flavour, dual=True)
    configure(cluster, flavour.cib.replace("promoted-max=1", "promoted-max=2"))
    state = cluster.wait_for(lambda s: len(promoted(s)) == 2, "both promoted", timeout=180)
    for node in active(state):
        assert role(cluster, node) == "Primary"
    note(flavour, "dual primary: both Promoted", True)
    stop_clone(cluster)
    write_conf(cluster.config, flavour)


def suspended(lab: Lab, node: str) -> bool | None:
    """Whether `node`'s DRBD I/O is frozen; None when the node is off (it writes nothing either way)."""
    if not lab.node(node).is_on():
        return None
    status = drbd(lab, node)
    return bool(status and status.get("suspended"))


def test_dual_primary_link_loss_with_stonith(cluster: Lab, flavour: Flavour) -> None:
    """Both Primary, `fencing resource-and-stonith`, the DRBD link breaks while the cluster stays connected:
    both fence-peer handlers race. Whatever happens, both nodes must not go on writing."""
    stop_clone(cluster)
    write_conf(cluster.config, flavour, dual=True, stonith=True)
    configure(cluster, flavour.cib.replace("promoted-max=1", "promoted-max=2"))
    cluster.wait_for(lambda s: len(promoted(s)) == 2, "both promoted", timeout=180)
    before = len(handler_calls(cluster, "fence-peer"))
    emu(cluster, "cut", "node1", "node2")
    calls = poll(
        lambda: handler_calls(cluster, "fence-peer")[before:] or None, 120, "a fence-peer handler done"
    )
    time.sleep(10)  # let the other handler (if its node lives) finish too
    calls = handler_calls(cluster, "fence-peer")[before:]
    states = {n: suspended(cluster, n) for n in ("node1", "node2")}
    note(flavour, "dual primary, resource-and-stonith, link cut: handlers (node, exit)", calls)
    note(flavour, "... then I/O frozen per node (None = node off)", states)
    both_resumed = all(s is False for s in states.values())
    if flavour.name == "tandem":
        assert not both_resumed, "both Primaries resumed I/O after the link loss"
    else:  # the anchor's known weakness (constraint only, no STONITH): recorded, not required
        note(flavour, "... both Primaries resumed I/O (diverging data)", both_resumed)
    emu(cluster, "heal", "node1", "node2")
    stop_clone(cluster)
    write_conf(cluster.config, flavour)


def write_report(lab: Lab) -> None:
    if not OBSERVED:
        return
    keys = list(dict.fromkeys(k for obs in OBSERVED.values() for k in obs))
    names = list(OBSERVED)
    lines = [
        "# ocf:tandem:drbd vs ocf:linbit:drbd in the lab (this run)",
        "",
        "| | " + " | ".join(names) + " |",
    ]
    lines.append("|---|" + "---|" * len(names))
    for k in keys:
        lines.append(f"| {k} | " + " | ".join(str(OBSERVED[n].get(k, "-")) for n in names) + " |")
    report = emu_dir(lab.config) / "drbd-agents-compared.md"
    report.write_text("\n".join(lines) + "\n")
    print(f"\nDRBD agents compared: {report}")
