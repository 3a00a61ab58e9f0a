# SPDX-License-Identifier: GPL-2.0-or-later
"""docs/campaign.md from docs/campaign/runs.jsonl: per fault kind and per agent pair, runs, violations per
checker, recovery p50/p90/max; every violation with its seed, schedule, injection times and replay command;
and a plot of recovery times per kind. Counting is pure (`tally`, `markdown`), so anyone can recount the
table from the JSON lines.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lab.campaign import checkers
from lab.campaign.schedule import KINDS

CHECKERS = ("S1", "S2", "S3", "S4", "S5", "S6", "L1", "L2", "L3")
ABOUT = {
    "S1": "two running QEMUs of vm1 outside a migration window",
    "S2": "a generation the guest reported written missing from the disk it booted from (a boot whose "
    "read failed saw no data: L1's if it is the last)",
    "S3": "Primary on data that is not UpToDate (and no UpToDate peer), or promoted on it",
    "S4": "split brain",
    "S5": "promotion the DRBD fencing constraint forbids",
    "S6": "in a split, the node running vm1 was fenced",
    "L1": "not healthy within reboot delay + 60 s of the heal, a guest whose last boot could not read "
    "its disk, or a failed action left that needs `crm resource cleanup`",
    "L2": "vm1 not running elsewhere within its node's fencing + 5 s",
    "L3": "over 30 s with no cluster action while out of goal and no fault active",
}


LIMITS = (
    "S2 compares the guest's acknowledged generation with its disk at boot and with the DRBD device of the "
    "node running it at the end, each node holding its own copy (the replicated data plane); its control is "
    "the stale boot of tests/lab/test_data_plane.py.",
    "S6 does not judge a split inside a live migration: until migrate_to's result is in the CIB, Pacemaker's "
    "priority-fencing-delay (and tandem-fence-peer's rule) count the VM on the source, although the guest "
    "may already run on the target, which then loses the race and the VM restarts (data safe, a liveness "
    "cost). A migrate_to whose target vanished after the switch-over waits for libvirt's keepalive first.",
    "disk-fail is left out when no other node has UpToDate data (two failed disks lose the data by design).",
    "Runs made before commit b5ab81c (see each run's commit) took a guest's runtime 'disk error=' line (a "
    "write DRBD held past the guest's ATA timeout) for a boot that found nothing: their S2 'found None' "
    "verdicts are that artifact; the kept histories hold the parsed boots, so a rejudge cannot undo it.",
    "S6 does not judge a fence race whose fence device failed until the VM's node's 10 s head start was "
    "over: both nodes then wait for the device, and the first to reach it when it returns wins.",
    "S6 does not judge a split that came within 3 s (corosync's token and consensus, 2.2 s, and a margin) "
    "after a fault of the VM's node's own that takes a node out of the membership (power-cut, reboot, "
    "stop-start, crash-corosync): that node is lost, and fenced, for its fault; nor one that came while the "
    "VM's node's disk had failed (the side that lost its own disk, as S6 is defined).",
    "S6 does not judge a split in which a node other than the VM's had its controller joining (just "
    "started, or respawned after an execd or controld crash) before it could see the VM's node lost (3 s): "
    "DC of its side, it fences the VM's node at once, by Pacemaker 2.1.5's design (after a start its CIB "
    "holds no resource history of the others, tandem-18505; after a respawn it writes expected=down for "
    "the lost peer and fences it as 'thought to be active there', which takes no priority-fencing-delay, "
    "tandem-18881). Histories recorded before 53f7f66 hold no join windows (S6 judges their splits), and "
    "those before e676d09 none with the node's name (a window counts there when it holds the split's "
    "start, as when they were recorded).",
    "L2 does not judge the loss of the VM's node when a fault took the survivors out of the cluster "
    "(power-cut, reboot, stop-start, crash-corosync) before vm1 was due back: on three nodes when the "
    "nodes left are no majority, on two when it hit the survivor, whose corosync, starting while its peer "
    "is gone, waits for all (two_node) and has no quorum until the lost node returns (tandem-19568). L1 "
    "judges those runs after the heal.",
    "While the fence device fails (fence-fail) the nemesis's own power faults fail too (same power switch): "
    "such injections are recorded with their error and count as not injected.",
    "slow-link shapes the cluster network only; the emulated DRBD replication has no bandwidth to slow.",
    "Timing is not reproducible from a seed: a replay runs the same schedule, the injection times recorded "
    "in runs.jsonl say when each fault really went in.",
    "A guest whose disk I/O is frozen (fencing) can be destroyed in the lab: a killed QEMU leaves the "
    "emulator's device at once. A real QEMU with requests in flight to a suspended DRBD device cannot exit "
    "until I/O resumes, so there such a stop fails and its node is fenced (tandem-13008's 70 s stop ended "
    "in a destroy here).",
    "From anchors-20045 and tandem-18180 on, the anchors' and our campaigns ran side by side, two labs on "
    "the 2-core machine (load about 1.2 of 2): each run shares the CPU with the other lab's faults.",
    "A run whose cluster had to be rebuilt before the next one lost its node logs until commit a94306c "
    "(tandem-13012: both Primaries StandAlone with nothing to say why); they are kept beside the work dir "
    "now.",
)

# What a run's violations turned out to be, from its kept history, timeline and node logs, and the commit
# that fixed it (a run keeps the verdicts of the code it ran).
FINDINGS = {
    "tandem-10002": "corosync crashed after controld and stayed down, the node without quorum for good; the "
    "lab's init now restarts it after 10 s, as the README's corosync.service drop-in does (8d9ce56)",
    "tandem-10021": "the emulator completed a write that reached no copy; now re-issued, failed or held as "
    "DRBD does (3437c0e)",
    "tandem-10024": "the emulator kept I/O frozen after a failed fence-peer although the connection came "
    "back; DRBD resumes it then (0929887)",
    "tandem-13008": "a failed fence-peer left the Primary frozen for good; the DRBD monitor and the domain "
    "stop now finish the fencing and resume I/O (a94306c, 927b295)",
    "tandem-13012": "not reproduced: both Primaries StandAlone without a split brain; the node logs were "
    "lost with a cluster rebuild (kept since a94306c). Replayed on 2a0a2e9: clean, recovery 5.5 s",
    "tandem-13013": "DRBD up on a re-attached disk with no peer connection stayed so; the monitor now runs "
    "drbdadm adjust (a94306c)",
    "tandem-13018": "as tandem-13013 (a94306c)",
    "tandem-15001": "three nodes: scores asked Pacemaker to swap the client's Primary slot to a data node "
    "while vm1 was moved there, a transition whose graph loops; scores never ask for a swap since 65ed7cd",
    "tandem-15002": "the emulator acknowledged a write from a node that had just lost quorum (on-no-quorum "
    "io-error); fixed in the emulator (6cf26a4)",
    "tandem-16317": "two lab artifacts, fixed in 802df6e: the disk failed a moment after node2's "
    "promotion and S3 read the two samples as a promotion on a Failed disk (DRBD serves that Primary "
    "through its UpToDate peer); the nemesis attached the replacement disk while the failed one was still "
    "Failed, so it stayed Diskless (the L1). The S3 left is tandem-16504's stale bitmap (2aaaea1)",
    "tandem-16504": "three nodes; the fence-peer-hang faults cut the replication network, so every node lost "
    "its DRBD connections and quorum. Three findings, fixed in 2aaaea1 and e0d2742: (1) the emulator kept "
    "a bitmap on a node whose disk had failed (node1's, for writes node2 missed) and the replacement disk "
    "inherited it; a Diskless node keeps no bitmap (its data peers do), a failed disk's meta data is not "
    "judged, and the replacement gets create-md and a full sync. (2) the domain agent started vm1 on node2 "
    "although DRBD had lost quorum there (on-no-quorum io-error), so the guest's first read failed (the S2 "
    "'found None': no data read, not old data; the next boot found generation 18, all it had acknowledged); "
    "a start now waits for quorum as for frozen I/O, then refuses. (3) a replay on 2aaaea1, whose start "
    "refused at once, ended with vm1 on the diskless client beside one data Primary (both data nodes had "
    "refused it): a healthy state, which the goal now accepts. The replay on e0d2742 passes (recovery "
    "17.3 s)",
    "tandem-16801": "three data nodes: qemu crashed in the middle of a live migration; migrate_to said "
    "'gone from here' and migrate_from on the target waited its whole 60 s timeout for a domain that never "
    "came, so vm1 stayed down past L1's bound. migrate_from now fails after a short grace when the domain "
    "is not there at all, and Pacemaker starts vm1 (cd96394)",
    "tandem-16806": "three data nodes: an emulator fault. node1, vm1's Primary, was cut off while a write "
    "was on its way to node3; the write failed (no quorum) but the emulator gave node1 a new data "
    "generation at once, and one on every write while any peer was away, where DRBD makes one new current "
    "UUID at the first write that may go on after losing a peer that shared the generation. node3 and "
    "node2 went on without node1, so its return looked like a split brain (S4, S3, L1). Fixed in the "
    "emulator; a unit test replays it",
    "tandem-16809": "three data nodes: emulator faults. node3's replaced disk resynced from node1 while "
    "node2, back Outdated, became a second SyncSource for it with older blocks; and a finished resync left "
    "the bits other peers held for its target (DRBD clears them, P_PEERS_IN_SYNC), so node2 counted as "
    "lacking blocks (S3) and a later resync from node3 could bring old blocks back: tandem-16810's lost "
    "write (generation 80 on node2) is most likely that. Fixed in the emulator, unit tests replay both",
    "tandem-16810": "see tandem-16809 (the cluster was reused: its copy on node2 came out of that run)",
    "tandem-16811": "three data nodes: as tandem-16806 (a new data generation on a node without quorum)",
    "tandem-16813": "as tandem-16811 (the same pattern in the history; not replayed)",
    "tandem-16814": "as tandem-16811 (the same pattern in the history; not replayed)",
    "tandem-16861": "three data nodes, on baa5f2f: a passing split brain flag. node2's replaced disk, "
    "resynced in full from node3, did not take node3's history, so node1 (back from a power cut, older) "
    "and node2 each looked new to the other until node1 had resynced from node3. A SyncTarget now takes "
    "its source's history (DRBD copies the UUIDs), and the handshake finds the other's generation in it",
    "tandem-15101": "three nodes: a clean shutdown of vm1's node promoted the spare in the transition that "
    "migrated vm1, whose graph loops; the spare has no score while the Primary slots are full since 65ed7cd",
    "tandem-17005": "three data nodes, on 9f61011: a checker's false alarm. Every cluster link was cut, then "
    "vm1's node rebooted: no node had quorum until the heal, and vm1 ran again 5 s after it. L2 no longer "
    "asks a cluster with no quorum anywhere to recover (L1 judges the heal); rejudged",
    "tandem-17204": "three data nodes, on a2a0ffa: an emulator fault, a split brain. node1 (Primary, no "
    "fencing: quorum only) lost node2 and wrote on with node3 over a slow link; the write that began a new "
    "data generation never reached node3, node1 lost quorum, node3 went on with node2 and made its own. "
    "DRBD sends the new current UUID to the connected peers before that write (inc_ap_bio_cond waits for "
    "it); the emulator passed it on only with the data. Now it passes it on at once, so node1's "
    "unacknowledged block is resynced from node3 (6f4a416)",
    "tandem-17210": "three data nodes, on a2a0ffa: a stall. A transition that demoted node3 cancelled its "
    "monitor and looped (a migration with a demote and a promote, as in 17015), so node3 kept a score "
    "while Outdated and node1 (Primary, vm1's) none after quorum came back; Pacemaker planned the loop "
    "again. Replayed twice on 2a0a2e9, stalled both times, now with the logs: execd crashed on vm1's node "
    "during migrate_to, its controller restarted, the DC erased the node's transient attributes from the "
    "CIB while its attrd kept 10000; the probe decided 'no score' (quorum lost), found the CIB already "
    "so, and left attrd alone, whose next write (another node's score) put the stale 10000 back. Fixed: a "
    "verified removal deletes the score in attrd too (tools.PromotionScore); replayed twice on 254f88f: "
    "clean both times, recovery 0.1 s. Still possible, not seen since: a Primary's score after quorum "
    "returns waits for a monitor, which a stalled transition may have cancelled",
    "tandem-17213": "three data nodes, on a2a0ffa: a checker's false alarm. vm1's node lost power and "
    "node3's corosync crashed 4 s later, before vm1 was due back: node1 alone had no quorum until the "
    "heal. L2 asks nothing of survivors that a second fault left a minority; rejudged",
    "tandem-17403": "three data nodes, on d6a1a41: an emulator fault. vm1's node (Primary) got a new disk "
    "while cut off from node3; when they met, the emulator dropped the connection ('I shall become "
    "SyncTarget, but I am primary!') and left it Primary on Inconsistent data with no UpToDate peer. DRBD "
    "refuses only a Primary whose own data is Consistent or better; an Inconsistent one is resynced while "
    "it runs, and writes its own copy too",
    "tandem-17416": "three data nodes, on d6a1a41: a checker's false alarm. node1's failed disk was "
    "replaced while it was a Diskless Primary cut off from everyone: Primary on a new, Inconsistent disk "
    "with no UpToDate peer. DRBD serves no I/O then (drbd_data_accessible: local or a peer UpToDate), so "
    "nothing stale can be read; S3 keeps flagging Outdated or Consistent data so left; rejudged",
    "tandem-17432": "three data nodes, on d6a1a41: a checker's false alarm. vm1's node lost power and the "
    "replication network was cut 3 s later: neither survivor had DRBD quorum until it came back, and vm1 "
    "ran 14 s after that (26 s after the loss). L2 now also excuses a cut of every replication link; "
    "rejudged",
    "tandem-17516": "tiebreaker, on d6a1a41: a checker's false alarm, as 17103: node3 (the tiebreaker) was "
    "on again after a clean stop but its DRBD not yet up when vm1's node lost power; node1 alone lost "
    "quorum, so vm1 waited for node2. A node with DRBD down is no survivor for L2; rejudged",
    "tandem-17855": "three data nodes, on b8d25b2: the runner's false alarm. vm1's QEMU was killed as the "
    "schedule's last event, right before the heal; the recorder's last sample, begun before the kill, still "
    "showed the goal, so the settling ended at once and the run was judged 3 s after the heal, before vm1's "
    "next monitor (10 s) could see the crash. Settling now needs a goal sample begun after the heal, and a "
    "sample's time is when it began (checkers.settled). The verdict stays recorded: runs judged early by "
    "a stall or an error (15101, 16801, 17025) had real findings too",
    "tandem-17721": "tiebreaker, on aecadcc: an emulator fault, a false alarm. A new data generation passed "
    "on to in-sync peers (6f4a416) carried the tag but not the count, so node1 and node2, connected and in "
    "sync, showed 1256 and 1252; when node1 left cleanly and the client was promoted through node2, S3 "
    "compared the counts. Fixed in f03c712 (the count passed with the tag, an emulator test); the replay on "
    "5810ee4 ran clean",
    "tandem-17622": "three data nodes, on aecadcc: most likely a checker's conservative flag. The "
    "replication was cut on every link while vm1's node wrote; that node, alone (no DRBD quorum), kept "
    "bits for both peers from a write it could not complete, then lost power. node1 and node3, the "
    "quorate majority, went on and node1 was promoted with those bits still in the lost node's bitmap. "
    "S2 found no acknowledged write lost. The replay on 5810ee4 (timing differs) flagged S3 the same way "
    "for bits of the write in flight when vm1's node lost power, with no write lost, and also L2: node1 got "
    "its score only at its next monitor, 7 s after the fencing. S3 now leaves out a dead peer's bits on the "
    "node's own generation, writes never acknowledged (e29963e). The L2, traced: fence-peer-fail cuts the "
    "replication network too, so vm1's node lost power while node1 and node3 had no DRBD quorum; the heal "
    "gave it back 1 s before the fencing, and DRBD runs no handler when a connection or quorum returns "
    "(drbd-utils' handler list ends with quorum-lost and disconnected): the score waited for the next "
    "Unpromoted monitor. The README stated that bound (ae65a39); since b082f75 tandem-disconnected (DRBD's "
    "disconnected handler) leaves a watcher that writes the score within about 2 s of the connection's "
    "return (tests/lab/test_drbd_lab.py measures 0.3 s). A third replay (on b8d25b2) gave the same L2, "
    "and an S3 on the dead node's generation count, a write in flight on the live nodes' tag: generations "
    "now count as far as they were acknowledged, as bits do (record.data_generations)",
    "tandem-17200": "three data nodes, on a2a0ffa, replayed on aecadcc: Pacemaker's, and a checker's blind "
    "spot. vm1's node lost power while the fence device failed; node1's fencer fenced it at its second "
    "attempt, but every cluster link was cut right then and its reply to the DC was lost: the DC waited for "
    "its fencing timeout (72 s, L3) and started vm1 79 s after the loss. The campaign read only the "
    "requester's result (timed out), so L2 judged from the fault; it now reads the device's result too "
    "(c2376d6), which puts the fencing before the cut (L1 then judges). fence_tandemlab also fails after its "
    "login timeout now, not at once (3118fad). The wait is Pacemaker 2.1's: a lost fencing reply ends only "
    "at the operation's timeout",
    "tandem-17103": "tiebreaker, on 9f61011: a checker's false alarm. node3 (the tiebreaker) was rebooting "
    "when vm1's node rebooted too: node1 alone lost quorum, and the tiebreaker's return does not give it "
    "back (DRBD 9.2.19's rule), so vm1 waited for node2 (back 39.5 s after its loss). L2 asks nothing of "
    "survivors that are a minority; rejudged",
    "tandem-17007": "three data nodes, on 9f61011: a checker's false alarm. A migrate_to hung while every "
    "cluster link was cut and completed after the heal; the target's stop during the cut had closed the "
    "migration window. A window now ends at the source's stop; this run's window was recomputed from its "
    "timeline by that rule (node1's stop at 39.97 s) and rejudged",
    "tandem-17008": "three data nodes, on 9f61011: an emulator fault. node1's replaced disk resynced in full "
    "from node3; node2, back and UpToDate, started a second, short resync into node1 that marked it UpToDate "
    "with the full one unfinished, and node1 was promoted. A second source now waits (PausedSyncS/T, "
    "resync-suspended peer/dependency) until the first is over, as DRBD's does (8fbd08c)",
    "tandem-17015": "three data nodes, on 9f61011: a stall. migrate_to node2 -> node1 was refused (node1's "
    "DRBD not connected) and node1's stop came in the same second; Pacemaker 2.1 compares the two by whole "
    "seconds and took vm1 as still active on node1, then planned a migration from node1 with a demote and "
    "two promotes, whose graph loops (`crm_simulate -S -x evidence/tandem-17015-pe-input-42.bz2`: 'An "
    "invalid transition was produced'; none with the stop a second later). A failed migrate_to now ends "
    "late in its second (620c126)",
    "tandem-17903": "two nodes, on 939ff7f: a liveness failure behind a refusal that worked. vm1 was "
    "migrating node2 -> node1 (the DC) when node1's cluster stack was stopped; migrate_to succeeded, but the "
    "DC's next transition restarted vm1 on node2 as if node1 did not run it. Pacemaker 2.1.5 pairs the new "
    "migrate_to with any migrate_from from the same source in the target's history, which keeps migration "
    "entries apart from `_last_0`: node1 still held one from an earlier migration node2 -> node1, so the "
    "migration counted as done and node1's later stop as its last word (`crm_simulate -S -x "
    "evidence/tandem-17903-stale-migrate-from.xml.bz2`: 'Restart vm1 (node2)'; without that entry, "
    "evidence/tandem-17903-no-stale-migrate-from.xml.bz2: 'Move vm1 (node1 -> node2)'). The domain agent "
    "refused the start on node2 (vm1 running on node1), which kept one copy, but left it unmanaged: node1's "
    "stop hung on DRBD held open, and the failed start banned node2 for vm1, so after node1's power cut vm1 "
    "waited for node1 to return. The four tries that did not reproduce it had no such entry. A start now "
    "live-migrates a copy that runs on a DRBD peer to where Pacemaker starts it; if that fails it refuses "
    "and has Pacemaker probe the peer (tests/lab/test_domain_lab.py::"
    "test_a_copy_pacemaker_does_not_know_is_found_not_doubled)",
    "tandem-17945": "two nodes, on ef97c23: a stall. fence-peer failed and froze I/O on both Primaries; then "
    "corosync crashed on node2 (vm1's) and on node1; node2 came back first, without quorum, and stopped vm1. "
    "The stop could not fence (no quorum), left I/O frozen, and waited 89 s for a guest that could not shut "
    "down; quorum was back 4 s after it began, but the stop held up the transition that would have started "
    "the DRBD monitors again (the controllers had restarted), so nothing thawed the I/O. The stop now "
    "decides again every 5 s while it waits (agent test: quorum back 2 s into a stop)",
    "tandem-17949": "two nodes, on ef97c23: an L2 by 3 s. The fence-peer handler hung while vm1's node lost "
    "power; released, it waited the 10 s priority delay against that node before its STONITH, although the "
    "scheduler's own STONITH of it landed 3 s into that delay; vm1 started once the handler's constraint was "
    "placed, 21.0 s after the cut (the bound was 18.1). The delay now reads the CIB each second and ends "
    "when the peer is fenced",
    "tandem-18041": "two nodes, on 6d8f3cc: ours. libvirtd was killed on node2 and the campaign's move "
    "sent vm1 there 3 s later: migrate_to failed (node2's libvirtd refused the connection), Pacemaker "
    "recovered vm1 with a start on node2, which failed at once ('libvirt unreachable'), and a failed start "
    "bans the node (fail-count INFINITY) until failure-timeout, 300 s. When node1 rebooted 40 s later vm1 "
    "had nowhere to go and stayed down until node1 was back (L2). The lab restarts libvirtd after 5 s, as "
    "systemd does; start and migrate_to now wait up to 30 s for a toolstack that does not answer, here "
    "or on the target (agent tests)",
    "tandem-18076": "two nodes, on 39e9f2e: ours. vm1's node rebooted; the survivor's fence-peer handler "
    "waited its 10 s priority delay and asked stonith_admin to fence node1, merged with the cluster's own "
    "request; 2 s later pacemaker-fenced was killed there. The cluster asked again and node1 was fenced 11 "
    "s later, but stonith_admin hears a result only over its connection to the fencer that died: it waited "
    "its whole timeout (45 s), with the survivor's I/O frozen and vm1 unable to start there (L2). The "
    "handler now asks the fencer again every 10 s while the CIB shows the peer unfenced, and ends once it "
    "is (unit tests)",
    "tandem-18223": "two nodes, on deefad8: ours. vm1 ran on node2; the fence device failed, the network "
    "was partitioned and execd crashed on node1, whose respawned controller became DC of its side and, in "
    "join_make_offer, wrote expected=down for node2, a lost peer it had never seen join (Pacemaker 2.1.5 "
    "does so on purpose: with a resource thought active there, the scheduler fences it). node1's "
    "fence-peer read in_ccm=false + expected=down as 'peer is down (fenced or cleanly stopped)', placed "
    "'promotion only on node1' and exited 7 without STONITH while node2 ran vm1 as Primary. The constraint "
    "survived the heal; node2's handler, having fenced node1, refused to replace it (exit 1), vm1 was "
    "stopped (node2 may not be promoted) and node2's handler fenced node1 each time it rejoined. No data "
    "lost or forked, but vm1 down for good. The anchor's crm-fence-peer.9.sh makes the same test. A lost "
    "peer expected down now counts as fenced only when no resource is thought active there, the "
    "scheduler's own rule (fencing erases the history); otherwise the handler fences it first (e431c22, "
    "unit and agent tests on the lab's CIB). Evidence: evidence/tandem-18223-false-peer-down.log.bz2",
    "tandem-18523": "two nodes, on 53f7f66: ours. node1 fenced node2 and placed 'promotion only on "
    "node1'; node2 came back and resynced, and its resync ended in the second corosync crashed on both "
    "nodes: DRBD's unfence-peer on node1 could not read the CIB (exit 1), and DRBD calls it once. With the "
    "stacks back, the probes found DRBD running, so no action and no notification ran, and the monitors "
    "never look at constraints: node2, UpToDate, stayed unpromotable (L1). fence-peer now marks the "
    "constraint it places (a file beside its lock); while the mark is there, the monitor of the node "
    "that placed it removes the constraint once every peer is UpToDate (afe7c4f, agent test; one stat "
    "per monitor otherwise)",
    "tandem-18559": "two nodes, on afe7c4f: the checker's. node1's disk failed under vm1 in the same "
    "second as the replication link was cut (the disk 4 ms first), so node1 had no data path left: the "
    "migration was refused (no disk here, node2 unreachable) and vm1 stopped; node2's fence-peer waited "
    "its 10 s head start (node1 had run vm1), fenced node1, and vm1 started on node2. S6 exempts the side "
    "that lost its own disk, but excused only faults after the split; a disk failed and not yet replaced "
    "when the split comes now counts (unit test); rejudged",
    "tandem-18915": "two nodes, on afe7c4f: ours, a Pacemaker stall behind a failed monitor. node1's disk "
    "failed under vm1 and Pacemaker live-migrated vm1 to node2, whose power was cut in migrate_from. node1, "
    "Diskless Primary with no peer serving its I/O, answered its monitor 9 (failed Primary) and became DC; "
    "its first transition stopped vm1, fenced node2 and cancelled that failed monitor to demote node1. "
    "Pacemaker (2.1.5, unchanged in 3.0) confirms the cancel of a failed monitor only by a direct ack "
    "carrying the monitor's own transition key, which a new DC discards as a 'Foreign event': transition 0 "
    "waited for the action timer (75 s timeout + 60 s cluster-delay), node2 back but DRBD never started "
    "there within the run (L1, L3). Data safe. A Primary without data is now degraded, not 9 (its removed "
    "score makes Pacemaker demote it; a stop and start cannot give it data back), so no failed monitor is "
    "left for a demote to cancel (354278b; unit and agent tests; docs/drbd-vs-linbit.md). Evidence: "
    "evidence/tandem-18915-cancel-stall.log.bz2",
    "tandem-19379": "two nodes, on 9f13964 (lab commit 1330db5): a lab fidelity gap (L1, L3), fixed "
    "in 6894610. A slow link, fence-peer hanging, a move, corosync crashed on node1 (DC, vm1) and the "
    "cluster network cut: node1 was fenced, node2 resumed I/O after its fence-peer (exit 7, a new data "
    "generation) and ran vm1. When node1 was powered on, a replicated write node1 had sent before the "
    "split (not yet acknowledged when its links went down) reached node2: the lab's power cut killed "
    "node1's processes but kept its network namespace, whose kernel went on retransmitting the dead "
    "process's TCP data once the links were up, and the emulator's receiver applied it although DRBD had "
    "dropped that connection 25 s before. node2's copy and generation rolled back to node1's (5268 to "
    "5240 in the history), so the handshake found both on one generation with node1's activity log dirty: "
    "node1 the SyncSource, and node2, Primary, refused ('I shall become SyncTarget, but I am primary!'): "
    "StandAlone to the end. Real DRBD closes a lost connection's sockets and a power cut ends the TCP "
    "stack: the receiver now applies a write only on the connection it was sent on (one session per DRBD "
    "connection), and a power cut destroys the node's TCP sockets (`ss -K`, links still down). Agent "
    "tests for both, each failing without its fix. The stale block could also have overwritten newer data "
    "on the survivor: no run flagged S2 for it. Logs: evidence/tandem-19379-logs.tar.bz2",
    "tandem-19967": "two nodes, on bdc0a1a: ours (L3), fixed in 308e7ce. vm1 live-migrated node2 to "
    "node1; node2 lost its power 10 ms after migrate_to returned, and QEMU crashed on node1 5 s into the "
    "migrate_from, which had seen the domain arrive and was waiting for it to run: it took the domain the "
    "hypervisor no longer knew for one not there yet and waited out its 60 s timeout, the cluster blocked "
    "on it with vm1 down (the recovery came 43 s after the heal). The domain agent's wait for a started or "
    "arrived domain now fails once the domain has been gone for ARRIVAL_GRACE (10 s, at most a quarter of "
    "the timeout), and Pacemaker recovers the VM (agent test, failing without the fix)",
    "tandem-20234": "two nodes, on 308e7ce: ours (L1), fixed in c2f4fa0 and 1075c24. With the fence-peer "
    "handlers hanging (their fault cuts the replication link), libvirtd crashed on node2, which ran vm1, "
    "and node1's disk failed. When the hang ended, node1's handler ran on the UP_TO_DATE_NODES that DRBD "
    "had given it when it was called, before the disk failed: it took node1 for UpToDate, placed "
    "'promotion only on node1', a diskless node, and Pacemaker demoted node2, which held the only data, "
    "and set out to stop vm1. node2's handler refused to replace that constraint (exit 1, I/O frozen), "
    "and the domain agent's stop, which decides a fencing freeze again before the shutdown, did so every "
    "5 s: each time it fenced node1 (dual primary, peer reachable) and only then refused the constraint, "
    "so node1 was fenced whenever it came back; vm1 down to the run's end. fence-peer now judges its own "
    "disk as DRBD reports it when the handler runs (a node whose data is gone places no constraint), and "
    "refuses before any STONITH when a constraint already forbids its promotion (the peer it favours is "
    "never killed for it). Unit tests, each failing without its fix. Data safe: node2 kept every write",
    "tandem-21172": "two nodes, on ade228d (the shipped code of 24d664b): a checker gap (L2), behind a "
    "stall of Pacemaker's. node1, the DC with vm1, was stopped cleanly 0.05 s before node2's DRBD start "
    "ended; node2 was Unpromoted with a promotion score, so the scheduler planned to promote it, "
    "live-migrate vm1 there and stop node1's DRBD, in one transition that can never finish (the clone "
    "promotes only after its stops, node1's DRBD stops only after vm1 left, vm1 leaves only after the "
    "promotion: `crm_simulate -S -x evidence/tandem-21172-pe-input-243.bz2`: 'An invalid transition was "
    "produced'). Pacemaker waited 21 s, until node1's power cut; node1 was powered on again 1 s later "
    "(the heal), joined unfenced 3.2 s after the cut, and vm1 ran on node2 3.4 s after that join. L2 "
    "counted from the cut when no fencing was logged; its clock now starts at the lost node's join when "
    "it came back unfenced before its fencing was due (unit test); rejudged. The orders that avoid the "
    "loop restart vm1 instead of migrating it on every standby (the symmetrical one), or whenever the peer "
    "is promoted in the same transition (an added 'demote then start': 67 of the 240 migrations in 1,781 "
    "kept scheduler inputs, replayed; the loop was in 5 of them, this run's and tandem-17015's): the "
    "README keeps its orders and says to check that the peer is Promoted before a standby, and how to get "
    "out (allow-migrate=false)",
    "tandem-23001": "three data nodes, on 0e9af60 (the shipped code of 24d664b): a recorder gap (S3), "
    "tandem-17622's in another guise. With every replication link cut, node1 (vm1's node) wrote once more "
    "after it lost quorum (never acknowledged: on-no-quorum io-error) and kept that block's bits for both "
    "peers; it was rebooted and fenced, and was powered on again 1.3 s after the heal, its DRBD not started "
    "for 5 s more. node2, resynced from node3 (generation 36), was promoted beside it; the recorder let the "
    "bits of a node that is powered on speak, DRBD up or not, so node2 counted as behind node1's 37. The "
    "guest booted on node2 with every generation it had acknowledged (17 of 17), and node1 resynced from "
    "node2 when its DRBD came up. The recorder now judges a node whose DRBD is not up as down "
    "(record.data_view, unit test); the kept history holds the old verdict, which stays",
    "tandem-23005": "three data nodes, on 0e9af60 (the shipped code of 24d664b): an emulator fault (S3, "
    "S4, L1, L3), fixed in 777ce9f. Two overlapping partitions cut every node off; vm1's node1 had a write "
    "in flight (generation 139). Its link to node2 dropped first, while node3's still counted and node1's "
    "quorum held, and the emulator made node1's data a new generation at once; node3's dropped next and "
    "the write failed without quorum (never acknowledged). Then node1 lost power. node3 and node2, the "
    "majority, were promoted and wrote on; node1 came back on its own generation and all three saw a split "
    "brain (no after-sb policy: StandAlone to the end). DRBD makes its new current UUID only at the next "
    "write that may go on, so the failed write would have left node1 on the old one, node3's SyncTarget. "
    "The emulator now decides it when the write completes (engine.complete_write; unit test "
    "test_a_write_failed_for_quorum_lost_under_it_makes_no_new_generation, failing before). The S3 flags "
    "(node3 at 138 while node1 had 140; node2 'behind') are node1's unacknowledged write and that bogus "
    "generation: the guest booted on node3 with all it had acknowledged (66 of 66)",
    "tandem-23011": "three data nodes, on 777ce9f (the shipped code of 24d664b): a recorder gap (S3). "
    "A partition and two clean stops took every node apart while vm1's node1 had a write in flight "
    "(generation 138, failed without quorum: its data stayed on the majority's generation, as 777ce9f "
    "has it). node2 and node3 were promoted; a promotion without a peer starts a new generation, so from "
    "that sample on node1's 138 was no longer capped at the live nodes' 137 (the recorder capped a down "
    "node only on a live node's current generation, not on one a live node went on from). The guest booted "
    "on node2 with all it had acknowledged (68 of 68) and node1 came back as a SyncTarget, no split brain. "
    "record.data_generations now also caps on the live nodes' history (unit test); the kept history holds "
    "the old verdict, which stays",
    "tandem-21042": "two nodes, on 64db160 (the shipped code of 1075c24): ours (L1, L3), fixed in "
    "030eef0. vm1 live-migrated node2 to node1 with the fence-peer handlers failing; 1.5 s in, the "
    "emulator's replication probe went unanswered for 3 s (no link fault was scheduled: agent tests ran "
    "beside both labs, load 3.6 on 2 cores) and DRBD dropped the connection. Both Primaries froze, QEMU "
    "on node2 could not switch over on frozen disks and libvirtd hung on it. node2's DRBD monitor "
    "finished the freeze 17 s later: it fenced node1 (the VM's node won), but corosync crashed on node2 "
    "1.3 s after, before the fencer's answer came; the controller exited and execd killed that monitor "
    "before its resume-io. The respawned controller's probe of vm1 queued behind the hung migrate_to (one "
    "operation per resource), its transition waited 90 s on that probe, the migrate_to its whole 120 s, "
    "and no DRBD monitor ran to thaw the I/O: vm1 hung until the run ended 83 s after the heal (its stop "
    "killed QEMU 22 s later; data safe). migrate_to now does what stop does on frozen disks, every 5 s "
    "while the migration runs: it decides as the handler would and resumes I/O (agent test, failing "
    "without the fix)",
    "tandem-19935": "two nodes, on bdc0a1a: a checker gap (S6). fence-peer-fail cut the replication "
    "link 0.2 s into the run while node1 ran vm1; node2's stop-start took it out and node1's handler "
    "fenced it (its own fault: no race). 19 s later vm1 live-migrated to node2, and a cluster cut during "
    "the migration made node2 fence node1. S6 took the first loss of the VM's node within the handler "
    "fault's window for that split's outcome; the race ends with the first node to go off (node2, by its "
    "own fault: not judged), and the later split, inside a migration, is not judged (unit test)",
    "tandem-19420": "two nodes, on bdc0a1a: a checker gap (L2). corosync crashed on node2 0.03 s before "
    "node1, running vm1, lost its power. node2's corosync came back alone 12 s later and, as two_node's "
    "wait_for_all demands, had no quorum until node1 returned (vm1 back 72 s after the cut, when node1 "
    "did). L2 excused a survivor whose corosync a fault stopped only after the loss; it now also excuses one "
    "stopped before it whose controller joined again only after it (unit test)",
    "tandem-19400": "two nodes, on 9f13964 (lab commit 1330db5): an emulator gap (L1, L3). corosync "
    "crashed on node2 (no VM); node1's disk failed under vm1 0.7 s after node2 was seen lost and before its "
    "fencing, so node1 was a Diskless Primary without data once node2 was fenced (vm1 stopped, node1 "
    "demoted: right). node2 came back Consistent (fencing configured, node1 not known Outdated: DRBD's "
    "may_be_up_to_date keeps it so beside a Diskless peer), and node1's replacement disk, attached while "
    "connected, stayed Inconsistent: the emulator ran no handshake on an attach while connected, and "
    "resynced only from UpToDate data. DRBD exchanges the UUIDs on such an attach, and node2, the newest, "
    "resyncs node1. Fixed in the emulator (unit test); data safe: node2 held every acknowledged write. "
    "Logs: evidence/tandem-19400-logs.tar.bz2",
    "tandem-19328": "two nodes, on 9f13964: a checker gap. corosync crashed on node1 (DC, running vm1); "
    "7 s later the replication link was cut with both fence-peer handlers hanging, and node2's scheduler "
    "fenced node1 for its crash after the priority-fencing-delay, 12 s after it (stonith history: "
    "pacemaker-controld). S6 excused a membership fault of the VM's node only within 3 s before the "
    "split; it now also excuses one whose fencing is still due (power cut, reboot or corosync crash less "
    "than 18 s before, the node not fenced since: unit test)",
    "tandem-10011": "two nodes, on b5ab81c: ours, S6, flagged since de6c4d4, when S6 began to judge the "
    "replication cut of a fence-peer fault as a split. vm1 had live-migrated to node2 1 s before the "
    "handlers began to hang; both stayed frozen (no monitor finished a freeze yet) until the hang ended, "
    "then both handlers ran at once and node1 fenced node2 1.4 s later: the priorities then came from "
    "_last_0, which after a live migration counted 0 on both nodes, a coin toss (fixed in 1b3bd63; the "
    "monitor's finish of a freeze came in a94306c)",
    "tandem-19702": "two nodes, on 1cfeffb: ours, S6. With both fence-peer handlers hanging, the "
    "replication link was cut while node2 ran vm1; DRBD froze I/O on both. The monitors finish a freeze "
    "no handler ends once it has lasted 10 s, but node1's monitor took this freeze for the one it had "
    "noted in the run before, 50 s earlier (a monitor that found no freeze kept the note, and only a gap "
    "over 60 s reset it): it decided at once, gave node2 its 10 s head start and fenced it, 1 s before "
    "node2's monitor, which had seen its freeze 10 s before, could decide. A monitor that finds no freeze "
    "now forgets the last one, so the node without the VM waits its grace plus the head start (agent "
    "test). Reading it showed a race left: the grace (10 s) equalled the Promoted monitor interval, so the "
    "VM's node could decide up to 30 s after the freeze and the other node fence from 20 s. Since 9f13964 "
    "the grace is 5 s (the second monitor that sees a freeze decides, within 20 s) and the node without "
    "the VM waits two monitor intervals more than the handler's delay (30 s in all); 24 runs of "
    "fence-peer-hang alone on 9f13964 (seeds 19300-19311, 19800-19811): 0 violations, every judged "
    "race won by the VM's node or no node fenced",
    "tandem-19602": "two nodes, on 354278b: ours. fence-peer was failing when node2, running vm1, "
    "rebooted: DRBD froze node1's I/O and the handler failed. Pacemaker fenced node2 after the "
    "priority-fencing-delay and started vm1 on node1, whose start waited for the freeze to end (it does, "
    "up to 20 s, rather than hang in the guest's first disk access); only the DRBD monitor, 7 s later, "
    "decided as the handler would and resumed I/O, so vm1 ran 7.5 s after the fencing (L2 allows 5). The "
    "start now does that itself after 2 s of freeze, as the stop already did (agent test)",
    "tandem-19568": "two nodes, on 354278b: the checker's. node2, running vm1 and DC, lost power; node1 "
    "saw it 2.7 s later and scheduled node2's fencing with the README's priority-fencing-delay (10 s, "
    "node2 ran vm1). 1.6 s before that delay ended, corosync crashed on node1: the fencing was lost with "
    "its fencer, and node1's corosync, started again alone, waited for all (two_node): no quorum, so the "
    "scheduler neither fenced nor started anything. tandem-fence-peer fenced node2 15 s after the crash "
    "(stonith_admin needs no quorum), node2 rebooted and rejoined, quorum came back, and vm1 ran on node1 "
    "47 s after the power cut. Safe and by design; L2 now leaves out a two-node loss whose survivor was "
    "itself taken out of the cluster before vm1 was due (unit test); L1 judges it; rejudged",
    "tandem-18881": "two nodes, on afe7c4f: Pacemaker's, not judged. The network was partitioned while "
    "node2 ran vm1, and 0.4 s later execd crashed on node1, whose controller respawned before it saw node2 "
    "lost; DC of its side, it wrote expected=down for node2 (join_make_offer, as in tandem-18223) and its "
    "scheduler fenced node2 as 'drbd-r0:0 is thought to be active there', a reason Pacemaker 2.1.5 gives no "
    "priority-fencing-delay; node2, for its part, counted node1 as coming up and fenced nobody. No handler "
    "took part; data safe (vm1 ran on node1 1.6 s after node2 was fenced). S6 leaves such splits "
    "unjudged, as tandem-18505's (e676d09, unit tests); this run's join windows were read from its kept "
    "logs, rejudged",
    "tandem-18538": "two nodes, on 53f7f66: the checker's. corosync crashed on node2, which ran vm1, and "
    "the cluster network was cut 1.15 s later; node1 saw node2 lost 2.1 s after the crash (token and "
    "consensus) and fenced it, as it must for a node that left the membership: a loss by its own fault, "
    "not a fence race, though S6 took the cut for one (it excused only faults after the split). Now a "
    "split within 3 s after the VM's node's own membership fault is not judged (unit test); rejudged",
    "tandem-18505": "two nodes, on e3814e4: Pacemaker's, not judged. node1's cluster stack was stopped "
    "(vm1 live-migrated to node2) and started again; 0.5 s after node1's controller started, before it had "
    "joined node2's DC, the network was partitioned. Pacemaker discards the status section of the CIB a "
    "node starts with and fills it in at the join, so node1, DC of its side, saw node2 with no resource "
    "history: 'vm1 cannot run anywhere', node priorities equal, priority_delay=0, and it fenced node2 at "
    "once (node2, for its part, counted node1 as still coming up and fenced nobody). No handler took part "
    "(node1's DRBD was not started); data safe (node1's data Outdated: vm1 waited for node2's return, "
    "22 s, and restarted on node1). S6 no "
    "longer judges a split while another node's controller is still joining (53f7f66, e676d09; unit tests); "
    "this run's join windows were read from its kept node logs by that rule and it was rejudged",
    "tandem-18219": "two nodes, on deefad8: an emulator fault behind a Pacemaker stall. execd was killed on "
    "node2, whose controller exits and is respawned with it (Pacemaker 2.1); in the same 20 ms the DC "
    "computed a transition with actions on node2 (a demote's pre-notify, a monitor cancel) that the leaving "
    "controller never received, and it waits for their timers (90 s notify timeout + 60 s cluster-delay; "
    "2.1.5 fails the lost actions of the transition before, not of this one): no cluster action from 14 s "
    "on, vm1 running on node1 throughout. node2's disk then failed and was replaced while node2 was still "
    "Primary; the emulator started no resync into a Primary, so node2 stayed Inconsistent (the L1 and the "
    "L3s). DRBD refuses SyncTarget only to a Primary with Consistent or better data, and resyncs it: fixed "
    "in the emulator (8258dc8, unit test). With that resync the run would reach its goal about 16 s (the "
    "resync's time) after the heal, the stall changing nothing the checkers see; not replayed (the race "
    "with the DC's transition is a matter of milliseconds)",
    "tandem-18180": "two nodes, on f7ad8c1: a lab artifact. Two campaigns ran side by side (the "
    "anchors' lab and this one), whose emulated DRBD devices share the host path /dev/drbd9271; the "
    "anchors' lab was rebuilt and removed that placeholder, which Linux answers by detaching the mounts "
    "over it in every other namespace, so this lab's node1 lost its device and vm1's start found no disk "
    "(both nodes, then banned). A lab now removes a placeholder only when no mount namespace mounts over "
    "it (ff19c83, unit test)",
    "tandem-18165": "two nodes, on 41ae3cb: the checker's. The cluster network was cut and the fence device "
    "failed 1 s later for 11 s. vm1's node asked at once (no delay) and its attempts failed on the dead "
    "device; the other node's request waited the 10 s priority delay, which ran out while the device was "
    "still down; when it came back both fencers were retrying and reached it in the same second: node2's "
    "request won and node1, running vm1, was rebooted (vm1 restarted on node2, data safe). A head start "
    "spent while nobody can fence decides nothing, by Pacemaker's design (a node whose fencing is broken "
    "must not block the other forever): a race whose device failed until the head start was over is not "
    "judged now (unit test); a device failure that ends within it still is",
    "tandem-18043": "two nodes, on 6d8f3cc: the checker's. The replication link was cut while a partition, "
    "begun in a live migration's window (not judged), still held and the VM's node had lost its corosync: "
    "S6 judged the cut as a fence race of its own and flagged the VM's node, fenced for the partition. A "
    "split inside another is now that split's race (834ab32); rejudged",
    "tandem-17983": "two nodes, on 310922c: a stall in Pacemaker's fencer, not in the agents. A slow cluster "
    "link on node1 made the membership flap while pacemaker-fenced crashed there during a migrate_to; both "
    "nodes asked to fence each other. node1's respawned fencer delegated the reboot of node2 to node2 "
    "itself; node2 rebooted (its fencer restarted 16 s later), but node1 never got the result and waited "
    "for the request's 72 s timeout, its transition blocked, vm1 stopped from 38 s to 112 s. The lab had one "
    "fence device for all nodes, so the fencer could fall back to the target itself; since c4d3fcf it runs "
    "one device per node, banned from its target, as the README now advises (no self-fencing possible)",
    "tandem-17025": "three data nodes, on 9f61011: not explained, a lab stall. Right after the heal "
    "(corosync killed on node1 as the replication link came back) the recorder's samples stop (45.9 s), "
    "node2's and node3's corosync log 'waiting for consensus' and nothing more, node1's pacemakerd stops its "
    "once-a-second retries: every process stalled at once, as if the host did. The next restore's crm hung "
    "and ended the batch; a hung restore now means a fresh cluster (a2a0ffa). Not seen again",
}


def load(path: Path) -> list[dict[str, Any]]:
    return (
        [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.exists() else []
    )


def percentile(values: Sequence[float], q: float) -> float | None:
    """Nearest-rank percentile (no interpolation: every value reported is one that was measured)."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * q // 100))
    return float(ordered[int(rank) - 1])


