"""`python -m parity.app.cli ...` runs the `parity` command (as `parity reproduce` and the
benchmarks call it)."""

from __future__ import annotations

import sys

from parity.app.cli import main

if __name__ == "__main__":
    sys.exit(main())
