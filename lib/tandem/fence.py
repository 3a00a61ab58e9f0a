# SPDX-License-Identifier: GPL-2.0-or-later
"""`tandem fence-peer` and `tandem unfence-peer`: DRBD's fencing handlers for a Pacemaker cluster.

DRBD calls fence-peer when it loses a peer it may have to outdate (`handlers { fence-peer
"/usr/sbin/tandem-fence-peer"; unfence-peer "/usr/sbin/tandem-unfence-peer"; }` with `fencing
resource-only|resource-and-stonith`). fence-peer places one location constraint per DRBD resource that forbids
the promoted role everywhere except on the nodes with UpToDate data, and answers with DRBD's exit codes:

* 4  the peer is reachable in the cluster: the constraint keeps it from being promoted (counts as Outdated);
* 5  the peer is unreachable and not known to be fenced (constraint placed only if our data is UpToDate);
* 6  our own data is not UpToDate and the peer is reachable: DRBD outdates us;
* 7  the peer is fenced: down in the cluster with nothing thought active there (its history erased by its
     fencing, or everything stopped cleanly), or STONITHed by us;
* 1  nothing safe could be done (no quorum, no CIB, a conflicting constraint, failed STONITH, timeout): DRBD
     keeps I/O frozen, which is what a node that may be the loser must do.

With `resource-and-stonith` and dual primary (allow-two-primaries) a Primary fences the peer through
`stonith_admin` before it answers, so I/O resumes only once the peer is dead. When both Primaries race,
each tries to kill the other: at most one gets its I/O back, and a node whose STONITH fails stays frozen.
The race follows the scheduler's rule (priority-fencing-delay): a node whose peer runs higher-priority
resources (the VM) waits that long before it shoots, so the VM's node wins.

after-resync-target (`tandem-after-resync-target`) writes the promotion score of a node whose resync just
ended, so Pacemaker promotes it at once rather than at its next monitor.

unfence-peer removes the constraint again, but only our own (id `tandem-fence-<res>`, never one placed by
crm-fence-peer or by hand), only one that admits this node, and only once every peer has UpToDate data.
"""

from __future__ import annotations

import math
import os
import sys
import time

from tandem.drbd.health import allows_two_primaries, fencing_policy, frozen_for_fencing
from tandem.drbd.model import Resource, Role
from tandem.drbd.policy import (
    DEFAULT_DISKLESS,
    DEFAULT_TIERS,
    Decision,
    Tiers,
    all_uptodate,
    local_uptodate,
    promotion_score,
)
from tandem.drbd.tools import PLACED, Drbd, PromotionScore, fence_files, score_lock
from tandem.enums import Enum
from tandem.ocf.codes import OcfError
from tandem.ocf.deadline import Deadline, DeadlineExceeded
from tandem.ocf.log import Logger
from tandem.ocf.params import ALNUM, Chars, parse_bool, parse_seconds
from tandem.ocf.runner import CommandMissing, CommandTimeout, ProcessRunner, Result
from tandem.ocf.state import FileLock, LockBusy
from tandem.record import NamedTuple
from tandem.regex import lazy

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence
    from xml.etree.ElementTree import Element

    from tandem.ocf.runner import Runner

ID_PREFIX = "tandem-fence"
INTEGER, COUNT, SCHEMA = lazy(r"-?\d+"), lazy(r"\d+"), lazy(r"pacemaker-(\d+)\.(\d+)")
RESOURCE_NAME = Chars(ALNUM + "_", ALNUM + "-_.:=@%+", 128)  # drbd.conf's; `re` waits for the CIB parser
CIB_EXISTS = 108  # cibadmin --create of an id that exists
TIMEOUT = 60  # seconds before the handler gives up (--timeout); promote and monitor timeouts must exceed it
DELAY_POLL = 1.0  # a fence delay reads the CIB this often (one cibadmin --query)
# stonith_admin is asked again after this long, once the CIB shows the peer still unfenced: a respawned
# pacemaker-fenced has lost the request, and stonith_admin would wait out its whole timeout (tandem-18076)
STONITH_SLICE = 10.0

# DRBD fence-peer handler exit codes (LINBIT/drbd drbd_nl.c conn_try_outdate_peer)
PEER_OUTDATED = 4
PEER_UNREACHABLE = 5
OUTDATE_MYSELF = 6
PEER_FENCED = 7
BROKEN = 1


class Peer(Enum):
    REACHABLE = "reachable"  # member and its controller online
    DOWN = "down"  # not a member, expected down, nothing thought active there (fenced, or shut down cleanly)
    UNCLEAN = "unclean"  # lost, not (yet) fenced
    UNKNOWN = "unknown"


class Refused(Exception):
    """No safe answer: the handler exits 1 and DRBD keeps I/O frozen."""


