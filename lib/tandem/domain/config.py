# SPDX-License-Identifier: GPL-2.0-or-later
"""Domain configurations, parsed properly: libvirt domain XML and xl cfg files.

The agent needs a few facts from them (the name, the disks, vCPUs and memory); the name is never grepped
(VirtualDomain's regex and Xen's awk both misread valid files). Parsing is pure: text in, dataclass out.
"""

from __future__ import annotations

import marshal
import os

from tandem.enums import StrEnum
from tandem.ocf.params import ALNUM, Chars
from tandem.record import NamedTuple
from tandem.regex import lazy

TYPE_CHECKING = False
if TYPE_CHECKING:
    from tandem.ocf.state import StateFiles

# libvirt accepts almost any name; we accept what is safe on a command line, in a URI path and a file name.
NAME = Chars(ALNUM, ALNUM + "_.+-", 64)


class ConfigError(ValueError):
    """A configuration that does not parse or lacks what the agent needs."""


class Format(StrEnum):
    LIBVIRT = "libvirt"
    XL = "xl"


class Disk(NamedTuple):
    """A disk as the hypervisor opens it: a device path, or a DRBD resource named by xl's drbd: prefix."""

    path: str | None
    drbd_resource: str | None = None
    target: str | None = None  # vda, xvda, ...


class DomainConfig(NamedTuple):
    format: Format
    name: str
    disks: tuple[Disk, ...] = ()
    vcpus: int | None = None
    memory_mib: int | None = None
    hv_type: str | None = None  # libvirt <domain type=...> (kvm, qemu, xen), or xl's type (pv, pvh, hvm)


def check_name(name: str) -> str:
    if not NAME.allows(name):
        raise ConfigError(f"domain name {name!r} is not allowed (letters, digits and _ . + - only)")
    return name


def read_config(path: str, files: StateFiles) -> DomainConfig:
    """parse() of the file at `path`, remembered in a state file while the file's identity (inode, size,
    mtime) stays the same: a steady monitor then neither reads nor parses it (the XML parser's imports
    alone cost it more than the rest of its start). Raises OSError and ConfigError as reading and parse do."""
    st = os.stat(path)
    key = f"{st.st_ino}:{st.st_size}:{st.st_mtime_ns}:{path}"
    blob, _, cached_key = (files.read("config") or "").partition(" ")
    if cached_key == key:
        try:
            # The agent's own file in HA_RSCTMP (root's): plain values, nothing in it is executed.
            fmt, name, disks, vcpus, memory, hv_type = marshal.loads(bytes.fromhex(blob))  # noqa: S302
            return DomainConfig(Format(fmt), name, tuple(Disk(*d) for d in disks), vcpus, memory, hv_type)
        except (ValueError, TypeError, EOFError):
            pass  # not a cache this version wrote: parse again
    with open(path, encoding="utf-8") as fh:
        config = parse(fh.read())
    disks = tuple(tuple(d) for d in config.disks)
    plain = (str(config.format), config.name, disks, config.vcpus, config.memory_mib, config.hv_type)
    files.write("config", f"{marshal.dumps(plain).hex()} {key}")  # best effort, like every state file
    return config


def detect_format(text: str) -> Format:
    """XML starts with '<' (after blanks and comments); anything else is an xl cfg."""
    return Format.LIBVIRT if text.lstrip().startswith("<") else Format.XL


def parse(text: str) -> DomainConfig:
    return parse_libvirt_xml(text) if detect_format(text) is Format.LIBVIRT else parse_xl_cfg(text)


# ---- libvirt XML ------------------------------------------------------------------------------------------

_MEM_UNITS = {
    "b": 1,
    "bytes": 1,
    "k": 1024,
    "kib": 1024,
    "kb": 1000,
    "m": 1024**2,
    "mib": 1024**2,
    "mb": 1000**2,
    "g": 1024**3,
    "gib": 1024**3,
    "gb": 1000**3,
    "t": 1024**4,
    "tib": 1024**4,
    "tb": 1000**4,
}


