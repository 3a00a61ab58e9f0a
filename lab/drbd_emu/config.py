# SPDX-License-Identifier: GPL-2.0-or-later
"""Enough of drbd.conf(5) for the emulator and for `drbdadm dump`: resources, hosts, volumes, sections.

Syntax (drbd.conf man page, UG9 "Configuring DRBD"): `include "glob";`, `global {}`, `common {}` whose
sections every resource inherits, and `resource NAME { on HOST { node-id; address; volume N { device; disk;
meta-disk } } net {} handlers {} options {} disk {} }`. Volume statements may also sit directly in the
resource (shared by all hosts). `device minor N;`, `device /dev/drbdN;` and `device /dev/x minor N;` are
all accepted.
"""

from __future__ import annotations

import contextlib
import fnmatch
import glob
import hashlib
import os
import pickle
import re
import shlex
import tempfile
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple


class ConfigError(ValueError):
    pass


@dataclass
class Stmt:
    name: str
    args: list[str]
    body: list[Stmt] | None = None


def _tokens(text: str) -> list[str]:
    lex = shlex.shlex(text, posix=True, punctuation_chars="{};")
    lex.commenters = "#"
    lex.wordchars += "-./:[]@%+=,"
    return list(lex)


def _parse(tokens: list[str], pos: int = 0, depth: int = 0) -> tuple[list[Stmt], int]:
    out: list[Stmt] = []
    words: list[str] = []
    while pos < len(tokens):
        tok = tokens[pos]
        pos += 1
        if tok == ";":
            if words:
                out.append(Stmt(words[0], words[1:]))
            words = []
        elif tok == "{":
            if not words:
                raise ConfigError("'{' without a section name")
            body, pos = _parse(tokens, pos, depth + 1)
            out.append(Stmt(words[0], words[1:], body))
            words = []
        elif tok == "}":
            if depth == 0:
                raise ConfigError("unbalanced '}'")
            return out, pos
        else:
            words.append(tok)
    if depth or words:
        raise ConfigError("unexpected end of configuration")
    return out, pos


def parse_text(text: str, base: Path) -> list[Stmt]:
    stmts, _ = _parse(_tokens(text))
    out: list[Stmt] = []
    for s in stmts:
        if s.name == "include" and s.body is None:
            pattern = s.args[0] if os.path.isabs(s.args[0]) else str(base / s.args[0])
            for f in sorted(glob.glob(pattern)):
                out.extend(parse_text(Path(f).read_text(), Path(f).parent))
        else:
            out.append(s)
    return out


@dataclass
class Volume:
    number: int
    minor: int
    device: str
    disk: str
    meta_disk: str = "internal"


@dataclass
class Host:
    name: str
    node_id: int
    address: str  # "10.0.0.1:7789"
    family: str
    volumes: dict[int, Volume]


@dataclass
class ResourceConfig:
    name: str
    hosts: dict[str, Host]
    sections: dict[str, dict[str, str]] = field(default_factory=dict)  # net, handlers, options, disk

    def opt(self, section: str, key: str, default: str = "") -> str:
        return self.sections.get(section, {}).get(key, default)

    @property
    def fencing(self) -> str:
        return self.opt("net", "fencing", "dont-care")

    @property
    def allow_two_primaries(self) -> bool:
        return self.opt("net", "allow-two-primaries", "no") in ("yes", "")

    @property
    def quorum(self) -> str:
        return self.opt("options", "quorum", "off")

    def host(self, name: str) -> Host:
        if name not in self.hosts:
            raise ConfigError(f"{self.name}: no host {name} in config")
        return self.hosts[name]

    def peers(self, me: str) -> list[Host]:
        return sorted((h for n, h in self.hosts.items() if n != me), key=lambda h: h.node_id)


def _section(stmts: list[Stmt]) -> dict[str, str]:
    return {s.name: " ".join(s.args) for s in stmts if s.body is None}


def _volume(s: Stmt, inherited: Volume | None = None) -> Volume:
    number = int(s.args[0]) if s.args else 0
    fields = {c.name: c.args for c in (s.body or [])}
    return _volume_from(number, fields, inherited)


