# SPDX-License-Identifier: GPL-2.0-or-later
"""The lab's test guest: a tiny multiboot kernel (guest.c) and host-side helpers to build, run and read it."""