def parse_libvirt_xml(text: str) -> DomainConfig:
    """The facts we need from a libvirt domain definition (stdlib parser: no lxml on the monitor path).

    The stdlib parser expands no external entities; a DOCTYPE is refused outright (libvirt never writes one).
    """
    import xml.etree.ElementTree as ET

    if "<!DOCTYPE" in text or "<!ENTITY" in text:
        raise ConfigError("domain XML must not contain a DOCTYPE or entities")
    try:
        root = ET.fromstring(text)  # noqa: S314 (no DOCTYPE, so no entity expansion)
    except ET.ParseError as exc:
        raise ConfigError(f"domain XML does not parse: {exc}") from exc
    if root.tag != "domain":
        raise ConfigError(f"root element is <{root.tag}>, not <domain>")
    name = (root.findtext("name") or "").strip()
    if not name:
        raise ConfigError("domain XML has no <name>")
    disks: list[Disk] = []
    for disk in root.iterfind("devices/disk"):
        if disk.get("device", "disk") not in ("disk", "lun"):
            continue  # cdrom/floppy: not replicated storage
        source = disk.find("source")
        target = disk.find("target")
        path = None
        if source is not None:
            path = source.get("dev") or source.get("file")
        disks.append(Disk(path=path, target=target.get("dev") if target is not None else None))
    return DomainConfig(
        format=Format.LIBVIRT,
        name=check_name(name),
        disks=tuple(disks),
        vcpus=_int_text(root.findtext("vcpu")),
        memory_mib=_libvirt_memory(root.find("memory")),
        hv_type=root.get("type"),
    )


def _int_text(text: str | None) -> int | None:
    text = (text or "").strip()
    return int(text) if text.isdigit() else None


def _libvirt_memory(elem: object) -> int | None:
    from xml.etree.ElementTree import Element

    if not isinstance(elem, Element):
        return None
    amount = _int_text(elem.text)
    factor = _MEM_UNITS.get(elem.get("unit", "KiB").lower())
    if amount is None or factor is None:
        return None
    return amount * factor // 1024**2


# ---- xl cfg ------------------------------------------------------------------------------------------
# The grammar of libxlu (tools/libs/util/libxlu_cfg_{l.l,y.y}): settings `key = value` or `key += value`,
# ended by a newline or ';'; values are "..."/'...' strings with C escapes, numbers, or [lists] that may
# span lines, nest, and end with a comma; '#' starts a comment. Identifiers are lower case.

XlValue = str | list["XlValue"]

_TOKEN = lazy(
    r"""(?x)
    (?P<ws>[ \t\r]+)
  | (?P<comment>\#[^\n]*)
  | (?P<nl>\n)
  | (?P<ident>[a-z][_0-9a-z]*)
  | (?P<number>[0-9][0-9a-fx]*)
  | (?P<string>"(?:[^\\"\n]|\\.)*"|'(?:[^\\'\n]|\\.)*')
  | (?P<add>\+=)
  | (?P<punct>[=;,\[\]])
    """
)
_HEX2, _OCTAL = lazy(r"[0-9a-fA-F]{2}"), lazy(r"[0-7]{1,3}")
_ESCAPES = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v"}


def _dequote(token: str) -> str:
    body = token[1:-1]
    out: list[str] = []
    i = 0
    while i < len(body):
        c = body[i]
        i += 1
        if c != "\\":
            out.append(c)
            continue
        nc = body[i]
        i += 1
        if nc in "\"'\\":
            out.append(nc)
        elif nc in _ESCAPES:
            out.append(_ESCAPES[nc])
        elif nc == "x" and _HEX2.fullmatch(body[i : i + 2]):
            out.append(chr(int(body[i : i + 2], 16)))
            i += 2
        elif nc.isdigit():
            digits = _OCTAL.match(body[i - 1 : i + 2])
            assert digits is not None
            out.append(chr(int(digits.group(), 8)))
            i += len(digits.group()) - 1
        else:
            raise ConfigError(f"invalid escape \\{nc} in {token}")
    return "".join(out)


def _tokens(text: str) -> list[tuple[str, str, int]]:
    tokens: list[tuple[str, str, int]] = []
    pos, line = 0, 1
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if match is None:
            raise ConfigError(f"xl config line {line}: unexpected {text[pos : pos + 10]!r}")
        kind = match.lastgroup
        assert kind is not None
        value = match.group()
        if kind == "nl":
            tokens.append(("nl", value, line))
            line += 1
        elif kind == "punct":
            tokens.append((value, value, line))
        elif kind == "string":
            tokens.append(("atom", _dequote(value), line))
        elif kind == "number":
            tokens.append(("atom", value, line))
        elif kind not in ("ws", "comment"):
            tokens.append((kind, value, line))
        pos = match.end()
    tokens.append(("eof", "", line))
    return tokens


