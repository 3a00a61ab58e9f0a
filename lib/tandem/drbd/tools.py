# SPDX-License-Identifier: GPL-2.0-or-later
"""The side-effect layer of the DRBD agent: drbdadm/drbdsetup calls, version detection, the promotion score.

Everything goes through the runner seam. DRBD 9 state comes from `drbdsetup status --json <res>`; DRBD 8.4
state from `/proc/drbd`, narrowed to the resource's minors (`drbdadm sh-minor`), since /proc/drbd does not
name resources. The version is read from /proc/drbd (no fork) and, without it, from `drbdadm --version`.
"""

from __future__ import annotations

import os
import time

from tandem.drbd.model import ParseError, Resource, Role
from tandem.ocf.codes import OcfError, Rc, generic
from tandem.ocf.deadline import Deadline
from tandem.ocf.runner import CommandTimeout
from tandem.ocf.state import FileLock, LockBusy, StateFiles
from tandem.record import NamedTuple, replace
from tandem.regex import lazy

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

    from tandem.drbd.policy import Decision
    from tandem.ocf.log import Logger
    from tandem.ocf.runner import Result, Runner

# drbdsetup/drbdadm exit codes (LINBIT/drbd-utils user/v9/drbdsetup.c)
NO_SUCH_OBJECT = 10
NO_UP_TO_DATE_DISK = 17
STATE_CHANGE_FAILED = 11  # with the reason on stderr: "(-25) No quorum", "(-1) Multiple primaries ...", ...
_KERNEL_INFO = lazy(r"additional info from kernel:\s*\n\s*(\S[^\n]*)")
PROC_DRBD = "/proc/drbd"
DEFAULT_CONF = "/etc/drbd.conf"


def primary_refused(rc: int, err: str) -> str | None:
    """Why DRBD refused `primary` for good (no retry helps), or None. 17: no UpToDate data reachable (here,
    or on a connected peer for a client; or the peer could not be fenced); 11 with "No quorum". The
    kernel's one line of detail ("no UpToDate peer with quorum", "1 of 3 nodes visible, need 2 for
    quorum") is kept."""
    info = _KERNEL_INFO.search(err)
    detail = f": {info.group(1).strip()}" if info else ""
    if rc == NO_UP_TO_DATE_DISK:
        return f"DRBD refused (exit 17): no UpToDate data reachable, or the peer could not be fenced{detail}"
    if rc == STATE_CHANGE_FAILED and "No quorum" in err:
        return f"DRBD refused (exit 11): no quorum{detail}"
    return None


class Version(NamedTuple):
    major: int
    minor: int
    patch: int

    @classmethod
    def parse(cls, text: str) -> Version:
        """The first x.y.z in `text` (three dot-separated numbers)."""
        found = find_version(text)
        if found is None:
            raise ValueError(f"{text!r} is not a version x.y.z")
        return found

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}.{self.patch}"

    @property
    def v9(self) -> bool:
        return self.major >= 9


def find_version(text: str) -> Version | None:
    """The first three dot-separated numbers in `text`, by str operations (what the monitor reads every
    time is parsed without `re`)."""
    run: list[str] = []  # the current run of digits and dots
    for c in (*text, " "):
        if c.isdecimal() or c == ".":
            run.append(c)
            continue
        parts = "".join(run).split(".")
        for i in range(len(parts) - 2):
            if all(parts[i : i + 3]):
                return Version(*(int(p) for p in parts[i : i + 3]))
        run = []
    return None


def version_from_proc(text: str) -> Version | None:
    """`version: 9.2.4 (api:2/proto:86-122)` on the first line of /proc/drbd."""
    first = text.split("\n", 1)[0]
    return find_version(first) if first.startswith("version:") else None


def version_from_drbdadm(text: str) -> Version | None:
    """`DRBD_KERNEL_VERSION=9.2.4` from `drbdadm --version` (absent or 0 without a loaded module)."""
    for line in text.splitlines():
        key, _, value = line.partition("=")
        found = find_version(value) if key.strip() == "DRBD_KERNEL_VERSION" else None
        if found is not None:
            return found if found > Version(0, 0, 0) else None
    return None


