# SPDX-License-Identifier: GPL-2.0-or-later
"""PID 1 of a lab node, and the few in-node commands that need its conventions.

`init.py boot NODE_DIR` is what "power on" runs as PID 1 of fresh mount+UTS+PID namespaces inside the node's
network namespace. It follows NODE_DIR/boot.json (written by lab.cluster): mounts (per-node state
dirs, private /dev/shm, then any extra bind mounts the lab was given), hostname, the node's /dev/log (served
by a thread of this init into NODE_DIR/syslog.log), `holder.pid` (from then on the node accepts commands),
boot hooks, then the cluster services (corosync, then pacemakerd). It then reaps orphans forever, like any
init. It is stdlib only and run by path, so nodes need no PYTHONPATH.

In a running node (via Node.run): `start-services`, `stop-services [TIMEOUT]` (pacemakerd, then corosync, by
SIGTERM with the node-local pids they were started with) and `spawn LOG -- ARGV` (a detached daemon).
A corosync that crashes is started again, as the README's corosync.service drop-in asks systemd to.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

PIDS = Path("/run/lab")
# the order services start in; they stop in reverse
SERVICES = (
    ("corosync", ["corosync", "-f"], "/var/log/corosync/stdout.log"),
    ("pacemakerd", ["pacemakerd"], "/var/log/pacemaker/stdout.log"),
)


def log(node_dir: Path, msg: str) -> None:
    with open(node_dir / "boot.log", "a") as fh:
        fh.write(f"{time.strftime('%H:%M:%S')} {msg}\n")


def write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    tmp.replace(path)


def spawn(argv: list[str], logfile: str, env: dict[str, str] | None = None) -> int:
    """Start a detached daemon (own session); once this process exits, the node's init adopts it."""
    Path(logfile).parent.mkdir(parents=True, exist_ok=True)
    with open(logfile, "ab") as out:
        proc = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=out, stderr=out, start_new_session=True, env=env
        )
    return proc.pid


# Services started and not stopped on purpose (the file holds their environment). While it exists, a corosync
# that dies is started again after COROSYNC_RESTART_SEC, as the README's corosync.service drop-in does
# (Restart=on-failure, RestartSec=10s; systemd's StartLimitBurst=5 in 10 s); pacemakerd (2.1) waits for it
# and reconnects by itself.
WANTED = PIDS / "wanted.json"
COROSYNC_RESTART_SEC = 10.0
START_LIMIT = (5, 10.0)


def start_services(env: dict[str, str]) -> None:
    PIDS.mkdir(parents=True, exist_ok=True)
    write_atomic(WANTED, json.dumps(env))
    for name, argv, logfile in SERVICES:
        start_service(name, argv, logfile, env)


def start_service(name: str, argv: list[str], logfile: str, env: dict[str, str]) -> None:
    pid = spawn(argv, logfile, env)
    (PIDS / f"{name}.pid").write_text(f"{pid}\n")
    if name == "corosync":
        # pacemakerd retries CMAP only every second: waiting for corosync here saves that second
        for _ in range(100):
            probe = subprocess.run(["corosync-cfgtool", "-s"], capture_output=True, check=False)
            if probe.returncode == 0:
                break
            time.sleep(0.1)


def service_pid(name: str) -> int | None:
    try:
        return int((PIDS / f"{name}.pid").read_text())
    except (OSError, ValueError):
        return None


def restart_corosync(starts: list[float], node_dir: Path | None) -> None:
    """corosync died while wanted: start it again after the restart delay, unless stopped on purpose
    meanwhile or started too often (a unit over its start limit stays failed)."""
    time.sleep(COROSYNC_RESTART_SEC)
    now = time.monotonic()
    starts[:] = [t for t in starts if now - t < START_LIMIT[1]]
    try:
        env = json.loads(WANTED.read_text())
    except (OSError, ValueError):
        return
    if len(starts) >= START_LIMIT[0]:
        return
    starts.append(now)
    if node_dir is not None:
        log(node_dir, "corosync died: starting it again (corosync.service Restart=on-failure)")
    name, argv, logfile = SERVICES[0]
    start_service(name, argv, logfile, env)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def stop_services(timeout: float) -> list[str]:
    """SIGTERM each service (last started first) and wait; returns the ones still running at the timeout."""
    WANTED.unlink(missing_ok=True)
    stuck = []
    for name, _argv, _log in reversed(SERVICES):
        pid = service_pid(name)
        if pid is None or not alive(pid):
            continue
        os.kill(pid, signal.SIGTERM)
        end = time.monotonic() + timeout
        while alive(pid) and time.monotonic() < end:
            time.sleep(0.1)
        if alive(pid):
            stuck.append(name)
    return stuck


