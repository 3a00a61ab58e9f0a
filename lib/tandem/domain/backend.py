# SPDX-License-Identifier: GPL-2.0-or-later
"""The two ways to drive a hypervisor: libvirt through `virsh`, and Xen through `xl` (both via the runner).

Why virsh and not the python bindings: a monitor needs one call (dominfo), and measured here (bench/
domain_monitor_cost.py, real libvirtd, qemu:///system) `import libvirt` alone costs more than a whole virsh
call; virsh is also a process the runner can kill at the action's deadline, where a blocked binding call would
hang the agent until Pacemaker kills it.
"""

from __future__ import annotations

from tandem.domain.state import (
    INCOMING_SUFFIX,
    MIGRATED_SUFFIX,
    Observed,
    Phase,
    classify_virsh,
    classify_xl,
    job_operation,
    observed_from_dominfo,
    parse_dominfo,
    parse_domstate,
    parse_xl_list,
    virsh_failure,
)
from tandem.ocf.runner import CommandTimeout
from tandem.record import NamedTuple

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Protocol

    from tandem.ocf.runner import Result, Runner

    class Backend(Protocol):
        kind: str

        def observe(self, name: str, timeout: float = ...) -> Observed: ...

        def create(self, config: str, timeout: float) -> Result: ...

        def shutdown(self, name: str, mode: str | None, timeout: float) -> Result: ...

        def destroy(self, name: str, timeout: float) -> Result: ...

        def resume(self, name: str, timeout: float) -> Result: ...

        def make_transient(self, name: str, timeout: float) -> Result | None: ...

        def migrate(self, name: str, plan: Migration, timeout: float) -> Result: ...

        def abort_migration(self, name: str, timeout: float) -> Result | None: ...

        def observe_remote(self, name: str, remote: str, timeout: float) -> Observed | None: ...


# One query may take this long; a busy libvirtd answers in milliseconds, a stuck one never does.
QUERY_TIMEOUT = 15.0


class Migration(NamedTuple):
    target: str  # the node name
    remote: str  # libvirt URI of the target, or the host for xl
    migrate_uri: str | None = None
    options: tuple[str, ...] = ()
    bandwidth: int | None = None  # MiB/s


class Virsh:
    """libvirt through virsh; `uri` None means libvirt's own default connection."""

    kind = "libvirt"

    def __init__(self, runner: Runner, uri: str | None = None) -> None:
        self.runner = runner
        self.uri = uri

    def _argv(self, *args: str, uri: str | None = None) -> list[str]:
        connect = uri or self.uri
        return ["virsh", "--quiet", *(["--connect", connect] if connect else []), *args]

    def run(self, *args: str, timeout: float, uri: str | None = None) -> Result:
        return self.runner.run(self._argv(*args, uri=uri), timeout=timeout, env={"LC_ALL": "C"})

    def canonical_uri(self, timeout: float = QUERY_TIMEOUT) -> str | None:
        res = self.run("uri", timeout=timeout)
        return res.out.strip() or None if res.ok else None

    def observe(self, name: str, timeout: float = QUERY_TIMEOUT, uri: str | None = None) -> Observed:
        """A libvirtd that does not answer in time is as unknown as one that is down (never "absent")."""
        try:
            return self._observe(name, timeout, uri)
        except CommandTimeout as exc:
            return Observed(Phase.UNKNOWN, str(exc))

    def _observe(self, name: str, timeout: float, uri: str | None) -> Observed:
        info = self.run("dominfo", name, timeout=timeout, uri=uri)
        if not info.ok:
            return Observed(virsh_failure(info.err), _last_line(info))
        first = observed_from_dominfo(parse_dominfo(info.out))
        if first.phase is not Phase.PAUSED:
            return first
        # Paused: only the reason tells a user's pause from a migration, and only the job tells which side.
        state = self.run("domstate", "--reason", name, timeout=timeout, uri=uri)
        if not state.ok:
            return Observed(virsh_failure(state.err), _last_line(state))
        raw, reason = parse_domstate(state.out)
        operation = ""
        if reason in ("migrating", "migration", "post-copy"):
            # The outgoing job shows on the source only; the target answers "not supported".
            job = self.run("domjobinfo", name, timeout=timeout, uri=uri)
            operation = job_operation(job.out) if job.ok else ""
        phase = classify_virsh(raw, reason, operation)
        detail = f"{raw} ({reason})" if reason else raw
        return Observed(phase, detail, first.vcpus, first.memory_mib, first.persistent)

    def create(self, config: str, timeout: float) -> Result:
        return self.run("create", config, timeout=timeout)

    def shutdown(self, name: str, mode: str | None, timeout: float) -> Result:
        return self.run("shutdown", name, *(["--mode", mode] if mode else []), timeout=timeout)

    def destroy(self, name: str, timeout: float) -> Result:
        return self.run("destroy", name, timeout=timeout)

    def resume(self, name: str, timeout: float) -> Result:
        return self.run("resume", name, timeout=timeout)

    def make_transient(self, name: str, timeout: float) -> Result | None:
        """Drop a persistent definition (a running domain keeps running): nothing can start it by itself."""
        return self.run("undefine", "--keep-nvram", name, timeout=timeout)

    def migrate(self, name: str, plan: Migration, timeout: float) -> Result:
        argv = ["migrate", "--live", *plan.options]
        if plan.bandwidth:
            argv += ["--bandwidth", str(plan.bandwidth)]
        if plan.migrate_uri:
            argv += ["--migrateuri", plan.migrate_uri]
        return self.run(*argv, name, plan.remote, timeout=timeout)

    def abort_migration(self, name: str, timeout: float) -> Result | None:
        return self.run("domjobabort", name, timeout=timeout)

    def observe_remote(self, name: str, remote: str, timeout: float) -> Observed | None:
        return self.observe(name, timeout=timeout, uri=remote)