@dataclass(frozen=True)
class Row:
    kind: str
    agents: str
    runs: int
    violations: tuple[int, ...]  # per CHECKERS entry: runs with at least one
    recovery: tuple[float, ...]  # recovery_s of the runs that recovered
    unrecovered: int


def tally(runs: Sequence[dict[str, Any]]) -> list[Row]:
    """One row per (fault kind, agents): a run counts for every kind it injected (once per kind)."""
    keys = sorted({(k, r["agents"]) for r in runs for k in r["faults"]})
    rows = []
    for kind, agents in keys:
        mine = [r for r in runs if r["agents"] == agents and kind in r["faults"]]
        rows.append(
            Row(
                kind,
                agents,
                len(mine),
                tuple(sum(any(v["checker"] == c for v in r["violations"]) for r in mine) for c in CHECKERS),
                tuple(r["recovery_s"] for r in mine if r["recovery_s"] is not None),
                sum(r["recovery_s"] is None for r in mine),
            )
        )
    return rows


L1_CAUSES = ("late", "degraded", "failed")


def l1_cause(v: dict[str, Any]) -> str | None:
    """Which L1 cause a violation is: late (not healthy in time), degraded, or another failed action."""
    if v["checker"] != "L1":
        return None
    if not v["detail"].startswith("failed action"):
        return "late"  # not healthy in time (a guest left without its disk is not either)
    return "degraded" if ": degraded" in v["detail"] else "failed"


