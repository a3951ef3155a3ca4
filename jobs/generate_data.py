"""Write seeded sample sources: raw.customers, raw.events and raw.labels (see parity.datagen)."""

from __future__ import annotations

import sys
from pathlib import Path

from parity import datagen
from parity.jobkit import JobContext, run_job

CONF_DIR = Path(__file__).resolve().parents[1] / "conf"


def body(ctx: JobContext) -> None:
    conf, tables = ctx.settings.data, ctx.settings.tables
    sources = {
        tables.raw_customers: datagen.generate_customers(ctx.spark, conf),
        tables.raw_events: datagen.generate_events(ctx.spark, conf),
        tables.raw_labels: datagen.generate_labels(ctx.spark, conf),
    }
    for name, frame in sources.items():
        version = ctx.catalog.write(frame, name)
        ctx.counts[f"{name}.rows"] = ctx.catalog.row_count(name, version)


def main(argv: list[str] | None = None) -> int:
    return run_job("generate_data", argv, body, conf_dir=CONF_DIR)


if __name__ == "__main__":
    sys.exit(main())
