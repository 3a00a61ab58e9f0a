"""Live move and failover, both pairs, on the demo's cluster (lab.scenarios.VmCluster and its scenarios).

Each pair gets a fresh cluster built the same way: the README's crm block for ours; for the anchors the very
same block with only the agent types swapped (ocf:linbit:drbd, ocf:heartbeat:VirtualDomain take the same
parameter names) and drbd.conf's fence-peer/unfence-peer handlers swapped for drbd-utils' own
crm-fence-peer.9.sh/crm-unfence-peer.9.sh, as DRBD's user guide configures them for Pacemaker.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from lab.cluster import LabConfig
from lab.scenarios import Failover, Move, VmCluster, crm_block, live_migration, node_failure

from bench.report import section, table, times
from bench.stats import ratio, summarize

ANCHOR_TYPES = {"ocf:tandem:drbd": "ocf:linbit:drbd", "ocf:tandem:domain": "ocf:heartbeat:VirtualDomain"}
ANCHOR_HANDLERS = {
    "/usr/sbin/tandem-fence-peer": "/usr/lib/drbd/crm-fence-peer.9.sh",
    "/usr/sbin/tandem-unfence-peer": "/usr/lib/drbd/crm-unfence-peer.9.sh",
}


def swap(text: str, table_: dict[str, str]) -> str:
    for old, new in table_.items():
        text = text.replace(old, new)
    return text


def anchor_crm(ours: str) -> str:
    swapped = swap(ours, ANCHOR_TYPES)
    if swapped == ours:
        raise ValueError("the crm block names neither ocf:tandem:drbd nor ocf:tandem:domain")
    return swapped


class AnchorCluster(VmCluster):
    """The demo's cluster with drbd-utils' fencing handlers in drbd.conf."""

    @staticmethod
    def lab_config(base: LabConfig, work: Path) -> LabConfig:
        config = VmCluster.lab_config(base, work)
        conf = work / "emu" / "drbd.conf"
        conf.write_text(swap(conf.read_text(), ANCHOR_HANDLERS))
        return config


@dataclass(frozen=True)
class PairRuns:
    label: str
    moves: tuple[Move, ...]
    failovers: tuple[Failover, ...]
    accel: str


def run_pair(
    label: str,
    cls: type[VmCluster],
    crm: str,
    base: LabConfig,
    work: Path,
    repeats: int,
    log: Callable[[str], None],
) -> PairRuns:
    from lab.accel import detect

    moves: list[Move] = []
    fails: list[Failover] = []
    with cls.start(base, work, log, crm=crm) as vc:
        for _ in range(repeats):
            moves += live_migration(vc)
        for _ in range(repeats):
            fails.append(node_failure(vc))
    return PairRuns(label, tuple(moves), tuple(fails), detect().kind)


def run(base: LabConfig, work: Path, repeats: int, log: Callable[[str], None]) -> str:
    ours_crm = crm_block()
    pairs = [
        run_pair("ours", VmCluster, ours_crm, base, work / "move-ours", repeats, log),
        run_pair("anchor", AnchorCluster, anchor_crm(ours_crm), base, work / "move-anchor", repeats, log),
    ]
    return render(pairs, ours_crm, repeats)


def _col(values: Sequence[float | None], digits: int = 1) -> str:
    got = [v for v in values if v is not None]
    if not got:
        return "n/a"
    s = summarize(got)
    return f"{s.median:.{digits}f} ({s.minimum:.{digits}f}–{s.maximum:.{digits}f})"


def _median(values: Sequence[float | None]) -> float | None:
    got = [v for v in values if v is not None]
    return summarize(got).median if got else None


MOVE_COLUMNS: tuple[tuple[str, Callable[[Move], float | None]], ...] = (
    ("crm resource move → started on the target, one QEMU (s)", lambda m: m.wall_s),
    ("libvirt migration job (ms)", lambda m: float(m.libvirt_ms)),
    (
        "guest paused, libvirt's downtime (ms)",
        lambda m: None if m.downtime_ms is None else float(m.downtime_ms),
    ),
    ("guest heartbeats lost (1/s)", lambda m: float(m.heartbeat_gaps)),
)
FAIL_COLUMNS: tuple[tuple[str, Callable[[Failover], float | None]], ...] = (
    ("power cut → victim fenced (s, whole seconds)", lambda f: f.fenced_s),
    ("power cut → VM started on the survivor (s)", lambda f: f.restarted_s),
    ("power cut → guest's first heartbeat on the survivor (s)", lambda f: f.guest_s),
    ("power cut → victim back online (s)", lambda f: f.returned_s),
    ("DRBD resync to the victim (KiB)", lambda f: float(f.resync_kib)),
    ("power cut → all healthy again (s)", lambda f: f.healthy_s),
)


def render(pairs: Sequence[PairRuns], crm: str, repeats: int) -> str:
    ours, anchor = pairs
    rows = []
    for title, get in MOVE_COLUMNS:
        o, a = [get(m) for m in ours.moves], [get(m) for m in anchor.moves]
        mo, ma = _median(o), _median(a)
        rows.append([title, _col(o, 2), _col(a, 2), times(ratio(mo, ma)) if mo is not None and ma else "n/a"])
    for title, get_f in FAIL_COLUMNS:
        fo, fa = [get_f(f) for f in ours.failovers], [get_f(f) for f in anchor.failovers]
        mo, ma = _median(fo), _median(fa)
        rows.append([title, _col(fo), _col(fa), times(ratio(mo, ma)) if mo is not None and ma else "n/a"])
    n_moves = f"{len(ours.moves)} / {len(anchor.moves)}"
    n_fail = f"{len(ours.failovers)} / {len(anchor.failovers)}"
    return section(
        "Live move and failover (tandem drbd+domain vs linbit drbd+VirtualDomain)",
        f"One fresh 2-node lab cluster per pair (lab.scenarios.VmCluster: STONITH, emulated dual-primary "
        f"DRBD, the guest under libvirtd, {ours.accel.upper()}). Moves: `crm resource move vm1 <other>` and "
        f"back, then `crm resource clear`, {repeats} time(s) ({n_moves} moves ours / anchor); the wall time "
        "ends when crm_mon shows vm1 started on the target and one QEMU is left. Failover: a power cut of "
        f"the node running vm1, {repeats} time(s) ({n_fail} ours / anchor); times from the cut, the victim "
        "fenced and rebooted by fence_tandemlab (or powered on by the scenario when fenced with off). "
        "Cells: median (min–max); ratio of medians ours/anchor.",
        table(["measure", "ours", "anchor", "ours/anchor"], rows, right=[3]),
        "The crm configuration (ours; the anchors' is the same with ocf:linbit:drbd and "
        "ocf:heartbeat:VirtualDomain):\n\n```\n" + crm.strip() + "\n```",
    )
