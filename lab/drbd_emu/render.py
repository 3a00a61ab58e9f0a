# SPDX-License-Identifier: GPL-2.0-or-later
"""Renderers from the model to the real DRBD output formats, byte for byte: the emulator's, not shipped.

Layout rules come from LINBIT/drbd-utils `user/v9/drbdsetup.c` (status text and --json),
`user/v9/drbdsetup_events2.c` (events2, compute_promotion_info), `shared/wrap_printf.c` (wrapping)
and the kernel's `drbd_proc.c` (/proc/drbd); each is checked against ../shared/fixtures/drbd.
What the lean model does not hold (minors' backing devices, counters, paths) comes from `Details`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

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
from tandem.record import replace


@dataclass(frozen=True)
class DeviceStats:
    """Counters in KiB as drbdsetup prints them (`size:` `read:` `written:` ...)."""

    size: int = 0
    read: int = 0
    written: int = 0
    al_writes: int = 0
    bm_writes: int = 0
    upper_pending: int = 0
    lower_pending: int = 0
    al_suspended: bool = False
    blocked: str = "no"


@dataclass(frozen=True)
class ResyncStats:
    """The kernel's resync marks (sectors, ms); drbdsetup derives done/dbdt1/eta from them."""

    rs_total: int
    dt_start_ms: int = 0
    paused_ms: int = 0
    dt0_ms: int = 0
    db0_sectors: int = 0
    dt1_ms: int = 0
    db1_sectors: int = 0
    failed: int = 0
    same_csum: int = 0
    want: float = 0.0


@dataclass(frozen=True)
class PeerDeviceStats:
    received: int = 0
    sent: int = 0
    out_of_sync: int = 0  # KiB
    pending: int = 0
    unacked: int = 0
    resync: ResyncStats | None = None


@dataclass(frozen=True)
class Endpoint:
    address: str
    port: int = 7789
    family: str = "ipv4"


@dataclass(frozen=True)
class PathInfo:
    local: Endpoint
    peer: Endpoint
    established: bool


@dataclass(frozen=True)
class ResourceExtra:
    force_io_failures: bool = False
    write_ordering: str = "none"


@dataclass(frozen=True)
class DeviceExtra:
    backing_dev: str | None = None  # None prints "none"
    open: bool = False
    stats: DeviceStats = DeviceStats()


@dataclass(frozen=True)
class ConnectionExtra:
    tls: bool = False
    congested: bool = False
    ap_in_flight: int = 0
    rs_in_flight: int = 0
    paths: tuple[PathInfo, ...] = ()


@dataclass(frozen=True)
class PeerDeviceExtra:
    resync_suspended: str = "no"
    stats: PeerDeviceStats = PeerDeviceStats()


@dataclass(frozen=True)
class Details:
    """Everything the outputs show beyond the model; missing entries take DRBD's idle defaults."""

    resources: Mapping[str, ResourceExtra] = field(default_factory=dict)
    devices: Mapping[tuple[str, int], DeviceExtra] = field(default_factory=dict)  # (resource, volume)
    connections: Mapping[tuple[str, str], ConnectionExtra] = field(default_factory=dict)  # (resource, peer)
    peer_devices: Mapping[tuple[str, str, int], PeerDeviceExtra] = field(default_factory=dict)
    # /proc/drbd header, DRBD 8.4 (UG8.4 s-proc-drbd)
    proc_version: str = "version: 8.4.11 (api:1/proto:86-101)"
    proc_build: str = "srcversion: 2A1B4E2D4C2C2A5C6E7D4B3 "

    def resource(self, r: Resource) -> ResourceExtra:
        return self.resources.get(_name(r), ResourceExtra())

    def device(self, r: Resource, d: Device) -> DeviceExtra:
        return self.devices.get((_name(r), _vol(d.volume)), DeviceExtra())

    def connection(self, r: Resource, c: Connection) -> ConnectionExtra:
        return self.connections.get((_name(r), c.peer or ""), ConnectionExtra())

    def peer_device(self, r: Resource, c: Connection, p: PeerDevice) -> PeerDeviceExtra:
        return self.peer_devices.get((_name(r), c.peer or "", _vol(p.volume)), PeerDeviceExtra())


NO_DETAILS = Details()


def _name(r: Resource) -> str:
    return r.name or ""


def _vol(v: int | None) -> int:
    return v or 0


