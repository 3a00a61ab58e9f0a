# SPDX-License-Identifier: GPL-2.0-or-later
"""What Pacemaker did, and when: a timeline read from the cluster's own logs and CIB, as Markdown and a PNG.

Sources (collected by lab.scenarios.VmCluster.collect):
- every node's pacemaker.log: the scheduler's decisions ("Actions: Migrate vm1 (node2 -> node1)"), the
  controller's operations ("Initiating start operation vm1_start_0 on node1" on the DC, "Result of start
  operation for vm1 on node1: ok" where it ran), fencing (the fencer's requests and results), membership
  ("Node node2 state is now lost") and the CIB's changes to location constraints (pacemaker-based);
- `stonith_admin --history '*'` and the CIB at the end (constraints left).
Parsing is pure (lines in, events out); the same event logged by several nodes is kept once.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

OPS = ("start", "stop", "promote", "demote", "migrate_to", "migrate_from")
_HEAD = re.compile(
    r"^(?P<mon>[A-Z][a-z]{2}) +(?P<day>\d{1,2}) (?P<hms>\d\d:\d\d:\d\d(?:\.\d+)?) (?P<host>\S+) "
    r"(?P<daemon>pacemaker-[a-z]+) *\[ *\d+\] \((?P<fn>[^)]*)\)\s+(?P<level>\w+): (?P<msg>.*)$"
)
_INITIATING = re.compile(r"^Initiating (?P<op>\w+) operation (?P<key>\S+) (?:locally )?on (?P<node>\S+)")
_RESULT = re.compile(r"^Result of (?P<op>\w+) operation for (?P<rsc>\S+) on (?P<node>\S+): (?P<status>[^|]*)")
_ACTIONS = re.compile(r"^Actions: (?P<what>.*)$")
_FENCE_ASK = re.compile(r"^Client (?P<client>\S+) wants to fence \((?P<action>\w+)\) (?P<target>\S+)")
_FENCE_DONE = re.compile(
    r"^Operation '(?P<action>\w+)' targeting (?P<target>\S+) by (?P<by>\S+) for (?P<client>\S+): "
    r"(?P<result>[^(|]*)"
)
# the fencer that ran the device (Pacemaker 2.1 fenced_commands.c log_async_result): the node was powered off
# even when the requester never hears of it (its reply lost in a partition: tandem-17200)
_FENCE_RAN = re.compile(
    r"^Operation '(?P<action>reboot|off)' \[\d+\] targeting (?P<target>\S+) using (?P<device>\S+) returned 0 "
)
_MEMBER = re.compile(r"^Node (?P<node>\S+) state is now (?P<state>lost|member)")
# the controller's own states around its join: started (joining, its CIB without the other nodes' status),
# then joined to a DC (the DC's CIB synced to it), or DC itself with its join round finished
_JOIN = re.compile(
    r"^State transition (?P<step>S_STARTING -> S_PENDING|S_PENDING -> S_NOT_DC|S_FINALIZE_JOIN ->)"
)
_CONSTRAINT_ADD = re.compile(r"^\+\+ /cib/configuration/constraints: +<rsc_location id=\"(?P<id>[^\"]+)\"")
_CONSTRAINT_DEL = re.compile(r"^-- /cib/configuration/constraints/rsc_location\[@id='(?P<id>[^']+)'\]")
_HISTORY = re.compile(
    r"^(?P<action>.+?) of (?P<target>\S+) (?P<result>successful|failed|pending)[^:]*: "
    r"delegate=(?P<by>[^,]*), client=(?P<client>[^,]*), origin=(?P<origin>[^,]*), "
    r"(?:completed|last-failed)='(?P<when>[^']*)'"
)


@dataclass(frozen=True)
class Event:
    t: float  # epoch seconds
    node: str  # whose log says it
    # decision, initiate, result, fence-request, fence-done, member, join, dc-join, constraint-add/-del
    kind: str
    subject: str  # the resource, the fenced node, the constraint id or the node whose membership changed
    where: str  # the node an operation runs on / the fencing node / "" when it does not apply
    op: str  # the operation, the fence action, the membership state, or ""
    text: str  # one readable line

    @property
    def key(self) -> tuple[str, str, str, str, str]:
        """What makes two log lines the same event when several nodes log it."""
        return (self.kind, self.subject, self.where, self.op, self.text)


def parse_time(mon: str, day: str, hms: str, year: int) -> float:
    """Pacemaker's local-time stamp ("Nov 22 00:34:46.914", no year) as epoch seconds."""
    frac = ""
    if "." in hms:
        hms, frac = hms.split(".", 1)
    stamp = datetime.strptime(f"{year} {mon} {int(day)} {hms}", "%Y %b %d %H:%M:%S")
    return stamp.timestamp() + (float(f"0.{frac}") if frac else 0.0)


