# SPDX-License-Identifier: GPL-2.0-or-later
"""tandem-fence-peer as DRBD runs it (installed, its own process) on a CIB the lab's Pacemaker wrote, with
stand-ins for DRBD's tools and stonith_admin: whom it fences, and what it answers."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
from bench.fence import CIB, DRBD_ENV, stand_ins

from tandem.install import install

DUAL_PRIMARY_STONITH = (
    "resource r0 {\n    net {\n        fencing resource-and-stonith;\n        allow-two-primaries yes;\n"
    "    }\n}\n"
)
NODE2 = re.compile(r'(<node_state id="2" uname="node2") [^>]*>')
# What Pacemaker 2.1.5 writes for node2: a DC elected anew (join_make_offer, a lost peer it never saw join),
# or the DC once node2 is fenced (send_stonith_update, which also erases node2's operation history).
LOST = 'in_ccm="false" crmd="offline" crm-debug-origin="do_state_transition" join="down" expected="down"'


@pytest.mark.parametrize("fenced", [False, True], ids=["new-dc", "fenced"])
def test_a_peer_expected_down_with_the_vm_in_its_history_is_fenced_first(
    tmp_path: Path, fenced: bool
) -> None:
    """tandem-18223: node2 ran vm1 and was lost; node1's controller, respawned, became DC and wrote
    expected="down" for it. Only a history erased by its fencing makes node2 down; before that, node1 fences
    it before DRBD resumes I/O, as the scheduler would."""
    install(tmp_path / "ocf", tmp_path / "sbin", None)
    stand_ins(tmp_path / "bin", tmp_path / "trace", DUAL_PRIMARY_STONITH)
    calls = tmp_path / "stonith-calls"
    stonith = tmp_path / "bin" / "stonith_admin"
    stonith.write_text(f'#!/bin/sh\necho "$*" >> {calls}\n')
    stonith.chmod(0o755)
    lost = NODE2.sub(rf"\1 {LOST}>", CIB.read_text()).replace('dc-uuid="2"', 'dc-uuid="1"')  # node1: DC
    if fenced:
        lost = re.sub(r'(<node_state id="2" [^>]*>)\s*<lrm .*?</lrm>', r"\1", lost, flags=re.S)
    assert lost.count(LOST) == 1 and ('lrm_resource id="vm1"' in lost.split(LOST)[1]) is not fenced
    cib = tmp_path / "cib.xml"
    cib.write_text(lost)
    env = {
        "PATH": f"{tmp_path / 'bin'}:/usr/sbin:/usr/bin:/bin",
        "CIB_file": str(cib),
        "HA_RSCTMP": str(tmp_path),
        "HA_LOGFACILITY": "none",
        **DRBD_ENV,
    }
    run = subprocess.run(
        [str(tmp_path / "sbin" / "tandem-fence-peer")], env=env, capture_output=True, text=True, timeout=60
    )
    assert run.returncode == 7, run.stderr  # the peer fenced: DRBD resumes I/O
    made = calls.read_text().split("\n")[:-1] if calls.exists() else []
    assert [c.split()[:2] for c in made] == ([] if fenced else [["--reboot", "node2"]])
    assert re.search(r'<rsc_location id="tandem-fence-r0"[^>]*>', cib.read_text())
    assert 'value="node1"' in cib.read_text().split('id="tandem-fence-r0"')[1]