# The node's syslog: without a /dev/log, programs that log only through syslog(3) or `logger` (DRBD's
# crm-fence-peer.9.sh) would lose every message.
DEV_LOG = Path("/dev/log")
SYSLOG_SOCKET = PIDS / "dev-log"
FACILITIES = (
    *("kern", "user", "mail", "daemon", "auth", "syslog", "lpr", "news", "uucp", "cron", "authpriv", "ftp"),
    *("ntp", "security", "console", "solaris-cron", *(f"local{i}" for i in range(8))),
)
SEVERITIES = ("emerg", "alert", "crit", "err", "warning", "notice", "info", "debug")


def syslog_line(node: str, data: bytes, now: float) -> str:
    """One datagram as one line of the node's syslog.log: our time, the node, facility.severity from the
    <PRI> prefix, then the rest as sent (its sender's own time and tag), newlines escaped to keep one line."""
    text = data.decode(errors="replace").rstrip("\n\0").replace("\n", "\\n")
    level = "-"
    pri = re.match(r"<(\d{1,3})>", text)
    if pri and int(pri[1]) < 8 * len(FACILITIES):
        level = f"{FACILITIES[int(pri[1]) >> 3]}.{SEVERITIES[int(pri[1]) & 7]}"
        text = text[pri.end() :]
    stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(now)) + f".{int(now % 1 * 1000):03d}"
    return f"{stamp} {node} {level} {text}\n"


def open_dev_log() -> socket.socket:
    """Bind the node's syslog socket where its /dev/log leads. /dev is the host's (one devtmpfs for all
    nodes), so the node's own socket must live in its private /run: a symlink /dev/log (systemd's into
    /run/systemd/journal, or ours, made here when the host has none: dangling there, no different from none)
    leads into each node's own /run; a host's real socket is covered by a bind mount in this node only."""
    if not os.path.lexists(DEV_LOG):
        with contextlib.suppress(FileExistsError):  # nodes boot in parallel
            DEV_LOG.symlink_to(SYSLOG_SOCKET)
    linked = DEV_LOG.is_symlink()
    path = Path(os.path.realpath(DEV_LOG)) if linked else SYSLOG_SOCKET
    if not path.is_relative_to("/run"):
        raise RuntimeError(f"{DEV_LOG} leads to {path}, outside the node's own /run")
    path.parent.mkdir(parents=True, exist_ok=True)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    path.chmod(0o666)  # hacluster's processes log too
    if not linked:
        mount(["--bind", str(path), str(DEV_LOG)])
    return sock


def serve_syslog(sock: socket.socket, node: str, logfile: Path) -> None:
    """Append every message to the node's syslog.log. Never stops while the node runs: with the socket's
    small queue (net.unix.max_dgram_qlen) full, every process that logs would block."""
    with open(logfile, "a", buffering=1) as out:
        while True:
            data = sock.recv(65536)
            with contextlib.suppress(OSError):  # a full disk loses lines, never blocks the node
                out.write(syslog_line(node, data, time.time()))


def mount(argv: list[str]) -> None:
    # -n: libmount must not create /run/mount on the host side
    subprocess.run(["mount", "-n", *argv], check=True, capture_output=True, text=True)


