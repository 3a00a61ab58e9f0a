# SPDX-License-Identifier: GPL-2.0-or-later
"""Fixtures for the lab tier: a real cluster per test module, always torn down, its logs kept on failure.

- `lab_config` (module): the LabConfig of the module's cluster. Override it in a test module to add nodes or
  install things into every node before the cluster starts, e.g.
      @pytest.fixture(scope="module")
      def lab_config(lab_defaults):
          return lab_defaults.with_hooks(binds=[("/path/fake-drbdsetup", "/usr/sbin/drbdsetup")])
- `lab` (module): the running Lab (see lab.cluster: wait_for, state, crm, cibadmin, run, logs ...).
- `cluster` (function): the same lab, made healthy first (links healed, nodes on and online).
- `vm_cluster(kind, lab_defaults, work, what)`: for a module's `module_cluster` fixture, a lab.scenarios
  cluster with DRBD and vm1 (VmCluster or a subclass) in /tmp/PREFIX-WORK, shared by the module's tests;
- `vc` (function): that cluster for one test; if the test fails, its logs go to tmp_path and the next test
  gets a fresh cluster, so that one failure does not fail the tests after it. `never_two_copies` and
  `no_constraints_left` check it.
Prefix and dir: TANDEM_LAB_PREFIX (default tlt) and TANDEM_LAB_DIR (default /tmp/PREFIX-lab). A lab left
behind by a crashed run with the same prefix is torn down before the next one starts.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from _pytest.terminal import TerminalReporter
from lab.cluster import Lab, LabConfig, teardown
from lab.scenarios import VmCluster

from lab import faults

TIMINGS: list[tuple[str, float]] = []
KEPT_LOGS: list[Path] = []


def pytest_terminal_summary(terminalreporter: TerminalReporter) -> None:
    if TIMINGS:
        terminalreporter.write_sep("-", "lab timings")
        for what, seconds in TIMINGS:
            terminalreporter.write_line(f"{what}: {seconds:.1f}s")
    for path in KEPT_LOGS:
        terminalreporter.write_line(f"lab logs of a failed test: {path}")


def record(what: str, seconds: float) -> None:
    """Note a duration for the lab timings summary (not an assertion: timings never fail a test)."""
    TIMINGS.append((what, seconds))


class ModuleCluster:
    """A module's `kind` cluster in /tmp/PREFIX-`work`, started when a test first needs it and again after
    a test failed on it (that cluster may be stuck in any state); its start recorded under `what`."""

    def __init__(self, kind: type[VmCluster], lab_defaults: LabConfig, work: str, what: str) -> None:
        self.kind, self.lab_defaults, self.work, self.what = kind, lab_defaults, work, what
        self.running = contextlib.ExitStack()
        self.cluster: VmCluster | None = None

    @contextlib.contextmanager
    def for_test(self, request: pytest.FixtureRequest, logs: Path) -> Iterator[VmCluster]:
        if self.cluster is None:
            work = Path(f"/tmp/{self.lab_defaults.prefix}-{self.work}")
            self.cluster = self.running.enter_context(self.kind.start(self.lab_defaults, work, print))
            record(f"{self.what}: cluster with DRBD and vm1 ready", time.monotonic() - self.cluster.t0)
        failures = request.session.testsfailed
        yield self.cluster
        if request.session.testsfailed > failures:  # the call's report is in before teardown starts
            KEPT_LOGS.append(self.cluster.collect(logs))
            self.close()

    def close(self) -> None:
        self.cluster = None
        self.running.close()


@contextlib.contextmanager
def vm_cluster(
    kind: type[VmCluster], lab_defaults: LabConfig, work: str, what: str
) -> Iterator[ModuleCluster]:
    """The module's shared cluster (see ModuleCluster), always torn down at the module's end."""
    shared = ModuleCluster(kind, lab_defaults, work, what)
    try:
        yield shared
    finally:
        shared.close()


@pytest.fixture(scope="module")
def module_cluster() -> ModuleCluster:
    pytest.fail("a lab module that uses `vc` defines a module_cluster fixture (see vm_cluster)")


@pytest.fixture
def vc(module_cluster: ModuleCluster, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[VmCluster]:
    with module_cluster.for_test(request, tmp_path / "lab-logs") as cluster:
        yield cluster


def never_two_copies(vc: VmCluster) -> None:
    assert vc.observer is not None
    vc.observer.check()
    doubles = vc.observer.doubles(vc.migration_windows)
    assert doubles == [], f"two QEMUs of vm1 outside the migration windows: {doubles[:3]}"
    assert len(vc.observer.samples) > 10  # the sampler really ran


def no_constraints_left(vc: VmCluster) -> None:
    assert vc.constraints() == []


@contextlib.contextmanager
def emulated_drbd_vm_lab(
    base: LabConfig, emu_dir: Path, minor: int, resync_kib_s: float | None = None
) -> Iterator[LabConfig]:
    """`base` with r0 (allow-two-primaries, /dev/drbdMINOR) UpToDate on both nodes as after the initial sync,
    the DRBD emulator and libvirtd in every node; once the lab is down, the emulator's loop devices and state
    go too."""
    from lab.drbd_emu.devices import detach_loops
    from lab.drbd_emu.install import lab_hooks
    from lab.drbd_emu.setup import fresh_dir, initial_sync, two_node_conf
    from lab.libvirt import boot_hook

    fresh_dir(emu_dir)
    conf = emu_dir / "drbd.conf"
    conf.write_text(two_node_conf(net=base.net, minor=minor, dual=True))
    initial_sync(emu_dir, conf, resync_kib_s=resync_kib_s)
    yield base.with_hooks(**lab_hooks(emu_dir, conf)).with_hooks(boot=[boot_hook()])  # type: ignore[arg-type]
    detach_loops(emu_dir)
    shutil.rmtree(emu_dir, ignore_errors=True)


@pytest.fixture(scope="module")
def lab_defaults() -> LabConfig:
    # a fenced node stays off 5 s: one back within a second hears of its own fencing and stays down
    # ("We were allegedly just fenced"), as CI saw once after test_cluster's stonith_admin --reboot
    return LabConfig.from_env(prefix=os.environ.get("TANDEM_LAB_PREFIX", "tlt"), reboot_delay=5.0)


@pytest.fixture(scope="module")
def lab_config(lab_defaults: LabConfig) -> LabConfig:
    return lab_defaults


@pytest.fixture(scope="module")
def lab(lab_config: LabConfig, request: pytest.FixtureRequest) -> Iterator[Lab]:
    if os.geteuid() != 0:
        pytest.fail("the lab tier needs root (namespaces)")
    teardown(lab_config)
    the_lab = Lab(lab_config)
    took = the_lab.up()
    record(f"{request.module.__name__}: up {lab_config.nodes} nodes", took)
    try:
        yield the_lab
    finally:
        record(f"{request.module.__name__}: down", the_lab.down())


@pytest.fixture
def cluster(lab: Lab, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Lab]:
    """The module's lab, healthy when the test starts; its logs go to tmp_path if the test fails."""
    faults.heal(lab)
    faults.unslow(lab)
    lab.power_all("on", [n for n in lab.nodes if not n.is_on()])
    lab.wait_online()
    t0 = time.monotonic()
    failures = request.session.testsfailed
    yield lab
    if request.session.testsfailed > failures:  # the call's report is in before teardown starts
        KEPT_LOGS.append(lab.collect_logs(tmp_path / "lab-logs"))
    record(f"{request.node.name}", time.monotonic() - t0)
