# SPDX-License-Identifier: GPL-2.0-or-later
"""What the guest said on its serial console: parsing and waiting.

A domain's serial log is one file opened in append mode by every QEMU that runs the guest (source and
destination of a migration), so it tells the guest's whole life; `after=` selects what came after a
point (a byte offset taken with `size()`), e.g. after a migration finished.
"""

from __future__ import annotations

import itertools
import re
import time
from dataclasses import dataclass
from pathlib import Path

PREFIX = "tandem-guest: "
_KV = re.compile(r"(\w+)=(\S+)")


@dataclass(frozen=True)
class SerialLog:
    boots: int  # "booted" lines: more than one means the guest restarted
    heartbeats: tuple[int, ...]  # t= of every "alive" line (seconds since that boot)
    gens: tuple[int, ...]  # gen= of every "alive" line
    verified: int  # "verify=ok" lines
    corrupt: tuple[str, ...]  # "verify=CORRUPT" lines, verbatim
    disk: tuple[str, ...]  # what the guest found on its disk at each boot ("gen=5 boots=1", "fresh", ...)
    poweroffs: int  # ACPI power-button shutdowns

    @property
    def running(self) -> bool:
        return self.boots > 0 and bool(self.heartbeats)

    def heartbeat_gaps(self) -> list[tuple[int, int]]:
        """(previous, next) pairs of t= that are not consecutive within one boot: lost guest time."""
        t = self.heartbeats
        return [(a, b) for a, b in itertools.pairwise(t) if b != a + 1 and b != 1]


def parse(text: str) -> SerialLog:
    boots = verified = poweroffs = 0
    beats: list[int] = []
    gens: list[int] = []
    corrupt: list[str] = []
    disk: list[str] = []
    for raw in text.splitlines():
        line = raw.strip("\r\n\0 ")
        if not line.startswith(PREFIX):
            continue
        body = line[len(PREFIX) :]
        word = body.split(" ", 1)[0]
        kv = dict(_KV.findall(body))
        if word == "booted":
            boots += 1
        elif word == "alive" and kv.get("t", "").isdigit():
            beats.append(int(kv["t"]))
            if kv.get("gen", "").isdigit():
                gens.append(int(kv["gen"]))
        elif word == "verify=ok":
            verified += 1
        elif word.startswith("verify="):
            corrupt.append(body)
        elif word == "disk":
            disk.append(body[len("disk ") :])
        elif word == "poweroff":
            poweroffs += 1
    return SerialLog(boots, tuple(beats), tuple(gens), verified, tuple(corrupt), tuple(disk), poweroffs)


def size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def read(path: Path, after: int = 0) -> str:
    try:
        with path.open("rb") as f:
            f.seek(after)
            return f.read().decode("ascii", "replace")
    except FileNotFoundError:
        return ""


class SerialTimeout(AssertionError):
    """The guest did not say what was expected in time; the message quotes the end of its log."""


def wait_for(path: Path, pattern: str, *, after: int = 0, timeout: float = 30.0) -> re.Match[str]:
    """The first match of `pattern` in the log past byte `after`, polling until `timeout`."""
    rx = re.compile(pattern)
    end = time.monotonic() + timeout
    while True:
        m = rx.search(read(path, after))
        if m:
            return m
        if time.monotonic() > end:
            tail = "\n".join(read(path, after).replace("\r", "").splitlines()[-8:])
            where = f"{path} after byte {after}"
            raise SerialTimeout(f"no {pattern!r} in {where} within {timeout}s; tail:\n{tail}")
        time.sleep(0.05)
