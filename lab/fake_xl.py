# SPDX-License-Identifier: GPL-2.0-or-later
"""A fake `xl` (Xen toolstack) for machines without Xen: per-node domains in one shared state file.

Real xl needs a Xen hypervisor (here it exits 1 with "cannot init xl context", vm-migration-recipe §0), so the
Xen paths of ocf:tandem:domain and ocf:heartbeat:Xen run against this. State is one JSON document in
$TANDEM_XL_DIR (default /tmp/tandem-fake-xl, on the host's /tmp so lab nodes share it), guarded by flock;
the node is $TANDEM_XL_NODE or the host name, like the DRBD emulator.

What it models, with xl's own output formats:
- list / domid / domname / info / create / shutdown / trigger power / destroy / pause / unpause / rename /
  mem-set / migrate;
- a guest that honours a shutdown after `tandem_fake_shutdown` seconds (a cfg key xl itself ignores; "ignore"
  makes it ignore shutdown requests, as a hung guest does);
- migrate: the target holds NAME--incoming (paused) while `tandem_fake_migrate_seconds` pass, then the source
  is renamed NAME--migratedaway, the target becomes NAME and runs, the source is destroyed. A killed sender
  leaves no half copy: the receiver drops the incoming domain once the sender's pid is gone, as real xl does
  when the stream breaks;
- a broken toolstack: the file NODE.broken in the state dir makes every command fail like xl without Xen;
  HOST.unreachable makes `xl migrate ... HOST` fail as ssh does.
Fake-only commands: `fake-crash NAME` (the domain crashes) and `fake-dump` (the state as JSON).
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tandem.domain.config import ConfigError, parse_xl_settings

DEFAULT_DIR = "/tmp/tandem-fake-xl"
INCOMING = "--incoming"
MIGRATED = "--migratedaway"
HEADER = "Name                                        ID   Mem VCPUs\tState\tTime(s)"
NO_XEN = (
    "xencall: error: Could not obtain handle on privileged command interface: No such file or directory\n"
    "libxl: error: libxl.c:102:libxl_ctx_alloc: cannot open libxc handle: No such file or directory\n"
    "cannot init xl context\n"
)
State = dict[str, Any]


class XlError(Exception):
    def __init__(self, message: str, rc: int = 1) -> None:
        super().__init__(message)
        self.message = message
        self.rc = rc


def state_dir() -> Path:
    return Path(os.environ.get("TANDEM_XL_DIR", DEFAULT_DIR))


def this_node() -> str:
    return os.environ.get("TANDEM_XL_NODE") or socket.gethostname()


@contextmanager
def locked() -> Iterator[State]:
    """The whole cluster's state, read and written back under one lock."""
    directory = state_dir()
    directory.mkdir(parents=True, exist_ok=True)
    with open(directory / "lock", "a+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        path = directory / "state.json"
        state: State = json.loads(path.read_text()) if path.exists() else {"nodes": {}}
        settle(state, time.time())
        yield state
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(state, indent=1, sort_keys=True))
        tmp.replace(path)


def node_state(state: State, node: str) -> State:
    found: State = state["nodes"].setdefault(node, {"next_id": 1, "domains": {}})
    return found


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def settle(state: State, now: float) -> None:
    """Time-driven changes: guests that finished shutting down, incoming copies whose sender died."""
    for node in state["nodes"].values():
        for name, dom in list(node["domains"].items()):
            if (dom.get("shutdown_at") is not None and dom["shutdown_at"] <= now) or (
                name.endswith(INCOMING) and not pid_alive(dom.get("sender_pid", 0))
            ):
                del node["domains"][name]


def find(state: State, node: str, ident: str) -> tuple[str, State]:
    domains = node_state(state, node)["domains"]
    if ident in domains:
        return ident, domains[ident]
    for name, dom in domains.items():
        if ident.isdigit() and dom["id"] == int(ident):
            return name, dom
    raise XlError(f"{ident} is an invalid domain identifier (rc=-6)")


def row(name: str, dom: State) -> str:
    """An idle guest shows "-b----" (blocked in its idle loop), as real ones mostly do."""
    letters = {
        "running": "-b----",
        "paused": "--p---",
        "shutdown": "---s--",
        "crashed": "----c-",
        "dying": "-----d",
    }
    flags = letters.get(dom["state"], "------")
    return f"{name:<40} {dom['id']:5d} {dom['mem']:5d} {dom['vcpus']:5d}     {flags}  {1.2:8.1f}"


# ---- commands ---------------------------------------------------------------------------------------------


