"""Join every label to the features known at its time (as-of) and write a versioned training set."""

from __future__ import annotations

import sys
from pathlib import Path

from pyspark.sql import functions as F

from parity import asof, features, quality
from parity.jobkit import JobContext, run_job
from parity.schema import LABEL, LABEL_AVAILABLE_AT, LABEL_TS, RAW_LABELS
from parity.tables import content_digest

CONF_DIR = Path(__file__).resolve().parents[1] / "conf"


def body(ctx: JobContext) -> None:
    settings, tables = ctx.settings, ctx.settings.tables
    labels, labels_version = ctx.catalog.read_versioned(tables.raw_labels)
    quality.require_columns(labels, RAW_LABELS, source=tables.raw_labels)
    known_at = settings.training.labels_known_at
    if known_at is not None:
        labels = labels.filter(F.col(LABEL_AVAILABLE_AT) <= F.lit(known_at))
    decls = features.declared_sets(settings, settings.training.feature_sets)
    lookups = asof.read_feature_lookups(ctx.catalog, decls, as_known_at=settings.training.as_known_at)
    training = asof.assemble_features(
        labels.select(*RAW_LABELS.fieldNames()), lookups, spine_ts=LABEL_TS, strategy=settings.training.asof_strategy
    )
    # The inputs, pinned: table, version, commit time and content digest of each.
    manifest = [ctx.catalog.manifest_entry(tables.raw_labels, labels_version)]
    manifest += [ctx.catalog.manifest_entry(lookup.table, lookup.version) for lookup in lookups]
    version = ctx.catalog.write(
        training,
        tables.training_set,
        commit_metadata={
            "feature_lookups": asof.describe_lookups(lookups),
            "manifest": manifest,
        },
    )
    written = ctx.catalog.snapshot(tables.training_set, version)
    ctx.summary_extra(manifest=manifest, training_set_digest=content_digest(written))
    # A label without a feature row known at its time keeps its row with nulls; count them per set.
    matched = {decl.name: asof.matched_column(decl) for decl in decls}
    out = written.agg(
        F.count(F.lit(1)).alias("rows"),
        F.count_if(F.col(LABEL) == 1).alias("positive"),
        F.count_if(F.greatest(*[F.col(c).isNull() for c in matched.values()])).alias("without_features"),
        *[F.count_if(F.col(c).isNull()).alias(name) for name, c in matched.items()],
    ).first()
    totals = out.asDict() if out is not None else {}
    ctx.counts.update(
        {
            "labels.in": labels.count(),
            "rows.out": int(totals.get("rows", 0)),
            "labels.positive": int(totals.get("positive", 0)),
            "labels.without_features": int(totals.get("without_features", 0)),
            **{f"labels.without_{name}": int(totals.get(name, 0)) for name in matched},
        }
    )


def main(argv: list[str] | None = None) -> int:
    return run_job("build_training_set", argv, body, conf_dir=CONF_DIR)


if __name__ == "__main__":
    sys.exit(main())