class Xl:
    """The Xen toolstack. xl keeps no definitions, so every domain is transient already."""

    kind = "xl"

    def __init__(self, runner: Runner) -> None:
        self.runner = runner

    def run(self, *args: str, timeout: float) -> Result:
        return self.runner.run(["xl", *args], timeout=timeout, env={"LC_ALL": "C"})

    def observe(self, name: str, timeout: float = QUERY_TIMEOUT) -> Observed:
        res = self.run("list", timeout=timeout)
        if not res.ok:
            return Observed(Phase.UNKNOWN, _last_line(res))
        return classify_xl(parse_xl_list(res.out), name)

    def create(self, config: str, timeout: float) -> Result:
        return self.run("create", config, timeout=timeout)

    def shutdown(self, name: str, mode: str | None, timeout: float) -> Result:
        if mode == "acpi":  # HVM guests without PV drivers only see the power button
            return self.run("trigger", name, "power", timeout=timeout)
        return self.run("shutdown", name, timeout=timeout)

    def destroy(self, name: str, timeout: float) -> Result:
        # A domain caught in a migration has a suffixed name; destroy whichever copy exists.
        res = self.run("destroy", name, timeout=timeout)
        if res.ok:
            return res
        for other in (name + INCOMING_SUFFIX, name + MIGRATED_SUFFIX):
            again = self.run("destroy", other, timeout=timeout)
            if again.ok:
                return again
        return res

    def resume(self, name: str, timeout: float) -> Result:
        return self.run("unpause", name, timeout=timeout)

    def make_transient(self, name: str, timeout: float) -> Result | None:
        return None

    def migrate(self, name: str, plan: Migration, timeout: float) -> Result:
        return self.run("migrate", *plan.options, name, plan.remote, timeout=timeout)

    def abort_migration(self, name: str, timeout: float) -> Result | None:
        """A killed `xl migrate` may leave the source suspended under the migratedaway name: take it back."""
        rows = {r.name for r in parse_xl_list(self.run("list", timeout=timeout).out)}
        if name + MIGRATED_SUFFIX not in rows:
            return None
        renamed = self.run("rename", name + MIGRATED_SUFFIX, name, timeout=timeout)
        return self.run("unpause", name, timeout=timeout) if renamed.ok else renamed

    def observe_remote(self, name: str, remote: str, timeout: float) -> Observed | None:
        return None  # xl has no remote connection


def _last_line(res: Result) -> str:
    lines = (res.err.strip() or res.out.strip()).splitlines()
    return lines[-1] if lines else f"rc {res.rc}"


def describe_failure(res: Result, verb: str) -> str:
    return f"{verb} failed: {_last_line(res)}"