def _fmt(x: float | None) -> str:
    return "–" if x is None else f"{x:.1f}"


def flagged(runs: Sequence[dict[str, Any]]) -> tuple[int, int]:
    """How many of `runs` have a safety violation, and how many a liveness one."""

    def count(kind: str) -> int:
        return sum(any(v["checker"].startswith(kind) for v in r["violations"]) for r in runs)

    return count("S"), count("L")


def cluster_label(run: Mapping[str, Any]) -> str:
    """The agents, and for three nodes the cluster's shape: "tandem", "tandem, 3 nodes (tiebreaker)"."""
    if int(run.get("nodes", 2)) == 2:
        return str(run["agents"])
    return f"{run['agents']}, {run['nodes']} nodes ({run.get('shape', 'tiebreaker')})"


def markdown(
    runs: Sequence[dict[str, Any]],
    plot_name: str | None,
    timelines: frozenset[str] = frozenset(),
    shrunk: Mapping[str, dict[str, Any]] | None = None,
    shipped: Mapping[str, str] | None = None,
) -> str:
    """The report; `shrunk`: run → its shrink (lab.campaign.shrink); `shipped`: commit → the version of
    the code installed on the nodes at that commit (`shipped_versions`). Three-node runs are counted apart,
    under their shape."""
    shrunk = shrunk or {}
    runs = [{**r, "agents": cluster_label(r)} for r in runs]
    rows = tally(runs)
    pairs = sorted({r["agents"] for r in runs})
    out = [
        "# Fault campaign",
        "",
        "Generated by `python3 -m lab campaign --report` from [campaign/runs.jsonl](campaign/runs.jsonl) "
        "(one JSON object per run); do not edit. Each run: the README's crm configuration (ours) or the same "
        "with `ocf:linbit:drbd` + `crm-fence-peer.9.sh` + `ocf:heartbeat:VirtualDomain` (anchors), a real "
        "guest writing generations, DRBD on a replication network of its own, a seeded schedule of 2–6 "
        "faults in 30 s, then heal, then settle; checkers judge from the lab's ground truth (lab/campaign).",
        "",
        "## Totals",
        "",
        "| agents | runs | runs with a safety violation | runs with a liveness violation "
        "| recovery p50 / p90 / max (s) |",
        "|---|---|---|---|---|",
    ]
    for agents in pairs:
        mine = [r for r in runs if r["agents"] == agents]
        safety, live = flagged(mine)
        rec = [r["recovery_s"] for r in mine if r["recovery_s"] is not None]
        spread = " / ".join(_fmt(percentile(rec, q)) for q in (50, 90, 100))
        out.append(f"| {agents} | {len(mine)} | {safety} | {live} | {spread} |")
    out += [
        "",
        "## Per commit",
        "",
        "The code each run ran (its commit, in the order first run), and its runs with a violation.",
        "",
        "| commit | agents | runs | with a safety violation | with a liveness violation |",
        "|---|---|---|---|---|",
    ]
    by_commit: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in runs:
        by_commit.setdefault((str(r.get("commit") or "unrecorded")[:7], r["agents"]), []).append(r)
    for (commit, agents), mine in by_commit.items():
        safety, live = flagged(mine)
        out.append(f"| {commit} | {agents} | {len(mine)} | {safety} | {live} |")
    out += by_shipped_code(runs, shipped or {})
    out += [
        "",
        "## Per fault kind",
        "",
        "A run counts under every kind it injected. Violations: runs with at least one. Recovery: seconds "
        "from the last heal to the goal state (every node on, DRBD connected everywhere and UpToDate on "
        "every node with data, Primary on two nodes, vm1's among them, one QEMU, no fencing constraint); "
        '"never": runs that did not get there.',
        "",
        f"| kind | agents | runs | {' | '.join(CHECKERS)} | recovery p50 / p90 / max (s) | never |",
        f"|---|---|---|{'---|' * len(CHECKERS)}---|---|",
    ]
    for row in rows:
        spread = " / ".join(_fmt(percentile(row.recovery, q)) for q in (50, 90, 100))
        counts = " | ".join(str(n) if n else "·" for n in row.violations)
        out.append(f"| {row.kind} | {row.agents} | {row.runs} | {counts} | {spread} | {row.unrecovered} |")
    out += ["", "## L1 by cause", "", "Runs with at least one L1 verdict of each cause.", ""]
    out += [
        "| agents | not healthy in time | a degraded (190/191) result left as a failed action "
        "| another failed action left |"
    ]
    out.append("|---|---|---|---|")
    for agents in pairs:
        causes = [
            sum(any(l1_cause(v) == c for v in r["violations"]) for r in runs if r["agents"] == agents)
            for c in L1_CAUSES
        ]
        out.append(f"| {agents} | {' | '.join(map(str, causes))} |")
    loss = [(r["agents"], r["faults"], s) for r in runs for s in r.get("node_loss_s", [])]
    if loss:
        out += [
            "",
            "## L2: losing the VM's node",
            "",
            "Seconds from the loss of vm1's node to vm1 running again; per fault kind, a loss counts under "
            "every kind its run injected (a run does not record which of its faults took the node).",
            "",
            "| fault kind | agents | losses | vm1 back p50 / p90 / max (s) |",
            "|---|---|---|---|",
        ]
        kinds = sorted({k for _, faults, _ in loss for k in faults})
        for kind in ["(all)", *kinds]:
            for agents in pairs:
                got = [s for a, faults, s in loss if a == agents and (kind == "(all)" or kind in faults)]
                if got:
                    spread = " / ".join(_fmt(percentile(got, q)) for q in (50, 90, 100))
                    out.append(f"| {kind} | {agents} | {len(got)} | {spread} |")
    out += fence_race(runs, pairs)
    if plot_name:
        out += ["", f"![recovery per fault kind](campaign/{plot_name})"]
    out += ["", "## Checkers", "", *(f"- **{c}** {ABOUT[c]}" for c in CHECKERS)]
    out += ["", "## Fault kinds", "", *(f"- **{k.name}** {k.about}" for k in KINDS.values())]
    out += ["", "## Limits of this lab", "", *(f"- {line}" for line in LIMITS)]
    out += ["", "## Violations", ""]
    bad = [r for r in runs if r["violations"]]
    if not bad:
        out.append("None.")
    for r in bad:
        steps = ", ".join(
            f"{i['t']}s {'undo ' if i['undo'] else ''}{i['kind']}{' ' + i['node'] if i['node'] else ''}"
            + (f" ({i['note']})" if i["note"] else "")
            for i in r["injections"]
        )
        out += [
            f"### {r['run']}: {', '.join(sorted({v['checker'] for v in r['violations']}))}",
            "",
            f"- schedule (seed {r['seed']}): " + _events(r["schedule"]),
            f"- injected (s from the run's start): {steps}; healed at {r['healed_s']}s",
            *(f"- **{v['checker']}** at {v['t']}s: {v['detail']}" for v in r["violations"]),
            *([f"- found: {FINDINGS[r['run']]}"] if r["run"] in FINDINGS else []),
            f"- replay: `{r['replay']}`",
            *(
                [
                    f"- shrunk (`--shrink {r['run']}`, {len(shrunk[r['run']]['attempts'])} attempts): "
                    + _events(shrunk[r["run"]]["shrunk"])
                ]
                if r["run"] in shrunk
                else []
            ),
            *(
                [f"- timeline: [campaign/timelines/{r['run']}.txt](campaign/timelines/{r['run']}.txt)"]
                if r["run"] in timelines
                else []
            ),
            "",
        ]
    return "\n".join(out).rstrip() + "\n"


