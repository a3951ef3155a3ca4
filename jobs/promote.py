"""Move a declared model's @champion to one registered version, if it passes every check of the
promotion gate: validation on labels it never trained on, its training set's data checks, its
feature spec against today's code and tables, and (where the environment requires it) an approval
(see parity.app.governance_run and parity.governance.gate).

    promote [--model NAME] --version N [--reason TEXT]

The outcome, with every check and what it measured, goes to audit.model_events and to the
version's tags; a refusal exits 1 naming each check that failed.
"""

from __future__ import annotations

import sys
from pathlib import Path

from parity.app import governance_run
from parity.app.jobkit import JobOptions, run_model_job

CONF_DIR = Path(__file__).resolve().parents[1] / "conf"


def main(argv: list[str] | None = None) -> int:
    options = JobOptions(parser=governance_run.parser("promote"))
    return run_model_job("promote", argv, governance_run.promote, conf_dir=CONF_DIR, options=options)


if __name__ == "__main__":
    sys.exit(main())
