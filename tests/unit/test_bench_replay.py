# SPDX-License-Identifier: GPL-2.0-or-later
"""drbd-replay (bench/drbd_replay.c) and its recorder (bench/replay.py) agree: same hash, same file format."""

from __future__ import annotations

import subprocess
from pathlib import Path

from bench.replay import build, fnv1a, write_record


def test_replay_answers_exactly_the_recorded_command_line(tmp_path: Path) -> None:
    binary = build(tmp_path / "drbd-replay")
    (tmp_path / "drbdsetup").symlink_to(binary)
    records = tmp_path / "records"
    records.mkdir()
    write_record(records, ["drbdsetup", "status", "--json", "r0"], 0, b'[{"name":"r0"}]\n', b"")
    write_record(records, ["drbdsetup", "status", "--json", "r9"], 10, b"", b"r9: No such resource\n")
    env = {"TANDEM_REPLAY_DIR": str(records)}

    def run(*args: str) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run([str(tmp_path / "drbdsetup"), *args], env=env, capture_output=True, check=False)

    ok = run("status", "--json", "r0")
    assert (ok.returncode, ok.stdout, ok.stderr) == (0, b'[{"name":"r0"}]\n', b"")
    missing = run("status", "--json", "r9")
    assert (missing.returncode, missing.stdout, missing.stderr) == (10, b"", b"r9: No such resource\n")
    unknown = run("status", "--json")  # a prefix of a recorded line is another line
    assert unknown.returncode == 20 and b"no recording" in unknown.stderr


def test_the_hash_separates_arguments() -> None:
    assert fnv1a(["/usr/sbin/drbdadm", "sh-dev", "r0"]) == fnv1a(["drbdadm", "sh-dev", "r0"])
    assert fnv1a(["drbdadm", "sh-dev", "r0"]) != fnv1a(["drbdadm", "sh-devr0"])
    assert len(fnv1a(["drbdsetup"])) == 16
