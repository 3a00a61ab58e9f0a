# SPDX-License-Identifier: GPL-2.0-or-later
"""tandem: Pacemaker OCF agents for virtual machines on (dual-primary) DRBD."""

__version__ = "0.1.0"

import sys

if sys.flags.no_site:
    # The agents start with -S (no site: ~10 ms less per call). What they import from site-packages (lxml,
    # only where XML is built) is then found where site would have put it, without running .pth files.
    import site

    sys.path += [p for p in site.getsitepackages() if p not in sys.path]