class Busy(Refused):
    """Another handler holds the resource's lock."""


# -- pure parts -----------------------------------------------------------------------------------------
class HandlerEnv(NamedTuple):
    """What DRBD tells its handler, in DRBD 9 (node-id based) or 8.4 (peer name) form."""

    resource: str
    me: str
    peer: str | None
    up_to_date: frozenset[str] | None  # None: DRBD 8.4 does not say (UP_TO_DATE_NODES is 9 only)
    conf: str | None

    @classmethod
    def parse(cls, env: Mapping[str, str], resource: str | None = None, me: str | None = None) -> HandlerEnv:
        name = resource or env.get("DRBD_RESOURCE", "")
        if not RESOURCE_NAME.allows(name):
            raise Refused(f"DRBD_RESOURCE {name!r} is not a valid resource name")
        nodes = {
            int(k[len("DRBD_NODE_ID_") :]): v
            for k, v in env.items()
            if k.startswith("DRBD_NODE_ID_") and k[len("DRBD_NODE_ID_") :].isdecimal() and k.isascii() and v
        }
        my_id = _int(env.get("DRBD_MY_NODE_ID"))
        peer_id = _int(env.get("DRBD_PEER_NODE_ID"))
        me = me or nodes.get(my_id if my_id is not None else -1) or os.uname().nodename
        peer = nodes.get(peer_id if peer_id is not None else -1) or env.get("DRBD_PEER") or None
        if peer is None and env.get("DRBD_PEERS"):
            peer = env["DRBD_PEERS"].split()[0]
        mask = env.get("UP_TO_DATE_NODES")
        up_to_date = None
        if mask:
            bits = int(mask, 16)
            up_to_date = frozenset(n for i, n in nodes.items() if bits >> i & 1)
        return cls(name, me, peer, up_to_date, env.get("DRBD_CONF") or None)


def _int(text: str | None) -> int | None:
    return int(text) if text and text.isdigit() else None


def _flag(value: str | None, *true_words: str) -> bool:
    """node_state flags: "true"/"online"/"member" before Pacemaker 2.1.7, a non-zero timestamp since."""
    if value is None:
        return False
    return value in true_words or (value.isdigit() and int(value) > 0)


def node_state(cib: Element, attr: str, value: str) -> Element | None:
    """The node_state whose `attr` is `value`, compared as data (a name never becomes part of an XPath)."""
    return next((n for n in cib.iterfind("status/node_state") if n.get(attr) == value), None)


def peer_state(cib: Element, peer: str) -> Peer:
    """The peer as the scheduler judges it. `expected="down"` alone proves no fencing: a DC elected anew
    (a respawned controller) writes it for every lost peer it never saw join, and the scheduler fences such
    a peer when a resource is thought active there (tandem-18223: our handler took it for fenced and let I/O
    resume while the peer ran the VM as Primary)."""
    node = node_state(cib, "uname", peer)
    if node is None:
        return Peer.UNKNOWN
    member = _flag(node.get("in_ccm"), "true")
    online = _flag(node.get("crmd"), "online")
    if member and online:
        return Peer.REACHABLE
    if not member and node.get("expected") == "down" and not thought_active(node):
        return Peer.DOWN
    if not member:
        return Peer.UNCLEAN
    return Peer.UNKNOWN


def has_quorum(cib: Element) -> bool:
    return cib.get("have-quorum") in ("1", "true")


def dc_known(cib: Element) -> bool:
    """A DC is elected (no election in progress): the CIB names one and that node's controller is online."""
    dc = cib.get("dc-uuid")
    if not dc:
        return False
    node = node_state(cib, "id", dc)
    return node is None or _flag(node.get("crmd"), "online")


def stonith_verb(cib: Element) -> str:
    """Fence the way the cluster does (its stonith-action): reboot by default, so the peer comes back as a
    Secondary and resyncs; power off only where the cluster is configured to."""
    return "--fence" if cluster_option(cib, "stonith-action") in ("off", "poweroff") else "--reboot"


def cluster_option(cib: Element, name: str) -> str | None:
    for nvpair in cib.iterfind("configuration/crm_config/cluster_property_set/nvpair"):
        if nvpair.get("name") == name:
            return nvpair.get("value")
    return None


def _meta_priority(el: Element) -> int | None:
    for pair in el.iterfind("meta_attributes/nvpair"):
        if pair.get("name") == "priority" and INTEGER.fullmatch(pair.get("value", "")):
            return int(pair.get("value", "0"))
    return None