class Drbd:
    """One DRBD resource on this node."""

    def __init__(self, runner: Runner, log: Logger, resource: str, conf: str | None = None) -> None:
        self.runner = runner
        self.log = log
        self.resource = resource
        self.conf = conf
        self._version: Version | None = None

    # -- version ---------------------------------------------------------------------------------------
    def version(self) -> Version | None:
        """The loaded kernel module's version, or None when no module is loaded."""
        if self._version is None:
            try:
                self._version = version_from_proc(read(PROC_DRBD))
            except OSError:
                self._version = version_from_drbdadm(
                    self.runner.run(["drbdadm", "--version"], timeout=10).out
                )
        return self._version

    # -- state -----------------------------------------------------------------------------------------
    def status(self) -> Resource | None:
        """The resource as the kernel has it, or None when it is not configured (down)."""
        version = self.version()
        if version is None:
            return None
        if version.v9:
            return self._status_9()
        return self._status_84()

    def _status_9(self) -> Resource | None:
        from tandem.drbd.parse_json import parse_status_json

        result = self.runner.run(["drbdsetup", "status", "--json", self.resource], timeout=10)
        if not result.ok:
            if result.rc == NO_SUCH_OBJECT or "No such resource" in result.err:
                return None
            raise generic(f"cannot read the DRBD state: {result.describe()}")
        try:
            return parse_status_json(result.out).resource(self.resource)
        except ParseError as exc:
            raise generic(f"cannot read the DRBD state: drbdsetup status --json: {exc}") from None

    def _status_84(self) -> Resource | None:
        from tandem.drbd.parse_proc import parse_proc

        minors = self.minors()
        if not minors:
            return None
        try:
            status = parse_proc(read(PROC_DRBD))
        except FileNotFoundError:  # module unloaded meanwhile
            return None
        except ParseError as exc:
            raise generic(f"cannot read the DRBD state: {PROC_DRBD}: {exc}") from None
        parts = [r for r in status.resources if any(d.minor in minors for d in r.devices)]
        return merge_minors(self.resource, parts) if parts else None

    def minors(self) -> tuple[int, ...]:
        result = self.adm("sh-minor")
        if not result.ok:
            return ()
        return tuple(int(w) for w in result.out.split() if w.isdigit())

    # -- commands --------------------------------------------------------------------------------------
    def adm(self, command: str, *extra: str, timeout: float | None = 60) -> Result:
        """`drbdadm [-c CONF] COMMAND [EXTRA...] RESOURCE`."""
        argv = ["drbdadm"]
        if self.conf:
            argv += ["-c", self.conf]
        argv += [command, *extra, self.resource]
        result = self.runner.run(argv, timeout=timeout)
        level = self.log.info if result.ok else self.log.warning
        level(result.describe() if not result.ok else f"{' '.join(argv)}: ok")
        return result

    def setup(self, command: str) -> Result:
        """`drbdsetup COMMAND RESOURCE`: no configuration needed (secondary, down), for a stop whose
        configuration file is gone or unreadable."""
        result = self.runner.run(["drbdsetup", command, self.resource], timeout=60)
        (self.log.info if result.ok else self.log.warning)(result.describe())
        return result

    def dump(self) -> str:
        """The resource's configuration as drbdadm reads it (for allow-two-primaries and fencing)."""
        result = self.adm("dump", timeout=20)
        if not result.ok:
            raise OcfError(Rc.ERR_CONFIGURED, f"DRBD configuration of {self.resource}: {result.describe()}")
        return result.out

    def allows_two_primaries(self, files: StateFiles) -> bool:
        """allow-two-primaries from `drbdadm dump`, remembered while the configuration files are unchanged:
        a steady monitor then runs no drbdadm at all."""
        from tandem.drbd.health import allows_two_primaries

        files_key = config_key(self.conf or DEFAULT_CONF)
        key = None if files_key is None else f"{self.resource} {files_key}"
        if key is not None and files.read("two-primaries") == key:
            return True
        allowed = allows_two_primaries(self.dump())
        if allowed and key is not None:
            problem = files.write("two-primaries", key)
            if problem:
                self.log.warning(problem)
        return allowed

    def wait_for(
        self,
        done: Callable[[Resource | None], bool],
        seconds: float,
        interval: float = 0.5,
    ) -> Resource | None:
        """Poll the state until `done` holds or `seconds` pass; returns the last state seen."""
        end = time.monotonic() + seconds
        res = self.status()
        while not done(res) and time.monotonic() < end:
            time.sleep(min(interval, max(0.0, end - time.monotonic())))
            res = self.status()
        return res


