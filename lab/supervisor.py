# SPDX-License-Identifier: GPL-2.0-or-later
"""The lab supervisor: one host process per lab that powers its nodes on and off, serving ROOT/control.sock.

It exists because a fence agent runs inside a node (in its PID namespace, so it cannot signal or start
anything outside), and because a node's launcher needs a live parent that reaps it. The lab's own CLI and
fixtures use the same socket, so every power operation of a lab is serialised in one place.

Protocol: one JSON line per connection, {"op": OP, "node": NAME}, answered by one JSON line
{"ok": true, ...} or {"ok": false, "error": "..."}. OPs: ping, list (every node and "on"/"off"),
status NAME, on NAME, off NAME (hard power cut), reboot NAME, shutdown NAME (clean), exit.

Fence races: off and reboot take one lab-wide lock. A request that comes from inside a node (known by
SO_PEERCRED) is refused if, once it holds the lock, that node has been powered off meanwhile or the asking
process is gone: as with real power switches, the first of two nodes shooting each other wins.
"""

from __future__ import annotations

import json
import signal
import socket
import socketserver
import struct
import sys
import threading
import time
from pathlib import Path
from typing import Any

from lab.cluster import Lab
from lab.netns import Node, ns_inode, proc_starttime
from lab.power import PowerError, power_off, power_on, stop_services


def say(msg: str) -> None:
    print(f"{time.strftime('%H:%M:%S')} {msg}", flush=True)


class Supervisor:
    def __init__(self, lab: Lab) -> None:
        self.lab = lab
        self.power_lock = threading.Lock()
        self.node_locks = {n.name: threading.Lock() for n in lab.nodes}
        self.launchers: dict[str, Any] = {}
        self.boots: dict[str, threading.Timer] = {}  # reboots waiting out lab.config.reboot_delay

    def requester(self, pid: int) -> Node | None:
        """The node a connecting process lives in (None: the host)."""
        net = ns_inode(pid, "net")
        return next((n for n in self.lab.nodes if net is not None and n.netns_inode() == net), None)

    def handle(self, req: dict[str, Any], peer: int) -> dict[str, Any]:
        op, name = req.get("op"), req.get("node")
        if op == "ping":
            return {"ok": True}
        if op == "list":
            return {"ok": True, "nodes": {n.name: "on" if n.is_on() else "off" for n in self.lab.nodes}}
        if op == "exit":
            self.power_down_all()
            return {"ok": True}
        try:
            node = self.lab.node(str(name))
        except Exception:
            return {"ok": False, "error": f"unknown node {name!r}"}
        asker = self.requester(peer)
        say(f"{op} {node.name} asked by {asker.name if asker else 'the host'} (pid {peer})")
        if op == "status":
            return {"ok": True, "state": "on" if node.is_on() else "off"}
        if op in ("on", "off", "reboot", "shutdown"):
            self.cancel_boot(node)
        if op == "on":
            self.on(node)
        elif op == "off":
            self.off(node, asker, peer)
        elif op == "reboot":
            self.off(node, asker, peer)
            self.boot_later(node)
        elif op == "shutdown":
            if node.is_on():
                stop_services(node)
            self.off(node, None, peer)
        else:
            return {"ok": False, "error": f"unknown op {op!r}"}
        say(f"{op} {node.name}: done")
        return {"ok": True, "state": "on" if node.is_on() else "off"}

    def on(self, node: Node) -> None:
        with self.node_locks[node.name]:
            if node.is_on():
                return
            self.reap(node)
            self.launchers[node.name] = power_on(node)

    def boot_later(self, node: Node) -> None:
        """The power comes back on (the fence operation is done); the node boots after the reboot delay."""
        delay = self.lab.config.reboot_delay
        if delay <= 0:
            self.on(node)
            return
        timer = threading.Timer(delay, self.on, args=(node,))
        timer.daemon = True
        self.boots[node.name] = timer
        timer.start()

    def cancel_boot(self, node: Node) -> None:
        timer = self.boots.pop(node.name, None)
        if timer is not None:
            timer.cancel()

    def off(self, node: Node, asker: Node | None, peer: int) -> None:
        start = proc_starttime(peer)
        with self.power_lock, self.node_locks[node.name]:
            if asker is not None and (not asker.is_on() or proc_starttime(peer) != start or start is None):
                raise PowerError(f"refused: {asker.name}, which asked to fence {node.name}, is down itself")
            power_off(node)
            self.reap(node)

    def reap(self, node: Node) -> None:
        launcher = self.launchers.pop(node.name, None)
        if launcher is not None:
            launcher.wait(timeout=30)

    def power_down_all(self) -> None:
        for node in self.lab.nodes:
            self.cancel_boot(node)
        with self.power_lock:
            for node in self.lab.nodes:
                with self.node_locks[node.name]:
                    power_off(node)
                    self.reap(node)


class Handler(socketserver.StreamRequestHandler):
    server: Server

    def handle(self) -> None:
        creds = self.request.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
        peer = struct.unpack("3i", creds)[0]
        try:
            req = json.loads(self.rfile.readline())
            answer = self.server.supervisor.handle(req, peer)
        except Exception as exc:  # the answer carries any failure; the supervisor keeps serving
            say(f"error: {exc!r}")
            answer = {"ok": False, "error": str(exc)}
        self.wfile.write(json.dumps(answer).encode() + b"\n")
        if req.get("op") == "exit" and answer.get("ok"):
            threading.Thread(target=self.server.shutdown).start()


class Server(socketserver.ThreadingUnixStreamServer):
    daemon_threads = True

    def __init__(self, path: Path, supervisor: Supervisor) -> None:
        path.unlink(missing_ok=True)
        super().__init__(str(path), Handler)
        path.chmod(0o600)
        self.supervisor = supervisor


def main(argv: list[str]) -> int:
    lab = Lab.load(argv[0])
    supervisor = Supervisor(lab)
    server = Server(lab.socket_path, supervisor)
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
    say(f"serving {lab.socket_path}")
    server.serve_forever()
    supervisor.power_down_all()
    lab.socket_path.unlink(missing_ok=True)
    say("exit")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
