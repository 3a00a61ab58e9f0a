# SPDX-License-Identifier: GPL-2.0-or-later
"""The tool server's protocol (lab/drbd_emu/toolserver.py, client.c): requests, replies, the address."""

from __future__ import annotations

import os
import signal

import pytest
from lab.drbd_emu.toolserver import TAG, Request, address, parse_request, reply


def message(*parts: bytes) -> bytes:
    """NUL-terminated strings, as client.c sends them."""
    return b"".join(p + b"\0" for p in parts)


def test_a_request_gives_program_umask_argv_and_environment() -> None:
    data = message(TAG, b"drbdadm", b"22", b"3", b"drbdadm", b"sh-dev", b"r0", b"A=1", b"B=x=y", b"EMPTY=")
    assert parse_request(data) == Request(
        "drbdadm", 0o22, ["drbdadm", "sh-dev", "r0"], {"A": "1", "B": "x=y", "EMPTY": ""}
    )


def test_arguments_may_be_empty_and_the_environment_too() -> None:
    data = message(TAG, b"drbdsetup", b"0", b"2", b"drbdsetup", b"")
    assert parse_request(data) == Request("drbdsetup", 0, ["drbdsetup", ""], {})


@pytest.mark.parametrize(
    "data",
    [
        b"",
        message(b"tandem-emu-0", b"drbdadm", b"22", b"1", b"drbdadm"),  # another protocol
        message(TAG, b"drbd-emu", b"22", b"1", b"drbd-emu"),  # not a fake the server runs
        message(TAG, b"drbdadm", b"9", b"1", b"drbdadm"),  # not octal
        message(TAG, b"drbdadm", b"22", b"0"),  # no argv[0]
        message(TAG, b"drbdadm", b"22", b"3", b"drbdadm"),  # fewer arguments than said
        message(TAG, b"drbdadm", b"22", b"1", b"drbdadm", b"NOEQUALS"),  # not an environment entry
        message(TAG, b"drbdadm", b"22", b"1") + b"drbdadm",  # not NUL-terminated
    ],
)
def test_anything_else_is_no_request(data: bytes) -> None:
    assert parse_request(data) is None


def test_replies_carry_the_exit_code_or_the_signal() -> None:
    assert reply(0) == b"exit 0"
    assert reply(17 << 8) == b"exit 17"
    assert reply(signal.SIGTERM) == b"signal 15"
    assert reply(signal.SIGKILL | 0x80) == b"signal 9"  # dumped core or not


def test_the_address_is_abstract_and_names_node_and_real_directory(tmp_path: os.PathLike[str]) -> None:
    link = os.path.join(tmp_path, "link")
    os.symlink(tmp_path, link)
    assert address(link, "node1") == f"\0tandem-drbd-emu:node1:{os.path.realpath(tmp_path)}".encode()
