# SPDX-License-Identifier: GPL-2.0-or-later
"""The OCF framework: codes, parameters, meta/notify environment, deadlines, logging, exception mapping."""

from __future__ import annotations

import io
import re
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tandem.domain.config import NAME
from tandem.domain.storage import RESOURCE
from tandem.ocf import (
    ActionSpec,
    AgentSpec,
    CommandMissing,
    Context,
    Deadline,
    DeadlineExceeded,
    Kind,
    Logger,
    Meta,
    OcfError,
    Param,
    Params,
    Rc,
    Result,
    run_agent,
)
from tandem.ocf.deadline import LATE_IN_SECOND, until_late_in_second, until_next_second
from tandem.ocf.params import ALNUM, DIGITS, LOWER, Chars, parse_bool, parse_int, parse_seconds, parse_words

if TYPE_CHECKING:
    from tandem.ocf.agent import Handler

SPEC = AgentSpec(
    name="sample",
    version="0.1",
    shortdesc="a sample agent",
    longdesc='Exercises the framework; <escaped> & "quoted".',
    params=(
        Param(
            "name",
            "the name",
            "Which thing.",
            required=True,
            unique=True,
            chars=Chars(LOWER + DIGITS, LOWER + DIGITS),
        ),
        Param(
            "count",
            "a count",
            "How many.",
            Kind.INTEGER,
            default="3",
            check=lambda v: None if v > 0 else "must be > 0",
        ),
        Param("flag", "a flag", "On or off.", Kind.BOOLEAN, default="false"),
        Param("wait", "a wait", "How long.", Kind.SECONDS, default="30s"),
        Param("mode", "a mode", "Which mode.", Kind.CHOICE, default="fast", choices=("fast", "safe")),
        Param("peers", "peers", "Node names.", Kind.WORDS),
    ),
    actions=(
        ActionSpec("start", 60),
        ActionSpec("stop", 30),
        ActionSpec("monitor", 20, interval=10, role="Unpromoted"),
        ActionSpec("monitor", 20, interval=9, role="Promoted"),
        ActionSpec("validate-all", 5),
        ActionSpec("meta-data", 5),
    ),
)


def recording(calls: list[str]) -> Handler:
    def handler(ctx: Context) -> Rc:
        calls.append(ctx.action)
        return Rc.SUCCESS

    return handler


def run(action: str, handlers=None, env=None, stopped_check=None, **kw):
    environment = {"OCF_RESKEY_name": "abc", **(env or {})}
    err = io.StringIO()
    out = io.StringIO()
    import sys

    old = sys.stderr
    sys.stderr = err
    try:
        rc = run_agent(
            SPEC,
            handlers or {},
            argv=["sample", action],
            env=environment,
            stopped_check=stopped_check,
            out=out,
            **kw,
        )
    finally:
        sys.stderr = old
    return rc, out.getvalue(), err.getvalue()


# --- exit codes -------------------------------------------------------------------------------------------


def test_codes_are_ocf_1_1() -> None:
    assert [int(c) for c in Rc] == [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 190, 191]
    assert Rc.RUNNING_PROMOTED.ocf_name == "OCF_RUNNING_PROMOTED"
    assert int(Rc.DEGRADED_PROMOTED) == 191


# --- dispatch ---------------------------------------------------------------------------------------------


def test_unknown_action_is_unimplemented() -> None:
    rc, _, err = run("frobnicate")
    assert rc == Rc.ERR_UNIMPLEMENTED
    assert "ocf-exit-reason:action frobnicate is not implemented" in err


def test_action_from_ocf_action_variable() -> None:
    seen: list[str] = []
    rc = run_agent(
        SPEC,
        {"start": recording(seen)},
        argv=["sample"],
        env={"__OCF_ACTION": "start", "OCF_RESKEY_name": "x"},
    )
    assert (rc, seen) == (0, ["start"])


def test_no_action_is_a_usage_error(capsys) -> None:
    assert run_agent(SPEC, {}, argv=["sample"], env={}) == Rc.ERR_ARGS
    assert "usage: sample" in capsys.readouterr().err


