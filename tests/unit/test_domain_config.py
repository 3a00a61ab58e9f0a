# SPDX-License-Identifier: GPL-2.0-or-later
"""Domain configs: libvirt XML and xl cfg, parsed properly (names are never grepped)."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tandem.domain.config import (
    ConfigError,
    Disk,
    Format,
    parse,
    parse_xl_cfg,
    parse_xl_disk,
    parse_xl_settings,
    read_config,
)
from tandem.ocf.state import StateFiles

LIBVIRT_XML = """<domain type='qemu'>
  <!-- <name>commented-out</name> -->
  <name>vm1</name>
  <memory unit='MiB'>64</memory>
  <vcpu placement='static'>2</vcpu>
  <devices>
    <disk type='block' device='disk'>
      <source dev='/dev/drbd/by-res/r0/0'/>
      <target dev='vda' bus='virtio'/>
    </disk>
    <disk type='block' device='disk'><source dev='/dev/drbd1001'/><target dev='vdb'/></disk>
    <disk type='file' device='cdrom'><source file='/iso/x.iso'/><target dev='hdc'/></disk>
  </devices>
</domain>
"""


def test_libvirt_xml_name_disks_and_sizes() -> None:
    cfg = parse(LIBVIRT_XML)
    assert cfg.format is Format.LIBVIRT
    assert cfg.name == "vm1"  # not the commented-out one a regex would find first
    assert cfg.disks == (Disk("/dev/drbd/by-res/r0/0", target="vda"), Disk("/dev/drbd1001", target="vdb"))
    assert (cfg.vcpus, cfg.memory_mib, cfg.hv_type) == (2, 64, "qemu")


def test_libvirt_memory_default_unit_is_kib() -> None:
    cfg = parse("<domain type='kvm'><name>a</name><memory>131072</memory></domain>")
    assert cfg.memory_mib == 128


@pytest.mark.parametrize(
    "text, problem",
    [
        ("<domain><name></name></domain>", "no <name>"),
        ("<domain><name>bad name</name></domain>", "not allowed"),
        ("<domain><name>a$(reboot)</name></domain>", "not allowed"),
        ("<domain><name>x</name>", "does not parse"),
        ("<network><name>x</name></network>", "not <domain>"),
        ('<!DOCTYPE d [<!ENTITY e "x">]><domain><name>&e;</name></domain>', "DOCTYPE"),
    ],
)
def test_bad_libvirt_xml(text: str, problem: str) -> None:
    with pytest.raises(ConfigError, match=problem.replace("$", r"\$").replace("(", r"\(")):
        parse(text)


XL_CFG = r"""# a PV guest
name = "xg1"   # trailing comment
type = 'pvh'
memory = 0x100; vcpus = 2
disk = [ 'phy:/dev/drbd/by-res/r0/0,xvda,w',
         'format=raw, vdev=xvdb, access=rw, target=/dev/drbd1',
         "drbd:r2,xvdc,w",
       ]
extra = "console=hvc0 root=\"/dev/xvda\" \x41"
vif = [ ]
vif += [ 'bridge=br0' ]
"""


def test_xl_cfg() -> None:
    cfg = parse(XL_CFG)
    assert cfg.format is Format.XL
    assert (cfg.name, cfg.vcpus, cfg.memory_mib, cfg.hv_type) == ("xg1", 2, 256, "pvh")
    assert cfg.disks == (
        Disk("/dev/drbd/by-res/r0/0", target="xvda"),
        Disk("/dev/drbd1", target="xvdb"),
        Disk(None, drbd_resource="r2", target="xvdc"),
    )
    settings = parse_xl_settings(XL_CFG)
    assert settings["extra"] == 'console=hvc0 root="/dev/xvda" A'
    assert settings["vif"] == ["bridge=br0"]


def test_xl_name_is_the_setting_not_a_substring() -> None:
    # awk '/^name=/' style greps read "hostname" or the comment; the parser reads the setting.
    text = '# name = "wrong"\nhostname_x = "also-wrong"\nname="right"\n'
    assert parse_xl_cfg(text).name == "right"


@pytest.mark.parametrize(
    "text, problem",
    [
        ("memory = 128\n", "no name"),
        ('name = "a" memory = 1\n', "expected"),
        ('name = "a\n', "unexpected"),
        ("name = 0.5\n", "unexpected"),  # xl numbers are integers; floats must be quoted
        ('Name = "a"\n', "unexpected"),  # identifiers are lower case in libxlu
        ('name = "a"\ndisk = [ "x",\n', "expected"),
        ('name = "bad name"\n', "not allowed"),
    ],
)
def test_bad_xl_cfg(text: str, problem: str) -> None:
    with pytest.raises(ConfigError, match=problem):
        parse_xl_cfg(text)


@pytest.mark.parametrize(
    "spec, disk",
    [
        ("phy:/dev/drbd0,xvda,w", Disk("/dev/drbd0", target="xvda")),
        ("/dev/vg/lv,raw,xvda,rw", Disk("/dev/vg/lv", target="xvda")),
        ("tap:aio:/img/a.raw,xvda,w", Disk("/img/a.raw", target="xvda")),
        ("vdev=xvda, access=w, script=block-drbd, target=r5", Disk(None, drbd_resource="r5", target="xvda")),
        ("vdev=xvda, target=/dev/disk/by-path/a,b", Disk("/dev/disk/by-path/a,b", target="xvda")),
        (",,hdc:cdrom,r", Disk(None, target="hdc:cdrom")),
    ],
)
def test_xl_disk_specs(spec: str, disk: Disk) -> None:
    assert parse_xl_disk(spec) == disk


@given(st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_.+-]{0,20}", fullmatch=True))
def test_any_allowed_name_round_trips_through_both_formats(name: str) -> None:
    assert parse(f"<domain><name>{name}</name></domain>").name == name
    assert parse(f'name = "{name}"\n').name == name


def test_a_config_is_parsed_again_only_when_the_file_changes(tmp_path: Path) -> None:
    """read_config remembers the parse (a steady monitor must not import the XML parser)."""
    files = StateFiles.of("domain", "vm1", {"HA_RSCTMP": str(tmp_path / "tmp")})
    path = tmp_path / "vm1.xml"
    xml = "<domain type='kvm'><name>{}</name><devices><disk><source dev='/dev/drbd1'/></disk></devices>"
    xml += "</domain>"
    path.write_text(xml.format("vm1"))
    first = read_config(str(path), files)
    assert first == parse(path.read_text()) and files.read("config")
    assert read_config(str(path), files) == first  # from the cache
    path.write_text(xml.format("vm2"))
    assert read_config(str(path), files).name == "vm2"  # the file changed: read again
    assert files.write("config", f"zz {(files.read('config') or '').partition(' ')[2]}") is None
    assert read_config(str(path), files).name == "vm2"  # a damaged cache: read again
    path.write_text("<domain><name>bad name</name></domain>")
    with pytest.raises(ConfigError):
        read_config(str(path), files)


def test_a_cached_config_is_the_parsed_one(tmp_path: Path) -> None:
    files = StateFiles.of("domain", "vm", {"HA_RSCTMP": str(tmp_path)})
    path = tmp_path / "vm.cfg"
    path.write_text('name = "vm"\nvcpus = 2\nmemory = 512\ndisk = ["drbd:r0,xvda,w", "/dev/drbd2,xvdb,w"]\n')
    assert read_config(str(path), files) == read_config(str(path), files) == parse(path.read_text())
