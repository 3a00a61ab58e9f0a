# SPDX-License-Identifier: GPL-2.0-or-later
"""The fake `drbdsetup` and `drbdadm`: DRBD's command lines, outputs, messages and exit codes over the engine.

Node identity is the hostname (the lab node's UTS namespace) unless TANDEM_EMU_NODE says otherwise; the state
directory is TANDEM_EMU_DIR (default /tmp/tandem-drbd-emu); DRBD 8.4 mode is set in the state (`drbd-emu init
--mode 8.4`). Exit codes follow drbdsetup.c: 10 object/config errors, 11 state change refused, 17 no UpToDate
data, 20 timeouts; drbdadm prints "Command '...' terminated with exit code N" and passes N on.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from lab.drbd_emu import engine
from lab.drbd_emu.config import ConfigError, ResourceConfig, load_cached


def load(path: str | Path) -> Mapping[str, ResourceConfig]:
    """The configuration at `path`, parsed once per change of its files (config.load_cached)."""
    return load_cached(path, engine.emu_dir() / "conf-cache")


def node_name() -> str:
    return os.environ.get("TANDEM_EMU_NODE") or socket.gethostname()


class Fail(Exception):
    def __init__(self, rc: int, message: str = "") -> None:
        super().__init__(message)
        self.rc = rc
        self.message = message


# ---------------------------------------------------------------------------------------------------
# Output helpers


def _render(st: engine.State, node: str, fmt: str, opts: set[str], only: str | None) -> str:
    from lab.drbd_emu import render
    from lab.drbd_emu.view import node_view

    status, details = node_view(st, node, only)
    v84 = st.get("mode") == "8.4"
    if fmt == "json":
        return render.render_status_json(status, details=details)
    if fmt == "events2":
        return render.render_events2(status, statistics="--statistics" in opts, details=details, v84=v84)
    return render.render_status_text(
        status, verbose="--verbose" in opts, statistics="--statistics" in opts, details=details
    )


def write_proc(st: engine.State, node: str) -> None:
    """Refresh every node's /proc/drbd stand-in (read through the LD_PRELOAD shim, see install.py): any
    command may change what a peer's file shows (its peer role, connection)."""
    from lab.drbd_emu.view import proc_text

    for n in {node, *st["nodes"]}:
        p = Path(proc_path(n))
        p.parent.mkdir(parents=True, exist_ok=True)
        tmp = p.with_suffix(".tmp")
        tmp.write_text(proc_text(st, n))
        os.replace(tmp, p)


def proc_path(node: str) -> str:
    return str(engine.emu_dir() / "nodes" / node / "proc_drbd")


# ---------------------------------------------------------------------------------------------------
# Handlers (run in this process: the caller is inside the node)


def handler_env(
    st: engine.State, node: str, res: str, peer: str | None, cfg: ResourceConfig | None
) -> dict[str, str]:
    """The usermode-helper environment (DK drbd_nl.c drbd_khelper) plus what drbdadm adds (DRBD_CONF,
    DRBD_NODE_ID_<n>, DRBD_MY_NODE_ID; crm-fence-peer.9.sh reads them)."""
    r = engine.res_state(st, node, res) or {}
    env = {
        "HOME": "/",
        "TERM": "linux",
        "PATH": "/sbin:/usr/sbin:/bin:/usr/bin",
        "DRBD_RESOURCE": res,
    }
    if r.get("conf"):
        env["DRBD_CONF"] = r["conf"]
    if cfg is not None:
        for h in cfg.hosts.values():
            env[f"DRBD_NODE_ID_{h.node_id}"] = h.name
        me = cfg.host(node)
        env["DRBD_MY_NODE_ID"] = str(me.node_id)
        env["DRBD_MINOR"] = " ".join(str(v.minor) for v in me.volumes.values())
        if peer is not None and peer in cfg.hosts:
            ph = cfg.hosts[peer]
            env["DRBD_PEER_NODE_ID"] = str(ph.node_id)
            env["DRBD_MY_ADDRESS"], env["DRBD_MY_AF"] = me.address.rpartition(":")[0], me.family
            env["DRBD_PEER_ADDRESS"], env["DRBD_PEER_AF"] = ph.address.rpartition(":")[0], ph.family
            if st.get("mode") == "8.4":
                env["DRBD_PEER"] = peer
            for v in me.volumes.values():
                env[f"DRBD_MINOR_{v.number}"] = str(v.minor)
                env[f"DRBD_BACKING_DEV_{v.number}"] = v.disk
        if st.get("mode") != "8.4":
            mask = 0
            if all(d["state"] == "UpToDate" for d in r.get("disks", {}).values() if not d["client"]):
                mask |= 1 << me.node_id
            for _name, c in r.get("conns", {}).items():
                if c["peer_disk"] and all(s == "UpToDate" for s in c["peer_disk"].values()):
                    mask |= 1 << c["node_id"]
            env["UP_TO_DATE_NODES"] = f"0x{mask:08X}"
        if peer is not None and r.get("conns", {}).get(peer):
            env["DRBD_CSTATE"] = r["conns"][peer]["state"]
    return env


