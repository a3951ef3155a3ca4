"""Validate raw events and customers, quarantine bad rows, and write the feature tables."""

from __future__ import annotations

import sys
from pathlib import Path

from parity import features, quality
from parity.conf import SourceQualityConf
from parity.jobkit import JobContext, run_job
from parity.schema import QUARANTINE_RULE, RAW_CUSTOMERS, RAW_EVENTS

CONF_DIR = Path(__file__).resolve().parents[1] / "conf"


def body(ctx: JobContext) -> None:
    tables = ctx.settings.tables
    events = ctx.catalog.read(tables.raw_events)
    customers = ctx.catalog.read(tables.raw_customers)
    quality.require_columns(customers, RAW_CUSTOMERS, source=tables.raw_customers)
    declared = ctx.settings.quality.get("raw_events", SourceQualityConf())
    quality.check_freshness(events, declared, source=tables.raw_events, now=ctx.record.started_at)
    valid, quarantined = features.validate_events(events, declared, source=tables.raw_events)

    end_day = features.latest_event_day(valid)
    activity = features.build_customer_activity(valid, windows_days=ctx.settings.features.windows_days, end_day=end_day)
    profile = features.build_customer_profile(customers)
    quarantine_version = ctx.catalog.write(quarantined, tables.events_quarantine)
    activity_version = ctx.catalog.write(activity, tables.customer_activity)
    profile_version = ctx.catalog.write(profile, tables.customer_profile)

    written_quarantine = ctx.catalog.snapshot(tables.events_quarantine, quarantine_version)
    tally = {row[0]: row[1] for row in written_quarantine.groupBy(QUARANTINE_RULE).count().collect()}
    ctx.counts.update(
        {
            "events.in": events.count(),
            "events.out": valid.count(),
            "events.quarantined": sum(tally.values()),
            f"{tables.customer_activity}.rows": ctx.catalog.row_count(tables.customer_activity, activity_version),
            f"{tables.customer_profile}.rows": ctx.catalog.row_count(tables.customer_profile, profile_version),
        }
    )
    ctx.summary_extra(
        quarantine_rules=tally,
        features_end_day=str(end_day),
        ignored_columns={
            tables.raw_events: quality.unexpected_columns(events, RAW_EVENTS),
            tables.raw_customers: quality.unexpected_columns(customers, RAW_CUSTOMERS),
        },
    )


def main(argv: list[str] | None = None) -> int:
    return run_job("build_features", argv, body, conf_dir=CONF_DIR)


if __name__ == "__main__":
    sys.exit(main())