def fence_race(runs: Sequence[dict[str, Any]], pairs: Sequence[str]) -> list[str]:
    """Each split of the nodes and who lost its fence race (checkers.split_outcomes; S6 is the third
    column), per kind of split."""
    splits = [(r["agents"], s["kind"], s["outcome"]) for r in runs for s in r.get("splits", [])]
    if not splits:
        return []
    out = [
        "",
        "## The fence race: who is fenced when the nodes split",
        "",
        "Every split of the nodes (partition, replication cut, cluster cut) in the runs above. Not judged: "
        "inside a live migration, no single QEMU before the split, or the node that went off was hit by a "
        "fault of its own meanwhile.",
        "",
        f"| agents | split | splits | {' | '.join(checkers.SPLIT_OUTCOMES)} |",
        f"|---|---|---|{'---|' * len(checkers.SPLIT_OUTCOMES)}",
    ]
    for agents in pairs:
        for kind in checkers.SPLIT_KINDS:
            got = [o for a, k, o in splits if a == agents and k == kind]
            if got:
                counts = " | ".join(str(got.count(o)) for o in checkers.SPLIT_OUTCOMES)
                out.append(f"| {agents} | {kind} | {len(got)} | {counts} |")
    return out


def plot(runs: Sequence[dict[str, Any]], dest: Path) -> None:
    """Recovery seconds per fault kind, ours and the anchors side by side (one dot per run)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    kinds = sorted({k for r in runs for k in r["faults"]})
    pairs = sorted({r["agents"] for r in runs})
    fig, ax = plt.subplots(figsize=(10, 0.4 * len(kinds) + 1.5))
    for j, agents in enumerate(pairs):
        xs, ys = [], []
        for i, kind in enumerate(kinds):
            for r in runs:
                if r["agents"] == agents and kind in r["faults"] and r["recovery_s"] is not None:
                    xs.append(r["recovery_s"])
                    ys.append(i + (j - (len(pairs) - 1) / 2) * 0.25)
        ax.scatter(xs, ys, s=12, label=agents, alpha=0.7)
    ax.set_yticks(range(len(kinds)), kinds)
    ax.set_xlabel("recovery after the last heal (s)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(dest, dpi=100)
    plt.close(fig)


def _events(schedule: list[dict[str, Any]]) -> str:
    return ", ".join(
        f"{e['at']}s {e['kind']} {e['role']}".strip()
        + (f" inside {e['during']}" if e.get("during") else "")
        + (f" for {e['hold']}s" if e["hold"] else "")
        for e in schedule
    )


def by_shipped_code(runs: Sequence[dict[str, Any]], shipped: Mapping[str, str]) -> list[str]:
    """Runs grouped by the code the nodes ran (agents, handlers, library), newest version first: commits
    that changed only the lab or the report leave it as it was, so their runs count together."""
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in runs:
        commit, dirty = run_commit(r)
        version = shipped[commit][:8] + dirty if commit in shipped else "unknown"
        groups.setdefault((version, r["agents"]), []).append(r)
    if not groups:
        return []
    out = [
        "",
        "## Per version of the shipped code",
        "",
        "Runs grouped by the code `tandem install` puts on the nodes at their commit (a digest of the git "
        "trees of `lib/tandem`, `agents` and `metadata`; the anchors' rows show the lab's version of it, "
        "their own code never changes), newest first. `-dirty`: the checkout had local changes (before "
        "2026-12-01 11:30 any tracked file's, since then only those of the shipped code).",
        "",
        "| shipped code | agents | runs | with a safety violation | with a liveness violation | commits |",
        "|---|---|---|---|---|---|",
    ]
    last_run = {key: max(str(r.get("started", "")) for r in mine) for key, mine in groups.items()}
    for key in sorted(groups, key=lambda k: last_run[k], reverse=True):
        mine = groups[key]
        safety, live = flagged(mine)
        commits = ", ".join(sorted({str(r.get("commit") or "?")[:7] for r in mine}))
        out.append(f"| {key[0]} | {key[1]} | {len(mine)} | {safety} | {live} | {commits} |")
    return out


# what `tandem install` puts on the nodes (metadata: a link in lib)
SHIPPED = ("lib/tandem", "agents", "metadata")


def run_commit(run: Mapping[str, Any]) -> tuple[str, str]:
    """A run's recorded commit, and "-dirty" or "" (runner.code_version)."""
    commit, dirty, _ = str(run.get("commit") or "").partition("-dirty")
    return commit, dirty


