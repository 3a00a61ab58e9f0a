# SPDX-License-Identifier: GPL-2.0-or-later
"""`python -m bench.fence`: how long `tandem-fence-peer` takes from its call to the constraint placed, against
the cibadmin calls it makes. DRBD's I/O is frozen meanwhile; the cibadmin calls are the floor.

    python -m bench.fence [--rounds N]     # rewrites its block of bench/results.md

Host, no cluster: Pacemaker's real cibadmin works on a CIB file (CIB_file), here a CIB of the lab's
two-node cluster (tests/unit/data/operator/running-node2-cib.xml: the DRBD clone of r0, node1 and node2).
DRBD's tools are two /bin/sh stand-ins printing r0's state (Primary, UpToDate, the peer disconnected) and
its configuration (fencing resource-only); /proc/drbd is the DRBD emulator's LD_PRELOAD shim's, on both
sides. The handler runs as `tandem install` lays it out, with the
environment DRBD gives it on node1 (peer node2, UP_TO_DATE_NODES naming node1). One traced run records the
cibadmin command lines it makes; the floor runs exactly those. Both start from a fresh copy of the CIB (a
`/bin/sh` that copies it first, on both sides), interleaved, the order rotating per round.
"""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from bench.replay import Command, git_head, log, timed, write_block
from bench.report import med_p90, spread, table, times
from bench.stats import paired_ratios, summarize

HERE = Path(__file__).resolve().parent
OUT = HERE / "out" / "fence"
CIB = HERE.parent / "tests" / "unit" / "data" / "operator" / "running-node2-cib.xml"
RESULTS = HERE / "results.md"
BEGIN, END = "<!-- fence -->", "<!-- /fence -->"
STATUS = (
    '[{"name": "r0", "node-id": 0, "role": "Primary", "suspended": false, "devices": [{"volume": 0, '
    '"minor": 100, "disk-state": "UpToDate", "client": false, "quorum": true}], "connections": '
    '[{"peer-node-id": 1, "name": "node2", "connection-state": "Connecting", "congested": false, '
    '"peer-role": "Unknown", "peer_devices": [{"volume": 0, "replication-state": "Off", '
    '"peer-disk-state": "DUnknown", "peer-client": false, "resync-suspended": "no"}]}]}]'
)
DUMP = "resource r0 {\n    net {\n        fencing resource-only;\n    }\n}\n"
ANSWERS = {
    4: "the peer is online in the CIB: the constraint keeps it from being promoted",
    5: "the peer is unreachable, our data UpToDate: constraint placed",
}
DRBD_ENV = {
    "DRBD_RESOURCE": "r0",
    "DRBD_MY_NODE_ID": "0",
    "DRBD_PEER_NODE_ID": "1",
    "DRBD_NODE_ID_0": "node1",
    "DRBD_NODE_ID_1": "node2",
    "UP_TO_DATE_NODES": "0x1",
}


def stand_ins(bindir: Path, trace: Path, dump: str = DUMP) -> None:
    """drbdsetup and drbdadm as /bin/sh scripts with r0's answers (`dump`: its configuration); a cibadmin
    that logs, for the trace."""
    bindir.mkdir(parents=True, exist_ok=True)
    scripts = {
        "drbdsetup": f"#!/bin/sh\ncat <<'EOF'\n{STATUS}\nEOF\n",
        "drbdadm": (
            '#!/bin/sh\ncase "$*" in\n  *--version*) echo DRBD_KERNEL_VERSION=9.2.12 ;;\n'
            f"  *dump*) cat <<'EOF'\n{dump}EOF\n  ;;\n  *) exit 20 ;;\nesac\n"
        ),
    }
    for name, text in scripts.items():
        (bindir / name).write_text(text)
        (bindir / name).chmod(0o755)
    traced = bindir.parent / "traced"
    traced.mkdir(exist_ok=True)
    wrapper = traced / "cibadmin"
    wrapper.write_text(
        f'#!/bin/sh\nfor a in "$@"; do printf \'%s\\037\' "$a"; done >> {shlex.quote(str(trace))}\n'
        f'echo >> {shlex.quote(str(trace))}\nexec /usr/sbin/cibadmin "$@"\n'
    )
    wrapper.chmod(0o755)