def resource_priorities(cib: Element) -> dict[str, int]:
    """Primitive id -> its `priority` meta attribute: its own, else its clone's or group's, else
    rsc_defaults', else 0 (as the scheduler inherits meta attributes)."""
    default = next(
        (p for d in cib.iterfind("configuration/rsc_defaults") if (p := _meta_priority(d)) is not None), 0
    )
    found = {}
    parent = {child: el for el in cib.iter() for child in el}
    for prim in cib.iterfind("configuration/resources//primitive"):
        chain, up = [prim], parent.get(prim)
        while up is not None:
            if up.tag in ("clone", "master", "group"):
                chain.append(up)
            up = parent.get(up)
        own = next((p for el in chain if (p := _meta_priority(el)) is not None), default)
        found[str(prim.get("id"))] = own
    return found


# A resource's last operation on a node and its result that leave it active there (promoted: the second set).
_ACTIVE = {("start", "0"), ("demote", "0"), ("migrate_from", "0"), ("migrate_to", "0"), ("monitor", "0")}
_PROMOTED = {("promote", "0"), ("monitor", "8")}
NOT_RUNNING, PENDING = "7", "193"  # rc-codes: OCF_NOT_RUNNING, and an operation recorded while it runs


def thought_active(state: Element) -> bool:
    """Whether the node's operation history shows a resource that may run there: an operation still pending,
    or a last one other than a successful stop or a "not running" answer. Fencing erases a node's history
    (the controller's send_stonith_update) and a clean shutdown stops everything first, so only a node
    that may still run something has one (Pacemaker 2.1 unpack.c: "... is thought to be active there")."""
    for rsc in state.iterfind("lrm/lrm_resources/lrm_resource"):
        if any(op.get("rc-code") == PENDING for op in rsc.iterfind("lrm_rsc_op")):
            return True
        last = last_operation(rsc)
        if last is not None and last != ("stop", "0") and last[1] != NOT_RUNNING:
            return True
    return False


def last_operation(rsc: Element) -> tuple[str, str] | None:
    """(operation, rc) of the resource's latest operation on the node: the highest call-id of its history,
    the order Pacemaker replays it in. Not `_last_0` alone: a live migration records `vm1_migrate_from_0`
    beside it and leaves `_last_0` at the probe, and the recurring monitor comes after both."""
    done = [
        (int(op.get("call-id", "")), op.get("operation", ""), op.get("rc-code", ""))
        for op in rsc.iterfind("lrm_rsc_op")
        if COUNT.fullmatch(op.get("call-id", ""))
    ]
    return max(done)[1:] if done else None


def node_priority(cib: Element, node: str, priorities: dict[str, int] | None = None) -> int:
    """The scheduler's node priority for priority-fencing-delay, from the node's operation history: the sum
    of the priorities of the resources active there, plus 1 for each promoted instance of a resource
    with a priority (Pacemaker 2.1 lib/pengine). `priorities`: resource_priorities(cib), when known."""
    state = node_state(cib, "uname", node)
    if state is None:
        return 0
    if priorities is None:
        priorities = resource_priorities(cib)
    total = 0
    for rsc in state.iterfind("lrm/lrm_resources/lrm_resource"):
        priority = priorities.get(rsc.get("id", "").split(":", 1)[0], 0)
        last = last_operation(rsc)
        if last in _PROMOTED:
            total += priority + (1 if priority else 0)
        elif last in _ACTIVE:
            total += priority
    return total


def fence_delay(cib: Element, me: str, peer: str, holds_open: bool) -> float:
    """How long to wait before fencing `peer` ourselves: the cluster's priority-fencing-delay when the peer
    runs higher-priority resources (the VM), so that its STONITH of us wins as the scheduler's would; and on
    a tie when this node does not hold the device open, as the peer may (the VM's QEMU holds it where it
    runs): a tie is what a cleaned-up operation history looks like until the probes are recorded."""
    try:
        delay = parse_seconds(cluster_option(cib, "priority-fencing-delay") or "0")
    except ValueError:
        return 0.0
    if not delay:
        return 0.0
    priorities = resource_priorities(cib)
    mine, theirs = node_priority(cib, me, priorities), node_priority(cib, peer, priorities)
    return delay if theirs > mine or (theirs == mine and not holds_open) else 0.0


def cluster_nodes(cib: Element) -> list[str]:
    return [n.get("uname", "") for n in cib.findall("configuration/nodes/node") if n.get("uname")]


def drbd_primitive(cib: Element, resource: str) -> tuple[Element, Element] | None:
    """The promotable clone (or legacy master) and its DRBD primitive that manage `resource`."""
    for clone in (el for el in cib.iter() if el.tag in ("clone", "master")):
        for prim in clone.iter("primitive"):
            for pair in prim.iter("nvpair"):
                if pair.get("name") == "drbd_resource" and pair.get("value") == resource:
                    return clone, prim
    return None


def promotable_of(cib: Element, resource: str) -> str | None:
    found = drbd_primitive(cib, resource)
    return found[0].get("id") if found else None


