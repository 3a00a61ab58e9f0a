# SPDX-License-Identifier: GPL-2.0-or-later
"""What one ocf:tandem:domain monitor costs through virsh versus libvirt's python bindings.

    bench/domain_monitor_cost.py --uri qemu:///system --name DOMAIN [--runs 30]

Run it where libvirtd runs (e.g. inside a lab node). It times, as medians over fresh processes (an agent is
a fresh process every time):
- python startup alone (every agent pays it, whichever path it takes);
- the bindings path: `import libvirt`, open, lookupByName, info() (what dominfo gives) in one process;
- the virsh path: one `virsh dominfo` process (what the agent runs for a monitor of a running domain);
- the whole agent monitor (python + tandem + one virsh call).
The bindings' marginal cost is their process minus bare python; virsh's is its whole process.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

TOP = Path(__file__).resolve().parent.parent
PYTHON = "/usr/bin/python3"


def median_ms(argv: Sequence[str], runs: int, env: dict[str, str] | None = None) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(list(argv), capture_output=True, check=True, env=env)
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--uri", default="qemu:///system")
    ap.add_argument("--name", required=True)
    ap.add_argument("--runs", type=int, default=30)
    ap.add_argument("--config", help="the domain's XML, to time the whole agent monitor too")
    args = ap.parse_args(argv)
    bindings = (
        "import libvirt\n"
        f"c = libvirt.openReadOnly({args.uri!r})\n"
        f"d = c.lookupByName({args.name!r})\n"
        "d.info()\n"
    )
    rows = {
        "python startup": median_ms([PYTHON, "-c", "pass"], args.runs),
        "python + import libvirt": median_ms([PYTHON, "-c", "import libvirt"], args.runs),
        "python + bindings dominfo": median_ms([PYTHON, "-c", bindings], args.runs),
        "virsh dominfo": median_ms(
            ["virsh", "--quiet", "--connect", args.uri, "dominfo", args.name], args.runs
        ),
    }
    if args.config:
        env = {
            **os.environ,
            "TANDEM_LIBDIR": str(TOP / "lib"),
            "OCF_RESKEY_config": args.config,
            "OCF_RESKEY_hypervisor": args.uri,
            "OCF_RESOURCE_INSTANCE": "bench",
        }
        rows["agent monitor (virsh)"] = median_ms(
            [PYTHON, str(TOP / "agents" / "domain"), "monitor"], args.runs, env
        )
    for what, ms in rows.items():
        print(f"{what:<28} {ms:7.1f} ms")
    marginal = rows["python + bindings dominfo"] - rows["python startup"]
    print(f"{'bindings, marginal':<28} {marginal:7.1f} ms   (virsh: {rows['virsh dominfo']:.1f} ms)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
