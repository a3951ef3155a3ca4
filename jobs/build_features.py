"""Validate raw events and customers, quarantine bad rows, and write the feature tables."""

from __future__ import annotations

import sys
from pathlib import Path

from pyspark.sql import functions as F

from parity import features, quality
from parity.jobkit import JobContext, run_job
from parity.pii import redact
from parity.schema import AMOUNT, CUSTOMER_ID, EVENT_TS, NOTE, QUARANTINE_RULE, RAW_CUSTOMERS, RAW_EVENTS

CONF_DIR = Path(__file__).resolve().parents[1] / "conf"


def event_rules() -> list[quality.Rule]:
    return [quality.not_null(CUSTOMER_ID), quality.not_null(EVENT_TS), quality.not_null(AMOUNT), quality.at_least(AMOUNT, 0.0)]


def body(ctx: JobContext) -> None:
    tables = ctx.settings.tables
    events = ctx.catalog.read(tables.raw_events)
    customers = ctx.catalog.read(tables.raw_customers)
    quality.require_columns(events, RAW_EVENTS, source=tables.raw_events)
    quality.require_columns(customers, RAW_CUSTOMERS, source=tables.raw_customers)

    valid, quarantined = quality.split_valid(events.select(*RAW_EVENTS.fieldNames()), event_rules())
    tally = {row[0]: row[1] for row in quarantined.groupBy(QUARANTINE_RULE).count().collect()}
    end = valid.agg(F.max(EVENT_TS).alias("end")).first()["end"]
    if end is None:
        raise ValueError(f"{tables.raw_events} has no valid events to build features from")

    activity = features.build_customer_activity(valid, windows_days=ctx.settings.features.windows_days, end_day=end.date())
    profile = features.build_customer_profile(customers)
    ctx.catalog.write(quarantined.withColumn(NOTE, redact(F.col(NOTE))), tables.events_quarantine)
    activity_version = ctx.catalog.write(activity, tables.customer_activity)
    profile_version = ctx.catalog.write(profile, tables.customer_profile)

    ctx.counts.update(
        {
            "events.in": events.count(),
            "events.out": valid.count(),
            "events.quarantined": sum(tally.values()),
            f"{tables.customer_activity}.rows": ctx.catalog.row_count(tables.customer_activity, activity_version),
            f"{tables.customer_profile}.rows": ctx.catalog.row_count(tables.customer_profile, profile_version),
        }
    )
    ctx.summary_extra(quarantine_rules=tally, features_end_day=str(end.date()))


def main(argv: list[str] | None = None) -> int:
    return run_job("build_features", argv, body, conf_dir=CONF_DIR)


if __name__ == "__main__":
    sys.exit(main())
