"""The emulated DRBD "kernel": shared state of every node's resources and DRBD's rules over it.

State is one JSON document (see `Store`) shared by all lab nodes through a directory under the host's /tmp and
guarded by flock, so commands issued at once on two nodes see one consistent cluster. Every rule here is
a plain
function over that document and a clock value (`now`), so unit tests drive them without processes.

Connection states are derived, not stored: two nodes are Connected when both have the resource up, both
want the
connection (not StandAlone), and the link between them is not cut (fault). `settle()` compares the
derived state
with the last one it saw and runs DRBD's transitions: the handshake on connect (resync, Outdated peers,
split-brain) and the disconnect path (fence-peer, suspended I/O). Rule sources are cited at each function.
"""

from __future__ import annotations

import fcntl
import json
import os
import secrets
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from lab.drbd_emu import net
from lab.drbd_emu.config import ResourceConfig

State = dict[str, Any]

DEFAULT_DIR = "/tmp/tandem-drbd-emu"
DEFAULT_RESYNC_KIB_S = 256 * 1024
DEFAULT_SIZE_KIB = 64 * 1024
KIB_PER_WRITE = 4  # one write dirties one 4 KiB bitmap block


class StateError(Exception):
    """A refused state change: DRBD's code, message and drbdsetup's exit code (drbdsetup.c
    print_config_error)."""

    def __init__(self, code: int, message: str, exit_code: int = 11) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.exit_code = exit_code


# drbd_strings.c set_st_err / drbd.h enum drbd_state_rv; exit codes from drbdsetup.c print_config_error
def two_primaries() -> StateError:
    return StateError(-1, "Multiple primaries not allowed by config")


def no_up_to_date_disk() -> StateError:
    return StateError(-2, "Need access to UpToDate data", 17)


def primary_nop() -> StateError:
    return StateError(-7, "Refusing to be Primary while peer is not outdated")


def device_in_use() -> StateError:
    return StateError(-12, "Device is held open by someone")


def no_quorum() -> StateError:
    return StateError(-25, "No quorum")


def emu_dir() -> Path:
    return Path(os.environ.get("TANDEM_EMU_DIR", DEFAULT_DIR))


def new_state(mode: str = "9") -> State:
    return {
        "mode": mode,
        "resync_kib_s": DEFAULT_RESYNC_KIB_S,
        "nodes": {},
        "links": {},
        "faults": {},
        "jobs": [],
    }


class Store:
    """The state file and its lock. `with store.locked() as st:` reads, lets you change, writes back."""

    def __init__(self, directory: Path | None = None) -> None:
        self.dir = directory or emu_dir()
        self.path = self.dir / "state.json"

    @contextmanager
    def locked(self) -> Iterator[State]:
        self.dir.mkdir(parents=True, exist_ok=True)
        with open(self.dir / "lock", "a+") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            st = json.loads(self.path.read_text()) if self.path.exists() else new_state()
            before = json.dumps(st, sort_keys=True)
            yield st
            after = json.dumps(st, sort_keys=True)
            if after != before or not self.path.exists():
                tmp = self.path.with_suffix(".tmp")
                tmp.write_text(after)
                os.replace(tmp, self.path)

    def read(self) -> State:
        with self.locked() as st:
            return st


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
    ra, rb = res_state(st, a, res), res_state(st, b, res)
    if ra is None or rb is None:
        return False
    ca, cb = ra["conns"].get(b), rb["conns"].get(a)
    wanted = bool(ca and cb and ca["want"] and cb["want"] and not link_cut(st, a, b))
    return wanted and net.reachable(st, res, a, b)


