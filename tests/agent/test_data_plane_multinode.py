# SPDX-License-Identifier: GPL-2.0-or-later
"""Three emulated nodes with their data planes: alice and bob hold copies, charlie is an intentional diskless
client (`disk none`) whose /dev/drbdN reads and writes through them. Checked on the copies themselves: a
client Primary's writes land on both data nodes and never on charlie; reads come from a peer; a data node it
can not reach catches up by resync of exactly what it missed; with no data node left the I/O is suspended
or fails at once, as on-no-data-accessible says; and `drbdadm primary` refusals print the kernel's line.
"""

from __future__ import annotations

import json
import os
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from lab.drbd_emu import engine

from tandem.drbd.model import ConnState, DiskState, Role
from tests.agent.test_data_plane import copy_of, read_device, write
from tests.agent.test_emu_cli import Cluster, up_all

NET = "127.0.98"


def trio_conf(c: Cluster, *, on_no_data: str, on_no_quorum: str = "suspend-io") -> str:
    client = {"charlie": " volume 0 { disk none; }"}
    hosts = "\n".join(
        f"  on {n} {{ node-id {i}; address {NET}.{i + 1}:7789;{client.get(n, '')} }}"
        for i, n in enumerate(c.nodes)
    )
    return f"""# three nodes, charlie a diskless client
resource r0 {{
  net {{ protocol C; fencing dont-care; }}
  options {{ quorum majority; on-no-quorum {on_no_quorum}; on-no-data-accessible {on_no_data}; }}
  volume 0 {{ device /dev/drbd{c.minor}; disk /dev/emu/r0-0; meta-disk internal; }}
{hosts}
  connection-mesh {{ hosts {" ".join(c.nodes)}; }}
}}
"""


def start(tmp_path: Path, on_no_data: str) -> Cluster:
    if os.geteuid() != 0:
        pytest.fail("the agent tier needs root (mount namespaces, FUSE, loop devices)")
    c = Cluster(tmp_path, ["alice", "bob", "charlie"], net=NET)
    c.conf.write_text(trio_conf(c, on_no_data=on_no_data))
    c.start_namespaces()
    up_all(c)
    assert c.adm("alice", "primary", "--force", "r0").returncode == 0
    c.wait(lambda: c.status("bob").devices[0].disk is DiskState.UP_TO_DATE)
    assert c.adm("alice", "secondary", "r0").returncode == 0
    r = c.adm("charlie", "primary", "r0")
    assert r.returncode == 0, r.stderr
    return c


@pytest.fixture
def trio(tmp_path: Path) -> Iterator[Cluster]:
    c = start(tmp_path, "io-error")
    try:
        yield c
    finally:
        c.close()


def test_a_client_primary_writes_to_both_copies_and_never_locally(trio: Cluster) -> None:
    blocks = write(trio, "charlie", 3)
    for b in blocks:
        theirs = copy_of(trio, "alice", b)
        assert theirs.startswith(b"charlie gen ") and copy_of(trio, "bob", b) == theirs
        assert copy_of(trio, "charlie", b).strip(b"\0") == b""
        assert read_device(trio, "charlie", b) == theirs


def test_a_data_node_the_client_can_not_reach_catches_up_by_resync(trio: Cluster) -> None:
    trio.emu("charlie", "cut", "charlie", "alice")
    trio.wait(lambda: trio.status("alice").devices[0].disk is DiskState.OUTDATED)
    missed = write(trio, "charlie", 4)
    for b in missed:
        assert copy_of(trio, "bob", b).startswith(b"charlie gen ") and copy_of(trio, "alice", b) != copy_of(
            trio, "bob", b
        )
    assert read_device(trio, "charlie", missed[0]) == copy_of(trio, "bob", missed[0])
    trio.emu("charlie", "heal", "charlie", "alice")
    trio.wait(lambda: trio.status("alice").devices[0].disk is DiskState.UP_TO_DATE)
    for b in missed:
        assert copy_of(trio, "alice", b) == copy_of(trio, "bob", b)


