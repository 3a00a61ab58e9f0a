# SPDX-License-Identifier: GPL-2.0-or-later
"""Reference costs: starting the interpreters the agents run on, and the real DRBD tools' bare start."""

from __future__ import annotations

from collections.abc import Callable

from bench.measure import Command, peak_rss_mib, spawn, walls_ms
from bench.report import med_p90, section, spread, table
from bench.stats import round_robin, summarize
from bench.testbed import Bed

ENV = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8"}
IN_NODE = (
    ("/usr/bin/python3 -c pass", ("/usr/bin/python3", "-c", "pass")),
    ("/usr/bin/python3 -I -S -c pass (no site)", ("/usr/bin/python3", "-I", "-S", "-c", "pass")),
    ("/bin/bash -c :", ("/bin/bash", "-c", ":")),
)
# On the host: in the nodes these paths are the emulator's fakes. Without a DRBD kernel module they do not
# get far, so this is a lower bound of what one real call costs.
ON_HOST = (
    ("real /usr/sbin/drbdsetup --version (host)", ("/usr/sbin/drbdsetup", "--version")),
    ("real /usr/sbin/drbdadm --version (host)", ("/usr/sbin/drbdadm", "--version")),
)


def run(bed: Bed, rounds: int, log: Callable[[str], None]) -> tuple[str, float]:
    """The section, and the median start of the real DRBD tools (mean of the two) for the estimates."""
    rows = []
    real: list[float] = []
    for node, entries in ((bed.node(1), IN_NODE), (None, ON_HOST)):
        cmds = [Command(title, argv, ENV) for title, argv in entries]
        names = [c.name for c in cmds]
        logs = bed.work / "runs" / "startup"
        spawn(node, cmds, names, logs)
        runs = spawn(node, cmds, round_robin(names, rounds), logs)
        rss_runs = spawn(node, cmds, names, logs, rss=True)
        for name in names:
            s = summarize(walls_ms(runs, name))
            rss = max(peak_rss_mib(rss_runs, [name]))
            log(f"  {name}: median {s.median:.1f} ms")
            if node is None:
                real.append(s.median)
            rows.append([name, med_p90(s), spread(s), f"{rss:.1f}"])
    md = section(
        "Reference: bare process start",
        f"{rounds} interleaved rounds, timed like the agents (spawn to reaped).",
        table(["command", "ms (median / p90)", "spread (ms)", "peak RSS MiB"], rows, right=[1, 3]),
    )
    return md, sum(real) / len(real)