def test_usage_and_help() -> None:
    for word in ("usage", "help"):
        rc, out, _ = run(word)
        assert rc == 0 and out.startswith("usage: sample {start|stop|monitor|validate-all|meta-data|usage}")


def test_handler_sees_typed_params_and_meta() -> None:
    got: dict[str, Any] = {}

    def start(ctx: Context) -> Rc:
        p = ctx.params
        got.update(
            count=p.integer("count"),
            flag=p.flag("flag"),
            wait=p.seconds("wait"),
            mode=p.text("mode"),
            peers=p.words("peers"),
            timeout=ctx.meta.timeout_ms,
            left=ctx.deadline.remaining(),
        )
        return Rc.SUCCESS

    env = {
        "OCF_RESKEY_count": "7",
        "OCF_RESKEY_flag": "yes",
        "OCF_RESKEY_wait": "2min",
        "OCF_RESKEY_peers": "a, b c",
        "OCF_RESKEY_CRM_meta_timeout": "90000",
    }
    assert run("start", {"start": start}, env)[0] == 0
    assert got["count"] == 7 and got["flag"] is True and got["wait"] == 120.0 and got["mode"] == "fast"
    assert got["peers"] == ("a", "b", "c") and got["timeout"] == 90000
    assert 85 < got["left"] <= 89.5


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"OCF_RESKEY_name": ""}, "parameter name is required"),
        ({"OCF_RESKEY_name": "Bad Name;rm"}, "parameter name: 'Bad Name;rm' has characters"),
        ({"OCF_RESKEY_count": "x"}, "parameter count: 'x' is not an integer"),
        ({"OCF_RESKEY_count": "0"}, "parameter count: must be > 0"),
        ({"OCF_RESKEY_flag": "maybe"}, "parameter flag: 'maybe' is not a boolean"),
        ({"OCF_RESKEY_wait": "soon"}, "parameter wait: 'soon' is not a duration"),
        ({"OCF_RESKEY_mode": "slow"}, "parameter mode: 'slow' is not one of fast, safe"),
    ],
)
def test_bad_parameters_are_err_configured_with_reason(env, message) -> None:
    called: list[str] = []
    rc, _, err = run("start", {"start": recording(called)}, env)
    assert rc == Rc.ERR_CONFIGURED and not called
    assert f"ocf-exit-reason:{message}" in err
    assert "Traceback" not in err


def test_stop_runs_despite_a_bad_parameter_and_fails_only_when_it_uses_it() -> None:
    env = {"OCF_RESKEY_count": "x"}
    assert run("stop", {"stop": lambda c: Rc.SUCCESS}, env)[0] == Rc.SUCCESS
    assert run("stop", {"stop": lambda c: Rc(c.params.integer("count"))}, env)[0] == Rc.ERR_CONFIGURED


def test_validate_all_checks_parameters() -> None:
    rc, _, err = run("validate-all", {"validate-all": lambda c: Rc.SUCCESS}, {"OCF_RESKEY_flag": "2"})
    assert rc == Rc.ERR_CONFIGURED and "flag" in err


@pytest.mark.parametrize("word", ["1", "yes", "true", "on", "Y", "TRUE", "On", "ja", "JA", "Yes"])
def test_true_words(word: str) -> None:
    assert parse_bool(word) is True


@pytest.mark.parametrize("word", ["0", "no", "false", "off", "N", "False"])
def test_false_words(word: str) -> None:
    assert parse_bool(word) is False


@pytest.mark.parametrize(
    ("raw", "seconds"), [("30", 30), ("30s", 30), ("500ms", 0.5), ("2min", 120), ("1h", 3600)]
)
def test_durations(raw: str, seconds: float) -> None:
    assert parse_seconds(raw) == seconds


def outcome(parse: Any, raw: str) -> object:
    try:
        return parse(raw)
    except ValueError:
        return ValueError


