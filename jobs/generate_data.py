"""Write seeded sample sources: raw.customers, raw.events and raw.labels (see parity.demo.sample_data)."""

from __future__ import annotations

import sys
from pathlib import Path

from parity.app.jobkit import JobContext, run_job
from parity.demo.sample_data import write_sample_sources

CONF_DIR = Path(__file__).resolve().parents[1] / "conf"


def body(ctx: JobContext) -> None:
    ctx.counts.update(write_sample_sources(ctx.catalog, ctx.settings))


def main(argv: list[str] | None = None) -> int:
    return run_job("generate_data", argv, body, conf_dir=CONF_DIR)


if __name__ == "__main__":
    sys.exit(main())