def test_a_client_reads_again_through_a_data_node_that_rebooted(trio: Cluster) -> None:
    """The client's connection to alice dies with alice's kernel; once alice is back and UpToDate, a read
    that goes to alice is sent again over a new connection (DRBD 9.2.8+ re-issues a read whose connection
    was lost), not failed with EIO."""
    blocks = write(trio, "charlie", 1)
    assert read_device(trio, "charlie", blocks[0]) == copy_of(trio, "alice", blocks[0])
    trio.kernels["alice"].kill()
    trio.kernels["alice"].wait()
    trio.wait(
        lambda: all(c.connection is not ConnState.CONNECTED for c in trio.status("charlie").connections[:1])
    )
    trio.kernels["alice"] = trio.start_kernel("alice")
    assert trio.adm("alice", "up", "r0").returncode == 0
    trio.wait(lambda: trio.status("alice").devices[0].disk is DiskState.UP_TO_DATE)
    trio.wait(lambda: all(c.connection is ConnState.CONNECTED for c in trio.status("charlie").connections))
    for b in blocks:
        assert read_device(trio, "charlie", b) == copy_of(trio, "bob", b)


@pytest.mark.parametrize("bug", [False, True])
def test_a_returning_data_node_resyncs_what_the_client_wrote_meanwhile(trio: Cluster, bug: bool) -> None:
    """alice down while the client writes to bob alone; back, it resyncs exactly those blocks. The negative
    control: with LINBIT/drbd#145 emulated (`no-resync`: taken as in sync) the copies' comparison, as the
    lab's data check, catches the missing writes."""
    assert trio.adm("alice", "down", "r0").returncode == 0
    if bug:
        trio.emu("alice", "no-resync", "on")
    missed = write(trio, "charlie", 3)
    assert trio.adm("alice", "up", "r0").returncode == 0
    trio.wait(lambda: trio.status("alice").devices[0].disk is DiskState.UP_TO_DATE)
    trio.wait(lambda: all(c.connection is ConnState.CONNECTED for c in trio.status("alice").connections))
    differ = [b for b in missed if copy_of(trio, "alice", b) != copy_of(trio, "bob", b)]
    assert differ == (missed if bug else [])


def test_with_no_data_node_left_io_fails_at_once_under_io_error(trio: Cluster) -> None:
    """The default on-no-data-accessible io-error wins over on-no-quorum suspend-io (DK cached_err_io)."""
    for peer in ("alice", "bob"):
        trio.emu("charlie", "cut", "charlie", peer)
    trio.wait(lambda: trio.status("charlie").devices[0].quorum is False)
    assert trio.status("charlie").suspended == ("quorum",)
    device = f"of=/dev/drbd{trio.minor}"
    t = time.monotonic()
    r = trio.run("charlie", "dd", "if=/dev/zero", device, "bs=4096", "count=1", "oflag=direct")
    assert r.returncode != 0 and "Input/output error" in r.stderr and time.monotonic() - t < 10


def test_with_no_data_node_left_io_waits_under_suspend_io(tmp_path: Path) -> None:
    """on-no-data-accessible suspend-io: the write waits (suspended:no-data,quorum) and completes, on the
    copies, once a data node is back."""
    c = start(tmp_path, "suspend-io")
    try:
        for peer in ("alice", "bob"):
            c.emu("charlie", "cut", "charlie", peer)
        c.wait(lambda: c.status("charlie").suspended == ("no-data", "quorum"))
        block = 200
        args = [
            "if=/dev/urandom",
            f"of=/dev/drbd{c.minor}",
            "bs=4096",
            "count=1",
            f"seek={block}",
            "oflag=direct",
        ]
        prefix = ["nsenter", "-t", str(c.holders["charlie"].pid), "-m", "--"]
        dd = subprocess.Popen([*prefix, "dd", *args], env=c.env("charlie"), stderr=subprocess.PIPE)
        time.sleep(2)
        assert dd.poll() is None  # held, not failed
        c.emu("charlie", "heal", "charlie", "bob")
        assert dd.wait(timeout=30) == 0
        assert c.status("charlie").suspended == ()
        assert copy_of(c, "bob", block).strip(b"\0") != b""
    finally:
        c.close()