def cmd_list(state: State, node: str, args: list[str], out: list[str]) -> None:
    names = [a for a in args if not a.startswith("-")]
    long = any(a in ("-l", "--long") for a in args)
    domains = node_state(state, node)["domains"]
    chosen = (
        [find(state, node, n) for n in names] if names else sorted(domains.items(), key=lambda i: i[1]["id"])
    )
    if long:
        out.append(
            json.dumps([{"domid": d["id"], "config": {"c_info": {"name": n}}} for n, d in chosen], indent=4)
        )
        return
    out.append(HEADER)
    if not names:
        out.append(f"{'Domain-0':<40} {0:5d} {2048:5d} {2:5d}     r-----  {100.0:8.1f}")
    out.extend(row(n, d) for n, d in chosen)


def cmd_create(state: State, node: str, args: list[str], out: list[str], err: list[str]) -> None:
    files = [a for a in args if not a.startswith("-") and "=" not in a]
    if not files:
        raise XlError("xl create: config file required")
    err.append(f"Parsing config from {files[0]}")
    try:
        settings = parse_xl_settings(Path(files[0]).read_text())
        for extra in (a for a in args if "=" in a):  # xl create cfg name="other" ...
            settings.update(parse_xl_settings(extra))
    except OSError as exc:
        raise XlError(f"Failed to read config file: {files[0]}: {exc.strerror}") from exc
    except ConfigError as exc:
        raise XlError(f"{files[0]}: config parsing error: {exc}") from exc
    name = settings.get("name")
    if not isinstance(name, str):
        raise XlError("Domain name must be specified.")
    here = node_state(state, node)
    if name in here["domains"]:
        raise XlError(
            f"libxl: error: libxl_create.c:1272:initiate_domain_create: Domain {here['domains'][name]['id']}:"
            f'domain with name "{name}" already exists.\nlibxl: error: libxl_create.c:1325:domcreate_'
            f"complete: Domain 0:cannot (re-)build domain: -1"
        )
    shutdown = settings.get("tandem_fake_shutdown", "1")
    here["domains"][name] = {
        "id": here["next_id"],
        "mem": int(str(settings.get("memory", "128")), 0),
        "vcpus": int(str(settings.get("vcpus", "1")), 0),
        "state": "paused" if "-p" in args else "running",
        "config": files[0],
        "shutdown_after": None if shutdown == "ignore" else float(str(shutdown)),
        "migrate_seconds": float(str(settings.get("tandem_fake_migrate_seconds", "0.2"))),
        "shutdown_at": None,
    }
    here["next_id"] += 1


def cmd_shutdown(state: State, node: str, args: list[str], out: list[str], err: list[str]) -> None:
    names = [a for a in args if not a.startswith("-")]
    if not names:
        raise XlError("'xl shutdown' requires at least 1 argument.")
    _, dom = find(state, node, names[0])
    err.append(f"Shutting down domain {dom['id']}")
    if dom["state"] == "paused":
        return  # a paused guest cannot see the request
    if dom["shutdown_after"] is not None and dom.get("shutdown_at") is None:
        dom["shutdown_at"] = time.time() + dom["shutdown_after"]


def cmd_trigger(state: State, node: str, args: list[str], out: list[str], err: list[str]) -> None:
    if len(args) < 2:
        raise XlError("'xl trigger' requires at least 2 arguments.")
    if args[1] != "power":
        raise XlError(f'Invalid trigger "{args[1]}"')
    cmd_shutdown(state, node, [args[0]], out, err)


def set_state(state: State, node: str, ident: str, new: str) -> None:
    find(state, node, ident)[1]["state"] = new


def cmd_rename(state: State, node: str, args: list[str]) -> None:
    if len(args) != 2:
        raise XlError("'xl rename' requires 2 arguments.")
    name, dom = find(state, node, args[0])
    domains = node_state(state, node)["domains"]
    if args[1] in domains:
        raise XlError(
            f"libxl: error: libxl_domain.c:449:libxl__domain_rename: Domain {dom['id']}:"
            f'domain with name "{args[1]}" already exists.'
        )
    domains[args[1]] = domains.pop(name)