def _nvpairs(el: Element, section: str) -> dict[str, str]:
    return {p.get("name", ""): p.get("value", "") for p in el.iterfind(f"{section}/nvpair")}


def resync_decision(
    cib: Element, resource: str, res: Resource | None, held: Callable[[str], int | None] | None = None
) -> tuple[str, Decision] | None:
    """The DRBD primitive's id and the score its agent would write for `res` (the agent's own policy with
    the primitive's parameters and the clone's promoted-max), or None when no clone of ocf:tandem:drbd
    manages `resource` (ocf:linbit:drbd's scores follow its own policy: not ours to write)."""
    found = drbd_primitive(cib, resource)
    if found is None:
        return None
    clone, prim = found
    if (prim.get("class"), prim.get("provider"), prim.get("type")) != ("ocf", "tandem", "drbd"):
        return None
    params = _nvpairs(prim, "instance_attributes")
    meta = _nvpairs(clone, "meta_attributes")
    try:
        tiers = Tiers.parse(params.get("promotion_scores", DEFAULT_TIERS))
        remove = parse_bool(params.get("remove_score_if_peer_primary", "false"))
        promoted_max = int(meta.get("promoted-max") or meta.get("master-max") or "1")
        diskless = int(params.get("diskless_score", DEFAULT_DISKLESS))
    except ValueError:
        return None  # the agent itself refuses such parameters: nothing to write for it
    decision = promotion_score(
        res,
        tiers,
        remove_if_peer_primary=remove,
        promoted_max=promoted_max,
        diskless=diskless,
        previous=held(str(prim.get("id"))) if held is not None else None,  # what a reconciling hold keeps
    )
    return str(prim.get("id")), decision


def role_name(cib: Element) -> str:
    """`Promoted` where the CIB schema knows it (pacemaker-3.7+), else the old `Master`."""
    match = SCHEMA.fullmatch(cib.get("validate-with", ""))
    return "Promoted" if match and (int(match[1]), int(match[2])) >= (3, 7) else "Master"


def constraint_id(resource: str) -> str:
    return f"{ID_PREFIX}-{resource}"


def build_constraint(clone: str, resource: str, allowed: Sequence[str], role: str) -> Element:
    """No node but `allowed` may hold the promoted role."""
    import xml.etree.ElementTree as etree

    cid = constraint_id(resource)
    loc = etree.Element("rsc_location", id=cid, rsc=clone)
    rule = etree.SubElement(loc, "rule", id=f"{cid}-rule", role=role, score="-INFINITY")
    rule.set("boolean-op", "and")
    for i, node in enumerate(sorted(allowed)):
        etree.SubElement(
            rule, "expression", id=f"{cid}-expr-{i}", attribute="#uname", operation="ne", value=node
        )
    if not allowed:  # nobody has UpToDate data: forbid everyone
        etree.SubElement(rule, "expression", id=f"{cid}-expr-all", attribute="#uname", operation="defined")
    return loc


def allowed_by(constraint: Element) -> frozenset[str]:
    return frozenset(e.get("value", "") for e in constraint.iter("expression") if e.get("operation") == "ne")


def find_constraint(cib: Element, resource: str) -> Element | None:
    return next((c for c in cib.iter("rsc_location") if c.get("id") == constraint_id(resource)), None)


class Plan(NamedTuple):
    rc: int
    case: str
    place: bool = False
    stonith: bool = False


def plan(peer: Peer, local_ok: bool, *, stonith_policy: bool, dual_primary: bool, primary: bool) -> Plan:
    """What fence-peer does, from the peer's cluster state and our own data. Pure."""
    must_kill = peer is not Peer.REACHABLE or (dual_primary and primary)
    if stonith_policy and local_ok and peer is not Peer.DOWN and must_kill:
        return Plan(
            PEER_FENCED, f"peer {peer.value}: fencing it through STONITH before I/O resumes", True, True
        )
    if peer is Peer.DOWN:
        if local_ok:
            return Plan(PEER_FENCED, "peer is down (fenced or cleanly stopped)", place=True)
        return Plan(PEER_UNREACHABLE, "peer is down, our data is not UpToDate: no constraint")
    if peer is Peer.REACHABLE:
        if local_ok:
            return Plan(
                PEER_OUTDATED, "peer is reachable: the constraint keeps it from being promoted", place=True
            )
        return Plan(OUTDATE_MYSELF, "peer is reachable and our data is not UpToDate: outdate ourselves")
    if local_ok:
        return Plan(
            PEER_UNREACHABLE, f"peer is {peer.value}: constraint placed, peer not known to be fenced", True
        )
    return Plan(PEER_UNREACHABLE, f"peer is {peer.value} and our data is not UpToDate: no constraint")