def _volume_from(number: int, fields: dict[str, list[str]], inherited: Volume | None) -> Volume:
    minor = inherited.minor if inherited else -1
    device = inherited.device if inherited else ""
    if "device" in fields:
        args = fields["device"]
        if "minor" in args:
            minor = int(args[args.index("minor") + 1])
            named = [a for a in args if a != "minor" and not a.isdigit()]
            device = named[0] if named else f"/dev/drbd{minor}"
        else:
            device = args[0]
            m = re.fullmatch(r"/dev/drbd(\d+)", device)
            minor = int(m.group(1)) if m else minor
    disk = " ".join(fields["disk"]) if "disk" in fields else (inherited.disk if inherited else "none")
    meta = (
        " ".join(fields["meta-disk"])
        if "meta-disk" in fields
        else (inherited.meta_disk if inherited else "internal")
    )
    if minor < 0:
        raise ConfigError(f"volume {number}: no device minor")
    return Volume(number, minor, device, disk, meta)


def _address(args: list[str]) -> tuple[str, str]:
    family = "ipv4"
    if len(args) == 2:
        family, addr = args
    else:
        addr = args[0]
    return family, addr


def load(path: str | Path) -> dict[str, ResourceConfig]:
    """Parse a drbd.conf (with its includes) into resources with `common` merged in."""
    p = Path(path)
    stmts = parse_text(p.read_text(), p.parent)
    common: dict[str, dict[str, str]] = {}
    for s in stmts:
        if s.name == "common":
            for sec in s.body or []:
                common.setdefault(sec.name, {}).update(_section(sec.body or []))
    out: dict[str, ResourceConfig] = {}
    for s in stmts:
        if s.name != "resource" or not s.args:
            continue
        sections = {k: dict(v) for k, v in common.items()}
        shared: dict[int, Volume] = {}
        host_stmts: list[Stmt] = []
        for c in s.body or []:
            if c.name == "on":
                host_stmts.append(c)
            elif c.name == "volume":
                v = _volume(c)
                shared[v.number] = v
            elif c.name in ("device", "disk", "meta-disk") and c.body is None:
                shared[0] = _volume_from(0, {c.name: c.args, **_fields(shared.get(0))}, shared.get(0))
            elif c.body is not None:
                sections.setdefault(c.name, {}).update(_section(c.body))
        hosts: dict[str, Host] = {}
        for h in host_stmts:
            fields = {c.name: c.args for c in h.body or [] if c.body is None}
            vols = dict(shared)
            for c in h.body or []:
                if c.name == "volume":
                    v = _volume(c, shared.get(int(c.args[0])))
                    vols[v.number] = v
            if any(k in fields for k in ("device", "disk", "meta-disk")):
                vols[0] = _volume_from(0, fields, shared.get(0))
            family, addr = _address(fields.get("address", ["127.0.0.1:7789"]))
            node_id = int(fields["node-id"][0]) if "node-id" in fields else len(hosts)
            for name in h.args:
                hosts[name] = Host(name, node_id, addr, family, vols)
        out[s.args[0]] = ResourceConfig(s.args[0], hosts, sections)
    return out


def _fields(v: Volume | None) -> dict[str, list[str]]:
    return {} if v is None else {"device": [v.device, "minor", str(v.minor)]}


def dump(res: ResourceConfig, me: str, path: str) -> str:
    """`drbdadm dump <res>`: the parsed resource, in drbdadm's indentation (the RA greps
    `allow-two-primaries`)."""
    lines = [
        f"# resource {res.name} on {me}: not ignored, not stacked",
        f"# defined at {path}",
        f"resource {res.name} {{",
    ]
    for h in sorted(res.hosts.values(), key=lambda h: h.node_id):
        lines.append(f"    on {h.name} {{")
        lines.append(f"        node-id {h.node_id};")
        for v in sorted(h.volumes.values(), key=lambda v: v.number):
            lines += [
                f"        volume {v.number} {{",
                f"            device       {v.device} minor {v.minor};",
                f"            disk         {v.disk};",
                f"            meta-disk    {v.meta_disk};",
                "        }",
            ]
        lines.append(f"        address          {h.family} {h.address};")
        lines.append("    }")
    for sec, opts in res.sections.items():
        lines.append(f"    {sec} {{")
        for k, val in opts.items():
            shown = f'"{val}"' if sec == "handlers" else val
            lines.append(f"        {k:<16} {shown};" if val else f"        {k};")
        lines.append("    }")
    lines.append("}")
    return "\n".join(lines) + "\n"


def _included(path: Path) -> list[str] | None:
    """The files `path` includes (its own include statements), or None when it cannot be read or parsed."""
    try:
        stmts, _ = _parse(_tokens(path.read_text()))
    except (OSError, ConfigError, ValueError):
        return None
    files: list[str] = []
    for s in stmts:
        if s.name == "include" and s.body is None and s.args:
            pattern = s.args[0] if os.path.isabs(s.args[0]) else os.path.join(path.parent, s.args[0])
            files += _expand(pattern)
    return files


