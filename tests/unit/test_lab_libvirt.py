# SPDX-License-Identifier: GPL-2.0-or-later
"""Pure pieces of the lab's libvirt set-up and its accelerator choice."""

from __future__ import annotations

from pathlib import Path

import pytest
from lab.libvirt import GuestSpec, domain_xml, host_uuid, libvirtd_conf, parse_jobinfo, qemu_conf
from lxml import etree

from lab import accel


def test_host_uuids_are_stable_and_distinct() -> None:
    names = [f"node{i}" for i in range(1, 5)]
    assert len({host_uuid(n) for n in names}) == len(names)
    assert host_uuid("node1") == host_uuid("node1")


def test_daemon_config_listens_only_on_the_node_address() -> None:
    conf = libvirtd_conf("10.20.0.1", "node1")
    assert 'listen_addr = "10.20.0.1"' in conf
    assert f'host_uuid = "{host_uuid("node1")}"' in conf
    assert "listen_tls = 0" in conf
    q = qemu_conf("10.20.0.1")
    assert 'migration_host = "10.20.0.1"' in q
    assert 'stdio_handler = "file"' in q  # no virtlogd


def test_domain_xml_has_a_shared_storage_disk() -> None:
    spec = GuestSpec("vm1", Path("/k.elf"), Path("/tmp/lab/vm1.serial"), "/dev/drbd0", memory_mib=48)
    dom = etree.fromstring(domain_xml(spec, "qemu").encode())
    assert dom.get("type") == "qemu"
    assert dom.findtext("name") == "vm1"
    assert dom.findtext("memory") == "48"
    assert dom.findtext("os/kernel") == "/k.elf"
    drv = dom.find("devices/disk/driver")
    assert drv is not None and drv.get("cache") == "none" and drv.get("type") == "raw"
    assert dom.find("devices/disk/source").get("dev") == "/dev/drbd0"  # type: ignore[union-attr]
    assert dom.find("devices/serial/source").get("append") == "on"  # type: ignore[union-attr]
    assert dom.find("features/acpi") is not None


def test_domain_xml_without_a_disk() -> None:
    dom = etree.fromstring(domain_xml(GuestSpec("vm1", Path("/k"), Path("/s")), "kvm").encode())
    assert dom.get("type") == "kvm"
    assert dom.find("devices/disk") is None


JOBINFO = """\
Job type:         Completed
Operation:        Incoming migration
Time elapsed:     153          ms
Time elapsed w/o network: 152          ms
Data processed:   24.613 MiB
Data remaining:   0.000 B
Memory bandwidth: 1.050 GiB/s
Total downtime:   14           ms
Downtime w/o network: 13           ms
"""


def test_parse_jobinfo() -> None:
    stats = parse_jobinfo(JOBINFO)
    assert (stats.elapsed_ms, stats.downtime_ms, stats.data_mib) == (153, 14, 24.613)
    big = parse_jobinfo("Time elapsed: 4000 ms\nData processed: 1.5 GiB\n")
    assert (big.downtime_ms, big.data_mib) == (None, 1536.0)
    with pytest.raises(ValueError):
        parse_jobinfo("error: no job\n")


PVM = accel.HostFacts(kvm_device=True, pvm=True, vendor_modules=("kvm_intel",))


@pytest.mark.parametrize(
    ("facts", "override", "kind"),
    [
        (PVM, None, "tcg"),
        (PVM, "kvm", "kvm"),
        (accel.HostFacts(False, False, ()), None, "tcg"),
        (accel.HostFacts(True, False, ()), None, "tcg"),
        (accel.HostFacts(True, False, ("kvm_amd",)), "tcg", "tcg"),
    ],
)
def test_accel_decisions(facts: accel.HostFacts, override: str | None, kind: str) -> None:
    chosen = accel.decide(facts, override)
    assert chosen is not None and chosen.kind == kind
    assert chosen.domain_type == ("kvm" if kind == "kvm" else "qemu")


def test_real_kvm_needs_a_probe() -> None:
    assert accel.decide(accel.HostFacts(True, False, ("kvm_intel",))) is None


def test_host_facts_from_sysfs(tmp_path: Path) -> None:
    (tmp_path / "kvm_pvm").mkdir()
    facts = accel.host_facts(tmp_path, tmp_path / "no-kvm")
    assert facts == accel.HostFacts(kvm_device=False, pvm=True, vendor_modules=())
