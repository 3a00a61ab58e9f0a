# SPDX-License-Identifier: GPL-2.0-or-later
"""Where the emulated DRBD's shared state lives: one directory under the host's /tmp, seen by every lab
node, guarded by one flock, so that commands issued at once on two nodes see one consistent cluster.

The state is one document to the rules (engine.py), stored in pieces so that a call about one resource
costs the same with 1 or 100 resources up (issue #12):

  state.json      what belongs to no resource: the mode, links, faults, kernels, logs, and the node names
  res/NAME.json   one resource: every node's view of it ("nodes"), its meta data ("meta"), its resyncs
                  ("resyncs") and queued handlers ("jobs")

`with store.locked() as st:` reads every piece, lets you change the document, and writes back the pieces
that changed; `with store.locked(only="r0") as st:` reads and writes r0's piece alone (with the global one),
which is what `drbdsetup status r0` needs, as the kernel answers for one resource without walking the rest.
"""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

State = dict[str, Any]

DEFAULT_RESYNC_KIB_S = 256 * 1024
PIECES = ("meta", "resyncs", "jobs")  # besides "nodes": the per-resource collections


def new_state(mode: str = "9") -> State:
    return {
        "mode": mode,
        "resync_kib_s": DEFAULT_RESYNC_KIB_S,
        "nodes": {},
        "links": {},
        "faults": {},
        "jobs": [],
    }


def resource_of(collection: str, key: str) -> str:
    """The resource a meta ("node/res/vol") or resync ("res/vol/source/target") key belongs to."""
    return key.split("/")[1] if collection == "meta" else key.split("/")[0]


def split(st: State) -> tuple[State, dict[str, State]]:
    """The document as its pieces: the global part (nodes by name only) and one part per resource."""
    parts: dict[str, State] = {}

    def part(res: str) -> State:
        return parts.setdefault(res, {"nodes": {}, "meta": {}, "resyncs": {}, "jobs": []})

    for node, rs in st["nodes"].items():
        for res, r in rs.items():
            part(res)["nodes"][node] = r
    for name in ("meta", "resyncs"):
        for key, value in st.get(name, {}).items():
            part(resource_of(name, key))[name][key] = value
    for job in st.get("jobs", []):
        part(job["res"])["jobs"].append(job)
    top = {k: v for k, v in st.items() if k not in ("nodes", *PIECES)}
    top["nodes"] = {node: {} for node in st["nodes"]}
    return top, parts


def merge(top: State, parts: dict[str, State]) -> State:
    """The pieces as one document (the inverse of `split`; a global piece that still holds resources, as
    one document did before it was split, keeps them)."""
    st: State = {**top, "nodes": {node: dict(rs) for node, rs in top.get("nodes", {}).items()}}
    st["jobs"] = list(top.get("jobs", []))
    for name in ("meta", "resyncs"):
        if name in top:
            st[name] = dict(top[name])
    for res in sorted(parts):
        p = parts[res]
        for node, r in p["nodes"].items():
            st["nodes"].setdefault(node, {})[res] = r
        for name in ("meta", "resyncs"):
            if p[name]:
                st.setdefault(name, {}).update(p[name])
        st["jobs"] += p["jobs"]
    return st


class Store:
    """The state's directory and its lock (module doc)."""

    def __init__(self, directory: Path) -> None:
        self.dir = directory
        self.res_dir = self.dir / "res"

    @contextmanager
    def locked(self, only: str | None = None) -> Iterator[State]:
        self.dir.mkdir(parents=True, exist_ok=True)
        with open(self.dir / "lock", "a+") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            before = self._read(only)
            top = json.loads(before["state.json"]) if "state.json" in before else new_state()
            if only is not None and any(top.get("nodes", {}).values()):  # one document, from before the split
                only = None
                before = self._read(None)
            parts = {name[4:-5]: json.loads(text) for name, text in before.items() if name.startswith("res/")}
            st = merge(top, parts)
            yield st
            top, parts = split(st)
            if only is not None and set(parts) - {only}:
                raise ValueError(f"a call about {only} changed {sorted(set(parts) - {only})}")
            after = {"state.json": _dump(top), **{f"res/{res}.json": _dump(p) for res, p in parts.items()}}
            for name, text in after.items():
                if before.get(name) != text:
                    self._write(name, text)
            for name in before.keys() - after.keys():  # a resource gone with all its meta data
                (self.dir / name).unlink()

    def read(self, only: str | None = None) -> State:
        with self.locked(only) as st:
            return st

    def _read(self, only: str | None) -> dict[str, str]:
        """File name (relative) → its text, for the global piece and the resources asked for."""
        names = ["state.json"]
        if only is not None:
            names.append(f"res/{only}.json")
        elif self.res_dir.is_dir():
            names += sorted(f"res/{f}" for f in os.listdir(self.res_dir) if f.endswith(".json"))
        found = {}
        for name in names:
            try:
                found[name] = (self.dir / name).read_text()
            except FileNotFoundError:
                continue
        return found

    def _write(self, name: str, text: str) -> None:
        path = self.dir / name
        path.parent.mkdir(exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(text)
        os.replace(tmp, path)


def _dump(piece: State) -> str:
    return json.dumps(piece, sort_keys=True)
