# SPDX-License-Identifier: GPL-2.0-or-later
"""DRBD state: one model, parsers for four real formats, and renderers for the emulator."""
