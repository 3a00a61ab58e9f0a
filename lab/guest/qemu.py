# SPDX-License-Identifier: GPL-2.0-or-later
"""Running the guest under a bare QEMU (no libvirt): the KVM probe and the guest's own tests use it."""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any

QEMU = "/usr/bin/qemu-system-x86_64"
DEFAULT_CMDLINE = "fill_mb=16 dirty_kb=4096 verify_s=2 gen_s=1"


def qemu_argv(
    kernel: Path,
    serial: Path,
    *,
    accel: str = "tcg",
    memory_mib: int = 64,
    cmdline: str = DEFAULT_CMDLINE,
    disk: Path | None = None,
    qmp: Path | None = None,
) -> list[str]:
    """The same machine libvirt builds from lab.libvirt.domain_xml: pc, IDE disk, COM1 into a file."""
    argv = [QEMU, "-accel", accel, "-machine", "pc", "-nodefaults", "-display", "none", "-no-user-config"]
    argv += ["-m", str(memory_mib), "-kernel", str(kernel), "-append", cmdline]
    argv += ["-chardev", f"file,id=ser0,path={serial},append=on", "-serial", "chardev:ser0"]
    if disk is not None:
        argv += ["-drive", f"file={disk},format=raw,if=ide,index=0,media=disk,cache=none"]
    if qmp is not None:
        argv += ["-qmp", f"unix:{qmp},server=on,wait=off"]
    return argv


def qmp(path: Path, command: str, arguments: dict[str, Any] | None = None, timeout: float = 10.0) -> Any:
    """One QMP command on a fresh connection; returns its "return" value, raises on an error reply."""
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(timeout)
        s.connect(str(path))
        f = s.makefile("rw")
        json.loads(f.readline())  # greeting
        for cmd, args in (("qmp_capabilities", None), (command, arguments)):
            f.write(json.dumps({"execute": cmd, **({"arguments": args} if args else {})}) + "\n")
            f.flush()
            reply = json.loads(f.readline())
            while "event" in reply:
                reply = json.loads(f.readline())
            if "error" in reply:
                raise RuntimeError(f"QMP {cmd}: {reply['error']}")
        return reply["return"]
