# SPDX-License-Identifier: GPL-2.0-or-later
"""`drbd-emu`: the emulator's control tool, for the lab's fault hooks and for tests.

    drbd-emu init [--mode 9|8.4] [--resync-kib-s N] [--kernel 9.2.19]
                                                      fresh state (wipes the directory's state.json); 9.2.19
                                                      holds a primary-loss survivor at Consistent
    drbd-emu kernel                                   the per-node kernel loop (run inside the node), with
                                                      the node's tool server beside it
    drbd-emu serve KERNEL_PID                         the node's tool server (toolserver.py; the kernel
                                                      starts it)
    drbd-emu write RES [VOL] [COUNT]                  COUNT 4 KiB writes on this node's Primary (generation +1
                                                      each): through /dev/drbdN with a data plane, else
                                                      bookkeeping only
    drbd-emu data RES [VOL]                           this node's data generation/tag/lost blocks/blocks out
                                                      of sync per peer, as JSON
    drbd-emu open|close RES [VOL]                     hold the device open (as a VM would)
    drbd-emu cut A B | heal A B                       connection loss between two nodes, and back
    drbd-emu fail-disk NODE RES [VOL]                 disk failure (Failed, then Diskless)
    drbd-emu full-disk NODE RES [VOL]                 the backing disk is full: writes fail, DRBD detaches
    drbd-emu slow-peer NODE MS|off                    NODE acknowledges replicated writes MS ms late
    drbd-emu handler NODE HANDLER hang|fail RC|ok     a handler that hangs, fails with RC, or runs normally
    drbd-emu slow-resync KIB_S|off                    resync speed fault
    drbd-emu no-resync on|off                         LINBIT/drbd#145: a returning node is taken as in sync
                                                      (no resync of what it missed): a negative control
    drbd-emu proc                                     refresh this node's /proc/drbd stand-in
    drbd-emu state                                    the raw state (JSON)
    drbd-emu cleanup                                  detach loop devices over this directory's backing

Node identity comes from TANDEM_EMU_NODE or the hostname, like the fakes.
"""

from __future__ import annotations

import fcntl
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from lab.drbd_emu import devices, engine
from lab.drbd_emu.cli import Fail, handler_env, node_name, run_handler, write_proc

TICK = 0.2


def kernel(node: str, *, once: bool = False) -> None:
    """The node's emulator kernel: ticks the state (resync progress, Failed→Diskless), runs this node's
    queued helpers (fence-peer, unfence-peer) in the node's own namespaces, refreshes /proc/drbd, and drops
    the DRBD state of peers whose kernel is gone (a power cut: `engine.power_loss`). With
    TANDEM_EMU_DEVICES=bind it also runs the node's data plane (replica.py): its copies, their replication
    and the resyncs it is source of."""
    from lab.drbd_emu.cli import load
    from lab.drbd_emu.net import Prober
    from lab.drbd_emu.replica import DataPlane

    store = engine.Store()
    running: dict[str, Any] = {}
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    data = DataPlane(node, store) if devices.enabled() else None
    probing = os.environ.get("TANDEM_EMU_NET") == "probe"
    prober = Prober(node, data.serve if data else None) if probing or data else None
    alive = _hold_alive_lock(store.dir, node)  # noqa: F841 (held, never read: released when we die)
    server = None if once else start_tool_server()  # noqa: F841 (it dies with us)
    with store.locked() as st:  # a (re)booted node: its DRBD "kernel" starts empty; meta data survives
        engine.power_loss(st, node, time.time())
    if data is not None:
        devices.detach_node_loops(node)  # over the copies of this node's previous life
        data.start()
    with store.locked() as st:
        st.setdefault("kernels", {})[node] = os.getpid()  # ready: tests wait for this before `up`
        logged: int = st.get("log_n", 0)  # what happened before this boot is not this kernel's to print
    while True:
        seen: dict[str, float] = {}
        if prober is not None and probing:
            seen = prober.round(store.read())
        elif prober is not None:
            prober.listen(store.read())
        with store.locked() as st:
            if probing:
                st["net"] = "probe"
                st.setdefault("reach", {}).update(seen)
            for gone in _dead_kernels(store.dir, st, node):
                engine.power_loss(st, gone, time.time())
            engine.settle(st, time.time())
            if data is not None:
                data.copy_resyncs(st)
                engine.settle(st, time.time())
            write_proc(st, node)
            lines, logged = engine.new_log_lines(st, node, logged)
            jobs = [j for j in st["jobs"] if j["node"] == node and j["id"] not in running]
            starts = []
            for j in jobs:
                r = engine.res_state(st, node, j["res"])
                if r is None:
                    st["jobs"].remove(j)
                    continue
                cfg = load(r["conf"]).get(j["res"]) if r.get("conf") else None
                command = r["handlers"].get(j["handler"], "")
                env = handler_env(st, node, j["res"], j["peer"], cfg)
                starts.append((j, command, env))
        for line in lines:
            print(f"{time.strftime('%H:%M:%S')} {line}", flush=True)
        for j, command, env in starts:
            running[j["id"]] = True
            _start_job(store, node, j, command, env, running)
        if once:
            _join(running)
            return
        time.sleep(TICK)


