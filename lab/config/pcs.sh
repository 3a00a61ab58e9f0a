#!/bin/sh
# The configuration of crm.txt with pcs (0.11): built in a copy of the CIB, then pushed in one step,
# so that vm1 never starts before its constraints exist.
set -eu
cib=$(mktemp)
trap 'rm -f "$cib"' EXIT
pcs cluster cib "$cib"
pcs -f "$cib" resource create drbd-r0 ocf:tandem:drbd drbd_resource=r0 \
    op monitor interval=10s role=Promoted timeout=75s \
       monitor interval=20s role=Unpromoted timeout=75s \
       start timeout=240s stop timeout=100s \
       promote timeout=90s demote timeout=90s notify timeout=90s \
    promotable promoted-max=2 promoted-node-max=1 clone-max=2 clone-node-max=1 \
       notify=true interleave=true
pcs -f "$cib" resource create vm1 ocf:tandem:domain \
    config=/etc/libvirt/tandem/vm1.xml hypervisor=qemu:///system migration_transport=tcp \
    meta allow-migrate=true priority=10 \
    op monitor interval=10s timeout=30s \
       start timeout=90s stop timeout=90s \
       migrate_to timeout=120s migrate_from timeout=60s
pcs -f "$cib" constraint colocation add vm1 with Promoted drbd-r0-clone INFINITY
pcs -f "$cib" constraint order promote drbd-r0-clone then start vm1 symmetrical=false
pcs -f "$cib" constraint order stop vm1 then demote drbd-r0-clone symmetrical=false
pcs -f "$cib" resource defaults update resource-stickiness=100 failure-timeout=300s
pcs -f "$cib" property set priority-fencing-delay=10s
pcs cluster cib-push "$cib" --config
