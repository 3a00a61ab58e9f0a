# SPDX-License-Identifier: GPL-2.0-or-later
"""One node's view of the emulator state, as the shared model plus render Details (what drbdsetup would
print)."""

from __future__ import annotations

from typing import Any

from lab.drbd_emu import engine
from lab.drbd_emu.render import (
    ConnectionExtra,
    Details,
    DeviceExtra,
    DeviceStats,
    Endpoint,
    PathInfo,
    PeerDeviceExtra,
    PeerDeviceStats,
    ResyncStats,
)
from tandem.drbd.model import (
    Connection,
    ConnState,
    Device,
    DiskState,
    PeerDevice,
    ReplState,
    Resource,
    Role,
    Status,
)

VERSION_84 = "8.4.11"


def _endpoint(addr: str, family: str) -> Endpoint:
    host, _, port = addr.rpartition(":")
    return Endpoint(host, int(port or 7789), family)


def resource_view(st: engine.State, node: str, res: str) -> tuple[Resource, dict[str, Any]] | None:
    """The model Resource and the extras (keyed like render.Details) for one resource on one node, from the
    state alone (the kernel's: backing disks and path ends are what `up` gave it)."""
    r = engine.res_state(st, node, res)
    if r is None:
        return None
    quorate = engine.has_quorum(st, node, res)
    quorum_on = r.get("quorum", "off") != "off"
    devices: list[Device] = []
    dev_x: dict[tuple[str, int], DeviceExtra] = {}
    for vol, d in sorted(r["disks"].items(), key=lambda kv: int(kv[0])):
        v = int(vol)
        devices.append(
            Device(v, d["minor"], DiskState(d["state"]), client=d["client"], quorum=quorate or not quorum_on)
        )
        md = engine.meta_for(st, node, res, vol)
        backing = d["backing"] if d["state"] != "Diskless" else None
        dev_x[(res, v)] = DeviceExtra(
            backing,
            bool(d["open"] or d.get("open_real")),
            DeviceStats(size=engine.DEFAULT_SIZE_KIB, written=md["gen"] * engine.KIB_PER_WRITE),
        )
    conns: list[Connection] = []
    con_x: dict[tuple[str, str], ConnectionExtra] = {}
    pd_x: dict[tuple[str, str, int], PeerDeviceExtra] = {}
    for peer, c in sorted(r["conns"].items(), key=lambda kv: kv[1]["node_id"]):
        pds: list[PeerDevice] = []
        for vol in sorted(r["disks"], key=int):
            v = int(vol)
            repl = ReplState(c["repl"].get(vol, "Off"))
            pdisk = DiskState(c["peer_disk"].get(vol, "DUnknown"))
            done = engine.resync_done(st, res, vol, node, peer) if repl.resyncing else None
            # the kernel knows a client peer from the config (bitmap=no), connected or not
            client = c.get("peer_intentional_diskless", c.get("peer_client", {}).get(vol, False))
            pds.append(PeerDevice(v, repl, pdisk, done=done, peer_client=client))
            stats = PeerDeviceStats()
            if done is not None:
                total = engine.DEFAULT_SIZE_KIB
                left = int(total * (1 - done / 100.0))
                stats = PeerDeviceStats(
                    out_of_sync=left,
                    resync=ResyncStats(
                        rs_total=total * 2, dt1_ms=1000, db1_sectors=int(engine.resync_rate(st, res) * 2)
                    ),
                )
            pd_x[(res, peer, v)] = PeerDeviceExtra(engine.resync_suspended(st, res, vol, node, peer), stats)
        conns.append(Connection(peer, ConnState(c["state"]), Role(c["peer_role"]), tuple(pds), c["node_id"]))
        path = PathInfo(
            _endpoint(r["address"], r["family"]),
            _endpoint(c["address"], r["family"]),
            c["state"] == "Connected",
        )
        con_x[(res, peer)] = ConnectionExtra(paths=(path,))
    resource = Resource(
        res, Role(r["role"]), tuple(devices), tuple(conns), tuple(r["suspended"]), node_id=r["node_id"]
    )
    return resource, {"devices": dev_x, "connections": con_x, "peer_devices": pd_x}


def node_view(st: engine.State, node: str, only: str | None = None) -> tuple[Status, Details]:
    resources: list[Resource] = []
    dev_x: dict[tuple[str, int], DeviceExtra] = {}
    con_x: dict[tuple[str, str], ConnectionExtra] = {}
    pd_x: dict[tuple[str, str, int], PeerDeviceExtra] = {}
    for res in sorted(st["nodes"].get(node, {})):
        if only is not None and res != only:
            continue
        v = resource_view(st, node, res)
        if v is None:
            continue
        resources.append(v[0])
        dev_x.update(v[1]["devices"])
        con_x.update(v[1]["connections"])
        pd_x.update(v[1]["peer_devices"])
    version = VERSION_84 if st.get("mode") == "8.4" else kernel_version(st)
    details = Details(
        devices=dev_x,
        connections=con_x,
        peer_devices=pd_x,
        proc_version=proc_version(st),
        proc_build="srcversion: 2A1B4E2D4C2C2A5C6E7D4B3 ",
    )
    return Status("status", version, tuple(resources)), details


def kernel_version(st: engine.State) -> str:
    return str(st.get("kernel", engine.KERNEL_9))


def proc_version(st: engine.State) -> str:
    if st.get("mode") == "8.4":
        return f"version: {VERSION_84} (api:1/proto:86-101)"
    return f"version: {kernel_version(st)} (api:2/proto:86-121)"


def proc_text(st: engine.State, node: str) -> str:
    """/proc/drbd: the 8.4 per-minor listing, or DRBD 9's version-only file (DK drbd_proc.c; UG9)."""
    from lab.drbd_emu.render import render_proc

    if st.get("mode") == "8.4":
        status, details = node_view(st, node)
        return render_proc(status, details=details)
    build = "GIT-hash: 0000000000000000000000000000000000000000 build by emulator, 2026-01-01 00:00:00"
    return f"{proc_version(st)}\n{build}\nTransports (api:21): tcp ({kernel_version(st)})\n"