def _yn(b: bool | None) -> str:
    return "yes" if b else "no"


def _jb(b: bool | None) -> str:
    return "true" if b else "false"


def suspended_str(r: Resource) -> str:
    """`susp_str`: comma-joined reasons, or `no`."""
    return ",".join(r.suspended) or "no"


# ---------------------------------------------------------------------------------------------------
# wrap_printf (drbd-utils shared/wrap_printf.c)


class _Wrap:
    """`wrap_printf` at 80 columns, as when stdout is not a TTY.

    Quirk kept on purpose: after indenting, the C code sets `col = indent` once the `while (indent--)`
    loop has run it down to -1, so the indent is not counted and a line can reach 80 + indent + 1.
    """

    def __init__(self, columns: int = 80) -> None:
        self.columns = columns
        self.col = 0
        self.out: list[str] = []

    def __call__(self, indent: int, text: str) -> None:
        while text.startswith("\n"):
            self.out.append("\n")
            self.col = 0
            text = text[1:]
        if not text:
            return
        if self.col > 0 and self.col + len(text) > self.columns:
            self.out.append("\n")
            self.col = 0
        if self.col == 0:
            text = text.lstrip(" ")
            self.out.append(" " * indent)
            self.col = -1
        self.out.append(text)
        self.col += len(text)
        if text.endswith("\n"):
            self.col = 0

    def text(self) -> str:
        return "".join(self.out)


# ---------------------------------------------------------------------------------------------------
# drbdsetup status (text)


def _single_device(r: Resource) -> bool:
    return len(r.devices) == 1


def _print_device_statistics(w: _Wrap, indent: int, s: DeviceStats, statistics: bool, verbose: bool) -> None:
    if statistics:
        for key, val in (
            ("size", s.size),
            ("read", s.read),
            ("written", s.written),
            ("al-writes", s.al_writes),
            ("bm-writes", s.bm_writes),
            ("upper-pending", s.upper_pending),
            ("lower-pending", s.lower_pending),
        ):
            w(indent, f" {key}:{val}")
        w(indent, f" al-suspended:{_yn(s.al_suspended)}")
    if verbose or s.blocked != "no":
        w(indent, f" blocked:{s.blocked}")


def _resync_figures(s: PeerDeviceStats) -> tuple[float, float, float]:
    """(done %, dbdt1 MiB/s, eta s) exactly as print_peer_device_statistics computes them."""
    rs = s.resync
    assert rs is not None
    to_go = s.out_of_sync * 2 - rs.failed
    done = 100.0 * (rs.rs_total - to_go) / rs.rs_total if rs.rs_total else 0.0
    dt = rs.dt1_ms or 1
    dbdt1 = rs.db1_sectors / dt * 1000.0 / 2048.0
    eta = dt * 1e-3 * to_go / rs.db1_sectors if rs.db1_sectors > 0 else float("nan")
    return done, dbdt1, eta


def _print_peer_device_statistics(w: _Wrap, indent: int, s: PeerDeviceStats, verbose: bool) -> None:
    w(indent, f" received:{s.received}")
    w(indent, f" sent:{s.sent}")
    if verbose or s.out_of_sync:
        w(indent, f" out-of-sync:{s.out_of_sync}")
    if not verbose:
        return
    w(indent, f" pending:{s.pending}")
    w(indent, f" unacked:{s.unacked}")
    if s.resync is None:
        return
    _, dbdt1, eta = _resync_figures(s)
    w(indent, f" dbdt1:{dbdt1:.2f}")
    w(indent, f" eta:{eta:.0f}")


def _resource_status(w: _Wrap, r: Resource, x: Details, verbose: bool, statistics: bool) -> None:
    rx = x.resource(r)
    w(0, _name(r))
    if verbose and r.node_id is not None:
        w(4, f" node-id:{r.node_id}")
    w(4, f" role:{r.role}")
    if verbose or r.suspended:
        w(4, f" suspended:{suspended_str(r)}")
    if verbose or rx.force_io_failures:
        w(4, f" force-io-failures:{_yn(rx.force_io_failures)}")
    if statistics and verbose:
        w(4, "\n")
        w(4, f" write-ordering:{rx.write_ordering}")
    w(0, "\n")


