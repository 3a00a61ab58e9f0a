# SPDX-License-Identifier: GPL-2.0-or-later
"""The emulated DRBD "kernel": shared state of every node's resources and DRBD's rules over it.

State is one JSON document (store.py: shared by all lab nodes through a directory under the host's /tmp,
guarded by flock, so commands issued at once on two nodes see one consistent cluster). Every rule here is a
plain function over that document and a clock value (`now`), so unit tests drive them without processes.

Connection states are derived, not stored: two nodes are Connected when both have the resource up, both
want the connection (not StandAlone), and the link between them is not cut (fault). `settle()` compares
the derived state with the last one it saw and runs DRBD's transitions: the handshake on connect (resync,
Outdated peers, split-brain) and the disconnect path (fence-peer, suspended I/O). Rule sources are cited
at each function.
"""

from __future__ import annotations

import os
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lab.drbd_emu import net, store
from lab.drbd_emu.config import Host, ResourceConfig
from lab.drbd_emu.store import DEFAULT_RESYNC_KIB_S
from lab.drbd_emu.store import State as State  # the document every rule takes
from lab.drbd_emu.store import new_state as new_state  # the rules and their tests start from it

DEFAULT_DIR = "/tmp/tandem-drbd-emu"
DEFAULT_SIZE_KIB = 64 * 1024
KIB_PER_WRITE = 4  # one bitmap block (DRBD's bitmap granularity is 4 KiB)
BLOCK_BYTES = KIB_PER_WRITE * 1024
BLOCKS = DEFAULT_SIZE_KIB // KIB_PER_WRITE


class StateError(Exception):
    """A refused state change: DRBD's code, message and drbdsetup's exit code (drbdsetup.c
    print_config_error)."""

    def __init__(self, code: int, message: str, exit_code: int = 11, info: str = "") -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.exit_code = exit_code
        self.info = info  # the kernel's "additional info" line, if it gives one


# drbd_strings.c set_st_err / drbd.h enum drbd_state_rv; exit codes from drbdsetup.c print_config_error
def two_primaries() -> StateError:
    return StateError(-1, "Multiple primaries not allowed by config")


def weakly_connected() -> StateError:
    return StateError(-24, "Primary nodes must be strongly connected among each other")


def no_up_to_date_disk() -> StateError:
    return StateError(-2, "Need access to UpToDate data", 17)


def primary_nop() -> StateError:
    return StateError(-7, "Refusing to be Primary while peer is not outdated")


def device_in_use() -> StateError:
    return StateError(-12, "Device is held open by someone")


def no_quorum(info: str = "") -> StateError:
    return StateError(-25, "No quorum", info=info)


class Suspended(StateError):
    """I/O is frozen (fence-peer running under resource-and-stonith, or quorum lost with suspend-io): the
    data plane holds the request until it resumes, as DRBD does."""

    def __init__(self, reasons: list[str]) -> None:
        super().__init__(0, f"I/O suspended ({','.join(reasons)})", 1)


def io_error(message: str) -> StateError:
    return StateError(0, message, 1)


def emu_dir() -> Path:
    return Path(os.environ.get("TANDEM_EMU_DIR", DEFAULT_DIR))


class Store(store.Store):
    """The emulator's state (store.py), by default in $TANDEM_EMU_DIR."""

    def __init__(self, directory: Path | None = None) -> None:
        super().__init__(directory or emu_dir())


# ---------------------------------------------------------------------------------------------------
# Accessors


def res_state(st: State, node: str, res: str) -> dict[str, Any] | None:
    r: dict[str, Any] | None = st["nodes"].get(node, {}).get(res)
    return r


def link_key(a: str, b: str) -> str:
    return "|".join(sorted((a, b)))


def link_cut(st: State, a: str, b: str) -> bool:
    return bool(st["links"].get(link_key(a, b), {}).get("cut"))


def connected(st: State, res: str, a: str, b: str) -> bool:
    """Both up, both want the connection, the link is whole (derived; see module doc)."""
    return link_down(st, res, a, b) is None


def link_down(st: State, res: str, a: str, b: str, now: float | None = None) -> str | None:
    """Why a and b are not connected, as DRBD's kernel log would say it; None when they are."""
    ra, rb = res_state(st, a, res), res_state(st, b, res)
    if ra is None or rb is None:
        return "peer down"
    ca, cb = ra["conns"].get(b), rb["conns"].get(a)
    if not (ca and cb and ca["want"] and cb["want"]):
        return "disconnect asked"
    if link_cut(st, a, b):
        return "link cut"
    stale = net.stale(st, res, a, b, now)
    return f"PingAck did not arrive in time ({', '.join(stale)})" if stale else None


def new_resource(cfg: ResourceConfig, node: str) -> dict[str, Any]:
    """`new-resource` + `new-minor`: a Secondary with Diskless devices and StandAlone connections."""
    me = cfg.host(node)
    return {
        "node_id": me.node_id,
        "address": me.address,  # this node's own path end, and the backing disks: as the kernel holds them
        "family": me.family,
        "role": "Secondary",
        "suspended": [],
        "fencing": cfg.fencing,
        "quorum": cfg.quorum,
        "on_no_quorum": cfg.opt("options", "on-no-quorum", "suspend-io"),
        "on_no_data": cfg.opt("options", "on-no-data-accessible", "io-error"),
        "quorum_min_redundancy": cfg.opt("options", "quorum-minimum-redundancy", "off"),
        "handlers": dict(cfg.sections.get("handlers", {})),
        "peers": [h.name for h in cfg.peers(node) if any(v.disk != "none" for v in h.volumes.values())],
        "disks": {
            str(v.number): {
                "minor": v.minor,
                "state": "Diskless",
                "client": v.disk == "none",
                "backing": v.disk,
                "open": 0,
            }
            for v in me.volumes.values()
        },
        "conns": {},
    }


def meta_for(st: State, node: str, res: str, vol: str) -> dict[str, Any]:
    """The on-disk meta data of a volume (survives down/up): data generation, last write, sync bases."""
    md: dict[str, Any] = st.setdefault("meta", {}).setdefault(f"{node}/{res}/{vol}", {})
    md.setdefault("gen", 0)
    md.setdefault("tag", "")
    md.setdefault("synced", {})
    md.setdefault("disk", "Inconsistent")  # create-md starts Inconsistent (UG9 initial sync)
    md.setdefault("lost", 0)
    md.setdefault("oos", {})  # peer -> 4 KiB blocks it lacks (DRBD's per-peer bitmap), sorted
    md.setdefault("history", [])  # the generations this copy held before, newest last (DRBD's history UUIDs)
    return md


HISTORY = 64


def _set_tag(md: dict[str, Any], tag: str) -> None:
    """This copy's data generation becomes `tag`; the one it held goes to its history."""
    if md["tag"] and md["tag"] != tag:
        md["history"] = [*md.get("history", []), md["tag"]][-HISTORY:]
    md["tag"] = tag


def create_md(st: State, node: str, res: str, vols: list[str]) -> list[str]:
    """`create-md` (the operator's step for a new disk): fresh meta data on each volume, as drbdmeta writes
    it: no data generation, no peer known in sync, an empty bitmap, Inconsistent until a full sync. Returns
    the volumes left alone because their disk is attached (drbdmeta: "Device '<minor>' is configured!")."""
    r = res_state(st, node, res)
    attached = [v for v in vols if r is not None and v in r["disks"] and has_disk(st, node, res, v)]
    for vol in vols:
        if vol not in attached:
            st.setdefault("meta", {})[f"{node}/{res}/{vol}"] = {}
            meta_for(st, node, res, vol)
    return attached