def boot(node_dir: Path) -> None:
    plan: dict[str, Any] = json.loads((node_dir / "boot.json").read_text())
    # /proc is still the host's here: our own host pid is what the lab signals and nsenters
    host_pid = int(os.readlink("/proc/self"))
    stat = Path("/proc/self/stat").read_text()
    start = stat[stat.rindex(")") + 2 :].split()[19]
    env: dict[str, str] = plan["env"]
    try:
        mount(["--make-rprivate", "/"])
        for src, dst in plan["binds"]:
            if Path(dst).is_dir():  # a per-node directory (e.g. {dir}/var-lib-libvirt) may start out missing
                Path(src).mkdir(parents=True, exist_ok=True)
            mount(["--bind", src, dst])
        mount(["-t", "tmpfs", "-o", "size=256m,mode=1777", "lab-shm", "/dev/shm"])
        mount(["-t", "proc", "proc", "/proc"])
        socket.sethostname(plan["name"])
        for sub in ("lock", "resource-agents", "lab"):
            Path("/run", sub).mkdir(parents=True, exist_ok=True)
        dev_log = open_dev_log()
        threading.Thread(
            target=serve_syslog, args=(dev_log, plan["name"], node_dir / "syslog.log"), daemon=True
        ).start()
        write_atomic(node_dir / "holder.pid", f"{host_pid} {start}\n")
        for argv in plan["boot"]:
            log(node_dir, f"boot hook: {argv}")
            done = run_hook(argv, env)
            if done.returncode != 0:
                raise RuntimeError(f"boot hook {argv} exited {done.returncode}: {done.stderr.strip()[-500:]}")
        if plan["services"]:
            start_services(env)
    except (OSError, RuntimeError, subprocess.SubprocessError) as exc:
        detail = getattr(exc, "stderr", "") or ""
        write_atomic(node_dir / "boot.state", f"failed: {exc} {detail}".strip() + "\n")
        log(node_dir, f"boot failed: {exc} {detail}")
    else:
        write_atomic(node_dir / "boot.state", "booted\n")
        log(node_dir, "booted")
    reap_forever(node_dir)


def run_hook(argv: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Run one boot hook while reaping every other child: daemons a hook starts (libvirtd) fork helpers
    whose orphans are ours as PID 1, and a zombie left unreaped can stall them. The hook's own exit status
    is left for subprocess to collect (waitid with WNOWAIT only peeks)."""
    with subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as proc:
        done = threading.Event()
        reaper = threading.Thread(target=reap_others, args=(proc.pid, done), daemon=True)
        reaper.start()
        try:
            out, err = proc.communicate(timeout=300)
        finally:
            done.set()
            reaper.join()
        return subprocess.CompletedProcess(argv, proc.returncode, out, err)


def reap_others(keep: int, done: threading.Event) -> None:
    while not done.is_set():
        try:
            info = os.waitid(os.P_ALL, 0, os.WEXITED | os.WNOHANG | os.WNOWAIT)
        except ChildProcessError:
            info = None
        if info is not None and info.si_pid != keep:
            os.waitpid(info.si_pid, 0)
            continue
        done.wait(0.05)


def reap_forever(node_dir: Path | None = None) -> None:
    starts: list[float] = []
    while True:
        try:
            pid, status = os.waitpid(-1, 0)
        except ChildProcessError:
            time.sleep(1)
            continue
        except InterruptedError:
            continue
        if status != 0 and pid == service_pid("corosync") and WANTED.exists():
            threading.Thread(target=restart_corosync, args=(starts, node_dir), daemon=True).start()


def main(argv: list[str]) -> int:
    cmd = argv[0] if argv else ""
    if cmd == "boot" and len(argv) == 2:
        boot(Path(argv[1]))
    elif cmd == "spawn" and len(argv) >= 4 and argv[2] == "--":
        print(spawn(argv[3:], argv[1]))
    elif cmd == "start-services" and len(argv) == 1:
        start_services(dict(os.environ))
    elif cmd == "stop-services" and len(argv) <= 2:
        stuck = stop_services(float(argv[1]) if len(argv) == 2 else 300.0)
        if stuck:
            print(f"still running: {' '.join(stuck)}", file=sys.stderr)
            return 1
    else:
        print("usage: init.py boot NODE_DIR | spawn LOG -- ARGV | start-services | stop-services [TIMEOUT]")
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
