#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
# Regenerates the fixtures of this directory with drbd-utils' own printing code (README.md says how to
# build the harness): ./generate.sh /path/to/user/v9/test/drbdsetup_instrumented
set -eu
harness=$1
cd "$(dirname "$0")"

# One scenario: NAME ME "RESOURCE VARS" "DEVICE VARS" then one "PEER CONN ROLE REPL PEER_DISK PEER_CLIENT
# ESTABLISHED" per peer. Enums from drbd-headers linux/drbd.h: conn 8 Connecting, 9 Connected; role 0 Unknown,
# 1 Primary, 2 Secondary; repl 9 Off, 10 Established; disk 0 Diskless, 7 DUnknown, 9 UpToDate.
scenario() {
  name=$1 me=$2 resv=$3 devv=$4
  shift 4
  each() { for p in "$@"; do echo "$p"; done; }
  {
    printf 'DRBD_ADM_GET_RESOURCES\nget_resource me %s %s\n-\n' "$me" "$resv"
    printf 'DRBD_ADM_GET_DEVICES\nget_device me %s %s\n-\n' "$me" "$devv"
    echo DRBD_ADM_GET_CONNECTIONS
    each "$@" | while read -r peer conn role _; do echo "get_connection me $me peer $peer conn $conn peer_role $role"; done
    echo -
    echo DRBD_ADM_GET_PEER_DEVICES
    each "$@" | while read -r peer _ _ repl pdisk pclient _; do
      echo "get_peer_device me $me peer $peer repl $repl peer_disk $pdisk peer_client $pclient"
    done
    echo -
    echo DRBD_ADM_GET_PATHS
    each "$@" | while read -r peer _ _ _ _ _ est; do echo "get_path me $me peer $peer established $est"; done
    echo -
  } > "$name.status.in"
  {
    echo "resource_exists me $me $resv"
    each "$@" | while read -r peer conn role _; do echo "connection_exists me $me peer $peer conn $conn peer_role $role"; done
    each "$@" | while read -r peer _ _ _ _ _ est; do echo "path_exists me $me peer $peer established $est"; done
    echo "device_exists me $me $devv"
    each "$@" | while read -r peer _ _ repl pdisk pclient _; do
      echo "peer_device_exists me $me peer $peer repl $repl peer_disk $pdisk peer_client $pclient"
    done
    echo initial_state_done
  } > "$name.events2.in"
  "$harness" status r0 < "$name.status.in" > "status-9-$name.GENERATED.txt"
  "$harness" status r0 --verbose < "$name.status.in" > "status-9-$name-verbose.GENERATED.txt"
  "$harness" status r0 --json < "$name.status.in" > "status-9-$name.GENERATED.json"
  "$harness" events2 --now < "$name.events2.in" > "events2-9-now-$name.GENERATED.txt"
}

# charlie (node-id 2), a diskless client Primary served by alice and bob
scenario client-primary 2 "role 1" "disk 0 client 1 is_open 1" "0 9 2 10 9 0 1" "1 9 2 10 9 0 1"
# charlie after losing alice and bob, on-no-data-accessible and on-no-quorum suspend-io, a write queued
scenario client-primary-no-data 2 "role 1 susp_nod 1 susp_quorum 1" \
  "disk 0 client 1 is_open 1 has_quorum 0 upper_blocked 1" "0 8 0 9 7 0 0" "1 8 0 9 7 0 0"
# alice (node-id 0), a storage node under charlie's Primary
scenario storage-with-client-primary 0 "role 2" "disk 9" "1 9 2 10 9 0 1" "2 9 1 10 0 1 1"
# alice cut off from bob and charlie: no quorum, on-no-quorum suspend-io (a Secondary is suspended too)
scenario secondary-no-quorum 0 "role 2 susp_quorum 1" "disk 9 has_quorum 0" "1 8 0 9 7 0 0" "2 8 0 9 7 1 0"