def parse_line(line: str, year: int) -> Event | None:
    """One pacemaker.log line as an Event, or None for the many lines the timeline does not show."""
    head = _HEAD.match(line.rstrip("\n"))
    if head is None:
        return None
    try:
        t = parse_time(head["mon"], head["day"], head["hms"], year)
    except ValueError:  # not a date after all ("Nov 31", a damaged line)
        return None
    host, daemon, msg = head["host"], head["daemon"], head["msg"].strip()

    def ev(kind: str, subject: str, where: str, op: str, text: str) -> Event:
        return Event(t, host, kind, subject, where, op, text)

    if daemon == "pacemaker-controld":
        if m := _INITIATING.match(msg):
            op, key = m["op"], m["key"]
            cut = key.find(f"_{op}_")
            rsc = (key[:cut] if cut > 0 else key).split(":", 1)[0]
            if op in OPS:
                return ev("initiate", rsc, m["node"], op, f"{op} {rsc} on {m['node']}")
            return None
        if m := _RESULT.match(msg):
            op, rsc, status = m["op"], m["rsc"].split(":", 1)[0], m["status"].strip()
            if op in OPS or (op == "monitor" and _interesting_monitor(status)):
                return ev("result", rsc, m["node"], op, f"{op} {rsc} on {m['node']}: {status}")
            return None
        if m := _JOIN.match(msg):
            step = m["step"]
            if step.startswith("S_STARTING"):
                return ev("join", host, "", "joining", f"{host}'s controller started: joining")
            if step.endswith("S_NOT_DC"):
                return ev("join", host, "", "joined", f"{host}'s controller joined the DC")
            return ev("dc-join", host, "", "joined", f"{host}, DC, finished a join round")
        if (m := _MEMBER.match(msg)) and head["fn"] == "update_peer_state_iter":
            word = "joined" if m["state"] == "member" else "lost"
            return ev("member", m["node"], "", m["state"], f"{m['node']} {word}")
        return None
    if daemon == "pacemaker-schedulerd" and (m := _ACTIONS.match(msg)):
        what = " ".join(m["what"].split()).replace("( ", "(").replace(" )", ")")
        words = [*what.split(), "", ""]  # "Migrate vm1 (node2 -> node1)", "Fence (reboot) node2 'why'"
        return ev("decision", words[2] if words[0] == "Fence" else words[1], "", words[0], what)
    if daemon == "pacemaker-fenced":
        if m := _FENCE_ASK.match(msg):
            who = m["client"].split(".")[0]
            text = f"{who} asks to fence ({m['action']}) {m['target']}"
            return ev("fence-request", m["target"], host, m["action"], text)
        if m := _FENCE_DONE.match(msg):
            who = m["client"].split(".")[0]
            result = m["result"].strip()
            text = f"{m['action']} of {m['target']} by {m['by']} for {who}: {result}"
            return ev("fence-done", m["target"], m["by"], m["action"], text)
        if m := _FENCE_RAN.match(msg):
            text = f"{m['action']} of {m['target']} by {host} with {m['device']}: OK (the device's result)"
            return ev("fence-done", m["target"], host, m["action"], text)
        return None
    if daemon == "pacemaker-based":
        if m := _CONSTRAINT_ADD.match(msg):
            return ev("constraint-add", m["id"], "", "add", f"constraint {m['id']} placed")
        if m := _CONSTRAINT_DEL.match(msg):
            return ev("constraint-del", m["id"], "", "del", f"constraint {m['id']} removed")
    return None


def _interesting_monitor(status: str) -> bool:
    """A monitor result worth a line: anything but the steady ok / not running / promoted."""
    return status not in ("ok", "not running", "promoted", "Cancelled")


def parse_logs(texts: Iterable[str], year: int, window: float = 2.0) -> list[Event]:
    """Events of every node's log, in time order, each once: an event that another node logged too within
    `window` seconds is dropped, and a constraint counts only when it really appears or goes (a node that
    joins replays the CIB, which is no new change)."""
    lines = (line for text in texts for line in text.splitlines())
    events = sorted((e for line in lines if (e := parse_line(line, year)) is not None), key=_order)
    kept: list[Event] = []
    last: dict[tuple[str, str, str, str, str], tuple[float, str]] = {}
    present: set[str] = set()
    for e in events:
        if e.kind in ("constraint-add", "constraint-del"):
            if (e.subject in present) == (e.kind == "constraint-add"):
                continue
            present.symmetric_difference_update({e.subject})
        else:
            seen = last.get(e.key)
            if seen is not None and seen[1] != e.node and e.t - seen[0] <= window:
                continue
            last[e.key] = (e.t, e.node)
        kept.append(e)
    return kept