# -- side effects ----------------------------------------------------------------------------------------
class Cib:
    """cibadmin through the runner; every call bounded by the handler's deadline and a per-call cap."""

    def __init__(self, runner: Runner, log: Logger, timeout: float) -> None:
        self.runner = runner
        self.log = log
        self.timeout = timeout

    def query(self) -> Element:
        return self.start_query()()

    def start_query(self) -> Callable[[], Element]:
        """Begin reading the CIB; the function returned waits for it and parses it. The handler's slowest
        wait while I/O is frozen: its local reads (and this parser's import) run meanwhile."""
        pending = self.runner.start(["cibadmin", "--query"], timeout=self.timeout)
        # The stdlib parser: lxml's import costs the handler more than a cibadmin call while I/O is frozen.
        import xml.etree.ElementTree  # noqa: F401 (imported while cibadmin runs)

        return lambda: self._parse(pending())

    def _parse(self, result: Result) -> Element:
        import xml.etree.ElementTree as etree

        if not result.ok:
            raise Refused(f"cannot read the CIB: {result.describe()}")
        try:
            return etree.fromstring(result.out.encode())  # noqa: S314 (the CIB from cibadmin: no DOCTYPE)
        except etree.ParseError as exc:
            raise Refused(f"cannot read the CIB: cibadmin printed no XML: {exc}") from None

    def put(self, constraint: Element, replace: bool) -> Result:
        import xml.etree.ElementTree as etree

        xml = etree.tostring(constraint, encoding="unicode")
        verb = "--replace" if replace else "--create"
        return self.runner.run(["cibadmin", verb, "-o", "constraints", "-X", xml], timeout=self.timeout)

    def delete(self, cid: str) -> Result:
        return self.runner.run(
            ["cibadmin", "--delete", "-A", f"//rsc_location[@id='{cid}']"], timeout=self.timeout
        )


def wait_for_cib(
    cib: Cib, deadline: Deadline, log: Logger, first: Callable[[], Element] | None = None
) -> Element:
    """The CIB once a DC is elected; waits out an election (or a CIB that does not answer yet). `first`:
    a query already started."""
    while True:
        try:
            query, first = first or cib.query, None
            doc = query()
            if dc_known(doc):
                return doc
            problem = "DC election in progress"
        except Refused as exc:
            problem = str(exc)
        if deadline.remaining() < 2:
            raise Refused(f"gave up waiting: {problem}")
        log.info(f"{problem}; waiting")
        time.sleep(1)


def place(
    cib: Cib,
    deadline: Deadline,
    log: Logger,
    env: HandlerEnv,
    allowed: frozenset[str],
    doc: Element | None = None,
) -> None:
    """Create or update our constraint; idempotent, retried while the cluster is busy. `doc` is the CIB as
    the caller just read it (I/O is frozen: no second query for the first attempt); a retry reads it again,
    so a constraint placed meanwhile (cibadmin's exit 108) is seen."""
    while True:
        doc = doc if doc is not None else wait_for_cib(cib, deadline, log)
        clone = promotable_of(doc, env.resource)
        if clone is None:
            raise Refused(f"no promotable clone in the CIB manages DRBD resource {env.resource}")
        wanted = build_constraint(clone, env.resource, sorted(allowed), role_name(doc))
        existing = find_constraint(doc, env.resource)
        if existing is not None:
            if allowed_by(existing) == allowed and existing.get("rsc") == clone:
                log.info(f"constraint {constraint_id(env.resource)} is already in place")
                break
            refuse_if_forbidden(existing, env)
        result = cib.put(wanted, replace=existing is not None)
        if result.ok:
            where = ", ".join(sorted(allowed)) or "no node"
            log.info(f"placed constraint {constraint_id(env.resource)}: promotion only on {where}")
            break
        if deadline.remaining() < 2:
            raise Refused(f"cannot place the constraint: {result.describe()}")
        log.warning(f"{result.describe()}; retrying")
        time.sleep(0 if result.rc == CIB_EXISTS else 1)
        doc = None
    fence_files(env.resource).write(PLACED, f"{time.time():.0f}")


def refuse_if_forbidden(existing: Element | None, env: HandlerEnv) -> None:
    """Our constraint already there (`existing`) that forbids our promotion says a peer has the better data:
    never replace it, and never kill that peer for it (tandem-20234: a stop thawing I/O fenced it again and
    again, each time refused the constraint after the STONITH)."""
    if existing is not None and env.me not in allowed_by(existing):
        raise Refused(
            f"DATA INTEGRITY at risk: constraint {constraint_id(env.resource)} already forbids "
            f"promotion on {env.me}; not replacing it"
        )


def local_state(runner: Runner, log: Logger, env: HandlerEnv) -> Resource | None:
    try:
        return Drbd(runner, log, env.resource, env.conf).status()
    except Exception as exc:  # the handler must answer even when the state cannot be read
        log.warning(f"cannot read the local DRBD state: {exc}")
        return None


