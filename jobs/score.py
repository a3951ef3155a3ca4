"""Score every known customer with the registered model, as of a scoring time, into predictions
(see parity.app.scoring_run)."""

from __future__ import annotations

import sys
from pathlib import Path

from parity.app.jobkit import run_job
from parity.app.scoring_run import score

CONF_DIR = Path(__file__).resolve().parents[1] / "conf"


def main(argv: list[str] | None = None) -> int:
    return run_job("score", argv, score, conf_dir=CONF_DIR)


if __name__ == "__main__":
    sys.exit(main())