def _device_status(w: _Wrap, r: Resource, d: Device, x: Details, verbose: bool, statistics: bool) -> None:
    dx = x.device(r, d)
    indent = 2
    if verbose or not (_single_device(r) and _vol(d.volume) == 0):
        w(indent, f"volume:{_vol(d.volume)}")
        indent = 6
        if verbose:
            w(indent, f" minor:{d.minor}")
    w(indent, f" disk:{d.disk}")
    if d.disk is DiskState.DISKLESS:  # shown when not a TTY
        w(indent, f" client:{_yn(d.client)}")
    if verbose:
        w(indent, f" backing_dev:{dx.backing_dev or 'none'}")
    if verbose or d.quorum is False:
        w(indent, f" quorum:{_yn(d.quorum is not False)}")
    w(indent, f" open:{_yn(dx.open)}")
    indent = 6
    if statistics:
        w(indent, "\n")
    _print_device_statistics(w, indent, dx.stats, statistics, verbose)
    w(indent, "\n")


def _peer_device_status(
    w: _Wrap, r: Resource, c: Connection, p: PeerDevice, x: Details, verbose: bool, statistics: bool
) -> None:
    px = x.peer_device(r, c, p)
    indent = 4
    if verbose or not (_single_device(r) and _vol(p.volume) == 0):
        w(indent, f"volume:{_vol(p.volume)}")
        indent = 8
    if verbose or _repl_order(p.replication) > _repl_order(ReplState.ESTABLISHED):
        w(indent, f" replication:{p.replication}")
        indent = 8
    if verbose or statistics or p.replication is not ReplState.OFF or p.peer_disk is not DiskState.DUNKNOWN:
        w(indent, f" peer-disk:{p.peer_disk}")
        if p.peer_disk is DiskState.DISKLESS:
            w(indent, f" peer-client:{_yn(p.peer_client)}")
        indent = 8
        if p.done is not None:
            w(indent, f" done:{p.done:.2f}")
        if verbose or px.resync_suspended != "no":
            w(indent, f" resync-suspended:{px.resync_suspended}")
        if statistics:
            w(indent, "\n")
            _print_peer_device_statistics(w, indent, px.stats, verbose)
    w(0, "\n")


def _connection_status(
    w: _Wrap, r: Resource, c: Connection, x: Details, verbose: bool, statistics: bool
) -> None:
    cx = x.connection(r, c)
    w(2, c.peer or "")
    if verbose:
        w(6, f" node-id:{c.peer_node_id}")
    if verbose or c.connection is not ConnState.CONNECTED:
        w(6, f" connection:{c.connection}")
    if verbose or c.connection is ConnState.CONNECTED:
        w(6, f" role:{c.peer_role}")
    if verbose:
        w(6, f" tls:{_yn(cx.tls)}")
    if verbose or cx.congested:
        w(6, f" congested:{_yn(cx.congested)}")
        w(6, f" ap-in-flight:{cx.ap_in_flight}")
        w(6, f" rs-in-flight:{cx.rs_in_flight}")
    w(0, "\n")
    if verbose or statistics or c.connection is ConnState.CONNECTED:
        for p in c.peer_devices:
            _peer_device_status(w, r, c, p, x, verbose, statistics)


def render_status_text(
    status: Status, *, verbose: bool = False, statistics: bool = False, details: Details = NO_DETAILS
) -> str:
    """`drbdsetup status [--verbose] [--statistics]` piped (no TTY: 80 columns, `client:` shown)."""
    if not status.resources:
        return "# No currently configured DRBD found.\n"
    w = _Wrap()
    for r in status.resources:
        _resource_status(w, r, details, verbose, statistics)
        for d in r.devices:
            _device_status(w, r, d, details, verbose, statistics)
        for c in r.connections:
            _connection_status(w, r, c, details, verbose, statistics)
        w(0, "\n")
    return w.text()


_REPL_ORDER = list(ReplState)


def _repl_order(s: ReplState) -> int:
    return _REPL_ORDER.index(s)


# ---------------------------------------------------------------------------------------------------
# drbdsetup status --json (hand-printed; the `"connection-state": "X", ` trailing blank is real)


def _json_list(items: list[str]) -> str:
    return "[\n" + ",\n".join(items) + " ]"