def new_resource(cfg: ResourceConfig, node: str) -> dict[str, Any]:
    """`new-resource` + `new-minor`: a Secondary with Diskless devices and StandAlone connections."""
    me = cfg.host(node)
    return {
        "node_id": me.node_id,
        "address": me.address,
        "role": "Secondary",
        "suspended": [],
        "fencing": cfg.fencing,
        "quorum": cfg.quorum,
        "on_no_quorum": cfg.opt("options", "on-no-quorum", "suspend-io"),
        "handlers": dict(cfg.sections.get("handlers", {})),
        "disks": {
            str(v.number): {
                "minor": v.minor,
                "state": "Diskless",
                "client": v.disk == "none",
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
    return md


def attach(st: State, node: str, res: str) -> None:
    """`attach`: the disk comes up in the state its meta data recorded (Outdated/UpToDate/Inconsistent)."""
    r = res_state(st, node, res)
    assert r is not None
    for vol, d in r["disks"].items():
        if d["client"] or d["state"] != "Diskless":
            continue
        md = meta_for(st, node, res, vol)
        if st["faults"].get(f"disk/{node}/{res}/{vol}"):
            d["state"] = "Diskless"  # attach of a failed disk fails; stays Diskless
            continue
        d["state"] = md["disk"]


def connect(
    st: State, cfg: ResourceConfig, node: str, res: str, peer: str | None = None, *, discard: bool = False
) -> None:
    """`connect`: the connection leaves StandAlone and waits for the peer (Connecting)."""
    r = res_state(st, node, res)
    assert r is not None
    for h in cfg.peers(node):
        if peer is not None and h.name != peer:
            continue
        c = r["conns"].setdefault(h.name, _new_conn(cfg, h.node_id, h.address))
        c["want"] = True
        c["allow_two_primaries"] = c.get("allow_two_primaries", cfg.allow_two_primaries)
        if discard:
            c["discard_my_data"] = True


def _new_conn(cfg: ResourceConfig, node_id: int, address: str) -> dict[str, Any]:
    return {
        "want": False,
        "node_id": node_id,
        "address": address,
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
    helpers never run. Its meta data (the disk) stays; it comes back from "down"."""
    st["nodes"].pop(node, None)
    st["jobs"] = [j for j in st["jobs"] if j["node"] != node]
    st.get("kernels", {}).pop(node, None)
    settle(st, now)


def _set_disk(st: State, node: str, res: str, vol: str, state: str) -> None:
    r = res_state(st, node, res)
    assert r is not None
    r["disks"][vol]["state"] = state
    if state in ("UpToDate", "Outdated", "Inconsistent", "Consistent"):
        meta_for(st, node, res, vol)["disk"] = state


# ---------------------------------------------------------------------------------------------------
# Roles


def has_quorum(st: State, node: str, res: str) -> bool:
    """DRBD 9 quorum (UG9 "Quorum"): more than half of the voters; a peer known Outdated (it left gracefully
    or was fenced) does not vote, which is what lets the last node of two keep quorum."""
    r = res_state(st, node, res)
    if r is None or r.get("quorum", "off") == "off":
        return True
    voters = 1
    votes = 1 if any(d["state"] != "Diskless" for d in r["disks"].values()) else 0
    for _peer, c in r["conns"].items():
        if (
            all(s == "Outdated" for s in c["peer_disk"].values())
            and c["peer_disk"]
            and c["state"] != "Connected"
        ):
            continue
        voters += 1
        if c["state"] == "Connected":
            votes += 1
    q = r["quorum"]
    need = voters // 2 + 1 if q == "majority" else (voters if q == "all" else int(q))
    return votes >= need


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
    local_ok = all(d["state"] == "UpToDate" for d in disks)
    if not local_ok and force:
        for vol, d in r["disks"].items():
            if d["state"] in ("Inconsistent", "Outdated", "Consistent"):
                _set_disk(st, node, res, vol, "UpToDate")
                _new_data(st, node, res, vol)
        local_ok = all(d["state"] == "UpToDate" for d in disks)
    if not local_ok and (
        not any(
            c["state"] == "Connected" and all(s == "UpToDate" for s in c["peer_disk"].values())
            for c in r["conns"].values()
        )
        or disks
    ):
        raise no_up_to_date_disk()
    for peer, c in r["conns"].items():
        if c["state"] == "Connected" and c["peer_role"] == "Primary":
            pr = res_state(st, peer, res)
            theirs = pr["conns"][node]["allow_two_primaries"] if pr else False
            if not (c["allow_two_primaries"] and theirs):
                raise two_primaries()
    if not has_quorum(st, node, res):
        raise no_quorum()
    if r["fencing"] != "dont-care" and not force:
        return [
            h.name
            for h in cfg.peers(node)
            if not (h.name in r["conns"] and r["conns"][h.name]["state"] == "Connected")
            and not _peer_outdated(r, h.name)
        ]
    return []


def _peer_outdated(r: dict[str, Any], peer: str) -> bool:
    c = r["conns"].get(peer)
    return bool(
        c and c["peer_disk"] and all(s in ("Outdated", "Inconsistent") for s in c["peer_disk"].values())
    )


def become_primary(st: State, node: str, res: str) -> None:
    """Promotion while some peer is not connected starts a new data generation (DK drbd_uuid_new_current):
    two nodes promoted apart have diverged even without writes, and meet as a split-brain."""
    r = res_state(st, node, res)
    assert r is not None
    if any(c["state"] != "Connected" for c in r["conns"].values()):
        for vol, d in r["disks"].items():
            if d["state"] == "UpToDate":
                md = meta_for(st, node, res, vol)
                md["tag"] = f"{node}.{md['gen']}.{secrets.token_hex(3)}"
    r["role"] = "Primary"
    _publish_roles(st, res)


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
    md = meta_for(st, node, res, vol)
    md["gen"] += 1
    md["tag"] = f"{node}.{md['gen']}.{secrets.token_hex(3)}"


def write(st: State, node: str, res: str, vol: str, now: float, count: int = 1) -> dict[str, Any]:
    """A write on the Primary: bumps the generation, replicated to connected peers (protocol C), including a
    SyncTarget. Refused while I/O is suspended (fencing/quorum) or when not Primary. A Primary whose disk
    failed (Diskless) keeps writing through an UpToDate peer (UG9 "Disk error handling", detach)."""
    settle(st, now)
    r = res_state(st, node, res)
    if r is None or r["role"] != "Primary":
        raise StateError(0, "not Primary: writes need the Primary role", 1)
    if r["suspended"]:
        raise StateError(0, f"I/O suspended ({','.join(r['suspended'])})", 1)
    peers = [
        p
        for p, c in r["conns"].items()
        if c["state"] == "Connected"
        and (res_state(st, p, res) or {}).get("disks", {}).get(vol, {}).get("state")
        not in (None, "Diskless", "Failed")
    ]
    local = r["disks"][vol]["state"] == "UpToDate"
    if not local and not any(r["conns"][p]["peer_disk"].get(vol) == "UpToDate" for p in peers):
        raise StateError(0, f"local disk {r['disks'][vol]['state']} and no UpToDate peer: I/O error", 1)
    md = meta_for(st, node, res, vol)
    if not local:  # the data lives on the peers: continue from their generation
        newest = max((meta_for(st, p, res, vol) for p in peers), key=lambda m: int(m["gen"]))
        md["gen"], md["tag"] = newest["gen"], newest["tag"]
    for _ in range(count):
        _new_data(st, node, res, vol)
    for peer in peers:
        pmd = meta_for(st, peer, res, vol)
        pmd["gen"], pmd["tag"] = md["gen"], md["tag"]
        if r["conns"][peer]["repl"].get(vol, "Established") == "Established" and local:
            md["synced"][peer] = md["tag"]
            pmd["synced"][node] = md["tag"]
    return {"gen": md["gen"], "tag": md["tag"]}


def _handshake(st: State, res: str, a: str, b: str, now: float) -> None:
    """The connect handshake per volume (UG9 "Split brain", DK drbd_uuid_compare, simplified to write tags):

    - same data (no write on either side since the last sync): no resync; Outdated becomes UpToDate.
    - only one side wrote, or the other is Inconsistent: resync from it (SyncSource → SyncTarget, target
    Inconsistent).
    - both wrote while disconnected: split-brain. Both connections go StandAlone ("Split-Brain detected,
      dropping connection!"; after-sb-*pri disconnect, the default). `connect --discard-my-data` on one side
      resolves it: that side becomes SyncTarget and its writes are lost (counted in `lost`).
    - a Primary can not become SyncTarget: the connection is dropped.
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
        a_new = ma["tag"] != ma["synced"].get(b, "")
        b_new = mb["tag"] != mb["synced"].get(a, "")
        a_disc = ra["conns"][b].pop("discard_my_data", False)
        b_disc = rb["conns"][a].pop("discard_my_data", False)
        source: str | None = None
        if da["state"] == "Inconsistent" and db["state"] == "Inconsistent":
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
        else:
            for x, dx in ((a, da), (b, db)):
                if dx["state"] == "Outdated":
                    _set_disk(st, x, res, vol, "UpToDate")
            continue
        target = b if source == a else a
        rt = res_state(st, target, res)
        assert rt is not None
        if rt["role"] == "Primary":
            for x, y in ((a, b), (b, a)):
                rx = res_state(st, x, res)
                assert rx is not None
                rx["conns"][y]["want"] = False
                rx["conns"][y]["state"] = "StandAlone"
            _log(st, target, res, "I shall become SyncTarget, but I am primary!")
            return
        mt, ms = meta_for(st, target, res, vol), meta_for(st, source, res, vol)
        if mt["tag"] != mt["synced"].get(source, "") and mt["gen"]:
            mt["lost"] += max(1, mt["gen"] - _gen_of(mt["synced"].get(source, "")))
        full = rt["disks"][vol]["state"] == "Inconsistent" and not mt["synced"].get(source)
        behind = max(ms["gen"] - _gen_of(ms["synced"].get(target, "")), 1)
        total = DEFAULT_SIZE_KIB if full else behind * KIB_PER_WRITE
        _set_disk(st, target, res, vol, "Inconsistent")
        st.setdefault("resyncs", {})[f"{res}/{vol}/{source}/{target}"] = {"start": now, "total_kib": total}


def _gen_of(tag: str) -> int:
    parts = tag.split(".")
    return int(parts[1]) if len(parts) == 3 and parts[1].isdigit() else 0


def _start_pending_resyncs(st: State, now: float) -> None:
    """While connected, an UpToDate disk facing an Inconsistent one resyncs it (e.g. after `primary --force`
    on a fresh pair: UG9 s-initial-full-sync)."""
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
                    if rb["role"] == "Primary":
                        continue
                    st.setdefault("resyncs", {})[f"{res}/{vol}/{a}/{b}"] = {
                        "start": now,
                        "total_kib": DEFAULT_SIZE_KIB,
                    }


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
        rate = resync_rate(st, res)
        done = min(rs["total_kib"], (now - rs["start"]) * rate)
        rs["done_kib"] = done
        if done < rs["total_kib"]:
            continue
        del st["resyncs"][key]
        ms, mt = meta_for(st, source, res, vol), meta_for(st, target, res, vol)
        mt["gen"], mt["tag"] = ms["gen"], ms["tag"]
        ms["synced"][target] = mt["synced"][source] = ms["tag"]
        _set_disk(st, target, res, vol, "UpToDate")
        queue_handler(st, target, res, "after-resync-target", source)  # DK: the target's helper, at the end
        _maybe_unfence(st, source, res, target)


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
    elif rc == 6:
        for vol in r["disks"]:
            _set_disk(st, node, res, vol, "Outdated")
    if rc in (3, 4, 5, 6, 7):
        c["fenced"] = rc != 6
        _unsuspend(r)
    else:
        _log(st, node, res, f"fence-peer helper broken, returned {rc}")


def _unsuspend(r: dict[str, Any]) -> None:
    if "fencing" in r["suspended"]:
        r["suspended"].remove("fencing")


def _log(st: State, node: str, res: str, msg: str) -> None:
    st.setdefault("log", []).append(f"{node} {res}: {msg}")
    del st["log"][:-200]


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
                    c["graceful"] = False
                    c["fenced_pending_unfence"] = c.pop("fenced", False)
                    pr = res_state(st, peer, res)
                    assert pr is not None
                    pc = pr["conns"][node]
                    if pc["state"] == "Connected":  # the peer saw it first: handshake done there
                        continue
                    pc["state"] = "Connected"
                    pc["fenced_pending_unfence"] = pc.pop("fenced", False)
                    pc["graceful"] = False
                    _handshake(st, res, node, peer, now)
                elif was and not is_conn:
                    c["state"] = "Connecting" if c["want"] else "StandAlone"
                    _on_disconnect(st, node, res, peer)
                elif not is_conn:
                    c["state"] = "Connecting" if c["want"] else "StandAlone"
    _start_pending_resyncs(st, now)
    _progress_resyncs(st, now)
    _detach_failed(st, now)
    for node, rs in st["nodes"].items():
        for res, r in rs.items():
            _refresh_view(st, node, res)
            quorate = has_quorum(st, node, res)
            if not quorate and r["role"] == "Primary" and r.get("on_no_quorum") == "suspend-io":
                if "quorum" not in r["suspended"]:
                    r["suspended"].append("quorum")
            elif quorate and "quorum" in r["suspended"]:
                r["suspended"].remove("quorum")
    for res in {res for rs in st["nodes"].values() for res in rs}:
        _publish_roles(st, res)


def _on_disconnect(st: State, node: str, res: str, peer: str) -> None:
    """Connection lost. A Primary with fencing calls fence-peer unless the peer left gracefully (it then
    outdated itself); replication stops; the peer's disk becomes DUnknown (DK conn_try_outdate_peer)."""
    r = res_state(st, node, res)
    assert r is not None
    c = r["conns"][peer]
    c["repl"] = {}
    graceful = c.get("graceful", False)
    if not graceful:
        c["peer_disk"] = {}
    c["peer_role"] = "Unknown"
    local_ok = all(d["state"] in ("UpToDate", "Consistent") for d in r["disks"].values() if not d["client"])
    if r["role"] == "Primary" and r["fencing"] != "dont-care" and local_ok and not graceful:
        queue_handler(st, node, res, "fence-peer", peer)


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
            if key_s in st.get("resyncs", {}):
                c["repl"][vol] = "PausedSyncS" if _paused(st, res) else "SyncSource"
            elif key_t in st.get("resyncs", {}):
                c["repl"][vol] = "PausedSyncT" if _paused(st, res) else "SyncTarget"
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
