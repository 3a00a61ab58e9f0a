# SPDX-License-Identifier: GPL-2.0-or-later
"""Runs agent processes inside a lab node, as pacemaker-execd does (fork/exec, wait), and measures each.

Started by the host in the node (`python3 -m bench.spawn < spec.json`), so no nsenter or host process sits
between the clock and the agent. Stdlib only. The spec:

    {"commands": [{"name": "tandem", "argv": [...], "env": {...}}, ...],
     "order": ["tandem", "linbit", ...],       # one run per entry, in this order
     "strace": "/path/prefix" or null,          # run under strace -f -e trace=execve, log per run
     "rss": true/false,                         # run under GNU time for the process tree's peak RSS
     "stderr": "/path/prefix"}                  # each command's last stderr, for diagnosis

Per run it prints one JSON line: name, i (its round), wall_ns (spawn to reaped, perf_counter_ns), rc,
user_s, sys_s and, with "rss", tree_maxrss_kib: the largest resident set of any process of the run's tree
(agent or child). Not wait4's own ru_maxrss: a child spawned from this Python process starts with its
resident set counted, which would put a floor of about 10 MiB under every number; GNU time's forked child
starts from time's own small one.
"""

from __future__ import annotations

import json
import os
import sys
import time
from typing import Any


def safe(name: str) -> str:
    """A command's name as part of a file name."""
    return "".join(c if c.isalnum() or c in "._-" else "_" for c in name)


def run_once(argv: list[str], env: dict[str, str], err_path: str) -> dict[str, Any]:
    actions = [
        (os.POSIX_SPAWN_OPEN, 0, "/dev/null", os.O_RDONLY, 0),
        (os.POSIX_SPAWN_OPEN, 1, "/dev/null", os.O_WRONLY, 0),
        (os.POSIX_SPAWN_OPEN, 2, err_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644),
    ]
    t0 = time.perf_counter_ns()
    pid = os.posix_spawn(argv[0], argv, env, file_actions=actions)
    _, status, usage = os.wait4(pid, 0)
    wall = time.perf_counter_ns() - t0
    return {
        "wall_ns": wall,
        "rc": os.waitstatus_to_exitcode(status),
        "user_s": usage.ru_utime,
        "sys_s": usage.ru_stime,
    }


def main() -> int:
    spec = json.load(sys.stdin)
    commands = {c["name"]: c for c in spec["commands"]}
    seen: dict[str, int] = {}
    for name in spec["order"]:
        cmd = commands[name]
        i = seen.get(name, 0)
        seen[name] = i + 1
        argv = list(cmd["argv"])
        if spec.get("strace"):
            log = f"{spec['strace']}-{safe(name)}-{i}.log"
            argv = ["/usr/bin/strace", "-f", "-qq", "-e", "trace=execve", "-s", "256", "-o", log, *argv]
        rss = f"{spec['stderr']}-{safe(name)}.rss"
        if spec.get("rss"):
            argv = ["/usr/bin/time", "-f", "%M", "-o", rss, *argv]
        result = run_once(argv, cmd["env"], f"{spec['stderr']}-{safe(name)}.err")
        if spec.get("rss"):
            with open(rss) as fh:
                result["tree_maxrss_kib"] = int(fh.read().split()[-1])
        print(json.dumps({"name": name, "i": i, **result}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
