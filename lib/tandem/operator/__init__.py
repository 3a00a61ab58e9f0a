# SPDX-License-Identifier: GPL-2.0-or-later
"""The operator's view: `tandem status` and `tandem can-migrate VM NODE`, read-only.

cluster.py   the CIB and `crm_mon --output-as xml` parsed into one frozen ClusterView (pure)
checks.py    what stops a live migration, and the status report, from a view plus local DRBD (pure)
cli.py       the two commands: asks crm_node, cibadmin, crm_mon, drbdsetup and virsh through a Runner
"""
