# SPDX-License-Identifier: GPL-2.0-or-later
"""Monitor cost as the number of DRBD resources on the node grows: the same monitor of r0 (Primary, peer
Secondary, connected, UpToDate; promoted-max=1) with 1, 10, 50, 100 resources up on both nodes."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from bench import monitor
from bench.agents import clone_meta
from bench.report import med_p90, section, table, times
from bench.stats import ratio, summarize
from bench.testbed import VM, Bed, scale_names


def run(bed: Bed, points: Sequence[int], s: monitor.Settings, log: Callable[[str], None]) -> str:
    n1, n2 = bed.node(1), bed.node(2)
    bed.libvirtd(n1).virsh("destroy", VM, check=False)
    monitor.drbd_ready(bed, ["r0"])
    for n in (n1, n2):
        bed.drbdadm(n, "down", "vm0", check=False)
        # the emulator's `down` can take other resources' device binds along (it tells them apart by the
        # host-wide /dev/drbd/by-res links, which other labs share): adjust puts r0's back
        bed.drbdadm(n, "adjust", "r0")
    up: list[str] = []
    rows = []
    sc = monitor.Scenario(
        "r0 Primary, peer Secondary (promoted-max=1)",
        "node1",
        monitor.drbd_pair(),
        monitor.INTERVAL_PROMOTED_MS,
        clone_meta(1, "Promoted"),
    )
    try:
        for count in points:
            want = scale_names(count)
            bed.set_conf(["r0", *want])
            bed.scale_up([n for n in want if n not in up])
            up = want
            log(f"  {count} resources up")
            r = monitor.measure(bed, sc, s, log)
            o, a = summarize(monitor.walls(r, "ours")), summarize(monitor.walls(r, "anchor"))
            rows.append(
                [
                    str(count),
                    med_p90(o),
                    med_p90(a),
                    times(ratio(o.median, a.median)),
                    *monitor.emu_row(r, "", s.real_call_ms)[1:6],
                ]
            )
    finally:
        bed.scale_down(up)
        bed.set_conf(["r0", "vm0"])
    return section(
        "Monitor cost by number of DRBD resources on the node",
        f"The same monitor of r0 ({sc.title}) on node1 while 1 to {max(points)} resources are up and "
        "connected on both nodes, Primary on node1 like r0 (r0 counted; the guest's vm0 is down; each "
        f"node's emulator kernel ticks over all of them, a load of its own). {s.rounds} interleaved rounds "
        f"per point after {s.warmup} warm-up round(s); emulator share as in the monitor section. The "
        "emulator's every call walks the state of every resource, so its share grows with the count; "
        "the columns without it are what the agents themselves add.",
        table(
            [
                "resources",
                "ours ms (median / p90)",
                "anchor ms (median / p90)",
                "ratio of medians",
                "DRBD calls ours / anchor",
                "emulator ms ours / anchor",
                "wall − emulator ms ours / anchor",
                "ratio without the emulator, paired (IQR)",
                "estimate with real DRBD tools ms ours / anchor (ratio)",
            ],
            rows,
            right=[0, 1, 2, 3],
        ),
    )