def test_primary_refusals_print_the_kernel_line(trio: Cluster) -> None:
    """drbdsetup print_config_error with the kernel's info line (DK is_valid_state): a client whose only
    UpToDate peer lost quorum → exit 11 and "no UpToDate peer with quorum"; without any UpToDate peer → 17."""
    assert trio.adm("charlie", "secondary", "r0").returncode == 0
    for a, b in (("bob", "alice"), ("bob", "charlie"), ("charlie", "alice")):
        trio.emu("charlie", "cut", a, b)
    trio.wait(lambda: trio.status("bob").devices[0].quorum is False)
    trio.emu("charlie", "heal", "charlie", "bob")  # bob can not regain quorum through the client
    trio.wait(lambda: any(c.connection is ConnState.CONNECTED for c in trio.status("charlie").connections))
    r = trio.adm("charlie", "primary", "r0")
    refusal = "r0: State change failed: (-25) No quorum\nadditional info from kernel:\n"
    assert r.returncode == 11 and r.stderr.startswith(refusal + "no UpToDate peer with quorum\n"), r.stderr
    trio.emu("charlie", "cut", "charlie", "bob")
    trio.wait(
        lambda: all(c.connection is not ConnState.CONNECTED for c in trio.status("charlie").connections)
    )
    r = trio.adm("charlie", "primary", "r0")
    assert r.returncode == 17 and "(-2) Need access to UpToDate data" in r.stderr
    assert trio.status("charlie").role is Role.SECONDARY


RA = Path("/usr/lib/ocf/resource.d/linbit/drbd")


@pytest.mark.skipif(not RA.exists(), reason="drbd-utils not installed (run ./run setup)")
def test_the_anchor_on_three_nodes_with_a_client(tmp_path: Path) -> None:
    """ocf:linbit:drbd (Debian drbd-utils 9.22) on the same three nodes: it refuses a dual-primary clone of
    three (rc 6: "not even two primaries plus one-or-more-secondaries"), so it can not live-migrate onto the
    client; single-primary it runs, scores the client 9999 while both data nodes are UpToDate, and keeps that
    score when the client has lost quorum but still sees an UpToDate peer (research §4: quorum:no is read
    for diskful devices only), where a promotion fails with DRBD's exit 11."""
    c = start(tmp_path, "io-error")
    try:
        assert c.adm("charlie", "secondary", "r0").returncode == 0
        for n in c.nodes:
            assert c.adm(n, "down", "r0").returncode == 0
        ocf = {
            "OCF_ROOT": "/usr/lib/ocf",
            "OCF_RESOURCE_INSTANCE": "drbd_r0",
            "OCF_RESKEY_drbd_resource": "r0",
            "OCF_RESKEY_drbdconf": str(c.conf),
            "OCF_RESKEY_CRM_meta_notify": "true",
            "OCF_RESKEY_CRM_meta_clone_max": "3",
            "OCF_RESKEY_CRM_meta_clone_node_max": "1",
            "OCF_RESKEY_CRM_meta_master_max": "2",
            "OCF_RESKEY_CRM_meta_master_node_max": "1",
            "OCF_RESKEY_CRM_meta_timeout": "20000",
        }

        def ra(node: str, action: str, **extra: str) -> int:
            return c.run(node, str(RA), action, env={**ocf, **extra}).returncode

        assert ra("alice", "start") == 6
        ocf["OCF_RESKEY_CRM_meta_master_max"] = "1"
        for n in c.nodes:
            assert ra(n, "start") == 0, n
        c.wait(lambda: c.status("charlie").devices[0].quorum is not False)
        assert ra("charlie", "monitor", OCF_RESKEY_CRM_meta_interval="20000") == 0
        assert (c.dir / "score.charlie").read_text().strip() == "9999"
        for a, b in (("bob", "alice"), ("bob", "charlie"), ("charlie", "alice")):
            c.emu("charlie", "cut", a, b)
        c.wait(lambda: c.status("bob").devices[0].quorum is False)
        c.emu("charlie", "heal", "charlie", "bob")  # an UpToDate peer, without quorum
        c.wait(lambda: any(x.connection is ConnState.CONNECTED for x in c.status("charlie").connections))
        assert c.status("charlie").devices[0].quorum is False
        assert ra("charlie", "monitor", OCF_RESKEY_CRM_meta_interval="20000") == 0
        assert (c.dir / "score.charlie").read_text().strip() != ""  # linbit keeps a score here
        r = c.adm("charlie", "primary", "r0")
        assert r.returncode == 11 and "No quorum" in r.stderr
        for n in c.nodes:
            ra(n, "stop")
    finally:
        c.close()