def shipped_versions(commits: set[str], repo: Path) -> dict[str, str]:
    """commit → one id of the code the nodes ran there: a digest of the git trees of SHIPPED (ef97c23
    changed agents/domain alone, which the tree of lib/tandem did not show), for the commits this clone
    has."""
    import hashlib
    import subprocess

    found: dict[str, str] = {}
    for commit in sorted(c for c in commits if c):
        trees = subprocess.run(
            ["git", "-C", str(repo), "rev-parse", *(f"{commit}:{p}" for p in SHIPPED)],
            capture_output=True,
            text=True,
            check=False,
        )
        if trees.returncode == 0:
            found[commit] = hashlib.sha1(" ".join(trees.stdout.split()).encode()).hexdigest()  # noqa: S324
    return found


def write(out: Path, doc: Path) -> Path:
    """docs/campaign.md (`doc`) and its plot beside the runs (`out`/recovery.png)."""
    runs = load(out / "runs.jsonl")
    name = "recovery.png" if runs else None
    if name:
        plot(runs, out / name)
    timelines = frozenset(p.stem for p in (out / "timelines").glob("*.txt"))
    shrinks = {r["run"]: r for r in load(out / "shrinks.jsonl")}  # the latest shrink of each run
    repo = Path(__file__).resolve().parents[2]
    shipped = shipped_versions({run_commit(r)[0] for r in runs}, repo)
    doc.write_text(markdown(runs, name, timelines, shrinks, shipped))
    return doc
