# SPDX-License-Identifier: GPL-2.0-or-later
"""An emulated DRBD for the lab and the agent tests: fake drbdsetup/drbdadm over state shared by all nodes.

Pieces (each module's docstring says more):
- `bin/drbdsetup`, `bin/drbdadm`, `bin/drbd-emu`: the executables (Python, lazy imports, ~100 ms a call).
- `client.c`, `toolserver`: what lab nodes run as drbdsetup/drbdadm (`install.write_wrappers`): a compiled
  client that hands the call to the node's tool server (started by its kernel; the emulator imported once,
  a forked child per call, ~5-10 ms), or runs the Python fake where no server answers. Same outputs.
- `cli`: DRBD's command lines, messages and exit codes; outputs rendered by `render`.
- `engine`: the shared state (JSON under TANDEM_EMU_DIR, flock) and DRBD's rules as pure functions.
- `view`: one node's state as the `tandem.drbd.model` plus render details.
- `render`: the model to the real DRBD outputs, byte for byte, with the details (counters, paths) it lacks.
- `config`: drbd.conf parsing and `drbdadm dump`.
- `tool` (`drbd-emu`): init, writes and data generations, faults, the per-node kernel loop.
- `replica`: the data plane: each node's own copy of every volume, served through `fuse` to a loop device,
  replicated to the peers with protocol C over TCP, out-of-sync blocks per peer, resync of exactly those.
- `fuse`: a minimal FUSE server (raw /dev/fuse) for the copies.
- `devices`: /dev/drbdN as the node's loop device over its copy, bind-mounted in its mount namespace.
- `net`: DRBD connections that follow the lab network (TCP probes between the nodes' kernels).
- `shim/procdrbd.c`: LD_PRELOAD shim giving processes a /proc/drbd.
- `install`: `install(node, ...)` or `lab_hooks(...)` for `LabConfig.with_hooks` to put it into lab nodes.
- `setup`: a lab drbd.conf (`two_node_conf`, `mesh_conf`) and the state after the initial sync
  (`initial_sync`).

Environment: TANDEM_EMU_DIR (state directory, default /tmp/tandem-drbd-emu), TANDEM_EMU_NODE (node name,
default the hostname), TANDEM_EMU_CONF (drbd.conf when no -c, default /etc/drbd.conf), TANDEM_EMU_DEVICES=bind
(make /dev/drbdN, each node's kernel serving its copies; needs a private mount namespace),
TANDEM_EMU_NET=probe (connections follow the network), TANDEM_EMU_PROC_DRBD (the shim's file),
TANDEM_EMU_TRACE (log every fake call to this file).
"""