def fence_peer(
    env: HandlerEnv, runner: Runner, log: Logger, deadline: Deadline, timeout: float, *, lag: float = 0.0
) -> int:
    """The handler's decision and its actions; its exit code. `lag`: how much later than the peer's this
    decision may come (a monitor finishing a freeze: finish_fencing), added to a fence delay."""
    cib = Cib(runner, log, timeout)
    reading = cib.start_query()
    res = local_state(runner, log, env)
    try:
        dump = Drbd(runner, log, env.resource, env.conf).dump()
    except Exception as exc:  # nothing may skip collecting the query under way (a timeout, drbdadm missing)
        why = exc.reason if isinstance(exc, OcfError) else f"drbdadm dump {env.resource}: {exc}"
        log.warning(f"{why}: assuming fencing resource-only, single primary")
        dump = ""
    doc = wait_for_cib(cib, deadline, log, reading)
    if not has_quorum(doc):
        raise Refused("this partition has no quorum: not placing the constraint, I/O stays frozen")
    peer = env.peer
    if peer is None:
        others = [n for n in cluster_nodes(doc) if n != env.me]
        if len(others) != 1:
            raise Refused(f"cannot tell which peer to fence (cluster nodes besides {env.me}: {others})")
        peer = others[0]
    # UP_TO_DATE_NODES is DRBD's word when it called us, which may be long before we run (a hung handler,
    # tandem-20234: the disk failed meanwhile, and a constraint for this diskless node stopped the VM on the
    # peer that held the only data): our own disk is judged as it is now, when it can be read.
    lost_disk = res is not None and not local_uptodate(res)
    if env.up_to_date is not None:
        local_ok = env.me in env.up_to_date and not lost_disk
        allowed = env.up_to_date - {peer} - ({env.me} if lost_disk else set())
    else:
        local_ok = res is not None and not lost_disk
        allowed = frozenset({env.me}) if local_ok else frozenset()

    def decide(doc: Element) -> Plan:
        return plan(
            peer_state(doc, peer),
            local_ok,
            stonith_policy=fencing_policy(dump) == "resource-and-stonith",
            dual_primary=allows_two_primaries(dump),
            primary=res is not None and res.role is Role.PRIMARY,
        )

    decision = decide(doc)
    holds_open = res is not None and any(d.open for d in res.devices)
    delay = fence_delay(doc, env.me, peer, holds_open) if decision.stonith else 0.0
    if delay:
        delay += lag
        log.info(
            f"peer {peer} runs higher-priority resources, or as many and {env.resource} is not open here: "
            f"fencing it only after {delay:.0f}s"
        )
        doc, decision = wait_out_delay(cib, deadline, log, delay, decide)
    log.info(f"fence-peer {env.resource}: {decision.case} (exit {decision.rc})")
    if decision.place:
        # before any STONITH: the node a constraint favours is never killed
        refuse_if_forbidden(find_constraint(doc, env.resource), env)
    if decision.stonith:
        stonith(runner, cib, deadline, log, peer, stonith_verb(doc), decide)
    if decision.place:  # after a STONITH the CIB has changed: read again
        place(cib, deadline, log, env, allowed, None if decision.stonith else doc)
    return decision.rc


def stonith(
    runner: Runner,
    cib: Cib,
    deadline: Deadline,
    log: Logger,
    peer: str,
    verb: str,
    decide: Callable[[Element], Plan],
) -> None:
    """Fence the peer through the fencer before I/O resumes. stonith_admin hears the result only over its
    connection to pacemaker-fenced: a fencer that crashes (pacemakerd respawns it) loses the request and
    that connection, and stonith_admin waits out its whole timeout with I/O frozen, though the cluster's
    own request, made again, fences the peer meanwhile (tandem-18076: 45 s). So each STONITH_SLICE the CIB
    decides: a peer fenced meanwhile ends the wait, else the request is made again (the fencer merges it
    with an identical one under way, or takes it anew after a crash)."""
    while True:
        budget = max(1.0, deadline.remaining() - 5)
        argv = ["stonith_admin", verb, peer, "--timeout", str(int(budget))]
        try:
            result = runner.run(argv, timeout=min(STONITH_SLICE, budget + 2))
        except CommandTimeout:
            if deadline.remaining() < 7:
                raise Refused(f"STONITH of {peer} did not finish in time") from None
            if not decide(wait_for_cib(cib, deadline, log)).stonith:
                log.info(f"peer {peer} fenced meanwhile (its STONITH answer did not come)")
                return
            log.info(f"STONITH of {peer} not done after {STONITH_SLICE:.0f}s: asking the fencer again")
            continue
        if not result.ok:
            raise Refused(f"STONITH of {peer} failed: {result.describe()}")
        log.info(f"peer {peer} fenced through STONITH")
        return