def _order(e: Event) -> tuple[float, str]:
    return (e.t, e.node)


@dataclass(frozen=True)
class Fencing:
    """One entry of `stonith_admin --history`."""

    action: str
    target: str
    result: str
    by: str
    client: str
    when: str


def parse_history(text: str) -> list[Fencing]:
    out = []
    for line in text.splitlines():
        if m := _HISTORY.match(line.strip()):
            client = m["client"].split(".")[0]
            out.append(Fencing(m["action"], m["target"], m["result"], m["by"], client, m["when"]))
    return out


@dataclass(frozen=True)
class Span:
    """Something that lasted: an operation (initiated → result), a constraint (placed → removed)."""

    start: float
    end: float
    lane: str
    label: str
    ok: bool = True


def spans(events: Sequence[Event], end: float) -> list[Span]:
    """Operations from their initiation to their result, constraints from placement to removal (or `end`)."""
    out: list[Span] = []
    open_ops: dict[tuple[str, str, str], float] = {}
    open_cons: dict[str, float] = {}
    for e in events:
        if e.kind == "initiate":
            open_ops[(e.subject, e.where, e.op)] = e.t
        elif e.kind == "result" and e.op in OPS:
            began = open_ops.pop((e.subject, e.where, e.op), e.t)
            ok = e.text.rsplit(": ", 1)[-1] == "ok"
            out.append(Span(began, e.t, f"ops {e.where}", f"{e.op} {e.subject}", ok))
        elif e.kind == "constraint-add":
            open_cons.setdefault(e.subject, e.t)
        elif e.kind == "constraint-del" and e.subject in open_cons:
            out.append(Span(open_cons.pop(e.subject), e.t, "constraints", e.subject))
    out += [Span(t, end, "constraints", cid) for cid, t in open_cons.items()]
    return sorted(out, key=lambda s: s.start)


def constraints_left(cib_xml: str) -> list[str]:
    """Ids of the location constraints in a CIB or its configuration section (what is left at the end),
    besides those of fence devices (configuration: each kept off the node it fences)."""
    from lxml import etree

    doc = etree.fromstring(cib_xml.encode())
    fencing = {p.get("id") for p in doc.iter("primitive") if p.get("class") == "stonith"}
    return [str(el.get("id")) for el in doc.iter("rsc_location") if el.get("rsc") not in fencing]


def read_logs(logs: Path) -> list[str]:
    """The pacemaker.log of every node in a collected log directory."""
    return [p.read_text(errors="replace") for p in sorted(logs.glob("node*/var-log-pacemaker/pacemaker.log"))]


def presence(samples: Sequence[tuple[float, frozenset[str]]], lane: str, end: float) -> list[Span]:
    """Spans during which each name was in the sampled set (e.g. nodes powered on, nodes running QEMU);
    `lane` is a format with {name}."""
    out: list[Span] = []
    since: dict[str, float] = {}
    for t, names in samples:
        for name in names - since.keys():
            since[name] = t
        for name in set(since) - names:
            out.append(Span(since.pop(name), t, lane.format(name=name), name))
    out += [Span(t, end, lane.format(name=name), name) for name, t in since.items()]
    return sorted(out, key=lambda s: (s.lane, s.start))


@dataclass(frozen=True)
class Phase:
    """A part of the run (a scenario), for the report's sections and the plot's bands."""

    title: str
    start: float
    end: float


SHOWN = (
    "decision",
    "result",
    "fence-request",
    "fence-done",
    "member",
    "join",
    "constraint-add",
    "constraint-del",
)


def table(
    events: Sequence[Event], marks: Sequence[tuple[float, str]], t0: float
) -> list[tuple[float, str, str]]:
    """(seconds since t0, who, what) rows: the cluster's events and what the scenario did, in time order."""
    rows = [(e.t - t0, e.node, e.text) for e in events if e.kind in SHOWN]
    rows += [(t - t0, "scenario", text) for t, text in marks]
    return sorted(rows, key=lambda r: r[0])


def text_timeline(rows: Sequence[tuple[float, str, str]]) -> str:
    return "\n".join(f"{t:7.2f}s  {who:<8} {what}" for t, who, what in rows)