def start_tool_server(env: Mapping[str, str] | None = None) -> subprocess.Popen[bytes]:
    """The tool server (toolserver.py) of the node in `env` (default: ours), a child of this process that
    dies with it. The kernel starts it before its data plane's threads."""
    script = Path(__file__).resolve().parent / "bin" / "drbd-emu"
    argv = [sys.executable, str(script), "serve", str(os.getpid())]
    return subprocess.Popen(argv, stdin=subprocess.DEVNULL, env=env)


def _alive_lock(emu_dir: Path, node: str) -> Path:
    return emu_dir / "nodes" / node / "kernel.lock"


def _hold_alive_lock(emu_dir: Path, node: str) -> int:
    """Lock the node's liveness file for this kernel's whole life (waits for an earlier kernel of the node
    to be gone). The kernel is the node's DRBD, and the lock goes with the process however it ends (power
    off, SIGKILL), which its peers can see from their own PID namespaces where a pid would mean nothing."""
    path = _alive_lock(emu_dir, node)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    fcntl.flock(fd, fcntl.LOCK_EX)
    return fd


def _dead_kernels(emu_dir: Path, st: engine.State, me: str) -> list[str]:
    """The other nodes whose registered kernel is gone while they still hold DRBD state (their lock is
    free). A node that never ran a kernel (state set up from the host) is left alone."""
    gone = []
    for node in st.get("kernels", {}):
        if node == me or not (node in st["nodes"] or any(j["node"] == node for j in st["jobs"])):
            continue
        try:
            fd = os.open(_alive_lock(emu_dir, node), os.O_RDONLY)
        except FileNotFoundError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            gone.append(node)
        except BlockingIOError:
            pass  # its kernel holds it: alive
        finally:
            os.close(fd)
    return gone


def _start_job(
    store: engine.Store,
    node: str,
    job: dict[str, Any],
    command: str,
    env: dict[str, str],
    running: dict[str, Any],
) -> None:
    import threading

    def work() -> None:
        rc = run_handler(command, env, (node, job["res"], job["handler"]), peer=job["peer"])
        with store.locked() as st:
            st["jobs"] = [j for j in st["jobs"] if j["id"] != job["id"]]
            if job["handler"] == "fence-peer":
                engine.apply_fence_result(st, node, job["res"], job["peer"], rc)
            engine.settle(st, time.time())
        running.pop(job["id"], None)

    t = threading.Thread(target=work, daemon=True)
    running[job["id"]] = t
    t.start()


def _join(running: dict[str, Any]) -> None:
    for t in list(running.values()):
        if hasattr(t, "join"):
            t.join()


def device_write_blocks(gen: int, count: int) -> list[int]:
    """The blocks `write` goes to for a node whose data generation is `gen`: after sector 0's block (the lab
    guest's record), one block per write."""
    return [1 + (gen + i) % (engine.BLOCKS - 1) for i in range(count)]


def _device_write(store: engine.Store, node: str, args: list[str]) -> int:
    """`write` through this node's /dev/drbdN (the data plane decides where it goes): COUNT 4 KiB blocks,
    each stamped with the node and the generation, after sector 0 (the lab guest's record)."""
    import mmap

    res, vol = args[0], args[1] if len(args) > 1 else "0"
    st = store.read()
    r = engine.res_state(st, node, res)
    if r is None:
        raise Fail(10, f"{res}: No such resource")
    device = f"/dev/drbd{r['disks'][vol]['minor']}"
    first = engine.meta_for(st, node, res, vol)["gen"]
    buf = mmap.mmap(-1, engine.BLOCK_BYTES)  # page-aligned, as O_DIRECT needs
    fd = os.open(device, os.O_WRONLY | os.O_DIRECT)
    try:
        for i, block in enumerate(device_write_blocks(first, int(args[2]) if len(args) > 2 else 1)):
            buf.seek(0)
            buf.write(f"{node} gen {first + i + 1} block {block}\n".encode().ljust(engine.BLOCK_BYTES, b"."))
            os.pwritev(fd, [buf], block * engine.BLOCK_BYTES)
        os.fsync(fd)
    except OSError as e:
        print(f"drbd-emu: write {device}: {e.strerror}", file=sys.stderr)
        return 1
    finally:
        os.close(fd)
    md = engine.meta_for(store.read(), node, res, vol)
    print(json.dumps({"gen": md["gen"], "tag": md["tag"]}))
    return 0