def _device_json(r: Resource, d: Device, x: Details) -> str:
    dx = x.device(r, d)
    s = dx.stats
    return (
        "    {\n"
        f'      "volume": {_vol(d.volume)},\n'
        f'      "minor": {d.minor},\n'
        f'      "disk-state": "{d.disk}",\n'
        f'      "client": {_jb(d.client)},\n'
        f'      "open": {_jb(dx.open)},\n'
        f'      "quorum": {_jb(d.quorum is not False)},\n'
        f'      "size": {s.size},\n'
        f'      "read": {s.read},\n'
        f'      "written": {s.written},\n'
        f'      "al-writes": {s.al_writes},\n'
        f'      "bm-writes": {s.bm_writes},\n'
        f'      "upper-pending": {s.upper_pending},\n'
        f'      "lower-pending": {s.lower_pending}\n'
        "    }"
    )


def _endpoint_json(key: str, e: Endpoint) -> str:
    return (
        f'          "{key}": {{\n'
        f'            "address": "{e.address}",\n'
        f'            "port": {e.port},\n'
        f'            "family": "{e.family}"\n'
        "          },\n"
    )


def _path_json(p: PathInfo) -> str:
    return (
        "        {\n"
        + _endpoint_json("this_host", p.local)
        + _endpoint_json("remote_host", p.peer)
        + f'          "established": {_jb(p.established)}\n'
        + "        }"
    )


def _peer_device_json(r: Resource, c: Connection, p: PeerDevice, x: Details) -> str:
    px = x.peer_device(r, c, p)
    s = px.stats
    size = next((x.device(r, d).stats.size for d in r.devices if _vol(d.volume) == _vol(p.volume)), 0)
    in_sync = 100.0 * (1 - s.out_of_sync / size) if size else 100.0
    lines = [
        f'          "volume": {_vol(p.volume)}',
        f'          "replication-state": "{p.replication}"',
        f'          "peer-disk-state": "{p.peer_disk}"',
        f'          "peer-client": {_jb(p.peer_client)}',
        f'          "resync-suspended": "{px.resync_suspended}"',
        f'          "received": {s.received}',
        f'          "sent": {s.sent}',
        f'          "out-of-sync": {s.out_of_sync}',
        f'          "pending": {s.pending}',
        f'          "unacked": {s.unacked}',
        f'          "has-sync-details": {_jb(s.resync is not None)}',
        '          "has-online-verify-details": false',
        f'          "percent-in-sync": {in_sync:.2f}',
    ]
    rs = s.resync
    if rs is not None:
        to_go = s.out_of_sync * 2 - rs.failed
        dt0 = rs.dt0_ms or 1
        dt1 = rs.dt1_ms or 1
        eta = 987654321.0 if rs.db1_sectors <= 0 else dt1 * 1e-3 * to_go / rs.db1_sectors
        db = rs.rs_total - to_go
        dt = (rs.dt_start_ms - rs.paused_ms) or 1
        done = 100.0 * db / rs.rs_total if rs.rs_total else 0.0
        lines += [
            f'          "rs-total": {rs.rs_total}',
            f'          "rs-dt-start-ms": {rs.dt_start_ms}',
            f'          "rs-paused-ms": {rs.paused_ms}',
            f'          "rs-dt0-ms": {rs.dt0_ms}',
            f'          "rs-db0-sectors": {rs.db0_sectors}',
            f'          "rs-dt1-ms": {rs.dt1_ms}',
            f'          "rs-db1-sectors": {rs.db1_sectors}',
            f'          "rs-failed": {rs.failed}',
            f'          "rs-same-csum": {rs.same_csum}',
            f'          "want": {rs.want:.2f}',
            f'          "db0/dt0 [MiB/s]": {rs.db0_sectors / dt0 * 1000.0 / 2048.0:.2f}',
            f'          "db1/dt1 [MiB/s]": {rs.db1_sectors / dt1 * 1000.0 / 2048.0:.2f}',
            f'          "estimated-seconds-to-finish": {eta:.0f}',
            f'          "db/dt [MiB/s]": {db / dt * 1000.0 / 2048.0:.2f}',
            f'          "percent-resync-done": {done:.2f}',
        ]
    elif p.done is not None:  # drbdsetup's in_resync_without_details branch
        lines.append(f'          "percent-resync-done": {p.done:.2f}')
    return "        {\n" + ",\n".join(lines) + "\n        }"