def _expand(pattern: str) -> list[str]:
    """glob.glob's answer, sorted; a pattern whose wildcards are all in the file name (/etc/drbd.d/*.res)
    by one listdir, without glob's per-file path joins (a tenth of a fake call at 100 resources)."""
    head, tail = os.path.split(pattern)
    if glob.has_magic(head) or not glob.has_magic(tail):
        return sorted(glob.glob(pattern))
    try:
        names = os.listdir(head or os.curdir)
    except OSError:
        return []
    if not tail.startswith("."):
        names = [n for n in names if not n.startswith(".")]  # as glob: no hidden files for `*`
    return sorted(os.path.join(head, n) for n in fnmatch.filter(names, tail))


class Configs(Mapping[str, ResourceConfig]):
    """Resources by name from the cache, each unpickled when first asked for: a call about one resource
    does not pay for the others."""

    def __init__(self, blobs: dict[str, bytes]) -> None:
        self._blobs = blobs
        self._loaded: dict[str, ResourceConfig] = {}

    def __getitem__(self, name: str) -> ResourceConfig:
        if name not in self._loaded:
            self._loaded[name] = pickle.loads(self._blobs[name])  # noqa: S301 (the emulator's own file)
        return self._loaded[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._blobs)

    def __len__(self) -> int:
        return len(self._blobs)


RACY_NS = 1_000_000_000  # a file changed this close to the cache's writing is checked by content (git's rule)


CACHE_FORMAT = 2  # raise when ResourceConfig & co. change shape: an older cache is then parsed anew


class _Cached(NamedTuple):
    format: int
    stats: list[tuple[str, int, int, int]]  # per file: path, inode, size, ctime (any write changes it)
    digest: str  # of every file's content
    written_ns: int
    blobs: dict[str, bytes]


def load_cached(path: str | Path, cache_dir: Path) -> Mapping[str, ResourceConfig]:
    """load(path), kept in `cache_dir` while the file and the files it includes are unchanged: parsing runs
    shlex over every included file, so a fake tool call about one resource would cost the parse of all of
    them, every call. Unchanged means the same inode, size and ctime for every file, as git decides, and
    where a file changed within RACY_NS of the cache's writing (tests rewrite files faster than
    timestamps tick), the same content. A configuration whose included files include more is parsed every
    time (those files are not watched)."""
    p = Path(path)
    files = _included(p)
    if files is None:
        return load(p)
    names = [str(p), *files]
    checked_ns = time.time_ns()  # before the stats: a write after this is racy for the next call
    try:
        stats = [(f, st.st_ino, st.st_size, st.st_ctime_ns) for f in names for st in (os.stat(f),)]
    except OSError:
        return load(p)
    cache = cache_dir / f"conf-{hashlib.sha256(str(p.resolve()).encode()).hexdigest()[:16]}.pickle"
    stored = _read_cache(cache)
    if stored and stored.stats == stats and max(s[3] for s in stats) < stored.written_ns - RACY_NS:
        return Configs(stored.blobs)
    try:
        digest = _digest(names)
    except OSError:
        return load(p)
    if stored and stored.digest == digest:
        _write_cache(cache, stored._replace(stats=stats, written_ns=checked_ns))
        return Configs(stored.blobs)
    configs = load(p)
    if not any(_included(Path(f)) for f in files):
        blobs = {name: pickle.dumps(cfg) for name, cfg in configs.items()}
        _write_cache(cache, _Cached(CACHE_FORMAT, stats, digest, checked_ns, blobs))
    return configs


def _digest(names: list[str]) -> str:
    digest = hashlib.sha256()
    for f in names:
        with open(f, "rb") as fh:
            digest.update(f"{f}\0".encode() + fh.read() + b"\0")
    return digest.hexdigest()


def _read_cache(cache: Path) -> _Cached | None:
    try:
        with open(cache, "rb") as fh:
            stored = pickle.load(fh)  # noqa: S301 (the emulator's own file)
        cached = _Cached(*stored)
        return cached if cached.format == CACHE_FORMAT else None
    except (OSError, pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError):
        return None  # none yet, or from another version of this module


def _write_cache(cache: Path, entry: _Cached) -> None:
    """Store `entry`, or nothing when that fails: the cache only saves work. Every node writes it at once
    (every node's probe runs drbdadm), with the same PIDs (each node has its own PID namespace), so the
    temporary file's name comes from mkstemp, never from the PID."""
    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=cache.parent, prefix=f".{cache.name}.", suffix=".tmp")
    except OSError:
        return
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(pickle.dumps(tuple(entry)))
        os.replace(tmp, cache)
    except OSError:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