class _XlParser:
    def __init__(self, text: str) -> None:
        self.toks = _tokens(text)
        self.i = 0

    def peek(self) -> str:
        return self.toks[self.i][0]

    def take(self, *kinds: str) -> str:
        kind, value, line = self.toks[self.i]
        if kind not in kinds:
            shown = value if value and value != "\n" else kind
            raise ConfigError(f"xl config line {line}: expected {' or '.join(kinds)}, found {shown!r}")
        self.i += 1
        return value

    def skip_newlines(self) -> None:
        while self.peek() == "nl":
            self.i += 1

    def value(self) -> XlValue:
        if self.peek() != "[":
            return self.take("atom")
        self.take("[")
        self.skip_newlines()
        items: list[XlValue] = []
        while self.peek() != "]":
            items.append(self.value())
            self.skip_newlines()
            if self.peek() != ",":
                break
            self.take(",")
            self.skip_newlines()
        self.take("]")
        return items

    def settings(self) -> dict[str, XlValue]:
        out: dict[str, XlValue] = {}
        while self.peek() != "eof":
            if self.peek() in ("nl", ";"):
                self.i += 1
                continue
            key = self.take("ident")
            op = self.take("=", "add")
            value = self.value()
            previous = out.get(key)
            if op == "+=" and isinstance(previous, list) and isinstance(value, list):
                out[key] = previous + value
            else:
                out[key] = value  # the last assignment wins, as in xl
            if self.peek() != "eof":
                self.take("nl", ";")
        return out


def parse_xl_settings(text: str) -> dict[str, XlValue]:
    return _XlParser(text).settings()


def parse_xl_cfg(text: str) -> DomainConfig:
    settings = parse_xl_settings(text)
    name = settings.get("name")
    if not isinstance(name, str) or not name:
        raise ConfigError('xl config has no name = "..." setting')
    raw_disks = settings.get("disk", [])
    if isinstance(raw_disks, str):
        raw_disks = [raw_disks]
    disks = tuple(parse_xl_disk(d) for d in raw_disks if isinstance(d, str))
    builder = settings.get("builder")
    hv_type = settings.get("type") or ("hvm" if builder == "hvm" else None)
    return DomainConfig(
        format=Format.XL,
        name=check_name(name),
        disks=disks,
        vcpus=_xl_int(settings.get("vcpus")),
        memory_mib=_xl_int(settings.get("memory")),
        hv_type=hv_type if isinstance(hv_type, str) else None,
    )


def _xl_int(value: XlValue | None) -> int | None:
    if not isinstance(value, str):
        return None
    try:
        return int(value, 0)
    except ValueError:
        return None


_DISK_KEYS = (
    "target",
    "format",
    "vdev",
    "access",
    "devtype",
    "backend",
    "backendtype",
    "script",
    "specification",
)


_BACKEND_PREFIXES = ("phy", "file", "tap", "tap2", "aio", "raw", "qcow", "qcow2", "vhd", "drbd")


def parse_xl_disk(spec: str) -> Disk:
    """One `disk=` entry (xl-disk-configuration(5)): positional `target,format,vdev,access` or key=value.

    `target=` swallows the rest of the string (it may contain commas). A target prefix `phy:`, `file:`,
    `tap:aio:`... names the backend; `drbd:RES` means the block-drbd script with resource RES.
    """
    fields: dict[str, str] = {}
    positional: list[str] = []
    rest = spec
    while rest:
        part, sep, after = rest.partition(",")
        part = part.strip()
        key, eq, val = part.partition("=")
        if eq and key.strip() in _DISK_KEYS:
            if key.strip() == "target":
                fields["target"] = (val + sep + after).strip()
                break
            fields[key.strip()] = val.strip()
        else:
            positional.append(part)
        rest = after
    if any(positional) and "target" not in fields:
        # Positional: [target, [format,] vdev, access]; the target comes first.
        names = ["target", "format", "vdev", "access"] if len(positional) >= 4 else ["target", "vdev"]
        names += [] if len(positional) >= 4 else ["access"]
        for name, value in zip(names, positional, strict=False):
            if value:
                fields.setdefault(name, value)
    target = fields.get("target")
    vdev = fields.get("vdev")
    script = fields.get("script", "")
    if target is None:
        return Disk(path=None, target=vdev)
    prefix, colon, rest_target = target.partition(":")
    if colon and prefix in _BACKEND_PREFIXES:
        if prefix == "drbd":
            return Disk(path=None, drbd_resource=rest_target, target=vdev)
        if prefix == "tap":  # tap:aio:/path, tap:qcow2:/path
            rest_target = rest_target.partition(":")[2] or rest_target
        target = rest_target
    if script.endswith("block-drbd"):
        return Disk(path=None, drbd_resource=target, target=vdev)
    return Disk(path=target, target=vdev)