def cmd_migrate(node: str, args: list[str], err: list[str]) -> None:
    """Runs without holding the lock between steps, like the real two-process exchange."""
    plain = [a for a in args if not a.startswith("-")]
    if len(plain) < 2:
        raise XlError("'xl migrate' requires at least 2 arguments.")
    ident, host = plain[-2], plain[-1]
    with locked() as state:
        if host == node or (state_dir() / f"{host}.unreachable").exists():
            raise XlError(
                f"ssh: Could not resolve hostname {host}: Name or service not known\n"
                "migration sender: Target has stopped sending data.\n"
                "xl: error: unable to read migration header"
            )
        name, dom = find(state, node, ident)
        target = node_state(state, host)["domains"]
        if name in target or name + INCOMING in target:
            raise XlError(f'migration target: domain with name "{name}" already exists.')
        target[name + INCOMING] = {
            **dom,
            "id": node_state(state, host)["next_id"],
            "state": "paused",
            "sender_pid": os.getpid(),
        }
        node_state(state, host)["next_id"] += 1
        seconds = dom["migrate_seconds"]
    err.append("migration target: Ready to receive domain.")
    err.append("Saving to migration stream new xl format (info 0x3/0x0/1379)")
    time.sleep(seconds)
    with locked() as state:
        source = node_state(state, node)["domains"]
        target = node_state(state, host)["domains"]
        if name not in source or name + INCOMING not in target:
            raise XlError("migration sender: Target reported failure; domain left here")
        source[name + MIGRATED] = {**source.pop(name), "state": "paused"}
        arrived = target.pop(name + INCOMING)
        arrived.pop("sender_pid", None)
        target[name] = {**arrived, "state": "running" if dom["state"] != "paused" else "paused"}
        del source[name + MIGRATED]
    err += [
        "migration target: Transfer complete, requesting permission to start domain.",
        "migration sender: Target has acknowledged transfer.",
        "migration sender: Giving target permission to start.",
        "migration target: Got permission, starting domain.",
        "migration target: Domain started successsfully.",
        "migration sender: Target reports successful startup.",
        "Migration successful.",
    ]


def run(argv: Sequence[str]) -> tuple[int, str, str]:
    """One xl invocation: (rc, stdout, stderr)."""
    args = list(argv)
    node = this_node()
    out: list[str] = []
    err: list[str] = []
    if (state_dir() / f"{node}.broken").exists():
        return 1, "", NO_XEN
    if not args:
        return 1, "", "Usage xl [-vfNtT] <subcommand> [args]\n"
    command, rest = args[0], args[1:]
    try:
        if command == "migrate":
            cmd_migrate(node, rest, err)
        else:
            with locked() as state:
                dispatch(state, node, command, rest, out, err)
    except XlError as exc:
        return exc.rc, "\n".join(out) + ("\n" if out else ""), "\n".join([*err, exc.message]) + "\n"
    return 0, "\n".join(out) + ("\n" if out else ""), "\n".join(err) + ("\n" if err else "")


def dispatch(state: State, node: str, command: str, rest: list[str], out: list[str], err: list[str]) -> None:
    node_state(state, node)
    match command:
        case "list" | "li":
            cmd_list(state, node, rest, out)
        case "create":
            cmd_create(state, node, rest, out, err)
        case "shutdown":
            cmd_shutdown(state, node, rest, out, err)
        case "trigger":
            cmd_trigger(state, node, rest, out, err)
        case "destroy":
            name, _ = find(state, node, _one(rest, "destroy"))
            del node_state(state, node)["domains"][name]
        case "pause":
            set_state(state, node, _one(rest, "pause"), "paused")
        case "unpause":
            set_state(state, node, _one(rest, "unpause"), "running")
        case "fake-crash":
            set_state(state, node, _one(rest, "fake-crash"), "crashed")
        case "rename":
            cmd_rename(state, node, rest)
        case "domid":
            out.append(str(find(state, node, _one(rest, "domid"))[1]["id"]))
        case "domname":
            out.append(find(state, node, _one(rest, "domname"))[0])
        case "mem-set":
            if len(rest) != 2:
                raise XlError("'xl mem-set' requires 2 arguments.")
            find(state, node, rest[0])[1]["mem"] = int(rest[1].rstrip("mMkKgG") or 0)
        case "info":
            used = sum(d["mem"] for d in node_state(state, node)["domains"].values())
            out += [
                f"host                   : {node}",
                "nr_cpus                : 2",
                "xen_major              : 4",
                "xen_minor              : 17",
                "total_memory           : 8192",
                f"free_memory            : {max(0, 8192 - 2048 - used)}",
            ]
        case "fake-dump":
            out.append(json.dumps(state, indent=1, sort_keys=True))
        case _:
            raise XlError(f"command not implemented: {command}")


def _one(args: list[str], command: str) -> str:
    names = [a for a in args if not a.startswith("-")]
    if not names:
        raise XlError(f"'xl {command}' requires at least 1 argument.")
    return names[0]


def main(argv: Sequence[str] | None = None) -> int:
    rc, out, err = run(sys.argv[1:] if argv is None else argv)
    sys.stdout.write(out)
    sys.stderr.write(err)
    return rc


if __name__ == "__main__":
    sys.exit(main())