def wait_out_delay(
    cib: Cib, deadline: Deadline, log: Logger, delay: float, decide: Callable[[Element], Plan]
) -> tuple[Element, Plan]:
    """The fence delay, watching the CIB each DELAY_POLL s: the cluster's own STONITH of the peer (delayed
    the same way) often lands in it, and then waiting on is only time the VM stays down (tandem-17949:
    7 s past that fencing). Ends early once the decision needs no STONITH of ours."""
    wait = max(0.0, min(delay, deadline.remaining() - 10))
    polls = max(1, math.ceil(wait / DELAY_POLL))
    for _ in range(polls):
        time.sleep(wait / polls)
        doc = wait_for_cib(cib, deadline, log)  # it may have been fenced meanwhile, or fenced us
        decision = decide(doc)
        if not decision.stonith:
            break
    return doc, decision


# Exit codes of fence-peer after which DRBD resumes a frozen Primary's I/O (6: this node outdates itself).
RESUMES = (PEER_OUTDATED, PEER_UNREACHABLE, PEER_FENCED)


def finish_fencing(
    res: Resource,
    conf: str | None,
    me: str | None,
    runner: Runner,
    log: Logger,
    budget: float,
    timeout: float,
    *,
    lag: float = 0.0,
) -> bool:
    """A fence-peer that failed (a broken handler, a CIB that did not answer, a killed helper) leaves the
    Primary's I/O frozen until every lost peer is connected again, which may be never (a dead peer):
    decide again as the handler would, and resume I/O once each lost peer is fenced or kept from promotion.
    False, I/O left frozen, while a handler runs (its lock is held), the decision is still no, or `res`
    is not frozen for fencing. `me`: this node's cluster name (default: the hostname); `lag`: fence_peer's."""
    peers = frozen_for_fencing(res)
    if not peers or res.name is None:
        return False
    env = HandlerEnv(res.name, me or os.uname().nodename, None, None, conf)
    deadline = Deadline.after(budget)
    try:
        with resource_lock(env.resource, Deadline.after(0)):
            for peer in peers:
                rc = fence_peer(env._replace(peer=peer), runner, log, deadline, timeout, lag=lag)
                if rc not in RESUMES:
                    log.warning(f"{env.resource}: fencing {peer or 'the peer'} again: exit {rc}, frozen")
                    return False
            resumed = Drbd(runner, log, env.resource, env.conf).adm("resume-io")
            if not resumed.ok:
                raise Refused(f"resume-io failed: {resumed.describe()}")
    except Busy:
        return False  # the handler DRBD started is still deciding
    except (Refused, DeadlineExceeded, CommandMissing, OcfError) as exc:
        log.warning(f"{env.resource}: I/O stays frozen for fencing: {exc}")
        return False
    log.warning(f"{env.resource}: fence-peer had failed and left I/O frozen; fenced now, I/O resumed")
    return True


def after_resync_target(env: HandlerEnv, runner: Runner, log: Logger, timeout: float) -> int:
    """DRBD calls after-resync-target on the node whose data a resync just made UpToDate: write its
    promotion score now, as the agent would, instead of at the next Unpromoted monitor (up to 20 s
    later), so Pacemaker can promote it at once. Always exits 0: DRBD ignores the result."""
    write_agent_score(env, runner, log, timeout, "after-resync-target")
    return 0


class Scored(Enum):
    HELD = "held"  # the cluster holds the score the agent would write (written now, or already)
    UNMANAGED = "unmanaged"  # no ocf:tandem:drbd clone manages the resource, or it is down
    FAILED = "failed"  # the lock or the cluster did not answer


def write_agent_score(env: HandlerEnv, runner: Runner, log: Logger, timeout: float, why: str) -> Scored:
    """Write the score the agent would write for the resource's state now (its policy, its parameters from
    the CIB), under the score lock that the agent's stop takes to remove the score last: a handler that read
    the resource before the stop took it down cannot put a score back after it."""
    try:
        with score_lock(env.resource, Deadline.after(timeout)):
            res = local_state(runner, log, env)
            if res is None:
                return Scored.UNMANAGED
            found = resync_decision(
                Cib(runner, log, timeout).query(),
                env.resource,
                res,
                held=lambda instance: PromotionScore(runner, log, instance).cached_score(),
            )
            if found is None:
                log.info(f"{why} {env.resource}: no ocf:tandem:drbd clone manages it; nothing to do")
                return Scored.UNMANAGED
            instance, decision = found
            held = PromotionScore(runner, log, instance, timeout=timeout).apply(decision)
            return Scored.HELD if held else Scored.FAILED
    except (LockBusy, Refused) as exc:
        log.warning(f"{why} {env.resource}: score not written: {exc}")
        return Scored.FAILED