def run_handler(
    command: str, env: dict[str, str], where: tuple[str, str, str], peer: str | None = None
) -> int:
    """`/bin/sh -c <handler>` as drbdadm runs it. A fault for (node, res, handler) makes it hang until the
    fault changes, or return an exit code without running."""
    fault = handler_fault(engine.Store().read(), *where)
    while fault == "hang":
        time.sleep(0.3)
        fault = handler_fault(engine.Store().read(), *where)
    if isinstance(fault, int):
        rc = fault
    else:
        full = {
            **{
                k: v for k, v in os.environ.items() if k.startswith(("TANDEM_EMU_", "LD_PRELOAD", "HOSTNAME"))
            },
            **env,
        }
        rc = subprocess.run(["/bin/sh", "-c", command], env=full, check=False).returncode
    node, res, handler = where
    with engine.Store().locked() as st:  # for tests and people: which helper ran where, with what result
        st.setdefault("handler_log", []).append(
            {"node": node, "res": res, "handler": handler, "peer": peer, "rc": rc, "t": time.time()}
        )
        del st["handler_log"][:-100]
    return rc


def handler_fault(st: engine.State, node: str, res: str, handler: str) -> Any:
    f = st["faults"]
    return f.get(f"handler/{node}/{res}/{handler}", f.get(f"handler/{node}/{handler}"))


def fence_before_promote(
    store: engine.Store, cfg: ResourceConfig, node: str, res: str, peers: list[str]
) -> None:
    """Promotion with an unknown peer: run fence-peer now (the kernel does it inside `primary`); a result that
    does not outdate the peer refuses the promotion (SS_PRIMARY_NOP)."""
    for peer in peers:
        with store.locked() as st:
            command = cfg.opt("handlers", "fence-peer")
            env = handler_env(st, node, res, peer, cfg)
        if not command:
            raise engine.primary_nop()
        rc = run_handler(command, env, (node, res, "fence-peer"), peer)
        with store.locked() as st:
            engine.apply_fence_result(st, node, res, peer, rc)
            r = engine.res_state(st, node, res)
            c = (r or {}).get("conns", {}).get(peer)
            if rc not in (4, 5, 7) or not (c and engine._peer_outdated(r or {}, peer)):
                raise engine.primary_nop()


# ---------------------------------------------------------------------------------------------------
# drbdsetup


def _split(argv: list[str]) -> tuple[list[str], set[str], dict[str, str]]:
    args: list[str] = []
    flags: set[str] = set()
    values: dict[str, str] = {}
    for a in argv:
        if a.startswith("--"):
            if "=" in a:
                k, v = a.split("=", 1)
                values[k] = v
            else:
                flags.add(a)
        elif a.startswith("-") and len(a) > 1 and not a[1:].isdigit():
            flags.add(a)
        else:
            args.append(a)
    return args, flags, values


def _resolve_res(st: engine.State, node: str, obj: str) -> str:
    """A resource name, or (8.4 style) a minor number or /dev/drbdN."""
    if obj in st["nodes"].get(node, {}):
        return obj
    m = obj.removeprefix("/dev/drbd")
    if m.isdigit():
        for res, r in st["nodes"].get(node, {}).items():
            if any(d["minor"] == int(m) for d in r["disks"].values()):
                return str(res)
        raise Fail(10, f"{obj}: No such device")
    raise Fail(10, f"{obj}: No such resource")


