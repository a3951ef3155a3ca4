"""Join every label to the features known at its time (as-of) and write a versioned training set."""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path

from pyspark.sql import functions as F

from parity import features, quality
from parity.jobkit import JobContext, run_job
from parity.schema import CUSTOMER_ID, LABEL, LABEL_AVAILABLE_AT, LABEL_TS, RAW_LABELS
from parity.tables import content_digest

CONF_DIR = Path(__file__).resolve().parents[1] / "conf"


def body(ctx: JobContext) -> None:
    settings, tables = ctx.settings, ctx.settings.tables
    labels, labels_version = ctx.catalog.read_versioned(tables.raw_labels)
    quality.require_columns(labels, RAW_LABELS, source=tables.raw_labels)
    known_at = settings.training.labels_known_at
    if known_at is not None:
        labels = labels.filter(F.col(LABEL_AVAILABLE_AT) <= F.lit(known_at))
    sets = features.feature_sets(settings.features.windows_days)
    lookups = features.read_feature_lookups(ctx.catalog, features.feature_sources(sets, tables))
    max_age = settings.training.max_feature_age_days
    training = features.assemble_features(
        labels.select(*RAW_LABELS.fieldNames()),
        lookups,
        entity=CUSTOMER_ID,
        spine_ts=LABEL_TS,
        max_age=dt.timedelta(days=max_age) if max_age else None,
    )
    # The inputs, pinned: table, version, commit time and content digest of each.
    manifest = [ctx.catalog.manifest_entry(tables.raw_labels, labels_version)]
    manifest += [ctx.catalog.manifest_entry(lookup.table, lookup.version) for lookup in lookups]
    version = ctx.catalog.write(
        training,
        tables.training_set,
        commit_metadata={
            "feature_lookups": features.describe_lookups(lookups),
            "manifest": manifest,
            "max_feature_age_days": max_age,
        },
    )
    written = ctx.catalog.snapshot(tables.training_set, version)
    ctx.summary_extra(manifest=manifest, training_set_digest=content_digest(written))
    activity_probe = sets[0].features[0]  # null exactly when a label has no earlier activity row
    out = written.agg(
        F.count(F.lit(1)).alias("rows"),
        F.count_if(F.col(activity_probe).isNull()).alias("without_features"),
        F.count_if(F.col(LABEL) == 1).alias("positive"),
    ).first()
    totals = out if out is not None else {"rows": 0, "without_features": 0, "positive": 0}
    ctx.counts.update(
        {
            "labels.in": labels.count(),
            "rows.out": int(totals["rows"]),
            "labels.without_features": int(totals["without_features"]),
            "labels.positive": int(totals["positive"]),
        }
    )


def main(argv: list[str] | None = None) -> int:
    return run_job("build_training_set", argv, body, conf_dir=CONF_DIR)


if __name__ == "__main__":
    sys.exit(main())