def _connection_json(r: Resource, c: Connection, x: Details) -> str:
    cx = x.connection(r, c)
    return (
        "    {\n"
        f'      "peer-node-id": {c.peer_node_id},\n'
        f'      "name": "{c.peer or ""}",\n'
        f'      "connection-state": "{c.connection}", \n'
        f'      "congested": {_jb(cx.congested)},\n'
        f'      "peer-role": "{c.peer_role}",\n'
        f'      "tls": {_jb(cx.tls)},\n'
        f'      "ap-in-flight": {cx.ap_in_flight},\n'
        f'      "rs-in-flight": {cx.rs_in_flight},\n'
        f'      "paths": {_json_list([_path_json(p) for p in cx.paths])},\n'
        f'      "peer_devices": {_json_list([_peer_device_json(r, c, p, x) for p in c.peer_devices])}\n'
        "    }"
    )


def _resource_json(r: Resource, x: Details) -> str:
    rx = x.resource(r)
    susp = set(r.suspended)
    return (
        "{\n"
        f'  "name": "{_name(r)}",\n'
        f'  "node-id": {r.node_id if r.node_id is not None else -1},\n'
        f'  "role": "{r.role}",\n'
        f'  "suspended": {_jb(bool(susp))},\n'
        f'  "suspended-user": {_jb("user" in susp)},\n'
        f'  "suspended-no-data": {_jb("no-data" in susp)},\n'
        f'  "suspended-fencing": {_jb("fencing" in susp)},\n'
        f'  "suspended-quorum": {_jb("quorum" in susp)},\n'
        f'  "force-io-failures": {_jb(rx.force_io_failures)},\n'
        f'  "write-ordering": "{rx.write_ordering}",\n'
        f'  "devices": {_json_list([_device_json(r, d, x) for d in r.devices])},\n'
        f'  "connections": {_json_list([_connection_json(r, c, x) for c in r.connections])}\n'
        "}"
    )


def render_status_json(status: Status, *, details: Details = NO_DETAILS) -> str:
    """`drbdsetup status --json`, punctuation quirks included (fixtures status-9-*.GENERATED.json)."""
    return "[\n" + ",\n".join(_resource_json(r, details) for r in status.resources) + "\n]\n\n"


# ---------------------------------------------------------------------------------------------------
# drbdsetup events2 --now


def promotion_info(r: Resource) -> tuple[bool, int]:
    """drbdsetup_events2.c compute_promotion_info: (may_promote, promotion_score). A device without local
    UpToDate data may promote through an UpToDate peer (a diskless client: its score is the number of
    such peers); the peer's UUID_FLAG_STABLE is taken as set (no resync in the model's peer states)."""
    if not r.devices:
        return False, 0
    up_to_date = 0
    all_have_disk = True
    all_stable = True
    min_replicas = -1
    for d in r.devices:
        if d.quorum is False:
            return False, 0
        peers = sum(
            1
            for c in r.connections
            for p in c.peer_devices
            if _vol(p.volume) == _vol(d.volume) and p.peer_disk is DiskState.UP_TO_DATE
        )
        replicas = int(d.disk is DiskState.UP_TO_DATE) + peers
        all_stable = all_stable and (d.disk is DiskState.UP_TO_DATE or peers > 0)
        if d.disk is DiskState.UP_TO_DATE:
            up_to_date += 1
        elif d.disk not in (DiskState.CONSISTENT, DiskState.INCONSISTENT):
            all_have_disk = False
        if min_replicas == -1 or replicas < min_replicas:
            min_replicas = replicas
    if min_replicas <= 0:
        return False, 0
    have_primary = r.role is Role.PRIMARY or any(c.peer_role is Role.PRIMARY for c in r.connections)
    may = not have_primary and all_stable
    return may, int(all_have_disk) * 10000 + min(up_to_date, 99) * 100 + min(min_replicas, 99)


def _promo(r: Resource) -> str:
    may, score = promotion_info(r)
    return f"may_promote:{_yn(may)} promotion_score:{score}"


def _ep(e: Endpoint) -> str:
    return f"{e.family}:{e.address}:{e.port}"


