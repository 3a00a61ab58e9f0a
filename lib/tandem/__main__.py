"""`python3 -m tandem` from a checkout (PYTHONPATH=lib)."""

import sys

from tandem.cli import main

sys.exit(main())
