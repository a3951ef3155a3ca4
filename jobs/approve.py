"""Record an approval of one registered version of a declared model: who (the identity the tracking
server authenticated, or the OS user), when and why. The approver must not be the version's trainer.

    approve [--model NAME] --version N --reason TEXT
"""

from __future__ import annotations

import sys
from pathlib import Path

from parity.app import governance_run
from parity.app.jobkit import JobOptions, run_model_job

CONF_DIR = Path(__file__).resolve().parents[1] / "conf"


def main(argv: list[str] | None = None) -> int:
    options = JobOptions(parser=governance_run.parser("approve"))
    return run_model_job("approve", argv, governance_run.approve, conf_dir=CONF_DIR, options=options)


if __name__ == "__main__":
    sys.exit(main())