def merge_minors(name: str, parts: list[Resource]) -> Resource:
    """DRBD 8.4's /proc/drbd has one line per minor; a resource is the union of its minors' lines."""
    first = parts[0]
    roles = {r.role for r in parts}
    connection = None
    if first.connections:
        peer_devices = tuple(p for r in parts for c in r.connections for p in c.peer_devices)
        connection = replace(first.connections[0], peer_devices=peer_devices)
        bad = [c for r in parts for c in r.connections if c.connection is not connection.connection]
        if bad:
            connection = replace(connection, connection=bad[0].connection)
    return replace(
        first,
        name=name,
        role=Role.PRIMARY if Role.PRIMARY in roles else first.role,
        devices=tuple(d for r in parts for d in r.devices),
        connections=(connection,) if connection else (),
        suspended=tuple(dict.fromkeys(s for r in parts for s in r.suspended)),
    )


def read(path: str) -> str:
    with open(path, encoding="utf-8", errors="replace") as fh:
        return fh.read()


def includes(text: str) -> list[str]:
    """The paths of the `include "PATH";` statements that start a line of a DRBD configuration."""
    found = []
    at = text.find("include")
    while at >= 0:
        after = at + len("include")
        line_start = text.rfind("\n", 0, at) + 1
        rest = text[after:].lstrip()
        if (not text[line_start:at] or text[line_start:at].isspace()) and text[after : after + 1].isspace():
            rest = rest.removeprefix('"')
            end = next((i for i, c in enumerate(rest) if c in '";' or c.isspace()), len(rest))
            if end and rest[end:].removeprefix('"').lstrip().startswith(";"):
                found.append(rest[:end])
        at = text.find("include", after)
    return found


def glob_match(name: str, pattern: str) -> bool:
    """fnmatch.fnmatchcase for patterns with * and ? only (that module compiles a regex for each)."""
    n = p = 0
    star, mark = -1, 0  # where the last * was in the pattern, and where in the name it began to match
    while n < len(name):
        if p < len(pattern) and pattern[p] == "*":
            star, mark, p = p, n, p + 1
        elif p < len(pattern) and pattern[p] in ("?", name[n]):
            n, p = n + 1, p + 1
        elif star >= 0:
            mark += 1
            n, p = mark, star + 1
        else:
            return False
    return all(c == "*" for c in pattern[p:])


def config_key(conf: str) -> str | None:
    """The identity (inode, size, mtime) of the configuration file and of every file it includes, or None
    when it cannot be told cheaply (unreadable, a wildcard in an include's directory, or a [set])."""
    try:
        paths = [conf]
        for pattern in includes(read(conf)):
            pattern = os.path.join(os.path.dirname(conf), pattern)
            folder, name = os.path.split(pattern)
            if any(c in folder for c in "*?[") or "[" in name:
                return None
            paths += sorted(os.path.join(folder, n) for n in os.listdir(folder) if glob_match(n, name))
        stats = [(p, os.stat(p)) for p in paths]
    except OSError:
        return None
    return " ".join(f"{p}:{st.st_ino}:{st.st_size}:{st.st_mtime_ns}" for p, st in stats)


_ATTRD_VALUE = lazy(r'\bvalue="([^"]*)"')


def attrd_value(text: str) -> str | None:
    """The value in `attrd_updater --query` output (`name="..." host="..." value="10000"`); None if unset."""
    match = _ATTRD_VALUE.search(text)
    return (match.group(1) or None) if match else None


WRITE_LOCK_WAIT = 5.0  # a score write holds the write lock for one crm_attribute call


def fence_files(resource: str) -> StateFiles:
    """The fencing handlers' files for the DRBD resource `resource`: their lock, and PLACED."""
    return StateFiles.of("fence", resource)


# Written when this node places (or finds) the resource's fencing constraint, removed once it sees it gone:
# while it exists, the agent's monitor retries the removal once every peer is UpToDate, for DRBD calls
# unfence-peer once, and it can fail (tandem-18523: the CIB was down, the cluster stack restarting, when
# the resync ended; nothing ran a notification afterwards).
PLACED = "placed"


def score_lock(resource: str, deadline: Deadline) -> FileLock:
    """Serialises the score writes that do not come from the agent's monitor (DRBD's handlers, the score
    watcher) with the agent's stop, which removes the score last (`resource`: the DRBD resource's name)."""
    return FileLock(StateFiles.of("score", resource).path("lock"), deadline)