def drbdsetup(argv: list[str]) -> int:
    node = node_name()
    store = engine.Store()
    if not argv:
        raise Fail(20, "USAGE: drbdsetup command {arguments} [options]")
    cmd, rest = argv[0], argv[1:]
    if cmd.startswith("/dev/drbd") and rest:  # 8.3 syntax: drbdsetup /dev/drbdN cmd
        cmd, rest = rest[0], [argv[0], *rest[1:]]
    args, flags, values = _split(rest)
    named = args[0] if cmd in ("status", "events2") and args and args[0] != "all" else None
    with store.locked(only=named) as st:  # a named resource: its piece alone, as the kernel answers
        engine.settle(st, time.time())
        v84 = st.get("mode") == "8.4"
        if cmd in ("status", "events2"):
            only = named
            if only is not None and only not in st["nodes"].get(node, {}):
                raise Fail(10, f"{only}: No such resource")
            fmt = "json" if "--json" in flags else cmd
            if cmd == "events2" and "--now" not in flags:
                raise Fail(20, "events2 without --now is not emulated")
            note_opens(st, node)
            sys.stdout.write(_render(st, node, fmt, flags, only))
            return 0
        if cmd == "sh-status":
            sys.stdout.write(sh_status(st, node, args[0] if args else None))
            return 0
        if cmd in ("role", "cstate", "dstate"):
            res = _resolve_res(st, node, args[0] if args else "")
            sys.stdout.write(role_cstate_dstate(st, node, res, cmd, v84, args[1:] if len(args) > 1 else []))
            return 0
        if cmd in ("wait-connect-resource", "wait-connect-connection", "wait-connect", "wait-sync-resource"):
            res = _resolve_res(st, node, args[0] if args else "")
    if cmd.startswith("wait-"):
        return wait_connect(store, node, res, values, sync="sync" in cmd)
    if cmd in (
        "primary",
        "secondary",
        "down",
        "outdate",
        "disconnect",
        "connect",
        "net-options",
        "resume-io",
    ):
        res_arg = args[0] if args else ""
        with store.locked() as st:
            res = _resolve_res(st, node, res_arg)
        return apply_command(store, node, res, cmd, flags, values, args[1:], objname=res_arg)
    raise Fail(20, f"drbdsetup {cmd}: not emulated")


def role_cstate_dstate(st: engine.State, node: str, res: str, cmd: str, v84: bool, extra: list[str]) -> str:
    """DRBD 9: role → local role, cstate → one line per connection, dstate → local/peer-disks. 8.4:
    `Local/Peer`.
    Both: `Unconfigured` when StandAlone and Diskless (user/v84/drbdsetup.c role_scmd...)."""
    r = engine.res_state(st, node, res)
    assert r is not None
    conns = sorted(r["conns"].values(), key=lambda c: c["node_id"])
    vol = "0"
    disk = r["disks"].get(vol, {"state": "Diskless"})["state"]
    if v84:
        c = conns[0] if conns else None
        cs = (c["state"] if c else "StandAlone").replace("Connecting", "WFConnection")
        if c and c["state"] == "Connected" and c["repl"].get(vol, "Established") != "Established":
            cs = c["repl"][vol]
        if cs == "StandAlone" and disk == "Diskless":
            return "Unconfigured\n"
        peer_role = c["peer_role"] if c else "Unknown"
        pdisk = c["peer_disk"].get(vol, "DUnknown") if c else "DUnknown"
        return {"role": f"{r['role']}/{peer_role}", "cstate": cs, "dstate": f"{disk}/{pdisk}"}[cmd] + "\n"
    if cmd == "role":
        return f"{r['role']}\n"
    if cmd == "cstate":
        return "".join(f"{c['state']}\n" for c in conns) or ""
    lines = []
    for v, d in sorted(r["disks"].items()):
        peers = "".join(f"/{c['peer_disk'].get(v, 'DUnknown')}" for c in conns)
        lines.append(f"{d['state']}{peers}\n")
    return "".join(lines)