def markdown(
    title: str,
    summary: Sequence[str],
    phases: Sequence[Phase],
    rows: Sequence[tuple[float, str, str]],
    t0: float,
    history: Sequence[Fencing],
    left: Sequence[str],
    png: str,
) -> str:
    """The report: summary, the plot, one table per phase, the fencing history and what the CIB kept."""
    out = [f"# {title}", "", *[f"- {line}" for line in summary], "", f"![timeline]({png})", ""]
    for phase in phases:
        a, b = phase.start - t0, phase.end - t0
        out += [f"## {phase.title} ({a:.1f}s – {b:.1f}s)", "", "| t (s) | node | what |", "|---:|---|---|"]
        out += [f"| {t:.2f} | {who} | {_md(what)} |" for t, who, what in rows if a <= t <= b]
        out.append("")
    out += [
        "## Fencing history (`stonith_admin --history '*'`)",
        "",
        "| action | target | result | by | for | when |",
    ]
    out += ["|---|---|---|---|---|---|"]
    out += [f"| {f.action} | {f.target} | {f.result} | {f.by} | {f.client} | {f.when} |" for f in history]
    out += ["", "## Location constraints left in the CIB at the end", ""]
    out += [f"- `{cid}`" for cid in left] or ["none"]
    return "\n".join(out) + "\n"


def _md(text: str) -> str:
    return text.replace("|", "\\|")


COLORS = {
    "start": "#2e8b57",
    "stop": "#808080",
    "migrate_to": "#1f77b4",
    "migrate_from": "#6fa8dc",
    "promote": "#8e44ad",
    "demote": "#e67e22",
}


def plot(
    path: Path,
    spans_: Sequence[Span],
    events: Sequence[Event],
    marks: Sequence[tuple[float, str]],
    phases: Sequence[Phase],
    t0: float,
    lanes: Sequence[str],
) -> Path:
    """A PNG: one row per lane (power, QEMU, Pacemaker's operations per node, constraints), fencing as red
    crosses on the fenced node's power row, the scenario's actions as numbered dotted lines."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    end = max([s.end for s in spans_] + [p.end for p in phases] + [t0 + 1]) - t0
    fig, ax = plt.subplots(figsize=(15, 0.55 * len(lanes) + 2.6), dpi=100)
    row = {lane: len(lanes) - 1 - i for i, lane in enumerate(lanes)}
    for i, phase in enumerate(phases):
        ax.axvspan(phase.start - t0, phase.end - t0, color="#f2f2f2" if i % 2 == 0 else "#e6eef7", zorder=0)
        ax.text(
            (phase.start + phase.end) / 2 - t0,
            len(lanes) - 0.35,
            phase.title,
            ha="center",
            va="bottom",
            fontsize=9,
        )
    for s in spans_:
        if s.lane not in row:
            continue
        if not s.ok:
            color = "#d62728"
        elif s.lane.startswith("ops"):
            color = COLORS.get(s.label.split()[0], "#b8860b")
        else:
            color = "#b8860b" if s.lane == "constraints" else "#4c9a2a"
        width = max(s.end - s.start, end / 400)
        ax.barh(row[s.lane], width, left=s.start - t0, height=0.6, color=color, edgecolor="none", zorder=2)
        if s.lane == "constraints":
            ax.text(s.start - t0, row[s.lane] + 0.33, s.label, fontsize=7, va="bottom", zorder=3)
    for e in events:
        lane = f"{e.subject} power"
        if e.kind == "fence-done" and lane in row:
            ax.plot(e.t - t0, row[lane], "x", color="#d62728", markersize=11, mew=2.5, zorder=4)
    last, level = -1e9, 0
    for n, (t, _) in enumerate(marks, 1):
        ax.axvline(t - t0, color="#555555", linestyle=":", linewidth=0.8, zorder=1)
        level = (level + 1) % 3 if t - t0 - last < end / 60 else 0  # close numbers: staggered, not on top
        last = t - t0
        ax.text(t - t0, -0.75 - 0.3 * level, str(n), ha="center", fontsize=7, color="#333333")
    ax.set_yticks(list(row.values()), list(row.keys()))
    ax.set_ylim(-1.5, len(lanes) + 0.2)
    ax.set_xlim(0, end * 1.01)
    ax.set_xlabel("seconds since the demo started (numbers: the scenario's actions, listed in the report)")
    legend = [Patch(color=c, label=op) for op, c in COLORS.items()]
    legend += [Patch(color="#4c9a2a", label="on / running"), Patch(color="#b8860b", label="constraint")]
    legend += [Patch(color="#d62728", label="failed op / fenced (x)")]
    ax.legend(
        handles=legend, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=9, fontsize=8, frameon=False
    )
    ax.grid(axis="x", color="#dddddd", linewidth=0.5)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path