def remove_constraint(
    runner: Runner, log: Logger, resource: str, *, timeout: float, me: str | None = None
) -> bool:
    """Delete our constraint for `resource` if it admits this node; True when none is left. PLACED goes
    once the constraint is gone or is not this node's to remove; it stays when the CIB could not say."""
    me = me or os.uname().nodename
    cib = Cib(runner, log, timeout)
    existing = find_constraint(cib.query(), resource)
    if existing is not None and me not in allowed_by(existing):
        log.info(f"constraint {constraint_id(resource)} was not placed for {me}: leaving it")
        fence_files(resource).remove(PLACED)
        return False
    if existing is not None:
        result = cib.delete(constraint_id(resource))
        if not result.ok:
            raise Refused(f"cannot remove the constraint: {result.describe()}")
        log.info(f"removed constraint {constraint_id(resource)}")
    fence_files(resource).remove(PLACED)
    return True


def unfence_peer(env: HandlerEnv, runner: Runner, log: Logger, timeout: float) -> int:
    res = local_state(runner, log, env)
    if res is not None:
        ready = all_uptodate(res)
    else:
        ready = env.up_to_date is not None and env.me in env.up_to_date and env.peer in env.up_to_date
    if not ready:
        log.info(f"unfence-peer {env.resource}: not every peer is UpToDate yet; constraint kept")
        return 0
    remove_constraint(runner, log, env.resource, timeout=timeout, me=env.me)
    return 0


# -- entry points ----------------------------------------------------------------------------------------
class Args(NamedTuple):
    resource: str | None = None
    node_name: str | None = None
    timeout: float = TIMEOUT
    cib_timeout: float = 10.0
    unknown: tuple[str, ...] = ()


def _arguments(prog: str, argv: Sequence[str]) -> Args:
    """The options; DRBD calls its handlers without any, and then argparse (whose import costs more than a
    cibadmin call while I/O is frozen) is not loaded."""
    if not argv:
        return Args()
    import argparse

    parser = argparse.ArgumentParser(
        prog=prog, description="DRBD fencing handler for Pacemaker (see tandem.fence)."
    )
    parser.add_argument("--resource", help="DRBD resource (default: $DRBD_RESOURCE)")
    parser.add_argument(
        "--node-name", help="this node's cluster name (default: from DRBD, else the hostname)"
    )
    parser.add_argument(
        "--timeout", type=float, default=TIMEOUT, help=f"give up after this many seconds (default {TIMEOUT})"
    )
    parser.add_argument("--cib-timeout", type=float, default=10, help="per cibadmin call (default 10)")
    parser.add_argument("--quiet", action="store_true", help="accepted for crm-fence-peer compatibility")
    args, unknown = parser.parse_known_args(list(argv))
    return Args(args.resource, args.node_name, args.timeout, args.cib_timeout, tuple(unknown))


def handler_logger(prog: str) -> Logger:
    env = dict(os.environ)
    env.setdefault("HA_LOGFACILITY", "daemon")
    return Logger.from_env(prog, env, stream=sys.stderr)


def _run(prog: str, argv: Sequence[str], handler: str) -> int:
    args = _arguments(prog, argv)
    log = handler_logger(prog)
    if args.unknown:
        log.warning(f"ignoring unknown arguments: {' '.join(args.unknown)}")
    deadline = Deadline.after(args.timeout)
    runner = ProcessRunner(deadline)
    try:
        env = HandlerEnv.parse(os.environ, args.resource, args.node_name)
        with resource_lock(env.resource, deadline):
            if handler == "fence-peer":
                return fence_peer(env, runner, log, deadline, args.cib_timeout)
            if handler == "unfence-peer":
                return unfence_peer(env, runner, log, args.cib_timeout)
            return after_resync_target(env, runner, log, args.cib_timeout)
    except (Refused, DeadlineExceeded, CommandMissing) as exc:
        log.error(f"{prog}: {exc} (exit {BROKEN})")
        return BROKEN
    except Exception as exc:  # a handler must always answer DRBD
        log.error(f"{prog}: internal error {type(exc).__name__}: {exc} (exit {BROKEN})")
        return BROKEN


def resource_lock(resource: str, deadline: Deadline) -> FileLock:
    """One handler per resource at a time (DRBD calls fence-peer per connection and volume)."""
    return FileLock(fence_files(resource).path("lock"), deadline, busy=Busy)


def fence_main(argv: Sequence[str]) -> int:
    return _run("tandem-fence-peer", argv, "fence-peer")


def unfence_main(argv: Sequence[str]) -> int:
    return _run("tandem-unfence-peer", argv, "unfence-peer")


def resync_main(argv: Sequence[str]) -> int:
    return _run("tandem-after-resync-target", argv, "after-resync-target")