def sh_status(st: engine.State, node: str, only: str | None) -> str:
    """8.4 `drbdsetup sh-status <res>` (user/v84/drbdsetup.c), eval'ed by the RA."""
    out = []
    for res, r in sorted(st["nodes"].get(node, {}).items()):
        if only not in (None, "all", res):
            continue
        c = next(iter(sorted(r["conns"].values(), key=lambda c: c["node_id"])), None)
        for vol, d in sorted(r["disks"].items()):
            cs = (c["state"] if c else "StandAlone").replace("Connecting", "WFConnection")
            if c and c["state"] == "Connected" and c["repl"].get(vol, "Established") != "Established":
                cs = c["repl"][vol]
            done = (
                engine.resync_done(st, res, vol, node, next(k for k, v in r["conns"].items() if v is c))
                if c
                else None
            )
            out += [
                f"_minor={d['minor']}",
                f"_res_name={res}",
                f"_volume={vol}",
                "_known=Configured",
                "",
                f"_cstate={cs}",
                f"_role={r['role']}",
                f"_peer={c['peer_role'] if c else 'Unknown'}",
                f"_disk={d['state']}",
                f"_pdsk={c['peer_disk'].get(vol, 'DUnknown') if c else 'DUnknown'}",
                "",
                f"_flags_susp={'1' if r['suspended'] else ''}",
                "_flags_aftr_isp=",
                "_flags_peer_isp=",
                "_flags_user_isp=",
                "",
                f"_resynced_percent={'' if done is None else f'{done:.1f}'}",
                "",
                "_sh_status_process",
                "",
                "",
            ]
    return "\n".join(out)


def wait_connect(store: engine.Store, node: str, res: str, values: dict[str, str], *, sync: bool) -> int:
    """wait-connect-*: block until connected (or, for wait-sync, until no resync runs) or `--wfc-timeout`.
    Timeout exits 5 like drbdsetup's wait_for_family (exit code when the timeout expired)."""
    timeout = float(values.get("--wfc-timeout", "0") or 0)
    deadline = time.time() + timeout if timeout > 0 else None
    while True:
        with store.locked() as st:
            engine.settle(st, time.time())
            r = engine.res_state(st, node, res)
            if r is None:
                return 10
            ok = bool(r["conns"]) and all(c["state"] == "Connected" for c in r["conns"].values())
            if sync:
                ok = ok and not any(k.startswith(f"{res}/") for k in st.get("resyncs", {}))
        if ok:
            return 0
        if deadline is not None and time.time() >= deadline:
            return 5
        time.sleep(0.2)


def apply_command(
    store: engine.Store,
    node: str,
    res: str,
    cmd: str,
    flags: set[str],
    values: dict[str, str],
    extra: list[str],
    objname: str,
) -> int:
    cfg: ResourceConfig | None = None
    with store.locked() as st:
        r = engine.res_state(st, node, res)
        if r is not None and r.get("conf"):
            cfg = load(r["conf"]).get(res)
        if cmd in ("secondary", "down"):
            note_opens(st, node)
    now = time.time()
    try:
        if cmd == "primary":
            assert cfg is not None
            with store.locked() as st:
                to_fence = engine.primary(st, cfg, node, res, now, force="--force" in flags)
            if to_fence:
                fence_before_promote(store, cfg, node, res, to_fence)
                with store.locked() as st:
                    engine.primary(st, cfg, node, res, time.time())
            with store.locked() as st:
                engine.become_primary(st, node, res)
                engine.settle(st, time.time())
                write_proc(st, node)
        else:
            with store.locked() as st:
                if cmd == "secondary":
                    engine.secondary(st, node, res, now)
                elif cmd == "down":
                    engine.down(st, node, res, now)
                elif cmd == "outdate":
                    outdate(st, node, res)
                elif cmd == "disconnect":
                    engine.disconnect(st, node, res, _peer_by_id(st, node, res, extra))
                elif cmd == "connect":
                    assert cfg is not None
                    engine.connect(
                        st,
                        cfg,
                        node,
                        res,
                        _peer_by_id(st, node, res, extra),
                        discard="--discard-my-data" in flags,
                    )
                elif cmd == "net-options":
                    rr = engine.res_state(st, node, res)
                    assert rr is not None
                    atp = values.get("--allow-two-primaries")
                    for c in rr["conns"].values():
                        if atp is not None:
                            c["allow_two_primaries"] = atp in ("yes", "")
                elif cmd == "resume-io":
                    engine.resume_io(st, node, res)
                engine.settle(st, time.time())
                write_proc(st, node)
    except engine.StateError as e:
        raise Fail(e.exit_code, state_change_failed(objname, e)) from e
    if cmd == "down":
        from lab.drbd_emu import devices

        devices.remove(node, res)
    return 0


