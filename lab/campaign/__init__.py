# SPDX-License-Identifier: GPL-2.0-or-later
"""The fault campaign (issue #11): seeded random faults against the lab's VM-on-DRBD cluster, ours and the
anchors side by side, judged by safety and liveness checkers from ground truth.

  schedule.py  fault kinds and seeded schedules (pure)
  nemesis.py   injecting and undoing each kind in a running lab.scenarios.VmCluster
  record.py    the sampler thread and the parsers that turn the lab into the checkers' history
  checkers.py  S1-S6, L1-L3 over a frozen history (pure)
  runner.py    clusters (DRBD on its own replication network), runs, resume, runs.jsonl
  report.py    docs/campaign.md and its plot from runs.jsonl (pure counting)
  cli.py       `python3 -m lab campaign` (also `./run campaign`)
"""