def _events2_peer_device(
    r: Resource, c: Connection, p: PeerDevice, x: Details, statistics: bool, v84: bool
) -> str:
    px = x.peer_device(r, c, p)
    head = f"name:{_name(r)} peer-node-id:{c.peer_node_id} conn-name:{c.peer} volume:{_vol(p.volume)}"
    line = f"{head} replication:{p.replication} peer-disk:{p.peer_disk}"
    if not v84:
        line += f" peer-client:{_yn(p.peer_client)}"
    line += f" resync-suspended:{px.resync_suspended}"
    if p.done is not None:
        line += f" done:{p.done:.2f}"
    if statistics:
        s = px.stats
        line += f" received:{s.received} sent:{s.sent} out-of-sync:{s.out_of_sync}"
        line += f" pending:{s.pending} unacked:{s.unacked}"
        if s.resync is not None:
            _, dbdt1, eta = _resync_figures(s)
            line += f" dbdt1:{dbdt1:.2f} eta:{eta:.0f}"
    return line


def _events2_device(r: Resource, d: Device, x: Details, statistics: bool, v84: bool) -> str:
    dx = x.device(r, d)
    line = f"name:{_name(r)} volume:{_vol(d.volume)} minor:{d.minor}"
    if v84:
        line += f" disk:{d.disk}"
    else:
        line += f" backing_dev:{dx.backing_dev or 'none'} disk:{d.disk} client:{_yn(d.client)}"
        line += f" open:{_yn(dx.open)} quorum:{_yn(d.quorum is not False)}"
    if statistics:
        s = dx.stats
        line += (
            f" size:{s.size} read:{s.read} written:{s.written} al-writes:{s.al_writes}"
            f" bm-writes:{s.bm_writes} upper-pending:{s.upper_pending} lower-pending:{s.lower_pending}"
            f" al-suspended:{_yn(s.al_suspended)} blocked:{s.blocked}"
        )
    return line


def render_events2(
    status: Status, *, statistics: bool = False, details: Details = NO_DETAILS, v84: bool = False
) -> str:
    """`drbdsetup events2 --now [--statistics]`: kernel object order, then `exists -`.

    DRBD 9: drbdsetup recomputes may_promote/promotion_score as each device and peer device arrives and
    prints a `change resource` line before the object that changed them (fixtures events2-9-now-*).
    `v84` gives the DRBD 8.4 kernel's shorter lines (UG8.4 events2 sample).
    """
    out: list[str] = []
    for r in status.resources:
        out.extend(_events2_resource(r, details, statistics, v84))
    out.append("exists -")
    return "\n".join(out) + "\n"


def _events2_resource(r: Resource, details: Details, statistics: bool, v84: bool) -> list[str]:
    """Resource, connections, paths, devices, peer devices: the kernel's get_initial_state order."""
    rx = details.resource(r)
    name = _name(r)
    line = f"exists resource name:{name} role:{r.role} suspended:{suspended_str(r)}"
    if not v84:
        line += f" force-io-failures:{_yn(rx.force_io_failures)}"
    if statistics:
        line += f" write-ordering:{rx.write_ordering}"
    # What drbdsetup has heard of so far: promotion info is recomputed as objects arrive.
    seen = replace(r, devices=(), connections=tuple(replace(c, peer_devices=()) for c in r.connections))
    if not v84:
        line += " " + _promo(seen)
    out = [line]
    for c in r.connections:
        cx = details.connection(r, c)
        cl = f"exists connection name:{name} peer-node-id:{c.peer_node_id} conn-name:{c.peer}"
        cl += f" connection:{c.connection} role:{c.peer_role}"
        if statistics:
            cl += f" congested:{_yn(cx.congested)}"
            if not v84:
                cl += f" ap-in-flight:{cx.ap_in_flight} rs-in-flight:{cx.rs_in_flight}"
        out.append(cl)
    if not v84:
        for c in r.connections:
            for path in details.connection(r, c).paths:
                out.append(
                    f"exists path name:{name} peer-node-id:{c.peer_node_id} conn-name:{c.peer}"
                    f" local:{_ep(path.local)} peer:{_ep(path.peer)} established:{_yn(path.established)}"
                )

    def arrive(new: Resource, text: str) -> Resource:
        if not v84 and promotion_info(new) != promotion_info(seen):
            out.append(f"change resource name:{name} {_promo(new)}")
        out.append(text)
        return new

    for d in r.devices:
        seen = arrive(
            replace(seen, devices=(*seen.devices, d)),
            "exists device " + _events2_device(r, d, details, statistics, v84),
        )
    for ci, c in enumerate(r.connections):
        for p in c.peer_devices:
            conns = list(seen.connections)
            conns[ci] = replace(conns[ci], peer_devices=(*conns[ci].peer_devices, p))
            text = "exists peer-device " + _events2_peer_device(r, c, p, details, statistics, v84)
            seen = arrive(replace(seen, connections=tuple(conns)), text)
    return out