def state_change_failed(objname: str, e: engine.StateError) -> str:
    """drbdsetup's print_config_error: the refusal, then the kernel's own line if it sent one."""
    text = f"{objname}: State change failed: ({e.code}) {e.message}"
    return f"{text}\nadditional info from kernel:\n{e.info}" if e.info else text


def note_opens(st: engine.State, node: str) -> None:
    """The kernel's open count of every device of the node, which status shows (`open:yes`): how many of
    the node's processes hold it open right now (a VM's QEMU), with the data plane's devices."""
    from lab.drbd_emu import devices

    if not devices.enabled():
        return
    disks = {
        f"{res}/{vol}": d for res, r in st["nodes"].get(node, {}).items() for vol, d in r["disks"].items()
    }
    paths = {key: f"/dev/drbd{d['minor']}" for key, d in disks.items()}
    for key, count in devices.real_openers(paths).items():
        disks[key]["open_real"] = count


def outdate(st: engine.State, node: str, res: str) -> None:
    """`outdate`: refused on a Primary or while connected to a Primary (SS_NO_UP_TO_DATE_DISK /
    SS_CONNECTED_OUTDATES)."""
    r = engine.res_state(st, node, res)
    assert r is not None
    if r["role"] == "Primary":
        raise engine.no_up_to_date_disk()
    if any(c["state"] == "Connected" for c in r["conns"].values()):
        raise engine.StateError(-6, "Refusing to be Outdated while Connected")
    for vol, d in r["disks"].items():
        if d["state"] in ("UpToDate", "Consistent"):
            engine._set_disk(st, node, res, vol, "Outdated")
        elif d["state"] in ("Inconsistent",):
            raise engine.StateError(-16, "Disk state is lower than outdated", 5)


def _peer_by_id(st: engine.State, node: str, res: str, extra: list[str]) -> str | None:
    if not extra:
        return None
    r = engine.res_state(st, node, res)
    assert r is not None
    for name, c in r["conns"].items():
        if str(c["node_id"]) == extra[0] or name == extra[0]:
            return str(name)
    return None


# ---------------------------------------------------------------------------------------------------
# drbdadm


def _drbdadm_args(argv: list[str]) -> tuple[dict[str, str], set[str], list[str]]:
    opts: dict[str, str] = {}
    flags: set[str] = set()
    rest: list[str] = []
    it = iter(argv)
    for a in it:
        if a in ("-c", "--config-file", "--peer", "-P"):
            opts[a.lstrip("-")[0] if a.startswith("--c") else a] = next(it, "")
        elif a.startswith("--config-file="):
            opts["-c"] = a.split("=", 1)[1]
        elif a.startswith("--peer="):
            opts["--peer"] = a.split("=", 1)[1]
        elif a in (
            "-d",
            "--dry-run",
            "-v",
            "--verbose",
            "-S",
            "--stacked",
            "-s",
            "--skip-net",
            "--skip-disk",
            "--force",
            "--discard-my-data",
            "-n",
        ):
            flags.add(a)
        elif a.startswith("--") and "=" in a:
            k, v = a.split("=", 1)
            opts[k] = v
        elif a.startswith("--"):
            flags.add(a)
        else:
            rest.append(a)
    if "c" in opts:
        opts["-c"] = opts.pop("c")
    return opts, flags, rest