def fresh(cib: Path, then: str) -> list[str]:
    """`then`, run by /bin/sh after copying the lab's CIB over `cib` (both sides pay the same copy)."""
    return ["/bin/sh", "-c", f"cp {shlex.quote(str(CIB))} {shlex.quote(str(cib))} && {then}"]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.fence", description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    from lab.drbd_emu.install import build_shim

    from tandem.install import install

    if OUT.exists():
        shutil.rmtree(OUT)
    install(OUT / "ocf", OUT / "sbin", None)
    handler = OUT / "sbin" / "tandem-fence-peer"
    trace, cib = OUT / "cibadmin.trace", OUT / "cib.xml"
    stand_ins(OUT / "bin", trace)
    (OUT / "rsctmp").mkdir()
    proc = OUT / "proc_drbd"
    proc.write_text("version: 9.2.12 (api:2/proto:86-122)\n")
    env = {
        "PATH": f"{OUT / 'bin'}:/usr/sbin:/usr/bin:/bin",
        "LC_ALL": "C",
        "CIB_file": str(cib),
        "HA_RSCTMP": str(OUT / "rsctmp"),
        "HA_LOGFACILITY": "none",
        "HA_LOGFILE": str(OUT / "handler.log"),
        "LD_PRELOAD": str(build_shim(OUT / "emu")),  # a /proc/drbd, as on a node with DRBD loaded
        "TANDEM_EMU_PROC_DRBD": str(proc),
        **DRBD_ENV,
    }
    ours = fresh(cib, f"exec {shlex.quote(str(handler))}")
    traced_env = {**env, "PATH": f"{OUT / 'traced'}:{env['PATH']}"}
    rc = subprocess.run(ours, env=traced_env, capture_output=True, text=True, timeout=60, check=False)
    placed = "tandem-fence-r0" in cib.read_text()
    if rc.returncode not in (4, 5) or not placed:
        raise RuntimeError(
            f"tandem-fence-peer: exit {rc.returncode}, constraint placed: {placed}: {rc.stderr}"
        )
    calls = [["cibadmin", *line.split("\x1f")[:-1]] for line in trace.read_text().splitlines() if line]
    floor = fresh(cib, " && ".join(f"{shlex.join(c)} >/dev/null" for c in calls))
    check = subprocess.run(floor, env=env, capture_output=True, text=True, timeout=60, check=False)
    if check.returncode != 0:
        raise RuntimeError(f"the cibadmin calls alone: exit {check.returncode}: {check.stderr}")
    log(f"fence-peer: exit {rc.returncode}, {len(calls)} cibadmin calls; {args.rounds} rounds")
    walls = timed([Command("ours", ours, env), Command("floor", floor, env)], args.rounds, 1, OUT / "rsctmp")
    write_block(report(args.rounds, rc.returncode, calls, walls), args.out, BEGIN, END)
    log(f"wrote the fence block of {args.out}")
    return 0


def report(rounds: int, rc: int, calls: list[list[str]], walls: dict[str, list[float]]) -> str:
    ours, floor = summarize(walls["ours"]), summarize(walls["floor"])
    paired = summarize(paired_ratios(walls["ours"], walls["floor"]))
    stamp, load = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), os.getloadavg()[0]
    listed = "; ".join(f"`{shlex.join(c[:4])} ...`" if len(c) > 4 else f"`{shlex.join(c)}`" for c in calls)
    return "\n\n".join(
        [
            BEGIN,
            "## fence-peer: call to constraint placed",
            f"Written by `python -m bench.fence --rounds {rounds}` on {stamp}, tandem {git_head()}; load "
            f"average at start {load:.2f}. Method: bench/fence.py's docstring. The handler answered {rc} "
            f"({ANSWERS.get(rc, '?')}) after {len(calls)} cibadmin calls: {listed}.",
            table(
                ["command", "ms (median / p90)", "spread (ms)"],
                [
                    ["tandem-fence-peer, call to exit (constraint placed)", med_p90(ours), spread(ours)],
                    [f"its {len(calls)} cibadmin calls alone", med_p90(floor), spread(floor)],
                ],
                right=(1,),
            ),
            f"Paired ratio (handler / its cibadmin calls): {times(paired.median)} "
            f"(IQR {paired.p25:.2f}–{paired.p75:.2f}); ratio of medians {times(ours.median / floor.median)}.",
            END,
        ]
    )


if __name__ == "__main__":
    sys.exit(main())
