"""Run a declared model's sweep (conf/models/<name>.yaml names one in conf/sweeps/) on its newest
training set, log it to MLflow, and register the best model as the `challenger` (see
parity.app.training_run).

    train [--model NAME]
"""

from __future__ import annotations

import sys
from pathlib import Path

from parity.app.jobkit import run_model_job
from parity.app.training_run import train

CONF_DIR = Path(__file__).resolve().parents[1] / "conf"


def main(argv: list[str] | None = None) -> int:
    return run_model_job("train", argv, train, conf_dir=CONF_DIR)


if __name__ == "__main__":
    sys.exit(main())