def drbdadm(argv: list[str]) -> int:
    opts, flags, rest = _drbdadm_args(argv)
    store = engine.Store()
    if "--version" in flags or (rest and rest[0] == "--version"):
        with store.locked() as st:
            v84 = st.get("mode") == "8.4"
            version = "8.4.11" if v84 else str(st.get("kernel", engine.KERNEL_9))
        code = "0x" + "".join(f"{int(x):02x}" for x in version.split("."))
        print("DRBDADM_BUILDTAG=GIT-hash:\\ emulator\\ build\\ by\\ tandem")
        print("DRBDADM_API_VERSION=" + ("1" if v84 else "2"))
        print(f"DRBD_KERNEL_VERSION_CODE={code}")
        print(f"DRBD_KERNEL_VERSION={version}")
        print("DRBDADM_VERSION_CODE=0x091600")
        print("DRBDADM_VERSION=9.22.0")
        return 0
    if not rest:
        raise Fail(20, "USAGE: drbdadm COMMAND [OPTION...] {all|RESOURCE...}")
    cmd, objs = rest[0], rest[1:]
    conf_path = opts.get("-c") or os.environ.get("TANDEM_EMU_CONF") or "/etc/drbd.conf"
    try:
        configs = load(conf_path)
    except (OSError, ConfigError) as e:
        raise Fail(10, f"drbd.conf: {e}") from e
    node = node_name()
    if cmd == "sh-mod-parms":
        return 0
    if cmd == "sh-resources":
        print(" ".join(r for r, c in configs.items() if node in c.hosts))
        return 0
    if not objs:
        raise Fail(20, f"drbdadm {cmd}: missing resource name")
    names = [r for r, c in configs.items() if node in c.hosts] if objs == ["all"] else objs
    rc = 0
    for obj in names:
        res, _, peer = obj.partition(":")
        cfg = configs.get(res)
        if cfg is None or node not in cfg.hosts:
            raise Fail(10, f"'{res}' not defined in your config (for this host).")
        rc = rc or _drbdadm_one(
            store, cfg, conf_path, node, cmd, peer or opts.get("--peer") or None, flags, opts
        )
    return rc


def _sh(cfg: ResourceConfig, node: str, cmd: str) -> str | None:
    vols = sorted(cfg.host(node).volumes.values(), key=lambda v: v.number)
    out = {
        "sh-dev": [v.device for v in vols],
        "sh-minor": [str(v.minor) for v in vols],
        "sh-ll-dev": [v.disk for v in vols],
        "sh-md-dev": [v.disk if v.meta_disk == "internal" else v.meta_disk for v in vols],
        "sh-md-idx": ["internal" for _ in vols],
    }.get(cmd)
    return None if out is None else "\n".join(out)


def _drbdadm_one(
    store: engine.Store,
    cfg: ResourceConfig,
    conf_path: str,
    node: str,
    cmd: str,
    peer: str | None,
    flags: set[str],
    opts: dict[str, str],
) -> int:
    res = cfg.name
    sh = _sh(cfg, node, cmd)
    if sh is not None:
        print(sh)
        return 0
    if cmd == "dump":
        from lab.drbd_emu.config import dump

        sys.stdout.write(dump(cfg, node, conf_path))
        return 0
    dry = "-d" in flags or "--dry-run" in flags
    if dry:
        if cmd == "connect" and peer:
            print(f"drbdsetup connect {res} {cfg.host(peer).node_id}")
        else:
            print(f"drbdsetup {cmd} {res}")
        return 0
    if cmd in (
        "role",
        "cstate",
        "dstate",
        "status",
        "primary",
        "secondary",
        "outdate",
        "net-options",
        "resume-io",
    ):
        with store.locked(only=res) as st:
            up = engine.res_state(st, node, res) is not None
            v84 = st.get("mode") == "8.4"
        if not up:
            if cmd in ("role", "cstate", "dstate") and v84:
                print("Unconfigured")
                return 0
            _echo_fail(cmd, res, 10, f"{res}: No such resource")
            return 10
        if cmd == "status":
            fl = {f for f in flags if f in ("--verbose", "--statistics", "--json")} | (
                {"--verbose"} if "-v" in flags else set()
            )
            return drbdsetup(["status", res, *sorted(fl)])
        if cmd in ("role", "cstate", "dstate"):
            return drbdsetup([cmd, res])
        extra = ["--force"] if "--force" in flags else []
        values = [f"{k}={v}" for k, v in opts.items() if k.startswith("--") and k != "--peer"]
        try:
            return drbdsetup([cmd, res, *extra, *values])
        except Fail as e:
            _echo_fail(cmd, res, e.rc, e.message)
            return e.rc
    if cmd in (
        "up",
        "adjust",
        "attach",
        "new-resource",
        "new-minor",
        "connect",
        "create-md",
        "check-resize",
        "disconnect",
        "down",
        "detach",
    ):
        return _lifecycle(store, cfg, conf_path, node, cmd, peer, flags)
    if cmd in ("fence-peer", "unfence-peer") or cmd.startswith("before-") or cmd.startswith("after-"):
        with store.locked() as st:
            command = cfg.opt("handlers", cmd)
            env = handler_env(st, node, res, peer, cfg)
        if not command:
            return 0
        return run_handler(command, env, (node, res, cmd), peer)
    if cmd in ("wait-connect", "wait-sync"):
        return wait_connect(store, node, res, {}, sync=cmd == "wait-sync")
    raise Fail(20, f"drbdadm {cmd}: not emulated")


