# SPDX-License-Identifier: GPL-2.0-or-later
"""`python3 -m lab`: the lab for people, from the repo root.

  python3 -m lab up [--nodes N] [--token MS] [--dc-deadtime T] [--no-stonith]
  python3 -m lab status                      crm_mon -1 of a live node
  python3 -m lab exec NODE -- ARGV...        run a command inside a node
  python3 -m lab fault kill|stop|start|reboot NODE
  python3 -m lab fault partition GROUP [GROUP...]   e.g. `partition node1 node2,node3`; `fault heal`
  python3 -m lab fault slow NODE [--peer NODE] [--rate 1mbit] [--delay-ms MS]; `fault unslow [NODE]`
  python3 -m lab fault crash-daemon NODE DAEMON [--signal KILL]
  python3 -m lab wait [--timeout S] [NODE...]   until these nodes (default all) are online
  python3 -m lab down [--keep]
  python3 -m lab demo [--report DIR]           the demo (lab/demo.py): its own lab, always torn down
  python3 -m lab campaign [--runs N ...]       the fault campaign (lab/campaign; --help for its options)
Global options --prefix and --dir (or TANDEM_LAB_PREFIX / TANDEM_LAB_DIR) pick the lab (default prefix tlab,
dir /tmp/PREFIX-lab); several labs can coexist with different prefixes.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time

from lab.netns import TOP


def reexec_with_lxml() -> None:
    """The lab needs lxml: if this interpreter lacks it, run again under the project's venv python."""
    try:
        import lxml  # noqa: F401
    except ImportError:
        venv = TOP / ".venv" / "bin" / "python"
        for python in (str(venv), "/usr/bin/python3"):
            if os.path.exists(python) and os.path.realpath(python) != os.path.realpath(sys.executable):
                os.execv(python, [python, "-m", "lab", *sys.argv[1:]])  # noqa: S606 (same argv, no shell)
        sys.exit("lab: needs python3-lxml (./run setup)")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python3 -m lab", description="tandem's namespace cluster lab")
    p.add_argument("--prefix", help="namespace name prefix (default: $TANDEM_LAB_PREFIX or tlab)")
    p.add_argument("--dir", help="state dir (default: $TANDEM_LAB_DIR or /tmp/PREFIX-lab)")
    sub = p.add_subparsers(dest="cmd", required=True)
    up = sub.add_parser("up", help="create and start a cluster")
    up.add_argument("--nodes", type=int, default=2)
    up.add_argument("--token", type=int, help="corosync token in ms (default 1000)")
    up.add_argument("--dc-deadtime", help="pacemaker dc-deadtime (default 1s)")
    up.add_argument("--no-stonith", action="store_true", help="stonith-enabled=false and no fence device")
    sub.add_parser("status", help="crm_mon -1 of a live node")
    demo = sub.add_parser("demo", help="the demo: migration, power cut, partition (default prefix tdemo)")
    demo.add_argument("--report", default="report", help="where report.md and timeline.png go")
    ex = sub.add_parser("exec", help="run a command inside a node")
    ex.add_argument("node")
    ex.add_argument("argv", nargs=argparse.REMAINDER)
    wait = sub.add_parser("wait", help="wait until nodes are online")
    wait.add_argument("--timeout", type=float, default=120)
    wait.add_argument("names", nargs="*")
    down = sub.add_parser("down", help="stop everything and remove the lab")
    down.add_argument("--keep", action="store_true", help="keep the state dir (logs, CIBs)")
    fault = sub.add_parser("fault", help="break something").add_subparsers(dest="fault", required=True)
    for name in ("kill", "stop", "start", "reboot"):
        fault.add_parser(name).add_argument("node")
    fault.add_parser("partition").add_argument("groups", nargs="+", help="comma-separated node names")
    fault.add_parser("heal")
    slow = fault.add_parser("slow")
    slow.add_argument("node")
    slow.add_argument("--peer")
    slow.add_argument("--rate", default="1mbit")
    slow.add_argument("--delay-ms", type=int, default=0)
    fault.add_parser("unslow").add_argument("node", nargs="?")
    crash = fault.add_parser("crash-daemon")
    crash.add_argument("node")
    crash.add_argument("daemon")
    crash.add_argument("--signal", default="KILL")
    return p


def main(argv: list[str]) -> int:
    reexec_with_lxml()
    from lab import faults
    from lab.cluster import Lab, LabConfig, LabError, teardown

    if argv[:1] == ["campaign"]:  # its own options (lab/campaign/cli.py)
        from lab.campaign.cli import main as campaign

        return campaign(argv[1:])
    args = parser().parse_args(argv)
    if args.cmd == "demo":
        from lab.demo import main as demo

        return demo(["--report", args.report] + (["--prefix", args.prefix] if args.prefix else []))
    try:
        if args.cmd == "up":
            config = LabConfig.from_env(
                prefix=args.prefix,
                root=args.dir,
                nodes=args.nodes,
                token_ms=args.token,
                dc_deadtime=args.dc_deadtime,
                stonith=False if args.no_stonith else None,
            )
            lab = Lab(config)
            took = lab.up()
            print(f"{config.nodes} nodes online after {took:.1f}s; state in {config.root}")
            return 0
        config = LabConfig.from_env(prefix=args.prefix, root=args.dir)
        if args.cmd == "down":
            print(f"down after {teardown(config, keep=args.keep):.1f}s")
            return 0
        lab = Lab.load(config.path)
        if args.cmd == "status":
            print(lab.status_text(), end="")
        elif args.cmd == "exec":
            cmd = args.argv[1:] if args.argv[:1] == ["--"] else args.argv
            with lab.node(args.node).popen(cmd, stdin=None) as proc:  # stdio inherited: works in pipes
                return proc.wait()
        elif args.cmd == "wait":
            t0 = time.monotonic()
            lab.wait_online(args.names or None, timeout=args.timeout)
            print(f"online after {time.monotonic() - t0:.1f}s")
        elif args.fault in ("kill", "stop", "start", "reboot"):
            getattr(faults, args.fault)(lab, args.node)
        elif args.fault == "partition":
            faults.partition(lab, *[g.split(",") for g in args.groups])
        elif args.fault == "heal":
            faults.heal(lab)
        elif args.fault == "slow":
            faults.slow(lab, args.node, args.peer, rate=args.rate, delay_ms=args.delay_ms)
        elif args.fault == "unslow":
            faults.unslow(lab, args.node)
        elif args.fault == "crash-daemon":
            sig = signal.Signals[f"SIG{args.signal.upper().removeprefix('SIG')}"]
            print(" ".join(map(str, faults.crash_daemon(lab, args.node, args.daemon, sig))))
    except (LabError, subprocess.SubprocessError) as exc:
        print(f"lab: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
