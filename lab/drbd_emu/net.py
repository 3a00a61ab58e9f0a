# SPDX-License-Identifier: GPL-2.0-or-later
"""DRBD connections that follow the lab's real network (TANDEM_EMU_NET=probe, set by the lab hooks).

Each node's kernel listens on its resources' configured `address` (ip:port, in the node's network namespace)
and probes its peers' addresses once per second. A direction counts as reachable while its last successful
probe is younger than STALE seconds; `engine.connected()` then also needs both directions reachable. So a lab
fault that partitions the network drops the DRBD connection too, after a few seconds, like DRBD's ping timeout
does (drbd.conf(5) ping-int, ping-timeout). A node that powers off takes its DRBD with it: its peers' kernels
see its kernel gone and drop its state at once (tool.kernel, engine.power_loss).
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable
from typing import Any

STALE = 3.0
PROBE_EVERY = 1.0


def split_address(addr: str) -> tuple[str, int]:
    host, _, port = addr.rpartition(":")
    return host, int(port or 7789)


class Prober:
    """Listeners for this node's addresses and a probe round over the peers. A probe connects and closes;
    `serve` (the data plane's replication server) gets every accepted connection, probes included."""

    def __init__(self, node: str, serve: Callable[[socket.socket], None] | None = None) -> None:
        self.node = node
        self.serve = serve
        self.listening: set[tuple[str, int]] = set()
        self.last = 0.0

    def _listen(self, addr: tuple[str, int]) -> None:
        try:
            srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            srv.bind(addr)
            srv.listen(16)
        except OSError:
            return  # the address is not here (yet): retried next round

        def accept() -> None:
            while True:
                conn, _ = srv.accept()
                if self.serve is None:
                    conn.close()
                else:
                    threading.Thread(target=self.serve, args=(conn,), daemon=True).start()

        threading.Thread(target=accept, daemon=True).start()
        self.listening.add(addr)

    def listen(self, st: dict[str, Any]) -> None:
        """Listen on the addresses of this node's resources that are up (once each)."""
        for r in st["nodes"].get(self.node, {}).values():
            me = r.get("address")
            if me and split_address(me) not in self.listening:
                self._listen(split_address(me))

    def round(self, st: dict[str, Any]) -> dict[str, float]:
        """Probe once per PROBE_EVERY; returns {"res/me>peer": time} for the peers that answered."""
        now = time.time()
        if now - self.last < PROBE_EVERY:
            return {}
        self.last = now
        seen: dict[str, float] = {}
        self.listen(st)
        for res, r in st["nodes"].get(self.node, {}).items():
            for peer, c in r["conns"].items():
                try:
                    with socket.create_connection(split_address(c["address"]), timeout=0.5):
                        seen[f"{res}/{self.node}>{peer}"] = now
                except OSError:
                    pass
        return seen


def stale(st: dict[str, Any], res: str, a: str, b: str, now: float | None = None) -> list[str]:
    """The probe directions between a and b unanswered for STALE s or more ("a>b unanswered for 3.2s"),
    as DRBD would log "PingAck did not arrive in time"; none unless the network is probed."""
    if st.get("net") != "probe":
        return []
    t = time.time() if now is None else now
    reach: dict[str, Any] = st.get("reach", {})
    ages = ((f"{x}>{y}", t - float(reach.get(f"{res}/{x}>{y}", 0.0))) for x, y in ((a, b), (b, a)))
    return [f"{d} unanswered for {age:.1f}s" for d, age in ages if age >= STALE]


def reachable(st: dict[str, Any], res: str, a: str, b: str, now: float | None = None) -> bool:
    """Both directions answered recently (always true unless the network is probed)."""
    return not stale(st, res, a, b, now)
