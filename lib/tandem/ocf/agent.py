# SPDX-License-Identifier: GPL-2.0-or-later
"""Action dispatch for an agent: argv/__OCF_ACTION, metadata, parameter checks, and mapping every way an
action can end (a code, an OcfError, a timeout, a missing tool, a bug) to the right OCF code and reason."""

from __future__ import annotations

import os
import sys
import time

from tandem import exit_now
from tandem.ocf.codes import OcfError, Rc
from tandem.ocf.deadline import Deadline, DeadlineExceeded
from tandem.ocf.env import Meta
from tandem.ocf.log import Logger
from tandem.ocf.params import Params
from tandem.ocf.runner import CommandMissing, ProcessRunner
from tandem.ocf.spec import AgentSpec
from tandem.record import NamedTuple

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence
    from typing import TextIO

    from tandem.ocf.runner import Runner

    Handler = Callable[["Context"], Rc]
    # For stop only: does a crashed stop still leave the thing positively stopped?
    StoppedCheck = Callable[["Context"], bool]


class Context(NamedTuple):
    """Everything a handler needs; built once per process."""

    spec: AgentSpec
    meta: Meta
    params: Params
    log: Logger
    deadline: Deadline
    runner: Runner
    env: Mapping[str, str] = {}

    @property
    def action(self) -> str:
        return self.meta.action


def usage(spec: AgentSpec) -> str:
    return f"usage: {spec.name} {{{'|'.join((*spec.action_names, 'usage'))}}}"


def find_action(argv: Sequence[str], env: Mapping[str, str]) -> str | None:
    """argv[1] wins; Pacemaker does not set __OCF_ACTION but ocf-tester and ocft do."""
    if len(argv) > 1:
        return argv[1]
    return env.get("__OCF_ACTION") or None


def run_agent(
    spec: AgentSpec,
    handlers: Mapping[str, Handler],
    *,
    argv: Sequence[str] | None = None,
    env: Mapping[str, str] | None = None,
    runner: Runner | None = None,
    stopped_check: StoppedCheck | None = None,
    out: TextIO | None = None,
) -> int:
    """Run one action and return its exit code. Never raises."""
    argv = sys.argv if argv is None else argv
    env = os.environ if env is None else env
    out = out or sys.stdout
    action = find_action(argv, env)
    if action == "meta-data":
        from tandem.ocf.metadata import build

        print(build(spec), file=out, end="")
        return Rc.SUCCESS
    if action in ("usage", "help", "-h", "--help"):
        print(usage(spec), file=out)
        return Rc.SUCCESS
    log = Logger.from_env(
        spec.name if not env.get("OCF_RESOURCE_INSTANCE") else f"{spec.name}({env['OCF_RESOURCE_INSTANCE']})",
        env,
    )
    if action is None:
        print(usage(spec), file=sys.stderr)
        return Rc.ERR_ARGS
    handler = handlers.get(action)
    if handler is None:
        log.exit_reason(f"action {action} is not implemented by {spec.name}")
        return Rc.ERR_UNIMPLEMENTED
    meta = Meta.from_env(action, env)
    timeout_s = meta.timeout_ms / 1000 if meta.timeout_ms else float(spec.timeout_of(action))
    deadline = Deadline.after(timeout_s)
    ctx = Context(
        spec=spec,
        meta=meta,
        params=Params.parse(spec.params, env),
        log=log,
        deadline=deadline,
        runner=runner or ProcessRunner(deadline, log=log),
        env=env,
    )
    started = time.monotonic()
    rc = _call(ctx, handler, stopped_check)
    elapsed = time.monotonic() - started
    label = "probe" if meta.is_probe else action
    if action == "monitor" and rc in (Rc.SUCCESS, Rc.RUNNING_PROMOTED, Rc.NOT_RUNNING):
        log.debug(f"{label}: {rc.ocf_name} in {elapsed:.2f}s")
    else:
        log.info(f"{label}: {rc.ocf_name} in {elapsed:.2f}s")
    return int(rc)


def _call(ctx: Context, handler: Handler, stopped_check: StoppedCheck | None) -> Rc:
    action, log = ctx.action, ctx.log
    try:
        if action != "stop":
            # stop must work on a resource whose configuration went bad; it reads parameters lazily.
            ctx.params.check()
        rc = handler(ctx)
        if not isinstance(rc, Rc):
            raise TypeError(f"handler for {action} returned {rc!r}, not an OCF code")
        return rc
    except OcfError as exc:
        log.exit_reason(exc.reason)
        return exc.rc
    except CommandMissing as exc:
        log.exit_reason(f"{exc} (is it installed?)")
        return Rc.ERR_INSTALLED
    except DeadlineExceeded as exc:
        return _after_crash(ctx, f"{action} ran out of time: {exc}", stopped_check)
    except Exception as exc:  # every bug must still end in a code Pacemaker can act on
        import traceback  # the crash path only

        for line in traceback.format_exc().rstrip().splitlines():
            log.error(line)
        return _after_crash(ctx, f"internal error in {action}: {type(exc).__name__}: {exc}", stopped_check)


def _after_crash(ctx: Context, reason: str, stopped_check: StoppedCheck | None) -> Rc:
    """An action that did not finish: success only for a stop whose result is positively verified.

    A probe never says "not running" here (it might be running), and any other action reports a soft error.
    """
    if ctx.action == "stop" and stopped_check is not None:
        try:
            if stopped_check(ctx):
                ctx.log.warning(f"{reason}; but the resource is verified stopped")
                return Rc.SUCCESS
        except Exception as exc:  # the check itself failed: we still do not know
            ctx.log.error(f"stop verification failed: {type(exc).__name__}: {exc}")
    ctx.log.exit_reason(reason)
    return Rc.ERR_GENERIC


def main(spec: AgentSpec, handlers: Mapping[str, Handler], stopped_check: StoppedCheck | None = None) -> None:
    """Run the action named on the command line and end the process with its code (tandem.exit_now)."""
    exit_now(run_agent(spec, handlers, stopped_check=stopped_check))