class PromotionScore:
    """Writes the promotion score with `crm_attribute --promotion` only when it changes.

    The last value written is cached in HA_RSCTMP; the cache is checked against the cluster (one query) on
    start and on probes, so a steady-state monitor forks nothing and writes nothing to the CIB.

    The CIB can lose a score that pacemaker-attrd still holds: when a node's controller leaves (e.g. it
    crashed on the DC and was respawned), its peer erases the node's transient attributes from the CIB,
    and attrd drops a write of the value it already has. The probe that follows the controller's return
    sees the score missing and makes attrd write its values again (`attrd_updater --refresh`). When the
    score should be gone anyway, the probe deletes it from attrd too: attrd writes every node's value
    with the next change of any, and would put the stale one back (tandem-17210: an Outdated node's
    10000 came back and Pacemaker planned to promote it).
    """

    def __init__(self, runner: Runner, log: Logger, instance: str, timeout: float = 10.0) -> None:
        self.runner = runner
        self.log = log
        self.instance = instance
        self.name = f"master-{instance}"  # what crm_attribute --promotion names it
        self.files = StateFiles.of("drbd", instance)
        self.timeout = timeout

    def cached(self) -> str | None:
        return self.files.read("score")

    def cached_score(self) -> int | None:
        """The score last written, as a number (None: none, or the score was removed)."""
        value = self.cached()
        return int(value) if value and value.isdigit() else None

    def current(self) -> str | None:
        """The value in the cluster: a number, "remove" when unset, None when the cluster cannot say."""
        result = self._crm("-G", "-q")
        if result is None:
            return None
        if result.ok and result.out.strip():
            return result.out.strip().splitlines()[-1]
        # crm_attribute exits 105 (ENXIO: no such attribute) or 6 for an unset score
        return "remove" if result.rc in (6, 105) or "not found" in result.err.lower() else None

    def apply(self, decision: Decision, *, verify: bool = False) -> bool:
        """Make the cluster hold `decision`; True when it does (or now does)."""
        wanted = decision.render()
        known = self.current() if verify else self.cached()
        stale = self.in_attrd() if verify and known == wanted == "remove" else None
        if known == wanted and stale is None:
            if verify:
                self._remember(wanted)
            return True
        try:
            with FileLock(self.files.path("write-lock"), Deadline.after(WRITE_LOCK_WAIT)):
                if not verify and self.cached() == wanted:
                    return True  # another writer (a DRBD handler) wrote it meanwhile
                return self._write(decision, wanted, known, stale, verify)
        except LockBusy as exc:
            self.log.warning(f"promotion score not updated to {wanted} ({decision.reason}): {exc}")
            return False

    def _write(
        self, decision: Decision, wanted: str, known: str | None, stale: str | None, verify: bool
    ) -> bool:
        """The write and its cache entry, under the write lock: the agent and DRBD's handlers write the
        score, and one writer's value in the cluster beside another's in the cache would never be
        corrected (the cache says the cluster holds it)."""
        if stale is not None:
            self.log.warning(f"promotion score {stale} held by attrd but gone from the CIB: deleting it")
            known = stale
        if verify and decision.score is not None and known is not None and self.in_attrd() == wanted:
            self.log.warning(f"promotion score {wanted} held by attrd but missing from the CIB: refreshing")
            result = self._run(["attrd_updater", "--refresh"])
        else:
            result = self._crm(*(("-D",) if decision.score is None else ("-v", str(decision.score))))
        if result is None or not result.ok:
            self.log.warning(
                f"promotion score not updated to {wanted} ({decision.reason}): "
                f"{result.describe() if result else 'timed out'}"
            )
            self._forget()
            return False
        self.log.info(f"promotion score {known or 'unknown'} -> {wanted}: {decision.reason}")
        self._remember(wanted)
        return True

    def in_attrd(self) -> str | None:
        """The score this node's attrd holds (a number), or None when it holds none or cannot say."""
        result = self._run(["attrd_updater", "--query", "-n", self.name])
        return attrd_value(result.out) if result is not None and result.ok else None

    def _crm(self, *args: str) -> Result | None:
        return self._run(["crm_attribute", f"--promotion={self.instance}", "-l", "reboot", *args])

    def _run(self, argv: list[str]) -> Result | None:
        try:
            return self.runner.run(argv, timeout=self.timeout)
        except CommandTimeout as exc:
            self.log.warning(str(exc))
            return None

    def _remember(self, value: str) -> None:
        problem = self.files.write("score", value)
        if problem:
            self.log.warning(f"cannot cache the promotion score: {problem}")

    def _forget(self) -> None:
        self.files.remove("score")
