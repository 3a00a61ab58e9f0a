# SPDX-License-Identifier: GPL-2.0-or-later
"""`python3 -m tandem` from a checkout (PYTHONPATH=lib)."""

import sys

from tandem.cli import main

sys.exit(main())