def blocks_of(offset: int, length: int) -> list[int]:
    """The bitmap blocks a byte range touches."""
    return list(range(offset // BLOCK_BYTES, (offset + max(length, 1) - 1) // BLOCK_BYTES + 1))


def _mark_oos(md: dict[str, Any], peer: str, blocks: list[int]) -> None:
    md["oos"][peer] = sorted(set(md["oos"].get(peer, [])) | set(blocks))


def _clear_oos(md: dict[str, Any], peer: str, in_sync: set[int]) -> None:
    """The blocks in `in_sync` leave this copy's bitmap for `peer`."""
    left = [b for b in md["oos"].pop(peer, []) if b not in in_sync]
    if left:
        md["oos"][peer] = left


def attach(st: State, node: str, res: str, now: float) -> None:
    """`attach`: the disk comes up in the state its meta data recorded (Outdated/Inconsistent), except that
    data last UpToDate comes up Consistent while fencing is configured and some peer is not known Outdated:
    that peer may have newer data (DK drbd_state.c disk_state_from_md, may_be_up_to_date). Connecting, or
    fence-peer at promotion, settles it. A disk attached while connected goes through the handshake with
    each connected peer at once (its UUIDs are exchanged): a Consistent peer facing the new Inconsistent disk
    is then the newest and resyncs it (tandem-19400: a replaced disk beside a peer that came back Consistent
    from its fencing, and nothing resynced)."""
    r = res_state(st, node, res)
    assert r is not None
    attached = False
    for vol, d in r["disks"].items():
        if d["client"] or d["state"] != "Diskless":
            continue
        md = meta_for(st, node, res, vol)
        if st["faults"].get(f"disk/{node}/{res}/{vol}"):
            d["state"] = "Diskless"  # attach of a failed disk fails; stays Diskless
            continue
        d["state"] = md["disk"]
        attached = True
        if md["disk"] == "UpToDate" and r["fencing"] != "dont-care" and _peers_unknown(st, node, res, vol):
            d["state"] = "Consistent"
    if attached:
        for peer, c in list(r["conns"].items()):
            if c["state"] == "Connected":
                _handshake(st, res, node, peer, now)


def _peers_unknown(st: State, node: str, res: str, vol: str) -> list[str]:
    """Configured peers with a disk that this node's meta data does not know to be Outdated."""
    r = res_state(st, node, res)
    known = meta_for(st, node, res, vol).get("peers_outdated", [])
    return [p for p in (r or {}).get("peers", []) if p not in known]


def _peer_outdated_in_md(st: State, node: str, res: str, peer: str, outdated: bool) -> None:
    """DRBD's MDF_PEER_OUTDATED: kept in the meta data, so a node attaching later knows the peer is stale."""
    r = res_state(st, node, res)
    for vol in (r or {}).get("disks", {}):
        md = meta_for(st, node, res, vol)
        known = set(md.get("peers_outdated", [])) - {peer}
        md["peers_outdated"] = sorted(known | ({peer} if outdated else set()))


def connect(
    st: State, cfg: ResourceConfig, node: str, res: str, peer: str | None = None, *, discard: bool = False
) -> None:
    """`connect`: the connection leaves StandAlone and waits for the peer (Connecting)."""
    r = res_state(st, node, res)
    assert r is not None
    for h in cfg.peers(node):
        if peer is not None and h.name != peer:
            continue
        c = r["conns"].setdefault(h.name, _new_conn(cfg, h))
        c["want"] = True
        c.pop("split_brain", None)  # a new attempt: its handshake decides again
        c["allow_two_primaries"] = c.get("allow_two_primaries", cfg.allow_two_primaries)
        if discard:
            c["discard_my_data"] = True


def _new_conn(cfg: ResourceConfig, h: Host) -> dict[str, Any]:
    """A connection to host `h`; `peer_intentional_diskless` is what drbdadm tells the kernel from the
    config (`peer-device-options --bitmap=no` for a `disk none` peer), so quorum knows it while it is away."""
    return {
        "want": False,
        "node_id": h.node_id,
        "address": h.address,
        "peer_intentional_diskless": all(v.disk == "none" for v in h.volumes.values()),
        "state": "StandAlone",
        "repl": {},
        "peer_disk": {},
        "peer_role": "Unknown",
        "allow_two_primaries": cfg.allow_two_primaries,
    }


def disconnect(st: State, node: str, res: str, peer: str | None = None) -> None:
    """`disconnect`: StandAlone. A Secondary leaving a Primary peer outdates itself (8.4 conn_try_disconnect,
    DRBD 9 the same: a graceful disconnect keeps the Primary from having to fence)."""
    r = res_state(st, node, res)
    assert r is not None
    for name, c in r["conns"].items():
        if peer is not None and name != peer:
            continue
        if c["state"] == "Connected" and c["peer_role"] == "Primary" and r["role"] == "Secondary":
            for vol, d in r["disks"].items():
                if d["state"] == "UpToDate":
                    _set_disk(st, node, res, vol, "Outdated")
            pr = res_state(st, name, res)
            if pr is not None and node in pr["conns"]:
                for vol in r["disks"]:
                    pr["conns"][node]["peer_disk"][vol] = "Outdated"
                pr["conns"][node]["graceful"] = True
                _peer_outdated_in_md(st, name, res, node, True)
        c["want"] = False


def down(st: State, node: str, res: str, now: float) -> None:
    """`down`: refused while a device is open or the node is Primary (SS_DEVICE_IN_USE / demote first)."""
    r = res_state(st, node, res)
    if r is None:
        return
    if any(d["open"] or d.get("open_real") for d in r["disks"].values()):
        raise device_in_use()
    if r["role"] == "Primary":
        secondary(st, node, res, now)
    disconnect(st, node, res)
    settle(st, now)
    del st["nodes"][node][res]
    settle(st, now)


def power_loss(st: State, node: str, now: float) -> None:
    """The node's DRBD is gone at once (power cut, crash, reboot: its kernel died): its peers see the
    connection drop, not a clean disconnect (no graceful outdate, so a Primary peer fences), and its queued
    helpers never run. Its meta data (the disk) stays; it comes back from "down". A Primary's activity log
    (the blocks it wrote last: some may not have reached its peers) is resynced when it reconnects."""
    for res, r in st["nodes"].get(node, {}).items():
        if r["role"] == "Primary":
            for vol in r["disks"]:
                md = meta_for(st, node, res, vol)
                md["al_dirty"] = sorted(set(md.get("al_dirty", [])) | set(md.pop("al", [])))
    st["nodes"].pop(node, None)
    st["jobs"] = [j for j in st["jobs"] if j["node"] != node]
    st.get("kernels", {}).pop(node, None)
    st.get("dataplane", {}).pop(node, None)
    settle(st, now)


def _set_disk(st: State, node: str, res: str, vol: str, state: str) -> None:
    r = res_state(st, node, res)
    assert r is not None
    r["disks"][vol]["state"] = state
    if state in ("UpToDate", "Outdated", "Inconsistent", "Consistent"):
        meta_for(st, node, res, vol)["disk"] = state


# ---------------------------------------------------------------------------------------------------
# Roles


@dataclass(frozen=True)
class QuorumInfo:
    """DK drbd_state.c calc_quorum's result and the figures its refusal message prints."""

    have: bool
    voters: int
    up_to_date: int
    present: int
    quorum_at: int
    min_redundancy_at: int
    diskful: bool


def _quorum_at(setting: str, voters: int) -> int:
    """DK calc_quorum_at: majority, all, a number, or 0 (off)."""
    if setting == "majority":
        return voters // 2 + 1
    if setting == "all":
        return voters
    return int(setting) if setting.isdigit() else 0


def calc_quorum(st: State, node: str, res: str, vol: str) -> QuorumInfo:
    """DK drbd_state.c calc_quorum (9.2.19) for one volume: diskful nodes vote (UpToDate, present, unknown,
    outdated); intentional diskless nodes do not, but break a tie of an even number of voters for a node
    that had quorum (sticky: it is never regained through them); a node without a disk takes quorum from
    a connected UpToDate peer that has it; absent nodes all known Outdated leave the voters (last man
    standing). Peers are ignored until first seen, as the kernel ignores nodes without meta data slots."""
    r = res_state(st, node, res)
    assert r is not None
    diskful = r["disks"][vol]["state"] not in ("Diskless", "Failed")
    up_to_date = present = outdated = unknown = diskless = missing_diskless = quorate_peers = 0
    if diskful:
        if r["disks"][vol]["state"] == "UpToDate":
            up_to_date += 1
        else:
            present += 1
    elif r["disks"][vol]["client"]:
        diskless += 1
    else:
        unknown += 1
    for peer, c in r["conns"].items():
        intentional = bool(c.get("peer_intentional_diskless"))
        if c["state"] != "Connected":
            if intentional and diskful and not c.get("seen"):
                continue  # no meta data slot for a client never seen; a data peer always has one
            if intentional:
                missing_diskless += 1
            elif c["peer_disk"].get(vol) in ("Outdated", "Inconsistent"):
                outdated += 1
            else:
                unknown += 1
            continue
        disk = c["peer_disk"].get(vol, "DUnknown")
        if disk == "Diskless" and (intentional or not diskful):
            diskless += 1
        elif disk == "UpToDate":
            up_to_date += 1
            pr = res_state(st, peer, res)
            quorate_peers += int(not diskful and pr is not None and pr.get("quorate", False))
        else:
            present += 1
    voters = up_to_date + present + (outdated + unknown if unknown else 0)
    quorum_at = _quorum_at(r["quorum"], voters)
    min_redundancy_at = _quorum_at(r.get("quorum_min_redundancy", "off"), voters)
    have = quorate_peers > 0 or (up_to_date + present >= quorum_at and up_to_date >= min_redundancy_at)
    tie = voters % 2 == 0 and up_to_date + present == quorum_at - 1
    if not have and voters and tie and diskless >= _quorum_at("majority", diskless + missing_diskless):
        have = bool(r.get("quorate", False))  # the tiebreaker keeps quorum, never gives it back
    return QuorumInfo(have, voters, up_to_date, present, quorum_at, min_redundancy_at, diskful)


def has_quorum(st: State, node: str, res: str) -> bool:
    """The enforced quorum of a resource: every volume's, and always yes with `quorum off` (DK: the
    device-level flag is the enforced value)."""
    r = res_state(st, node, res)
    if r is None or r.get("quorum", "off") == "off":
        return True
    return all(calc_quorum(st, node, res, vol).have for vol in r["disks"])


def no_quorum_reason(st: State, node: str, res: str) -> str:
    """The kernel's one line of "additional info" with SS_NO_QUORUM (DK drbd_state.c is_valid_state)."""
    r = res_state(st, node, res)
    assert r is not None
    q = next(q for q in (calc_quorum(st, node, res, v) for v in sorted(r["disks"])) if not q.have)
    if not q.diskful:
        return "no UpToDate peer with quorum"
    if q.up_to_date + q.present < q.quorum_at:
        return f"{q.up_to_date + q.present} of {q.voters} nodes visible, need {q.quorum_at} for quorum"
    return (
        f"{q.up_to_date} of {q.voters} nodes up_to_date, need {q.min_redundancy_at} for "
        "quorum-minimum-redundancy"
    )


def data_accessible(r: dict[str, Any], vol: str) -> bool:
    """DK drbd_data_accessible: UpToDate data here or on a connected peer."""
    return r["disks"][vol]["state"] == "UpToDate" or any(
        c["state"] == "Connected" and c["peer_disk"].get(vol) == "UpToDate" for c in r["conns"].values()
    )


def io_failure(st: State, node: str, res: str) -> str | None:
    """DK cached_err_io, which wins over suspension: the reason new I/O fails with EIO at once, if any."""
    r = res_state(st, node, res)
    assert r is not None
    if r.get("on_no_quorum") == "io-error" and not has_quorum(st, node, res):
        return "no quorum: I/O error"
    if r.get("on_no_data", "io-error") == "io-error" and not all(data_accessible(r, v) for v in r["disks"]):
        return "IO ERROR: neither local nor remote data"
    return None


def primary(
    st: State, cfg: ResourceConfig, node: str, res: str, now: float, *, force: bool = False
) -> list[str]:
    """`primary`: the refusals DRBD makes, in its order. Returns the peers that must be fenced first.

    - no UpToDate data reachable → SS_NO_UP_TO_DATE_DISK, exit 17 (drbdsetup.c; RA promote "Refusing to be
      promoted to Primary without access to UpToDate data"); `--force` makes local data UpToDate (UG9
      s-first-time-up).
    - a connected Primary peer without allow-two-primaries on both sides → SS_TWO_PRIMARIES (-1), exit 11.
    - quorum lost → SS_NO_QUORUM; a peer neither connected nor known Outdated, with fencing → fence-peer first
      (DK conn_try_outdate_peer from drbd_set_role); if fencing can't outdate it, SS_PRIMARY_NOP (-7).
    """
    settle(st, now)
    r = res_state(st, node, res)
    assert r is not None
    if r["role"] == "Primary":
        return []
    disks = [d for d in r["disks"].values() if not d["client"]]
    local_ok = bool(disks) and all(d["state"] == "UpToDate" for d in disks)
    consistent = bool(disks) and not local_ok and all(d["state"] in ("UpToDate", "Consistent") for d in disks)
    if consistent and r["fencing"] != "dont-care" and not force:
        # DK drbd_set_role: Consistent data may be promoted once fence-peer outdated every unknown peer
        apart = {p for vol in r["disks"] for p in _peers_unknown(st, node, res, vol)}
        unknown = sorted(p for p in apart if not connected(st, res, node, p))
        if unknown:
            return unknown
        for vol, d in r["disks"].items():
            if d["state"] == "Consistent":
                _set_disk(st, node, res, vol, "UpToDate")
        local_ok = True
    if not local_ok and force:
        for vol, d in r["disks"].items():
            if d["state"] in ("Inconsistent", "Outdated", "Consistent"):
                _set_disk(st, node, res, vol, "UpToDate")
                _new_data(st, node, res, vol)
        local_ok = bool(disks) and all(d["state"] == "UpToDate" for d in disks)
    if not local_ok and (
        not any(
            c["state"] == "Connected" and all(s == "UpToDate" for s in c["peer_disk"].values())
            for c in r["conns"].values()
        )
        or disks
    ):
        raise no_up_to_date_disk()
    _check_primaries(st, node, res)
    if not has_quorum(st, node, res):
        raise no_quorum(no_quorum_reason(st, node, res))
    if r["fencing"] != "dont-care" and not force:
        return [
            h.name
            for h in cfg.peers(node)
            if not (h.name in r["conns"] and r["conns"][h.name]["state"] == "Connected")
            and not _peer_outdated(r, h.name)
        ]
    return []


def _check_primaries(st: State, node: str, res: str) -> None:
    """DK check_primaries_distances: every Primary this node reaches, directly or through others, needs
    allow-two-primaries (SS_TWO_PRIMARIES), and must be directly connected unless both are diskless
    (SS_WEAKLY_CONNECTED: the 2PC of the promotion reaches them all)."""
    r = res_state(st, node, res)
    assert r is not None
    for peer in sorted(reachable(st, res, node) - {node}):
        pr = res_state(st, peer, res)
        if pr is None or pr["role"] != "Primary":
            continue
        c = r["conns"].get(peer)
        if c is None or c["state"] != "Connected":
            if not (c or {}).get("allow_two_primaries", False):
                raise two_primaries()
            if _has_local_disk(r) or _has_local_disk(pr):
                raise weakly_connected()
            continue
        if not (c["allow_two_primaries"] and pr["conns"][node]["allow_two_primaries"]):
            raise two_primaries()


def _peer_outdated(r: dict[str, Any], peer: str) -> bool:
    c = r["conns"].get(peer)
    return bool(
        c and c["peer_disk"] and all(s in ("Outdated", "Inconsistent") for s in c["peer_disk"].values())
    )


def become_primary(st: State, node: str, res: str) -> None:
    """Promotion while some peer is not connected starts a new data generation (DK drbd_uuid_new_current):
    two nodes promoted apart have diverged even without writes, and meet as a split-brain. The connected
    peers in sync with it take the new generation too (DRBD sends them the new current UUID)."""
    r = res_state(st, node, res)
    assert r is not None
    if any(c["state"] != "Connected" for c in r["conns"].values()):
        for vol, d in r["disks"].items():
            if d["state"] == "UpToDate":
                md = meta_for(st, node, res, vol)
                old = md["tag"]
                _set_tag(md, f"{node}.{md['gen']}.{secrets.token_hex(3)}")
                _pass_on_new_tag(st, node, res, vol, old)
    r["role"] = "Primary"
    _publish_roles(st, res)


def _pass_on_new_tag(st: State, node: str, res: str, vol: str, old: str) -> None:
    """The connected UpToDate peers that shared generation `old` take this node's new one at once: DRBD
    sends the new current UUID to its peers before the write that waited for it (DK drbd_req.c
    inc_ap_bio_cond holds the write until MAKE_NEW_CUR_UUID is done), so a write lost on the way later
    is out of sync within the generation, not a generation of its own (tandem-17204)."""
    r = res_state(st, node, res)
    assert r is not None
    md = meta_for(st, node, res, vol)
    for peer, c in r["conns"].items():
        pmd = meta_for(st, peer, res, vol)
        if c["state"] == "Connected" and c["peer_disk"].get(vol) == "UpToDate" and pmd["tag"] == old:
            _set_tag(pmd, md["tag"])
            pmd["gen"] = md["gen"]  # with its count: copies in sync show one generation (tandem-17721)
            md["synced"][peer] = pmd["synced"][node] = md["tag"]


def secondary(st: State, node: str, res: str, now: float) -> None:
    """`secondary`: refused while the device is open (SS_DEVICE_IN_USE, -12)."""
    r = res_state(st, node, res)
    assert r is not None
    if r["role"] != "Primary":
        return
    if any(d["open"] or d.get("open_real") for d in r["disks"].values()):
        raise device_in_use()
    r["role"] = "Secondary"
    _publish_roles(st, res)


def _publish_roles(st: State, res: str) -> None:
    for _node, rs in st["nodes"].items():
        r = rs.get(res)
        if r is None:
            continue
        for peer, c in r["conns"].items():
            pr = res_state(st, peer, res)
            c["peer_role"] = pr["role"] if (pr is not None and c["state"] == "Connected") else "Unknown"


# ---------------------------------------------------------------------------------------------------
# Data: writes, resync, split-brain


def _new_data(st: State, node: str, res: str, vol: str) -> None:
    """A new data generation (DRBD's new current UUID): this copy now differs from every peer's."""
    md = meta_for(st, node, res, vol)
    md["gen"] += 1
    _set_tag(md, f"{node}.{md['gen']}.{secrets.token_hex(3)}")


AL_BLOCKS = 64  # blocks the activity log remembers (DRBD's AL: the hot extents, resynced after a crash)


def plan_write(st: State, node: str, res: str, vol: str, now: float, blocks: list[int]) -> dict[str, Any]:
    """DRBD's write path, decided before any data moves: where the write goes (the local disk unless it is
    detached; every connected peer with a disk, a SyncTarget included: protocol C), a new data generation,
    and the blocks marked out of sync for every peer that will not get it (its bitmap). Refused when not
    Primary; `Suspended` while I/O is frozen; an I/O error when no UpToDate data is reachable. A Primary
    whose disk failed (Diskless) keeps writing through an UpToDate peer (UG9 "Disk error handling")."""
    settle(st, now)
    r = res_state(st, node, res)
    if r is None or r["role"] != "Primary":
        raise StateError(0, "not Primary: writes need the Primary role", 1)
    refuse_io(st, node, res)
    peers = _data_peers(st, node, res, vol)
    # the copies being resynced get the write last (the data plane sends in this order): a resync from a
    # third node then never copies a block older than the one this write left on its target
    peers.sort(key=lambda p: r["conns"][p]["peer_disk"].get(vol) != "UpToDate")
    uptodate = r["disks"][vol]["state"] == "UpToDate"
    if not uptodate and not any(r["conns"][p]["peer_disk"].get(vol) == "UpToDate" for p in peers):
        raise io_error(f"local disk {r['disks'][vol]['state']} and no UpToDate peer: I/O error")
    md = knows = meta_for(st, node, res, vol)
    own_disk = has_disk(st, node, res, vol)
    # a Primary being resynced (its new disk) writes its own copy too, as DRBD does, or the blocks the
    # resync had already brought would miss the writes made since (tandem-17403)
    local = uptodate or (own_disk and _resyncing_into(st, res, vol, node))
    if not uptodate:  # the data lives on the peers: continue from their generation
        newest = max((meta_for(st, p, res, vol) for p in peers), key=lambda m: int(m["gen"]))
        md["gen"], md["tag"] = newest["gen"], newest["tag"]
        if not own_disk:
            knows = newest  # a diskless writer knows the generations through its data peer
    apart = [peer for peer in r["conns"] if peer not in peers]
    if _diverges(knows, md["tag"], apart):
        old = md["tag"]
        _new_data(st, node, res, vol)
        _pass_on_new_tag(st, node, res, vol, old)
    else:
        md["gen"] += 1
    for peer in apart:
        if own_disk:  # a node without a disk keeps no bitmap
            _mark_oos(md, peer, blocks)
        if not r["conns"][peer].get("peer_intentional_diskless"):
            for receiver in peers:  # DRBD 9: the receivers learn who missed it (their bitmaps too)
                _mark_oos(meta_for(st, receiver, res, vol), peer, blocks)
                _resync_again(st, f"{res}/{vol}/{receiver}/{peer}", blocks, md["gen"], now)
    if local:
        md["al"] = ([b for b in md.get("al", []) if b not in blocks] + blocks)[-AL_BLOCKS:]
    return {"gen": md["gen"], "tag": md["tag"], "local": local, "peers": peers}


def _diverges(md: dict[str, Any], tag: str, apart: list[str]) -> bool:
    """Whether a write now starts a new data generation (DRBD's new current UUID): once, at the first write
    that may go on after losing contact with a peer that shared this generation (DK drbd_state.c
    lost_contact_to_peer_data sets NEW_CUR_UUID; drbd_req.c inc_ap_bio_cond makes it when I/O is allowed);
    later writes stay in it, and a node that cannot write (no quorum, frozen) makes none (tandem-16806)."""
    return any(md["synced"].get(p) == tag for p in apart)


def refuse_io(st: State, node: str, res: str) -> None:
    """DK may_inc_ap_bio: an I/O error policy that applies fails the request at once, before suspension
    (so a Primary without data gets EIO under the default on-no-data-accessible io-error even while
    on-no-quorum suspend-io has frozen the resource); otherwise a suspended resource holds it. The same
    rules complete a request still pending when its node loses quorum or its data (DRBD man page,
    on-no-quorum io-error: "completes all IO operations with an error")."""
    reason = io_failure(st, node, res)
    if reason is not None:
        raise io_error(reason)
    r = res_state(st, node, res)
    assert r is not None
    if r["suspended"]:
        raise Suspended(r["suspended"])


def _data_peers(st: State, node: str, res: str, vol: str, but: str = "") -> list[str]:
    """The connected peers with a disk (but `but`): where this node's writes go."""
    r = res_state(st, node, res) or {}
    return [
        p
        for p, c in r.get("conns", {}).items()
        if p != but and c["state"] == "Connected" and has_disk(st, p, res, vol)
    ]


def has_disk(st: State, node: str, res: str, vol: str) -> bool:
    d = (res_state(st, node, res) or {}).get("disks", {}).get(vol)
    return d is not None and d["state"] not in ("Diskless", "Failed")


def delivered(st: State, sender: str, receiver: str, res: str, vol: str, gen: int, tag: str) -> None:
    """The receiver has written a replicated write: its copy now holds the sender's generation, and while
    both are in sync (sender UpToDate, replication Established) they share it."""
    rmd, smd = meta_for(st, receiver, res, vol), meta_for(st, sender, res, vol)
    rmd["gen"] = gen
    _set_tag(rmd, tag)
    r = res_state(st, sender, res)
    c = r["conns"].get(receiver) if r is not None else None
    in_sync = c is not None and c["repl"].get(vol, "Established") == "Established"
    if smd["tag"] == tag and in_sync and r is not None and r["disks"][vol]["state"] == "UpToDate":
        smd["synced"][receiver] = rmd["synced"][sender] = tag


def undelivered(st: State, sender: str, receiver: str, res: str, vol: str, blocks: list[int]) -> None:
    """A replicated write that never reached the receiver (connection lost meanwhile): out of sync there.
    Whether the sender's data becomes a new generation is `complete_write`'s to say, once the write's
    fate is known. A node killed before that never diverged: its unacknowledged writes are activity-log
    blocks, resynced from the peer that carried on. A sender without a disk keeps no bitmap: its
    connected peers with data, which hold the write, record that the receiver lacks it."""
    keepers = [sender] if has_disk(st, sender, res, vol) else _data_peers(st, sender, res, vol, receiver)
    for keeper in keepers:
        _mark_oos(meta_for(st, keeper, res, vol), receiver, blocks)


def complete_write(st: State, node: str, res: str, vol: str, missed: list[str]) -> None:
    """A write completes only if DRBD would complete it now (`refuse_io`: a quorum or data lost meanwhile
    fails it, frozen I/O holds it). Completed without peers that shared this generation and are still
    away, it makes the data a new generation (DRBD's new current UUID: DRBD makes it at the next write
    that may go on, as the guest writes on; while fence-peer froze I/O, at the resume instead). A write
    that fails makes none (tandem-23005: the two links of an isolated Primary dropped one after the other,
    the first while its quorum still held; the write then failed without quorum, and a new generation
    made at the first drop forked its data from the majority's: a split brain when it came back)."""
    refuse_io(st, node, res)
    r = res_state(st, node, res)
    conns = r["conns"] if r is not None else {}
    away = [p for p in missed if conns.get(p, {}).get("state") != "Connected"]
    md = meta_for(st, node, res, vol)
    if away and _diverges(md, md["tag"], away):
        _new_data(st, node, res, vol)


def write(st: State, node: str, res: str, vol: str, now: float, count: int = 1) -> dict[str, Any]:
    """`count` bookkeeping writes (`drbd-emu write` without a data plane), each on its own block, delivered at
    once to the peers `plan_write` chose."""
    plan: dict[str, Any] = {}
    for _ in range(count):
        block = meta_for(st, node, res, vol)["gen"] % BLOCKS
        plan = plan_write(st, node, res, vol, now, [block])
        for peer in plan["peers"]:
            delivered(st, node, peer, res, vol, plan["gen"], plan["tag"])
    return {"gen": plan["gen"], "tag": plan["tag"]}


def plan_read(st: State, node: str, res: str, vol: str, now: float) -> str | None:
    """Where a read is served: None for the local disk, else the connected peer with UpToDate data (a
    Diskless or Failed disk, or an Inconsistent one being resynced: DRBD 9 reads through the peer)."""
    settle(st, now)
    r = res_state(st, node, res)
    if r is None:
        raise io_error(f"{res} is not up")
    if r["role"] == "Primary":
        refuse_io(st, node, res)
    elif r["suspended"]:
        raise Suspended(r["suspended"])
    state = r["disks"][vol]["state"]
    if state == "UpToDate":
        return None
    for peer, c in r["conns"].items():
        if c["state"] == "Connected" and c["peer_disk"].get(vol) == "UpToDate":
            return str(peer)
    if state in ("Outdated", "Consistent", "Inconsistent"):
        return None  # a Secondary may read its own (stale) data
    raise io_error(f"local disk {state} and no UpToDate peer: I/O error")


def _handshake(st: State, res: str, a: str, b: str, now: float) -> None:
    """The connect handshake per volume (UG9 "Split brain", DK drbd_uuid_compare, simplified to write tags):

    - same data (no write on either side since the last sync): no resync; Outdated or Consistent becomes
      UpToDate.
    - only one side wrote, or the other is Inconsistent: resync from it (SyncSource → SyncTarget, target
    Inconsistent).
    - same generation, but blocks one side wrote never reached the other (a crashed Primary's activity log,
      a write in flight when the link broke): resync them from that side.
    - both began a new generation apart (wrote, or resumed I/O after fence-peer, without the other):
      split-brain. Both connections go StandAlone ("Split-Brain detected,
      dropping connection!"; after-sb-*pri disconnect, the default). `connect --discard-my-data` on one side
      resolves it: that side becomes SyncTarget and its writes are lost (counted in `lost`).
    - a Primary with Consistent or UpToDate data can not become SyncTarget: the connection is dropped.
    """
    ra, rb = res_state(st, a, res), res_state(st, b, res)
    assert ra is not None and rb is not None
    for vol in ra["disks"]:
        if vol not in rb["disks"]:
            continue
        da, db = ra["disks"][vol], rb["disks"][vol]
        if "Diskless" in (da["state"], db["state"]) or "Failed" in (da["state"], db["state"]):
            continue
        ma, mb = meta_for(st, a, res, vol), meta_for(st, b, res, vol)
        for md, peer in ((ma, b), (mb, a)):  # each sees the other's disk again: no stale knowledge kept
            md["peers_outdated"] = [p for p in md.get("peers_outdated", []) if p != peer]
        same = ma["tag"] == mb["tag"]  # one generation (e.g. both synced from a third node): no new data
        # new: written since they last shared data, unless the other has moved on from it (its history
        # holds this generation: DK uuid_compare finds our current UUID among the peer's history UUIDs)
        a_new = not same and ma["tag"] != ma["synced"].get(b, "") and ma["tag"] not in mb.get("history", [])
        b_new = not same and mb["tag"] != mb["synced"].get(a, "") and mb["tag"] not in ma.get("history", [])
        a_disc = ra["conns"][b].pop("discard_my_data", False)
        b_disc = rb["conns"][a].pop("discard_my_data", False)
        source: str | None = None
        if da["state"] == "Inconsistent" and db["state"] == "Inconsistent":
            continue
        if st["faults"].get("no-resync") and a_new != b_new:  # LINBIT/drbd#145, on purpose
            _log(st, a, res, "uuid_compare()=no-sync by rule=lost-quorum (fault no-resync)")
            for x, dx in ((a, da), (b, db)):
                if dx["state"] == "Outdated":
                    _set_disk(st, x, res, vol, "UpToDate")
            continue
        if _second_source(st, res, vol, da, (b, db)) or _second_source(st, res, vol, db, (a, da)):
            continue
        if db["state"] == "Inconsistent" or b_disc:
            source = a
        elif da["state"] == "Inconsistent" or a_disc:
            source = b
        elif a_new and b_new:
            for x, y in ((a, b), (b, a)):
                rx = res_state(st, x, res)
                assert rx is not None
                rx["conns"][y]["want"] = False
                rx["conns"][y]["state"] = "StandAlone"
                rx["conns"][y]["split_brain"] = True
            _log(st, a, res, "Split-Brain detected, dropping connection!")
            _log(st, b, res, "Split-Brain detected, dropping connection!")
            return
        elif a_new:
            source = a
        elif b_new:
            source = b
        elif ma.get("al_dirty") or mb.get("al_dirty") or ma["oos"].get(b) or mb["oos"].get(a):
            # same generation, but blocks one side wrote never reached the other (a crashed Primary's
            # activity log, a write in flight when the link broke): they go to the peer
            source = a if ma.get("al_dirty") or ma["oos"].get(b) else b
        else:
            for x, dx in ((a, da), (b, db)):
                if dx["state"] in ("Outdated", "Consistent"):
                    _set_disk(st, x, res, vol, "UpToDate")
            continue
        target = b if source == a else a
        if (da if source == a else db)["state"] == "Consistent":  # its peer is older: it is the newest
            _set_disk(st, source, res, vol, "UpToDate")
        rt = res_state(st, target, res)
        assert rt is not None
        # DK drbd_sync_handshake: only a Primary with data of its own (Consistent or better) refuses; one
        # whose new disk is Inconsistent is resynced while it runs (tandem-17403)
        if rt["role"] == "Primary" and rt["disks"][vol]["state"] in ("Consistent", "UpToDate"):
            for x, y in ((a, b), (b, a)):
                rx = res_state(st, x, res)
                assert rx is not None
                rx["conns"][y]["want"] = False
                rx["conns"][y]["state"] = "StandAlone"
            _log(st, target, res, "I shall become SyncTarget, but I am primary!")
            return
        mt, ms = meta_for(st, target, res, vol), meta_for(st, source, res, vol)
        mt["lost"] += len(mt["oos"].get(source, []))  # the target's own writes, overwritten (discarded)
        full = rt["disks"][vol]["state"] == "Inconsistent" and not mt["synced"].get(source)
        blocks = sorted(
            set(ms["oos"].get(target, []))
            | set(mt["oos"].get(source, []))
            | set(ms.pop("al_dirty", []))
            | set(mt.pop("al_dirty", []))
        )
        _set_disk(st, target, res, vol, "Inconsistent")
        waits = _resyncing_into(st, res, vol, target)  # a second source waits (tandem-17008)
        _start_resync(st, f"{res}/{vol}/{source}/{target}", now, None if full else blocks, waiting=waits)


def _second_source(
    st: State, res: str, vol: str, source_disk: dict[str, Any], target: tuple[str, dict[str, Any]]
) -> bool:
    """An Inconsistent node already SyncTarget of one peer takes no older data from another: DRBD resyncs
    a device from one source at a time (the others wait, PausedSyncT), and an Outdated or Consistent peer
    would write blocks older than the ones the running resync brought (tandem-16809: a replaced disk, a
    returning Outdated node)."""
    t, dt = target
    return (
        dt["state"] == "Inconsistent"
        and source_disk["state"] != "UpToDate"
        and _resyncing_into(st, res, vol, t)
    )


def _resyncing_into(st: State, res: str, vol: str, target: str) -> bool:
    """Whether `target` is SyncTarget of a peer now (a resync that is not itself waiting)."""
    return any(
        k.startswith(f"{res}/{vol}/") and k.endswith(f"/{target}") and not rs.get("waiting")
        for k, rs in st.get("resyncs", {}).items()
    )


def _start_resync(st: State, key: str, now: float, blocks: list[int] | None, waiting: bool = False) -> None:
    """A resync of `blocks` (None: the whole device). When the source runs a data plane, its kernel copies
    the blocks (`copied_kib`) and the resync ends only when they are all on the target. A `waiting` one
    (a second source while the target is SyncTarget of another: PausedSyncS/PausedSyncT, DK
    resync_susp_other_c) neither progresses nor copies until that one is over (`_resolve_waiting`)."""
    total = DEFAULT_SIZE_KIB if blocks is None else max(len(blocks), 1) * KIB_PER_WRITE
    source = key.split("/")[2]
    rs: dict[str, Any] = {"start": now, "total_kib": total, "blocks": blocks}
    if waiting:
        st.setdefault("resyncs", {})[key] = {**rs, "waiting": True}
        return
    if st.get("dataplane", {}).get(source):
        rs["copied_kib"] = 0
    st.setdefault("resyncs", {})[key] = rs
    log = st.setdefault("resync_log", [])  # every resync started, however short (for the lab's reports)
    log.append({"key": key, "start": now, "total_kib": total})
    del log[:-50]


def resync_blocks(rs: dict[str, Any]) -> list[int]:
    """The blocks a resync copies, in order: those out of sync at its start, then `_resync_again`'s."""
    blocks: list[int] | None = rs.get("blocks")
    return (list(range(BLOCKS)) if blocks is None else blocks) + [b for b, _, _ in rs.get("again", [])]


def _resync_again(st: State, key: str, blocks: list[int], gen: int, now: float) -> None:
    """A write the resync's source receives for blocks its target misses (the target cannot reach the
    writer): copied again after the source has it, whether or not the resync copied them already (CI on
    92cadab, three data nodes: the returning node met its source before the Primary; the source's copy of a
    block went over, the Primary wrote it again, and the target ended UpToDate without that write). DRBD 9
    does not finish such a resync as its source's equal either (a source connected to a Primary the target
    cannot reach is unstable: DK UNSTABLE_RESYNC). Each entry: block, generation, when planned."""
    rs = st.get("resyncs", {}).get(key)
    if rs is None or rs.get("waiting") or "copied_kib" not in rs:
        return
    rs.setdefault("again", []).extend([b, gen, now] for b in blocks)
    rs["total_kib"] += KIB_PER_WRITE * len(blocks)


def resync_ready(st: State, key: str, rs: dict[str, Any], count: int, now: float) -> int:
    """How many of the resync's `count` blocks (`resync_blocks`' order) may be copied now: all up to the
    first of `_resync_again`'s whose write the source does not hold yet, unless DRBD would have dropped the
    connection that carried it by now (net.STALE)."""
    again = rs.get("again", [])
    res, vol, source, _ = key.split("/")
    have = int(meta_for(st, source, res, vol)["gen"])
    pending = (i for i, (_, gen, at) in enumerate(again) if have < int(gen) and now - float(at) < net.STALE)
    return count - len(again) + next(pending, len(again))


def _start_pending_resyncs(st: State, now: float) -> None:
    """While connected, an UpToDate disk facing an Inconsistent one resyncs it (e.g. after `primary --force`
    on a fresh pair: UG9 s-initial-full-sync, or a new disk attached under a diskless Primary: DK
    drbd_sync_handshake refuses SyncTarget only to a Primary with Consistent or better data; tandem-18219's
    replaced disk under a Primary never synced)."""
    for a, rs in st["nodes"].items():
        for res, ra in rs.items():
            for b in ra["conns"]:
                rb = res_state(st, b, res)
                if rb is None or not connected(st, res, a, b):
                    continue
                for vol, da in ra["disks"].items():
                    db = rb["disks"].get(vol)
                    running = any(
                        k.startswith(f"{res}/{vol}/") and b in k.split("/")[2:] for k in st.get("resyncs", {})
                    )
                    if db is None or running or da["state"] != "UpToDate" or db["state"] != "Inconsistent":
                        continue
                    _start_resync(st, f"{res}/{vol}/{a}/{b}", now, None)


def resync_rate(st: State, res: str) -> float:
    slow = st["faults"].get(f"slow-resync/{res}") or st["faults"].get("slow-resync")
    return float(slow if slow else st.get("resync_kib_s", DEFAULT_RESYNC_KIB_S))


def _progress_resyncs(st: State, now: float) -> None:
    """Time-based progress at `resync_kib_s` (fault `slow-resync` lowers it). At the end the target holds the
    source's data, becomes UpToDate and calls after-resync-target, and the source calls unfence-peer (DK
    drbd_should_unfence)."""
    for key, rs in list(st.get("resyncs", {}).items()):
        res, vol, source, target = key.split("/")
        if not (connected(st, res, source, target)):
            del st["resyncs"][key]
            continue
        if rs.get("waiting"):
            _resolve_waiting(st, key, now)
            continue
        rate = resync_rate(st, res)
        done = min(rs["total_kib"], (now - rs["start"]) * rate)
        rs["done_kib"] = done
        if done < rs["total_kib"] or rs.get("copied_kib", rs["total_kib"]) < rs["total_kib"]:
            continue
        del st["resyncs"][key]
        ms, mt = meta_for(st, source, res, vol), meta_for(st, target, res, vol)
        mt["gen"], mt["tag"], mt["history"] = ms["gen"], ms["tag"], list(ms.get("history", []))  # its UUIDs
        ms["synced"][target] = mt["synced"][source] = ms["tag"]
        synced = set(resync_blocks(rs))
        for other in st.get("meta", {}):  # the target now shares the generation of every node that has it
            node_of, res_of, vol_of = other.split("/")
            om = st["meta"][other]
            if res_of == res and vol_of == vol and node_of not in (source, target) and om["tag"] == ms["tag"]:
                om["synced"][target] = mt["synced"][node_of] = ms["tag"]
                # and their bits for it are cleared where they are in sync with the source (DK
                # P_PEERS_IN_SYNC): tandem-16809 kept them for good
                _clear_oos(om, target, synced - set(om["oos"].get(source, [])))
        for md, peer in ((ms, target), (mt, source)):
            _clear_oos(md, peer, synced)
        # the target now holds the source's data: what a third node lacks of it is what it lacks of the
        # source's (a copy resynced in full knew nothing of a node that was away)
        mt["oos"] = {p: list(b) for p, b in ms["oos"].items() if p != target} | (
            {source: mt["oos"][source]} if source in mt["oos"] else {}
        )
        _set_disk(st, target, res, vol, "UpToDate")
        queue_handler(st, target, res, "after-resync-target", source)  # DK: the target's helper, at the end
        _maybe_unfence(st, source, res, target)


def _resolve_waiting(st: State, key: str, now: float) -> None:
    """A waiting resync, once its target is SyncTarget of nobody else: nothing to do if the target now
    shares the source's data (the finished resync brought it; DK P_PEERS_IN_SYNC clears their bits); the
    pair decided again if the target is UpToDate with other data (the source may be the older one); else
    it runs, in full: the target's bits from an aborted resync are not all in this source's bitmap (the
    DRBD test "resync source switch": the paused source takes over when the first one is gone)."""
    res, vol, source, target = key.split("/")
    if _resyncing_into(st, res, vol, target):
        return
    del st["resyncs"][key]
    ms, mt = meta_for(st, source, res, vol), meta_for(st, target, res, vol)
    rt = res_state(st, target, res)
    assert rt is not None
    if rt["disks"][vol]["state"] == "UpToDate" and mt["tag"] == ms["tag"]:
        ms["synced"][target] = mt["synced"][source] = ms["tag"]
        ms["oos"].pop(target, None)
        mt["oos"].pop(source, None)
        return
    if rt["disks"][vol]["state"] == "UpToDate":
        _handshake(st, res, source, target, now)
        return
    _set_disk(st, target, res, vol, "Inconsistent")
    _start_resync(st, key, now, None)


def resync_suspended(st: State, res: str, vol: str, node: str, peer: str) -> str:
    """`resync-suspended` of a peer device: a waiting resync is suspended by a dependency on the target
    (DK resync_susp_other_c is shown as "dependency"), by the peer on the source."""
    if st.get("resyncs", {}).get(f"{res}/{vol}/{peer}/{node}", {}).get("waiting"):
        return "dependency"
    if st.get("resyncs", {}).get(f"{res}/{vol}/{node}/{peer}", {}).get("waiting"):
        return "peer"
    return "user" if _paused(st, res) else "no"


def _maybe_unfence(st: State, node: str, res: str, peer: str) -> None:
    """DK drbd_state.c drbd_should_unfence: a peer disk just became UpToDate and, on that connection, every
    volume is UpToDate on both sides → call unfence-peer (if fencing is configured)."""
    r = res_state(st, node, res)
    pr = res_state(st, peer, res)
    if r is None or pr is None or r["fencing"] == "dont-care":
        return
    if all(d["state"] == "UpToDate" for d in r["disks"].values() if not d["client"]) and all(
        d["state"] == "UpToDate" for d in pr["disks"].values() if not d["client"]
    ):
        queue_handler(st, node, res, "unfence-peer", peer)


# ---------------------------------------------------------------------------------------------------
# Handlers


def queue_handler(st: State, node: str, res: str, handler: str, peer: str | None) -> None:
    """Queue a helper call for the node's emulator kernel (it runs inside the node's namespaces)."""
    r = res_state(st, node, res)
    if r is None or not r["handlers"].get(handler):
        return
    if any(
        j["node"] == node and j["res"] == res and j["handler"] == handler and j["peer"] == peer
        for j in st["jobs"]
    ):
        return
    st["jobs"].append(
        {"id": secrets.token_hex(4), "node": node, "res": res, "handler": handler, "peer": peer}
    )
    if handler == "fence-peer" and r["fencing"] == "resource-and-stonith" and "fencing" not in r["suspended"]:
        r["suspended"].append("fencing")  # DK: resource-and-stonith freezes I/O while the helper runs


def apply_fence_result(st: State, node: str, res: str, peer: str, rc: int) -> None:
    """DK drbd_nl.c conn_try_outdate_peer / UG84 "fence-peer handler exit codes":
    3 peer Inconsistent; 4 peer Outdated; 5 peer Outdated only if local UpToDate; 6 outdate myself;
    7 peer STONITHed (Outdated). Anything else: "helper broken", I/O stays frozen (resource-and-stonith).
    If the connection came back meanwhile, the result is ignored."""
    r = res_state(st, node, res)
    if r is None:
        return
    c = r["conns"].get(peer)
    if c is None:
        return
    if c["state"] == "Connected":
        _unsuspend(r)
        return
    local_up = all(d["state"] == "UpToDate" for d in r["disks"].values() if not d["client"])
    if rc == 3:
        c["peer_disk"] = {v: "Inconsistent" for v in r["disks"]}
    elif rc in (4, 7) or (rc == 5 and local_up):
        c["peer_disk"] = {v: "Outdated" for v in r["disks"]}
        _peer_outdated_in_md(st, node, res, peer, True)
    elif rc == 6:
        for vol in r["disks"]:
            _set_disk(st, node, res, vol, "Outdated")
    if rc in (3, 4, 5, 6, 7):
        c["fenced"] = rc != 6
        _new_data_after_fencing(st, node, res)
        _unsuspend(r)
    else:
        _log(st, node, res, f"fence-peer helper broken, returned {rc}")


def resume_io(st: State, node: str, res: str) -> None:
    """`resume-io` (DK drbd_adm_resume_io): I/O frozen for fencing or for lack of data resumes (a quorum
    freeze stays until quorum returns); a Primary that was frozen for fencing goes on with a new data
    generation of its own (NEW_CUR_UUID), as when fence-peer succeeds."""
    r = res_state(st, node, res)
    assert r is not None
    _new_data_after_fencing(st, node, res)
    r["suspended"] = [s for s in r["suspended"] if s == "quorum"]


def _new_data_after_fencing(st: State, node: str, res: str) -> None:
    """A Primary whose I/O was frozen for fencing goes on, when it resumes, on data of its own: a new
    generation on each UpToDate volume (DK NEW_CUR_UUID)."""
    r = res_state(st, node, res)
    assert r is not None
    if "fencing" in r["suspended"] and r["role"] == "Primary":
        for vol, d in r["disks"].items():
            if d["state"] == "UpToDate":
                _new_data(st, node, res, vol)


def _resume_when_reconnected(st: State, node: str, res: str) -> None:
    """DK "case2: the connection was established again": I/O frozen for fencing resumes (the held requests
    are sent) once every connection is back, even if fence-peer failed or still runs (its result is then
    ignored); the peer was never outdated, so no new data generation."""
    r = res_state(st, node, res)
    if r is not None and all(c["state"] == "Connected" for c in r["conns"].values()):
        _unsuspend(r)


def _unsuspend(r: dict[str, Any]) -> None:
    if "fencing" in r["suspended"]:
        r["suspended"].remove("fencing")


def _log(st: State, node: str, res: str, msg: str) -> None:
    """The kernel log's line for `node` (the last 200 kept; `log_n` counts every line, for the node's
    emulator kernel that prints its own: `new_log_lines`)."""
    st.setdefault("log", []).append(f"{node} {res}: {msg}")
    st["log_n"] = st.get("log_n", 0) + 1
    del st["log"][:-200]


def new_log_lines(st: State, node: str, printed: int) -> tuple[list[str], int]:
    """`node`'s log lines written since `printed` lines in all, and the count to pass next time."""
    log: list[str] = st.get("log", [])
    total: int = st.get("log_n", 0)
    fresh = log[max(0, len(log) - (total - printed)) :]
    return [line for line in fresh if line.startswith(f"{node} ")], total


# ---------------------------------------------------------------------------------------------------
# settle: derived connection states → transitions


def settle(st: State, now: float) -> None:
    """Bring every resource's view up to date with the derived connection states (module doc)."""
    for node, rs in st["nodes"].items():
        for res, r in rs.items():
            for peer, c in r["conns"].items():
                is_conn = connected(st, res, node, peer)
                was = c["state"] == "Connected"
                if is_conn and not was:
                    c["state"] = "Connected"
                    c["seen"] = True
                    c["graceful"] = False
                    c["fenced_pending_unfence"] = c.pop("fenced", False)
                    pr = res_state(st, peer, res)
                    assert pr is not None
                    pc = pr["conns"][node]
                    if pc["state"] == "Connected":  # the peer saw it first: handshake done there
                        continue
                    pc["state"] = "Connected"
                    pc["seen"] = True
                    pc["fenced_pending_unfence"] = pc.pop("fenced", False)
                    pc["graceful"] = False
                    # one id per established connection: the data plane applies a peer's write only on
                    # the connection it was sent on (replica.py)
                    c["session"] = pc["session"] = secrets.token_hex(4)
                    _handshake(st, res, node, peer, now)
                    for x in (node, peer):
                        _resume_when_reconnected(st, x, res)
                elif was and not is_conn:
                    c["state"] = "Connecting" if c["want"] else "StandAlone"
                    why = link_down(st, res, node, peer, now) or "probes fresh at the settle's time"
                    _log(st, node, res, f"conn( Connected -> {c['state']} ) {peer}: {why}")
                    _on_disconnect(st, node, res, peer, now)
                elif not is_conn:
                    c["state"] = "Connecting" if c["want"] else "StandAlone"
    _start_pending_resyncs(st, now)
    _progress_resyncs(st, now)
    _detach_failed(st, now)
    for node, rs in st["nodes"].items():
        for res in rs:
            _end_reconcile_hold(st, node, res, now)
            _outdate_if_primary_far_away(st, node, res)
            _catch_up_outdated(st, node, res, now)
    for node, rs in st["nodes"].items():
        for res in rs:
            _refresh_view(st, node, res)
    # Diskful nodes first: a node without a disk takes its quorum from theirs.
    order = sorted(
        ((node, res) for node, rs in st["nodes"].items() for res in rs),
        key=lambda nr: not _has_local_disk(st["nodes"][nr[0]][nr[1]]),
    )
    for node, res in order:
        r = st["nodes"][node][res]
        r["quorate"] = has_quorum(st, node, res) if r.get("quorum", "off") != "off" else True
        _suspend(r, "quorum", r.get("on_no_quorum") == "suspend-io" and not r["quorate"])
        lost_data = r["role"] == "Primary" and not all(data_accessible(r, v) for v in r["disks"])
        if r.get("on_no_data") == "suspend-io":
            _suspend(r, "no-data", lost_data)
    for res in {res for rs in st["nodes"].values() for res in rs}:
        _publish_roles(st, res)


SUSPEND_ORDER = ("user", "no-data", "fencing", "quorum")  # drbdsetup.c susp_str


def _suspend(r: dict[str, Any], reason: str, on: bool) -> None:
    """DK: susp_quorum follows quorum whatever the role; susp_nod a Primary's data access. Kept in the
    order drbdsetup prints them."""
    reasons = (set(r["suspended"]) | {reason}) if on else (set(r["suspended"]) - {reason})
    r["suspended"] = [s for s in SUSPEND_ORDER if s in reasons]


def _has_local_disk(r: dict[str, Any]) -> bool:
    return any(d["state"] not in ("Diskless", "Failed") for d in r["disks"].values())


def _on_disconnect(st: State, node: str, res: str, peer: str, now: float) -> None:
    """Connection lost. A Primary with fencing calls fence-peer unless the peer left gracefully (it then
    outdated itself); replication stops; the peer's disk becomes DUnknown (DK conn_try_outdate_peer);
    the disconnected handler runs for every closed connection (DK conn_disconnect)."""
    r = res_state(st, node, res)
    assert r is not None
    c = r["conns"][peer]
    _hold_after_primary_loss(st, r, c, now)
    c["repl"] = {}
    graceful = c.get("graceful", False)
    if not graceful:
        c["peer_disk"] = {}
    c["peer_role"] = "Unknown"
    local_ok = all(d["state"] in ("UpToDate", "Consistent") for d in r["disks"].values() if not d["client"])
    if r["role"] == "Primary" and r["fencing"] != "dont-care" and local_ok and not graceful:
        queue_handler(st, node, res, "fence-peer", peer)
    queue_handler(st, node, res, "disconnected", peer)  # DK drbd_receiver.c conn_disconnect: every close


def reachable(st: State, res: str, node: str) -> set[str]:
    """The nodes `node` reaches over connected links, directly or through others (its partition)."""
    seen, todo = {node}, [node]
    while todo:
        a = todo.pop()
        for b in (res_state(st, a, res) or {}).get("conns", {}):
            if b not in seen and connected(st, res, a, b):
                seen.add(b)
                todo.append(b)
    return seen


def _primary_far_away(st: State, node: str, res: str) -> bool:
    """A Primary this node reaches only through other nodes (its writes do not come here)."""
    r = res_state(st, node, res)
    assert r is not None
    if sum(res in rs for rs in st["nodes"].values()) <= 2:
        return False  # with one peer at most, whatever this node reaches it reaches directly
    far = reachable(st, res, node) - {node} - {p for p in r["conns"] if connected(st, res, node, p)}
    return any((res_state(st, p, res) or {}).get("role") == "Primary" for p in far)


def _outdate_if_primary_far_away(st: State, node: str, res: str) -> None:
    """DK drbd_state.c twopc_after_lost_peer: a node that reaches a Primary only through other nodes outdates
    itself (the Primary's writes no longer reach it), so a tiebreaker that keeps quorum on both sides of a
    cut between two data nodes never lets the one without the Primary promote."""
    r = res_state(st, node, res)
    assert r is not None
    if r["role"] == "Primary" or not _primary_far_away(st, node, res):
        return
    for vol, d in r["disks"].items():
        if d["state"] in ("UpToDate", "Consistent"):
            _set_disk(st, node, res, vol, "Outdated")
            _log(st, node, res, f"volume {vol}: a Primary is reachable only through peers: Outdated")


def _catch_up_outdated(st: State, node: str, res: str, now: float) -> None:
    """An Outdated data node connected to an UpToDate one, once no Primary is out of its direct reach, takes
    the writes it missed from that peer's bitmap (a resync of those blocks), or nothing when it missed none
    (DK: the reconcile after the Primary reconnects; a stale copy never returns to UpToDate unsynced)."""
    r = res_state(st, node, res)
    assert r is not None
    if _primary_far_away(st, node, res):
        return
    for vol, d in r["disks"].items():
        if d["state"] != "Outdated" or any(k.startswith(f"{res}/{vol}/") for k in st.get("resyncs", {})):
            continue
        md = meta_for(st, node, res, vol)
        for peer, c in sorted(r["conns"].items()):
            pd = (res_state(st, peer, res) or {}).get("disks", {}).get(vol)
            if c["state"] != "Connected" or pd is None or pd["state"] != "UpToDate":
                continue
            pmd = meta_for(st, peer, res, vol)
            blocks = sorted(set(pmd["oos"].get(node, [])) | set(md["oos"].get(peer, [])))
            if pmd["tag"] == md["tag"] and not blocks:
                _set_disk(st, node, res, vol, "UpToDate")
            else:
                _set_disk(st, node, res, vol, "Inconsistent")
                _start_resync(st, f"{res}/{vol}/{peer}/{node}", now, blocks)
            break


KERNEL_9 = "9.2.12"
RECONCILE_SECONDS = 1.0


def reconciles(st: State) -> bool:
    """Whether the emulated kernel holds a primary-loss survivor at Consistent (9.2.19 and 9.3.3 on)."""
    major, minor, patch = (int(x) for x in str(st.get("kernel", KERNEL_9)).split("."))
    return (major, minor, patch) >= (9, 2, 19)


def _hold_after_primary_loss(st: State, r: dict[str, Any], c: dict[str, Any], now: float) -> None:
    """DK 9.2.19 drbd_state.c sanitize_state: a Secondary that loses a Primary (not gracefully) while no
    other Primary is connected drops from UpToDate to Consistent until it has reconciled with the
    survivors (the lost-peer two-phase commit and a resync of what it missed), so a stale node can not
    promote first. Not when the lost Primary had no good data of its own (sole_authority_...). The
    reconcile takes `reconcile_s` (RECONCILE_SECONDS) here; the survivor then returns to UpToDate."""
    lost_primary = c["peer_role"] == "Primary" and not c.get("graceful", False)
    capable = any(s not in ("Outdated", "Inconsistent", "Diskless") for s in c["peer_disk"].values())
    others = any(
        o is not c and o["state"] == "Connected" and o["peer_role"] == "Primary" for o in r["conns"].values()
    )
    if not (reconciles(st) and lost_primary and capable and not others and r["role"] == "Secondary"):
        return
    held = [d for d in r["disks"].values() if d["state"] == "UpToDate"]
    for d in held:
        d["state"] = "Consistent"  # not in the meta data: it is still the node's last UpToDate generation
    if held:
        r["reconcile_until"] = now + float(st.get("reconcile_s", RECONCILE_SECONDS))


def _end_reconcile_hold(st: State, node: str, res: str, now: float) -> None:
    r = res_state(st, node, res)
    assert r is not None
    until = r.get("reconcile_until")
    if until is None or now < until:
        return
    del r["reconcile_until"]
    for vol, d in r["disks"].items():
        if d["state"] == "Consistent" and meta_for(st, node, res, vol)["disk"] == "UpToDate":
            d["state"] = "UpToDate"


def _refresh_view(st: State, node: str, res: str) -> None:
    """Per-connection replication and peer-disk states as `drbdsetup status` shows them."""
    r = res_state(st, node, res)
    assert r is not None
    for peer, c in r["conns"].items():
        pr = res_state(st, peer, res)
        if c["state"] != "Connected" or pr is None:
            c["repl"] = {}
            continue
        before = dict(c["peer_disk"])
        for vol in r["disks"]:
            pd = pr["disks"].get(vol)
            if pd is None:
                continue
            c["peer_disk"][vol] = pd["state"]
            key_s, key_t = f"{res}/{vol}/{node}/{peer}", f"{res}/{vol}/{peer}/{node}"
            paused = resync_suspended(st, res, vol, node, peer) != "no"
            if key_s in st.get("resyncs", {}):
                c["repl"][vol] = "PausedSyncS" if paused else "SyncSource"
            elif key_t in st.get("resyncs", {}):
                c["repl"][vol] = "PausedSyncT" if paused else "SyncTarget"
            else:
                c["repl"][vol] = "Established"
        c["peer_client"] = {v: pd["client"] for v, pd in pr["disks"].items()}
        if any(before.get(v) != "UpToDate" for v in c["peer_disk"]):
            _maybe_unfence(st, node, res, peer)


def _paused(st: State, res: str) -> bool:
    return bool(st["faults"].get(f"pause-sync/{res}"))


def resync_done(st: State, res: str, vol: str, a: str, b: str) -> float | None:
    for key in (f"{res}/{vol}/{a}/{b}", f"{res}/{vol}/{b}/{a}"):
        rs = st.get("resyncs", {}).get(key)
        if rs is not None:
            return 100.0 * float(rs.get("done_kib", 0.0)) / float(rs["total_kib"])
    return None


def fail_disk(st: State, node: str, res: str, vol: str, t: float) -> None:
    """Fault: the backing disk fails. DRBD passes Failed then detaches to Diskless (on-io-error detach, the
    default); a Primary keeps serving I/O from its peer (UG9 "Disk error handling")."""
    st["faults"][f"disk/{node}/{res}/{vol}"] = True
    r = res_state(st, node, res)
    if r is not None and vol in r["disks"]:
        r["disks"][vol]["state"] = "Failed"
        r["disks"][vol]["failed_at"] = t
        meta_for(st, node, res, vol)["disk"] = "Inconsistent"
        _log(st, node, res, f"disk {vol} Failed")


FAILED_SECONDS = 1.0


def _detach_failed(st: State, t: float) -> None:
    """Second half of a disk failure: Failed → Diskless once the detach ran (FAILED_SECONDS later)."""
    for rs in st["nodes"].values():
        for r in rs.values():
            for d in r["disks"].values():
                if d["state"] == "Failed" and t - d.get("failed_at", 0.0) >= FAILED_SECONDS:
                    d["state"] = "Diskless"


def now() -> float:
    return time.time()