def _echo_fail(cmd: str, res: str, rc: int, message: str) -> None:
    if message:
        print(message, file=sys.stderr)
    print(f"Command 'drbdsetup {cmd} {res}' terminated with exit code {rc}", file=sys.stderr)


def _lifecycle(
    store: engine.Store,
    cfg: ResourceConfig,
    conf_path: str,
    node: str,
    cmd: str,
    peer: str | None,
    flags: set[str],
) -> int:
    """up = new-resource, new-minor, attach, connect; adjust brings the running state to the config (UG9)."""
    from lab.drbd_emu import devices

    res = cfg.name
    now = time.time()
    with store.locked() as st:
        if cmd == "down":
            note_opens(st, node)
        r = engine.res_state(st, node, res)
        if cmd == "create-md":
            vols = cfg.host(node).volumes
            attached = engine.create_md(st, node, res, [str(v) for v in vols])
            for vol in attached:
                v, slots = vols[int(vol)], len(cfg.peers(node))
                print(f"Device '{v.minor}' is configured!", file=sys.stderr)
                argv = f"drbdmeta {v.minor} v09 {v.disk} {v.meta_disk} create-md {slots}"
                print(f"Command '{argv}' terminated with exit code 20", file=sys.stderr)
            return 20 if attached else 0
        if cmd == "check-resize":
            return 0
        if cmd in ("down",):
            if r is None:
                return 0
            try:
                engine.down(st, node, res, now)
            except engine.StateError as e:
                _echo_fail("down", res, e.exit_code, state_change_failed(res, e))
                return e.exit_code
            write_proc(st, node)
            devices.remove(node, res)
            return 0
        if cmd == "disconnect":
            if r is not None:
                engine.disconnect(st, node, res, peer)
                engine.settle(st, now)
            write_proc(st, node)
            return 0
        if r is None and cmd in ("detach",):
            return 0
        if r is None:
            st["nodes"].setdefault(node, {})[res] = engine.new_resource(cfg, node)
            r = st["nodes"][node][res]
            r["conf"] = str(Path(conf_path).resolve())
        if cmd == "detach":
            for d in r["disks"].values():
                d["state"] = "Diskless"
        if cmd in ("up", "adjust", "attach") and "--skip-disk" not in flags:
            engine.attach(st, node, res, now)
        if cmd in ("up", "connect") or (cmd == "adjust" and "--skip-net" not in flags):
            engine.connect(st, cfg, node, res, peer, discard="--discard-my-data" in flags)
        engine.settle(st, now)
        write_proc(st, node)
    devices.ensure(cfg, node, res)
    return 0


def main(prog: str, argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    trace = os.environ.get("TANDEM_EMU_TRACE")
    if trace:  # a log of every call, to check which paths a caller (e.g. the RA) took
        with open(trace, "a") as f:
            f.write(" ".join([node_name(), prog, *args]) + "\n")
    try:
        return drbdsetup(args) if prog == "drbdsetup" else drbdadm(args)
    except Fail as e:
        if e.message:
            print(e.message, file=sys.stderr)
        return e.rc
    except engine.StateError as e:
        print(f"State change failed: ({e.code}) {e.message}", file=sys.stderr)
        return e.exit_code
    except BrokenPipeError:
        return 141
