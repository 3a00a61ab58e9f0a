"""DRBD state: one model, parsers for four real formats, and renderers for the emulator."""
