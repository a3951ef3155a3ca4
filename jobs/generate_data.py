"""Write seeded sample sources: raw.customers, raw.events and raw.labels (see parity.app.sample_data_run)."""

from __future__ import annotations

import sys
from pathlib import Path

from parity.app.jobkit import run_job
from parity.app.sample_data_run import generate_data

CONF_DIR = Path(__file__).resolve().parents[1] / "conf"


def main(argv: list[str] | None = None) -> int:
    return run_job("generate_data", argv, generate_data, conf_dir=CONF_DIR)


if __name__ == "__main__":
    sys.exit(main())
