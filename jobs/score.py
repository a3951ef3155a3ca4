"""Score a declared model's population with its registered model, as of a scoring time, into its
predictions table (see parity.app.scoring_run).

    score [--model NAME]
"""

from __future__ import annotations

import sys
from pathlib import Path

from parity.app.jobkit import run_model_job
from parity.app.scoring_run import score

CONF_DIR = Path(__file__).resolve().parents[1] / "conf"


def main(argv: list[str] | None = None) -> int:
    return run_model_job("score", argv, score, conf_dir=CONF_DIR)


if __name__ == "__main__":
    sys.exit(main())