def main(argv: list[str]) -> int:
    if not argv:
        print(__doc__, file=sys.stderr)
        return 2
    cmd, args = argv[0], argv[1:]
    store = engine.Store()
    node = node_name()
    try:
        if cmd == "init":
            mode = args[args.index("--mode") + 1] if "--mode" in args else "9"
            store.dir.mkdir(parents=True, exist_ok=True)
            with store.locked() as st:
                st.clear()
                st.update(engine.new_state(mode))
                if "--resync-kib-s" in args:
                    st["resync_kib_s"] = float(args[args.index("--resync-kib-s") + 1])
                if "--kernel" in args:
                    st["kernel"] = args[args.index("--kernel") + 1]
            return 0
        if cmd == "kernel":
            kernel(node)
            return 0
        if cmd == "serve":
            from lab.drbd_emu.toolserver import serve

            serve(str(store.dir), node, int(args[0]))
            return 0
        if cmd == "write" and devices.enabled():
            return _device_write(store, node, args)
        if cmd == "cleanup":
            for name in devices.detach_loops(store.dir):
                print(f"detached {name}")
            return 0
        with store.locked() as st:
            t = time.time()
            engine.settle(st, t)
            if cmd == "write":
                vol = args[1] if len(args) > 1 else "0"
                out = engine.write(st, node, args[0], vol, t, int(args[2]) if len(args) > 2 else 1)
                print(json.dumps(out))
            elif cmd == "data":
                vol = args[1] if len(args) > 1 else "0"
                md = engine.meta_for(st, node, args[0], vol)
                oos = {peer: len(blocks) for peer, blocks in md["oos"].items()}
                print(json.dumps({"gen": md["gen"], "tag": md["tag"], "lost": md["lost"], "oos": oos}))
            elif cmd in ("open", "close"):
                r = engine.res_state(st, node, args[0])
                if r is None:
                    raise Fail(10, f"{args[0]}: No such resource")
                d = r["disks"][args[1] if len(args) > 1 else "0"]
                d["open"] = max(0, d["open"] + (1 if cmd == "open" else -1))
            elif cmd in ("cut", "heal"):
                st["links"][engine.link_key(args[0], args[1])] = {"cut": cmd == "cut"}
            elif cmd == "fail-disk":
                engine.fail_disk(st, args[0], args[1], args[2] if len(args) > 2 else "0", t)
            elif cmd == "full-disk":
                st["faults"][f"full/{args[0]}/{args[1]}/{args[2] if len(args) > 2 else '0'}"] = True
            elif cmd == "slow-peer":
                if args[1] == "off":
                    st["faults"].pop(f"slow-peer/{args[0]}", None)
                else:
                    st["faults"][f"slow-peer/{args[0]}"] = float(args[1])
            elif cmd == "handler":
                key = f"handler/{args[0]}/{args[1]}"
                if args[2] == "ok":
                    st["faults"].pop(key, None)
                else:
                    st["faults"][key] = "hang" if args[2] == "hang" else int(args[3])
            elif cmd == "slow-resync":
                if args[0] == "off":
                    st["faults"].pop("slow-resync", None)
                else:
                    st["faults"]["slow-resync"] = float(args[0])
            elif cmd == "no-resync":
                if args[0] == "off":
                    st["faults"].pop("no-resync", None)
                else:
                    st["faults"]["no-resync"] = True
            elif cmd == "proc":
                write_proc(st, node)
            elif cmd == "state":
                print(json.dumps(st, indent=1, sort_keys=True))
            else:
                raise Fail(2, f"drbd-emu: unknown command {cmd}")
            engine.settle(st, time.time())
            if engine.res_state(st, node, args[0] if args else "") is not None or os.environ.get(
                "TANDEM_EMU_PROC_DRBD"
            ):
                write_proc(st, node)
    except engine.StateError as e:
        print(f"drbd-emu: {e.message}", file=sys.stderr)
        return e.exit_code
    except Fail as e:
        print(e.message, file=sys.stderr)
        return e.rc
    return 0