# ---------------------------------------------------------------------------------------------------
# /proc/drbd (DRBD 8.4, drbd_proc.c)

_PROC_PROTO = "C"


def _thousands(v: int) -> str:
    return f"{v:,}"


def _cs84(c: Connection | None, p: PeerDevice | None) -> str:
    """8.x folds connection and replication into `cs:` (the parsers split it back)."""
    if c is None:
        return "StandAlone"
    if c.connection is ConnState.CONNECTING:
        return "WFConnection"
    if c.connection is not ConnState.CONNECTED:
        return str(c.connection)
    if p is None or p.replication in (ReplState.ESTABLISHED, ReplState.OFF):
        return "Connected"
    return str(p.replication)


def render_proc(status: Status, *, details: Details = NO_DETAILS) -> str:
    """/proc/drbd of a DRBD 8.4 kernel: header, then one block per minor (a blank line for a hole)."""
    lines = [details.proc_version, details.proc_build]
    minors: dict[int, tuple[Resource, Device]] = {}
    for r in status.resources:
        for d in r.devices:
            if d.minor is not None:
                minors[d.minor] = (r, d)
    expected = 0
    for minor in sorted(minors):
        if minor > expected:
            lines.append("")
        expected = minor + 1
        r, d = minors[minor]
        c = r.connections[0] if r.connections else None
        p = next((p for p in c.peer_devices if _vol(p.volume) == _vol(d.volume)), None) if c else None
        cs = _cs84(c, p)
        if cs == "StandAlone" and d.disk is DiskState.DISKLESS and r.role is not Role.PRIMARY:
            lines.append(f"{minor:2d}: cs:Unconfigured")
            continue
        peer_role = c.peer_role if c else Role.UNKNOWN
        peer_disk = p.peer_disk if p else DiskState.DUNKNOWN
        proto = " " if c is None or c.connection is ConnState.STANDALONE else _PROC_PROTO
        susp = "s" if r.suspended else "r"
        lines.append(
            f"{minor:2d}: cs:{cs} ro:{r.role}/{peer_role} ds:{d.disk}/{peer_disk} {proto} {susp}-----"
        )
        ds = details.device(r, d).stats
        ps = details.peer_device(r, c, p).stats if c and p else PeerDeviceStats()
        lines.append(
            f"    ns:{ps.sent} nr:{ps.received} dw:{ds.written} dr:{ds.read} al:{ds.al_writes}"
            f" bm:{ds.bm_writes} lo:{ds.lower_pending} pe:{ps.pending} ua:{ps.unacked} ap:{ds.upper_pending}"
            f" ep:1 wo:f oos:{ps.out_of_sync}"
        )
        if p is not None and cs in ("SyncSource", "SyncTarget", "PausedSyncS", "PausedSyncT"):
            lines.extend(_proc_progress(cs, ps))
    return "\n".join(lines) + "\n"


def _proc_progress(cs: str, s: PeerDeviceStats) -> list[str]:
    """drbd_syncer_progress: the bar, sync'ed per mille, (left/total)K, finish and speed."""
    rs = s.resync
    total = (rs.rs_total // 8) if rs else max(s.out_of_sync // 4, 1)  # bitmap bits of 4 KiB
    left = min(s.out_of_sync // 4, total)
    res = 1000 - (left >> 10) * 1000 // (1 + (total >> 10))  # drbd_get_syncer_progress
    total_kib, left_kib = total * 4, left * 4
    x = res // 50
    bar = "=" * max(x - 1, 0) + ">" + "." * (20 - x)
    db1 = rs.db1_sectors // 2 if rs else 0
    dt1 = max((rs.dt1_ms if rs else 0) // 1000, 1)
    speed = db1 // dt1
    rt = left_kib // speed if speed else 0
    want = " want: 0" if cs == "SyncTarget" else ""
    return [
        f"\t[{bar}] sync'ed:{res // 10:3d}.{res % 10}% ({left_kib}/{total_kib})K",
        f"\tfinish: {rt // 3600}:{rt % 3600 // 60:02d}:{rt % 60:02d} speed: {_thousands(speed)}"
        f" ({_thousands(speed)}){want} K/sec",
    ]
