# SPDX-License-Identifier: GPL-2.0-or-later
"""`tandem drbd-status`: format detection, stdin, this node's sources in order, and errors."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

from tandem.drbd import status_cli
from tandem.ocf.runner import CommandMissing, CommandTimeout, Result
from tests.conftest import LIB
from tests.fakes import RecordingRunner
from tests.unit.test_parse_fixtures import EXPECTED

SAMPLES = {
    "proc": "proc-drbd-8.3.6-syncsource.txt",
    "status": "status-9-syncsource-3node.GENERATED.txt",
    "json": "status-9-syncsource-3node.GENERATED.json",
    "events2": "events2-9-now-3node-2vol.GENERATED.txt",
}
JSON_CMD = ("drbdsetup", "status", "--json")
EVENTS2_CMD = ("drbdsetup", "events2", "--now")


@dataclass
class FakeRunner(RecordingRunner):
    """Answers each command with a canned Result or raises the given exception."""

    answers: Mapping[tuple[str, ...], Result | Exception]

    def answer(self, argv: tuple[str, ...], timeout: float) -> Result:
        answer = self.answers.get(argv, CommandMissing(f"{argv[0]}: not found"))
        if isinstance(answer, Exception):
            raise answer
        return answer


def ok(argv: tuple[str, ...], out: str) -> Result:
    return Result(argv, 0, out, "")


def failed(argv: tuple[str, ...], rc: int = 20, err: str = "Failed to modprobe drbd") -> Result:
    return Result(argv, rc, "", err + "\n")


def run_cli(
    capsys: pytest.CaptureFixture[str],
    argv: list[str],
    runner: FakeRunner | None = None,
    proc: Path = status_cli.PROC_DRBD,
) -> tuple[int, str, str]:
    rc = status_cli.main(argv, runner=runner, proc=proc)
    out, err = capsys.readouterr()
    return rc, out, err


@pytest.mark.parametrize("fmt", sorted(SAMPLES))
def test_file_format_is_detected(capsys: pytest.CaptureFixture[str], fixtures_dir: Path, fmt: str) -> None:
    rc, out, err = run_cli(capsys, [str(fixtures_dir / SAMPLES[fmt])])
    assert (rc, err) == (0, "")
    assert json.loads(out) == EXPECTED[SAMPLES[fmt]]


def test_explicit_format(capsys: pytest.CaptureFixture[str], fixtures_dir: Path) -> None:
    name = SAMPLES["events2"]
    rc, out, _ = run_cli(capsys, ["--format", "events2", str(fixtures_dir / name)])
    assert rc == 0
    assert json.loads(out) == EXPECTED[name]
    rc, out, _ = run_cli(capsys, ["--format=json", str(fixtures_dir / SAMPLES["json"])])
    assert json.loads(out)["format"] == "json"


def test_stdin(
    capsys: pytest.CaptureFixture[str], fixtures_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = (fixtures_dir / SAMPLES["status"]).read_bytes()
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data)))
    rc, out, _ = run_cli(capsys, ["-"])
    assert rc == 0
    assert json.loads(out) == EXPECTED[SAMPLES["status"]]


def test_wrong_format_is_one_line_naming_the_line(
    capsys: pytest.CaptureFixture[str], fixtures_dir: Path
) -> None:
    path = fixtures_dir / SAMPLES["status"]
    rc, out, err = run_cli(capsys, ["--format", "proc", str(path)])
    assert (rc, out) == (1, "")
    assert err.count("\n") == 1
    assert err.startswith(
        f"tandem drbd-status: {path}: not a /proc/drbd header line (line 1: 'r0 role:Primary')"
    )


def test_undecodable_bytes_are_a_parse_error(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = tmp_path / "garbage"
    path.write_bytes(b"\xff\xfe r0 role:\x00Primary\n")
    rc, _, err = run_cli(capsys, [str(path)])
    assert rc == 1
    assert "line 1" in err


@pytest.mark.parametrize(
    ("argv", "why"),
    [
        (["--format", "xml", "f"], "unknown format 'xml'"),
        (["--format"], "unknown format ''"),
        (["--verbose", "f"], "unknown option '--verbose'"),
        (["a", "b"], "only one FILE"),
        (["--format", "json"], "--format applies to a FILE"),
    ],
)
def test_usage_errors(capsys: pytest.CaptureFixture[str], argv: list[str], why: str) -> None:
    rc, out, err = run_cli(capsys, argv)
    assert (rc, out) == (2, "")
    assert why in err
    assert status_cli.USAGE in err


def test_help(capsys: pytest.CaptureFixture[str]) -> None:
    assert run_cli(capsys, ["--help"]) == (0, status_cli.USAGE + "\n", "")


def test_missing_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    rc, _, err = run_cli(capsys, [str(tmp_path / "nope")])
    assert rc == 1
    assert err == f"tandem drbd-status: {tmp_path / 'nope'}: No such file or directory\n"


# --- this node ----------------------------------------------------------------------------------
def test_local_prefers_json(capsys: pytest.CaptureFixture[str], fixtures_dir: Path, tmp_path: Path) -> None:
    runner = FakeRunner({JSON_CMD: ok(JSON_CMD, (fixtures_dir / SAMPLES["json"]).read_text())})
    rc, out, _ = run_cli(capsys, [], runner=runner, proc=tmp_path / "none")
    assert rc == 0
    assert json.loads(out) == EXPECTED[SAMPLES["json"]]
    assert runner.calls == [JSON_CMD]


def test_local_falls_back_to_events2(
    capsys: pytest.CaptureFixture[str], fixtures_dir: Path, tmp_path: Path
) -> None:
    # A DRBD 8.4 kernel: the 9 utils hand over to drbdsetup-84, which has no --json.
    runner = FakeRunner(
        {
            JSON_CMD: failed(JSON_CMD, 20, "status: unrecognized option '--json'"),
            EVENTS2_CMD: ok(
                EVENTS2_CMD, (fixtures_dir / "events2-8.4-now-2volumes-ug84-wrapped.txt").read_text()
            ),
        }
    )
    rc, out, _ = run_cli(capsys, [], runner=runner, proc=tmp_path / "none")
    assert rc == 0
    assert json.loads(out)["format"] == "events2"
    assert runner.calls == [JSON_CMD, EVENTS2_CMD]


def test_local_falls_back_to_proc(
    capsys: pytest.CaptureFixture[str], fixtures_dir: Path, tmp_path: Path
) -> None:
    proc = tmp_path / "drbd"
    proc.write_text((fixtures_dir / SAMPLES["proc"]).read_text())
    runner = FakeRunner({JSON_CMD: CommandTimeout("drbdsetup status --json timed out after 10.0s")})
    rc, out, _ = run_cli(capsys, [], runner=runner, proc=proc)
    assert rc == 0
    assert json.loads(out) == EXPECTED[SAMPLES["proc"]]
    assert runner.calls == [JSON_CMD, EVENTS2_CMD]


def test_local_nothing_answers(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    runner = FakeRunner({JSON_CMD: failed(JSON_CMD)})
    rc, out, err = run_cli(capsys, [], runner=runner, proc=tmp_path / "drbd")
    assert (rc, out) == (1, "")
    assert err == (
        "tandem drbd-status: cannot read the DRBD state of this node: "
        "drbdsetup status --json exited 20: Failed to modprobe drbd; drbdsetup: not found; "
        f"{tmp_path / 'drbd'}: No such file or directory\n"
    )


def test_local_output_that_does_not_parse(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    runner = FakeRunner({JSON_CMD: ok(JSON_CMD, '[{"name": "r0", "role": "Primery"}]\n')})
    rc, _, err = run_cli(capsys, [], runner=runner, proc=tmp_path / "drbd")
    assert rc == 1
    assert err == "tandem drbd-status: this node: --json resource 'r0'.role: unknown role 'Primery'\n"


# --- the installed entry point --------------------------------------------------------------------
def cli(*args: str, stdin: bytes = b"") -> subprocess.CompletedProcess[bytes]:
    env = {**os.environ, "PYTHONPATH": str(LIB)}
    return subprocess.run(
        [sys.executable, "-m", "tandem", "drbd-status", *args],
        input=stdin,
        capture_output=True,
        env=env,
        check=False,
    )


def test_command_line_end_to_end(fixtures_dir: Path) -> None:
    data = (fixtures_dir / SAMPLES["events2"]).read_bytes()
    done = cli("-", stdin=data)
    assert done.returncode == 0
    assert json.loads(done.stdout) == EXPECTED[SAMPLES["events2"]]
    bad = cli("-", stdin=data[: len(data) // 2])
    assert bad.returncode == 1
    assert bad.stdout == b""
    assert b"Traceback" not in bad.stderr
    assert bad.stderr.count(b"\n") == 1


def test_startup_stays_light() -> None:
    heavy = "('lxml', 'subprocess')"
    code = f"import sys, tandem.drbd.status_cli; print(sorted(m for m in {heavy} if m in sys.modules))"
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        env={**os.environ, "PYTHONPATH": str(LIB)},
        check=True,
    )
    assert done.stdout == b"[]\n"
