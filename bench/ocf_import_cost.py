# SPDX-License-Identifier: GPL-2.0-or-later
"""What importing an OCF framework costs an agent: resource-agents' ocf.py versus tandem.ocf.

    bench/ocf_import_cost.py [--runs 40]

Every agent action is a fresh /usr/bin/python3 process, so the framework's import is paid on every monitor.
Timed as medians over fresh processes, interleaved so that machine load falls on all three alike: bare
python, python importing /usr/lib/ocf/lib/heartbeat/ocf.py (with the environment of a monitor, as it reads
it at import), the same plus subprocess (which any agent that runs a command needs), python importing
tandem.ocf (what both agents import before they act).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

TOP = Path(__file__).resolve().parent.parent
PYTHON = "/usr/bin/python3"
OCF_PY = Path("/usr/lib/ocf/lib/heartbeat")
CASES = {
    "bare python": "pass",
    "import ocf (resource-agents)": f"import sys; sys.path.insert(0, {str(OCF_PY)!r}); import ocf",
    # an agent on ocf.py still needs subprocess to run drbdsetup or virsh; tandem.ocf's runner imports it
    "import ocf, subprocess": f"import sys; sys.path.insert(0, {str(OCF_PY)!r}); import ocf, subprocess",
    "import tandem.ocf": f"import sys; sys.path.insert(0, {str(TOP / 'lib')!r}); import tandem.ocf",
}


def once(code: str, env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run([PYTHON, "-c", code], capture_output=True, check=True, env=env)
    return time.perf_counter() - start


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--runs", type=int, default=40)
    args = ap.parse_args(argv)
    if not (OCF_PY / "ocf.py").is_file():
        raise SystemExit(f"{OCF_PY / 'ocf.py'} is missing: install resource-agents")
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "OCF_ROOT": "/usr/lib/ocf",
        "OCF_RESOURCE_INSTANCE": "bench",
        "__OCF_ACTION": "monitor",
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    for code in CASES.values():  # warm the page cache (and compile once: byte code is not written)
        once(code, env)
    times: dict[str, list[float]] = {name: [] for name in CASES}
    for _ in range(args.runs):
        for name, code in CASES.items():
            times[name].append(once(code, env))
    bare = statistics.median(times["bare python"]) * 1000
    print(f"{'case':<30} {'median ms':>10} {'over bare':>10}   ({args.runs} runs, {PYTHON})")
    for name, samples in times.items():
        ms = statistics.median(samples) * 1000
        print(f"{name:<30} {ms:>10.1f} {ms - bare:>10.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
