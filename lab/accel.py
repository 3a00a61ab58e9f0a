# SPDX-License-Identifier: GPL-2.0-or-later
"""Which accelerator can really run the lab's guest: KVM where it works, else TCG.

An openable /dev/kvm is not enough. On these machines it is PVM (`/sys/module/kvm_pvm`), which runs only
PVM-aware Linux kernels natively: our guest was emulated at 1-2 MIPS and hung at its first IRET. So
the lab decides from the host's facts, and where they allow KVM it boots the guest under KVM once and
uses KVM only if the guest's heartbeat appears. TCG is the same libvirt and QEMU code path (real live
migration), only slower. `TANDEM_LAB_ACCEL=kvm|tcg` overrides; `python3 -m lab.accel` prints the choice.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Literal

Kind = Literal["kvm", "tcg"]


@dataclass(frozen=True)
class HostFacts:
    kvm_device: bool  # /dev/kvm exists and is read-write for us
    pvm: bool  # /dev/kvm comes from kvm_pvm
    vendor_modules: tuple[str, ...]  # kvm_intel / kvm_amd, i.e. hardware virtualisation


@dataclass(frozen=True)
class Accel:
    kind: Kind
    reason: str

    @property
    def domain_type(self) -> str:
        """libvirt's <domain type=...>."""
        return "kvm" if self.kind == "kvm" else "qemu"

    def describe(self) -> str:
        return f"accel: {self.kind} (<domain type='{self.domain_type}'>): {self.reason}"


def host_facts(sys_module: Path = Path("/sys/module"), dev: Path = Path("/dev/kvm")) -> HostFacts:
    return HostFacts(
        kvm_device=dev.exists() and os.access(dev, os.R_OK | os.W_OK),
        pvm=(sys_module / "kvm_pvm").exists(),
        vendor_modules=tuple(m for m in ("kvm_intel", "kvm_amd") if (sys_module / m).exists()),
    )


def decide(facts: HostFacts, override: str | None = None) -> Accel | None:
    """The choice the facts force, or None when only booting the guest under KVM can tell."""
    forced: dict[str | None, Kind] = {"kvm": "kvm", "tcg": "tcg"}
    if override in forced:
        return Accel(forced[override], f"forced by TANDEM_LAB_ACCEL={override}")
    if not facts.kvm_device:
        return Accel("tcg", "/dev/kvm is missing or not read-write")
    if facts.pvm:
        return Accel(
            "tcg",
            "/dev/kvm is PVM (kvm_pvm), which runs only PVM-aware Linux kernels natively; "
            "the guest would be emulated slowly and hang at its first interrupt",
        )
    if not facts.vendor_modules:
        return Accel("tcg", "/dev/kvm exists but neither kvm_intel nor kvm_amd is loaded")
    return None


def probe(accel: str = "kvm", timeout: float = 15.0) -> bool:
    """Boot the guest under `accel` with a bare QEMU; True when its second heartbeat appears in time."""
    from lab.guest.build import ensure_built
    from lab.guest.qemu import qemu_argv
    from lab.guest.serial import parse, read

    with tempfile.TemporaryDirectory(prefix="tandem-accel-") as tmp:
        serial = Path(tmp) / "serial.log"
        argv = qemu_argv(ensure_built(), serial, accel=accel, memory_mib=32, cmdline="fill_mb=1 dirty_kb=64")
        quiet = subprocess.DEVNULL
        proc = subprocess.Popen(argv, stdin=quiet, stdout=quiet, stderr=quiet)
        try:
            end = time.monotonic() + timeout
            while time.monotonic() < end and proc.poll() is None:
                if len(parse(read(serial)).heartbeats) >= 2:
                    return True
                time.sleep(0.1)
            return False
        finally:
            proc.kill()
            proc.wait()


@cache
def detect() -> Accel:
    """What this host's lab uses (probing at most once per process)."""
    chosen = decide(host_facts(), os.environ.get("TANDEM_LAB_ACCEL"))
    if chosen is not None:
        return chosen
    if probe("kvm"):
        return Accel("kvm", "the guest ran under KVM (probe booted it and saw its heartbeat)")
    return Accel("tcg", "KVM is present but the guest made no progress under it in the probe")


def main() -> int:
    print(detect().describe())
    return 0


if __name__ == "__main__":
    sys.exit(main())
