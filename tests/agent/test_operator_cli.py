# SPDX-License-Identifier: GPL-2.0-or-later
"""`tandem status` and `tandem can-migrate` as real processes on the system python, on this host: it is no
cluster node (the lab's nodes run Pacemaker in their own namespaces), so both must say so in one line."""

from __future__ import annotations

import subprocess

import pytest

from tests.conftest import LIB


def tandem(*args: str, path: str = "/usr/sbin:/usr/bin:/sbin:/bin") -> subprocess.CompletedProcess[str]:
    env = {"PATH": path, "PYTHONPATH": str(LIB), "LC_ALL": "C"}
    return subprocess.run(
        ["/usr/bin/python3", "-m", "tandem", *args], capture_output=True, text=True, env=env, timeout=60
    )


@pytest.mark.parametrize("args", [("status",), ("status", "--json"), ("can-migrate", "vm1", "node2")])
def test_outside_a_cluster_one_line_and_exit_1(args: tuple[str, ...]) -> None:
    done = tandem(*args)
    assert (done.returncode, done.stdout) == (1, "")
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr
    assert done.stderr.startswith(f"tandem {args[0]}: crm_node -n exited ")
    assert done.stderr.endswith("is this a cluster node with Pacemaker running?\n")


def test_without_pacemaker_tools(tmp_path) -> None:
    done = tandem("status", path=str(tmp_path))
    assert (done.returncode, done.stdout) == (1, "")
    assert done.stderr == "tandem status: crm_node is not installed: run this on a Pacemaker cluster node\n"


def test_usage_errors_exit_2() -> None:
    done = tandem("can-migrate", "vm1")
    assert done.returncode == 2 and "usage: tandem can-migrate" in done.stderr
