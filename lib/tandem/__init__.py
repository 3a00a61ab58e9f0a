"""tandem: Pacemaker OCF agents for virtual machines on (dual-primary) DRBD."""

__version__ = "0.1.0"