# The agents parse without `re` (its import costs a monitor milliseconds); these were the regexes.
DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|msec|s|sec|m|min|h|hr)?\s*$", re.IGNORECASE)
UNITS = {"ms": 0.001, "msec": 0.001, "s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600, "hr": 3600}
TEXTS = st.text(alphabet=" \t,.+-_0123456789smecinhrSMECINHR\u0663x") | st.text()


def by_regex(raw: str) -> float:
    match = DURATION.match(raw)
    if not match:
        raise ValueError(raw)
    return float(match.group(1)) * UNITS[(match.group(2) or "s").lower()]


@given(TEXTS)
def test_durations_parse_as_the_regex_did(raw: str) -> None:
    assert outcome(parse_seconds, raw) == outcome(by_regex, raw)


@given(TEXTS)
def test_integers_and_words_parse_as_the_regexes_did(raw: str) -> None:
    def int_by_regex(text: str) -> int:
        if not re.fullmatch(r"[-+]?\d+", text.strip()):
            raise ValueError(text)
        return int(text.strip())

    assert outcome(parse_int, raw) == outcome(int_by_regex, raw)
    assert parse_words(raw) == tuple(w for w in re.split(r"[\s,]+", raw.strip()) if w)


@pytest.mark.parametrize(
    ("chars", "pattern"),
    [
        (Chars(ALNUM + "_", ALNUM + "_-.:=@%+", 128), r"[A-Za-z0-9_][-A-Za-z0-9_.:=@%+]{0,127}"),
        (Chars("/", ALNUM + "-_.:=@%+/"), r"/[-A-Za-z0-9_.:=@%+/]*"),
        (Chars(LOWER + "_", LOWER + DIGITS + "_-", 32, empty=True), r"([a-z_][a-z0-9_-]{0,31})?"),
        (Chars(ALNUM + "._-", ALNUM + "._-", 63, empty=True), r"[A-Za-z0-9._-]{0,63}"),
        (NAME, r"[A-Za-z0-9][A-Za-z0-9_.+-]{0,63}"),
        (RESOURCE, r"[A-Za-z0-9][A-Za-z0-9_.+-]{0,127}"),
    ],
)
@given(raw=st.text(alphabet=ALNUM[:3] + ALNUM[-3:] + "_-.:=@%+/ é\n", max_size=140) | st.text())
def test_spellings_allow_what_the_regexes_allowed(chars: Chars, pattern: str, raw: str) -> None:
    assert chars.allows(raw) == bool(re.fullmatch(pattern, raw))


@given(st.text())
def test_parameter_parsing_never_raises_anything_but_configured(raw: str) -> None:
    for decl in SPEC.params:
        params = Params.parse((decl,), {f"OCF_RESKEY_{decl.name}": raw})
        try:
            params.get(decl.name)
        except OcfError as exc:
            assert exc.rc == Rc.ERR_CONFIGURED
            assert exc.reason.startswith(f"parameter {decl.name}")


# --- exception mapping ------------------------------------------------------------------------------------


def boom(ctx: Context) -> Rc:
    raise RuntimeError("kaputt")


def test_bug_in_start_is_generic_error_with_reason_not_traceback_on_stdout() -> None:
    rc, out, err = run("start", {"start": boom})
    assert rc == Rc.ERR_GENERIC
    assert "ocf-exit-reason:internal error in start: RuntimeError: kaputt" in err
    assert out == ""


def test_bug_in_probe_never_says_not_running() -> None:
    rc, _, _ = run("monitor", {"monitor": boom}, {"OCF_RESKEY_CRM_meta_interval": "0"})
    assert rc == Rc.ERR_GENERIC


def test_bug_in_stop_succeeds_only_when_verified_stopped() -> None:
    assert run("stop", {"stop": boom}, stopped_check=lambda c: True)[0] == Rc.SUCCESS
    assert run("stop", {"stop": boom}, stopped_check=lambda c: False)[0] == Rc.ERR_GENERIC
    assert run("stop", {"stop": boom})[0] == Rc.ERR_GENERIC

    def broken_check(ctx: Context) -> bool:
        raise OSError("no")

    assert run("stop", {"stop": boom}, stopped_check=broken_check)[0] == Rc.ERR_GENERIC


def test_ocf_error_keeps_its_code_and_reason() -> None:
    def promote(ctx: Context) -> Rc:
        raise OcfError(Rc.ERR_GENERIC, "no UpToDate data\nsecond line")

    rc, _, err = run("start", {"start": promote})
    assert rc == 1 and "ocf-exit-reason:no UpToDate data second line\n" in err


def test_missing_command_is_not_installed() -> None:
    def start(ctx: Context) -> Rc:
        raise CommandMissing("drbdadm: not found")

    rc, _, err = run("start", {"start": start})
    assert rc == Rc.ERR_INSTALLED and "drbdadm: not found" in err


def test_deadline_exceeded_is_a_soft_error() -> None:
    def start(ctx: Context) -> Rc:
        raise DeadlineExceeded("no time left")

    rc, _, err = run("start", {"start": start})
    assert rc == Rc.ERR_GENERIC and "start ran out of time" in err


def test_a_handler_returning_a_plain_value_is_a_bug() -> None:
    assert run("start", {"start": lambda c: None})[0] == Rc.ERR_GENERIC


def test_exit_reason_prefix_is_honoured() -> None:
    rc, _, err = run("frobnicate", env={"OCF_EXIT_REASON_PREFIX": "REASON>"})
    assert rc == Rc.ERR_UNIMPLEMENTED
    assert err.startswith("REASON>action frobnicate")


# --- meta and notify environment --------------------------------------------------------------------------


def test_meta_for_a_promotable_clone() -> None:
    env = {
        "OCF_RESOURCE_INSTANCE": "drbd-r0:1",
        "OCF_RESKEY_CRM_meta_clone": "1",
        "OCF_RESKEY_CRM_meta_clone_max": "2",
        "OCF_RESKEY_CRM_meta_clone_node_max": "1",
        "OCF_RESKEY_CRM_meta_promoted_max": "2",
        "OCF_RESKEY_CRM_meta_promoted_node_max": "1",
        "OCF_RESKEY_CRM_meta_notify": "true",
        "OCF_RESKEY_CRM_meta_interval": "10000",
        "OCF_RESKEY_CRM_meta_on_node": "node1",
    }
    meta = Meta.from_env("monitor", env)
    assert (meta.resource, meta.clone, meta.clone_max, meta.promoted_max, meta.promoted_node_max) == (
        "drbd-r0",
        "1",
        2,
        2,
        1,
    )
    assert meta.notify_enabled and meta.is_clone and not meta.is_probe and meta.on_node == "node1"


def test_legacy_master_max() -> None:
    meta = Meta.from_env(
        "start", {"OCF_RESKEY_CRM_meta_master_max": "2", "OCF_RESKEY_CRM_meta_master_node_max": "1"}
    )
    assert (meta.promoted_max, meta.promoted_node_max) == (2, 1)


@pytest.mark.parametrize(
    ("env", "probe"),
    [
        ({}, True),
        ({"OCF_RESKEY_CRM_meta_interval": "0"}, True),
        ({"OCF_RESKEY_CRM_meta_interval": "20000"}, False),
    ],
)
def test_probe_detection(env, probe) -> None:
    assert Meta.from_env("monitor", env).is_probe is probe
    assert Meta.from_env("start", env).is_probe is False


def notify_env(names: str) -> dict[str, str]:
    prefix = "OCF_RESKEY_CRM_meta_notify_"
    env = {
        prefix + "type": "post",
        prefix + "operation": "promote",
        prefix + "promote_uname": "node2 ",
        prefix + "start_uname": "",
        prefix + "active_uname": "node1 node2",
        prefix + "all_uname": "node1 node2",
    }
    if names in ("new", "both"):
        env |= {prefix + "promoted_uname": "node1", prefix + "unpromoted_uname": "node2"}
    if names in ("old", "both"):
        env |= {prefix + "master_uname": "node1 stale", prefix + "slave_uname": "node2 stale"}
    return env


def test_notify_type_and_operation() -> None:
    notify = Meta.from_env("notify", notify_env("both")).notify
    assert notify is not None and notify.key == "post-promote"


def test_no_notify_outside_notify_action() -> None:
    assert Meta.from_env("monitor", notify_env("new")).notify is None
    assert Meta.from_env("notify", {}).notify is None


# --- deadlines --------------------------------------------------------------------------------------------


def test_deadline_budgets() -> None:
    deadline = Deadline.after(10, now=100.0)
    assert deadline.remaining(now=100.0) == pytest.approx(9.5)
    assert Deadline.after(10).budget(3, keep=0) == 3
    assert Deadline.after(10).budget(keep=2) < 7.5
    far = Deadline(end=1e18)
    assert far.budget(5, keep=2) == 5
    past = Deadline(end=0.0)
    with pytest.raises(DeadlineExceeded):
        past.budget(5)
    assert past.expired()


@given(st.floats(min_value=1e9, max_value=2e9), st.floats(min_value=0.0, max_value=5.0))
def test_an_action_can_end_late_in_its_second_within_its_time(wall: float, left: float) -> None:
    """tandem-17015: a failed migrate_to ends late in its wall-clock second, so that Pacemaker's stop on
    the target, right after it, is stamped in a later second."""
    wait = until_late_in_second(wall, left)
    assert 0.0 <= wait <= left
    if wait < left:
        assert (wall + wait) % 1.0 >= LATE_IN_SECOND - 1e-6 or wall % 1.0 >= LATE_IN_SECOND
    assert until_late_in_second(100.2, 5.0) == pytest.approx(0.75)
    assert until_late_in_second(100.97, 5.0) == 0.0


@given(st.floats(min_value=1e9, max_value=2e9), st.floats(min_value=0.0, max_value=3.0), st.floats(0.0, 5.0))
def test_a_successful_action_can_end_in_a_later_second_than_it_began(
    began: float, took: float, left: float
) -> None:
    """A fast migrate_to ends in a later wall-clock second than Pacemaker stamps it with (its start), so
    that a stop on its target right after it is not taken as older (the controller-crash ghost)."""
    now = began + took
    wait = until_next_second(began, now, left)
    assert 0.0 <= wait <= max(left, 0.0)
    if wait < left:
        assert int(now + wait) > int(began)
    assert until_next_second(100.2, 100.5, 5.0) == pytest.approx(0.51)
    assert until_next_second(100.2, 101.3, 5.0) == 0.0


def test_runner_caps_timeouts_by_the_deadline() -> None:
    from tandem.ocf import CommandTimeout, ProcessRunner

    runner = ProcessRunner(Deadline.after(1.5))
    with pytest.raises(CommandTimeout):
        runner.run(["sleep", "5"], timeout=30)
    result = ProcessRunner().run(["sh", "-c", "echo out; echo err >&2; exit 3"])
    assert result == Result(("sh", "-c", "echo out; echo err >&2; exit 3"), 3, "out\n", "err\n")
    assert result.describe().endswith("exited 3: err")
    with pytest.raises(CommandMissing):
        ProcessRunner().run(["/nonexistent/tool"])


def test_runner_kills_the_whole_process_group_at_the_timeout(tmp_path: Path) -> None:
    """drbdadm runs drbdsetup, virsh may run ssh: a grandchild must not outlive the timeout either."""
    from tandem.ocf import CommandTimeout, ProcessRunner

    pidfile = tmp_path / "grandchild"
    with pytest.raises(CommandTimeout):
        ProcessRunner().run(["sh", "-c", f"sleep 30 & echo $! > {pidfile}; wait"], timeout=0.5)
    pid = int(pidfile.read_text())
    for _ in range(50):  # the grandchild was reparented to init, which reaps it once killed
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except FileNotFoundError:
            break
        if stat.rpartition(")")[2].split()[0] == "Z":
            break
        time.sleep(0.05)
    else:
        pytest.fail(f"grandchild {pid} still runs after the timeout")


def test_runner_logs_each_command_at_debug(tmp_path: Path) -> None:
    from tandem.ocf import ProcessRunner

    logfile = tmp_path / "debug.log"
    log = Logger.from_env("t", {"HA_debug": "1", "HA_LOGFILE": str(logfile)})
    ProcessRunner(log=log).run(["sh", "-c", "echo one >&2; echo the tail >&2; exit 4"])
    line = logfile.read_text().strip()
    assert "DEBUG: ran sh -c echo one >&2; echo the tail >&2; exit 4: rc 4 in " in line
    assert line.endswith("s, stderr: one the tail")


def test_runner_passes_input_and_env() -> None:
    from tandem.ocf import ProcessRunner

    result = ProcessRunner().run(["sh", "-c", 'cat; echo "$X"'], input="in\n", env={"X": "y"})
    assert result.out == "in\ny\n"


def test_a_started_command_runs_while_the_caller_works(tmp_path: Path) -> None:
    """fence-peer's CIB query runs while the handler reads DRBD's state: the command is under way before
    the caller waits for it, and its timeout counts from its start."""
    from tandem.ocf import CommandTimeout, ProcessRunner

    marker = tmp_path / "ran"
    wait = ProcessRunner().start(["sh", "-c", f"touch {marker}; echo done"], timeout=30)
    for _ in range(600):  # nobody waits for it yet
        if marker.exists():
            break
        time.sleep(0.05)
    assert marker.exists(), "the started command did not run before its result was asked for"
    result = wait()
    assert (result.rc, result.out) == (0, "done\n")
    with pytest.raises(RuntimeError, match="collected already"):
        wait()
    running = ProcessRunner().start(["sleep", "30"], timeout=2)
    time.sleep(2.5)
    t0 = time.monotonic()
    with pytest.raises(CommandTimeout):
        running()  # its 2 s ran from its start: killed at once, not 2 s from now
    assert time.monotonic() - t0 < 1.0
    done = ProcessRunner().start(["echo", "in time"], timeout=0.5)
    time.sleep(1.0)
    assert done().out == "in time\n"  # exited in time, collected late: not a timeout


# --- logging ----------------------------------------------------------------------------------------------


def test_ha_debug_zero_is_off(tmp_path: Path) -> None:
    logfile = tmp_path / "ha.log"
    for value, expected in (("0", False), ("1", True), ("false", False), ("yes", True), ("", False)):
        log = Logger.from_env("t", {"HA_debug": value, "HA_LOGFILE": str(logfile)})
        assert log.debug_on is expected
    log = Logger.from_env("t", {"HA_debug": "0", "HA_LOGFILE": str(logfile)})
    log.debug("hidden")
    log.info("shown")
    text = logfile.read_text()
    assert "hidden" not in text and "t[" in text and "INFO: shown" in text


def test_debug_log_file_gets_debug(tmp_path: Path) -> None:
    log = Logger.from_env(
        "t", {"HA_debug": "1", "HA_DEBUGLOG": str(tmp_path / "d.log"), "HA_LOGFILE": str(tmp_path / "l.log")}
    )
    log.debug("dbg")
    log.info("inf")
    assert "dbg" in (tmp_path / "d.log").read_text() and "dbg" in (tmp_path / "l.log").read_text()
    assert "inf" not in (tmp_path / "d.log").read_text()


def test_syslog_facility(monkeypatch) -> None:
    import syslog

    calls = []
    monkeypatch.setattr(syslog, "openlog", lambda *a: calls.append(("open", *a)))
    monkeypatch.setattr(syslog, "syslog", lambda *a: calls.append(("log", *a)))
    log = Logger.from_env("drbd", {"HA_LOGFACILITY": "daemon"})
    log.warning("careful")
    assert calls == [("open", "drbd", syslog.LOG_PID, syslog.LOG_DAEMON), ("log", 4, "WARNING: careful")]
    assert Logger.from_env("x", {"HA_LOGFACILITY": "none"}).facility is None


def test_stream_when_interactive() -> None:
    stream = io.StringIO()
    log = Logger.from_env("t", {}, stream=stream)
    log.error("bad")
    assert "ERR: bad" in stream.getvalue()


def test_unwritable_log_file_never_fails_the_action() -> None:
    Logger.from_env("t", {"HA_LOGFILE": "/nonexistent/dir/x.log"}).info("still fine")