def test_a_write_pending_when_its_node_loses_quorum_fails_under_io_error(tmp_path: Path) -> None:
    """alice, a Primary data node, writes while both peers acknowledge late; before an ack alice is cut off
    from both peers and loses quorum (with one peer prompt, the write could complete between the two cuts,
    quorum still held: it did under load): with on-no-quorum io-error DRBD completes the pending write with
    an error (never an acknowledgement from a node without quorum: that copy may be the only one)."""
    if os.geteuid() != 0:
        pytest.fail("the agent tier needs root (mount namespaces, FUSE, loop devices)")
    c = Cluster(tmp_path, ["alice", "bob", "charlie"], net=NET)
    try:
        c.conf.write_text(trio_conf(c, on_no_data="io-error", on_no_quorum="io-error"))
        c.start_namespaces()
        up_all(c)
        assert c.adm("alice", "primary", "--force", "r0").returncode == 0
        c.wait(lambda: c.status("bob").devices[0].disk is DiskState.UP_TO_DATE)
        for peer in ("bob", "charlie"):
            c.emu("alice", "slow-peer", peer, "2000")
        done: list[subprocess.CompletedProcess[str]] = []
        device = f"of=/dev/drbd{c.minor}"
        dd = threading.Thread(
            target=lambda: done.append(
                c.run("alice", "dd", "if=/dev/zero", device, "bs=4096", "count=1", "seek=7", "oflag=direct")
            )
        )
        dd.start()
        time.sleep(0.5)
        for peer in ("bob", "charlie"):
            c.emu("alice", "cut", "alice", peer)
        dd.join(timeout=30)
        assert done and done[0].returncode != 0 and "Input/output error" in done[0].stderr
        assert c.status("alice").devices[0].quorum is False
    finally:
        c.close()


def write_block(c: Cluster, node: str, block: int, text: bytes) -> bytes:
    """One 4 KiB block through the node's /dev/drbdN, as the lab guest writes (O_DIRECT); returns it."""
    data = text.ljust(engine.BLOCK_BYTES, b"\0")
    src = c.dir / f"block-{node}"
    src.write_bytes(data)
    args = ["bs=4096", "count=1", f"seek={block}", "oflag=direct", "conv=notrunc", "status=none"]
    r = c.run(node, "dd", f"if={src}", f"of=/dev/drbd{c.minor}", *args)
    assert r.returncode == 0, r.stderr
    return data


def resyncing(c: Cluster) -> bool:
    return bool(json.loads(c.emu("alice", "state").stdout).get("resyncs"))


def test_a_write_a_resync_target_missed_after_its_block_was_copied_is_resynced(trio: Cluster) -> None:
    """CI on 92cadab (three data nodes, partition 2|1): the returning node reconnected to one peer before
    the Primary and resynced from it. A block the resync had already copied was written again by the
    Primary, which could not reach the target yet: the source got it, the target did not. The resync must
    bring that block again before it ends (DRBD clears the bits it resynced as it goes, not the ones set
    after), or the target is UpToDate without an acknowledged write."""
    for peer in ("alice", "charlie"):
        trio.emu("bob", "cut", "bob", peer)
    trio.wait(lambda: all(c.connection is not ConnState.CONNECTED for c in trio.status("bob").connections))
    block = 0  # the lab guest's record; the resync copies it first
    first = write_block(trio, "charlie", block, b"first")
    write(trio, "charlie", 3)  # more blocks to resync after this one
    trio.emu("bob", "slow-resync", "2")
    trio.emu("bob", "heal", "bob", "alice")
    trio.wait(lambda: copy_of(trio, "bob", block) == first)
    assert resyncing(trio)
    second = write_block(trio, "charlie", block, b"second")
    assert copy_of(trio, "alice", block) == second and copy_of(trio, "bob", block) == first
    trio.wait(lambda: not resyncing(trio), timeout=60)
    trio.emu("bob", "heal", "bob", "charlie")
    trio.wait(lambda: all(c.connection is ConnState.CONNECTED for c in trio.status("bob").connections))
    trio.wait(lambda: trio.status("bob").devices[0].disk is DiskState.UP_TO_DATE, timeout=60)
    assert copy_of(trio, "bob", block) == second
