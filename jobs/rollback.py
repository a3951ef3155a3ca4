"""Move a declared model's @champion back to the champion before it, as audit.model_events records
the promotions, and record the rollback there.

    rollback [--model NAME] [--reason TEXT]
"""

from __future__ import annotations

import sys
from pathlib import Path

from parity.app import governance_run
from parity.app.jobkit import JobOptions, run_model_job

CONF_DIR = Path(__file__).resolve().parents[1] / "conf"


def main(argv: list[str] | None = None) -> int:
    options = JobOptions(parser=governance_run.parser("rollback"))
    return run_model_job("rollback", argv, governance_run.rollback, conf_dir=CONF_DIR, options=options)


if __name__ == "__main__":
    sys.exit(main())
