"""Join every label to the features known at its time (as-of) and write a versioned training set.

    build_training_set [--rebuild VERSION]

Each training set records a manifest of its inputs (table, Delta version, commit time, content
digest). `--rebuild VERSION` builds again from the manifest of that version: the same inputs
at the same versions, with the declarations recorded then, giving the same rows (the same
digest); it stops before writing if an input no longer matches its manifest entry.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from pathlib import Path
from typing import Any

from pyspark.sql import functions as F

from parity import asof, features, quality
from parity.conf import FeatureSetDecl
from parity.jobkit import JobContext, job_parser, run_job
from parity.schema import LABEL, LABEL_AVAILABLE_AT, LABEL_TS, RAW_LABELS
from parity.tables import content_digest

CONF_DIR = Path(__file__).resolve().parents[1] / "conf"


def parser() -> argparse.ArgumentParser:
    parser = job_parser("build_training_set")
    parser.add_argument(
        "--rebuild", type=int, default=None, metavar="VERSION",
        help="rebuild training-set version VERSION from its manifest: the same inputs at the same versions",
    )
    return parser


def body(ctx: JobContext) -> None:
    settings, tables = ctx.settings, ctx.settings.tables
    if ctx.args.rebuild is None:
        decls = features.declared_sets(settings, settings.training.feature_sets)
        pinned: dict[str, int] = {}
        as_known_at, known_at = settings.training.as_known_at, settings.training.labels_known_at
        recorded: list[dict[str, Any]] = []
    else:  # everything as recorded with that version: declarations, input versions, options
        built_with = ctx.catalog.commit_metadata(tables.training_set, ctx.args.rebuild)
        if "manifest" not in built_with:
            raise ValueError(f"{tables.training_set}@{ctx.args.rebuild} records no manifest to rebuild from")
        recorded = list(built_with["manifest"])  # type: ignore[call-overload]
        pinned = {str(m["table"]): int(m["version"]) for m in recorded}
        lookups_then = list(built_with["feature_lookups"])  # type: ignore[call-overload]
        decls = [FeatureSetDecl.model_validate(lookup["feature_set"]) for lookup in lookups_then]
        as_known_at = any(lookup.get("as_known_at") for lookup in lookups_then)
        then = built_with.get("labels_known_at")
        known_at = dt.datetime.fromisoformat(str(then)) if then else None
    labels, labels_version = ctx.catalog.read_versioned(tables.raw_labels, pinned.get(tables.raw_labels))
    quality.require_columns(labels, RAW_LABELS, source=tables.raw_labels)
    if known_at is not None:
        labels = labels.filter(F.col(LABEL_AVAILABLE_AT) <= F.lit(known_at))
    lookups = asof.read_feature_lookups(ctx.catalog, decls, as_known_at=as_known_at, versions=pinned)
    training = asof.assemble_features(
        labels.select(*RAW_LABELS.fieldNames()), lookups, spine_ts=LABEL_TS, strategy=settings.training.asof_strategy
    )
    # The inputs, pinned: table, version, commit time and content digest of each.
    manifest = [ctx.catalog.manifest_entry(tables.raw_labels, labels_version)]
    manifest += [ctx.catalog.manifest_entry(lookup.table, lookup.version) for lookup in lookups]
    changed = [f"{now['table']}@{now['version']}" for now, entry in zip(manifest, recorded, strict=False) if now != entry]
    if changed:  # a vacuumed or rewritten input cannot give the same training set: stop before writing
        raise ValueError(f"input(s) {', '.join(changed)} no longer match the manifest of {tables.training_set}@{ctx.args.rebuild}")
    version = ctx.catalog.write(
        training,
        tables.training_set,
        commit_metadata={
            "feature_lookups": asof.describe_lookups(lookups),
            "manifest": manifest,
            "labels_known_at": known_at,
            "rebuilt_from": ctx.args.rebuild,
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
    return run_job("build_training_set", argv, body, conf_dir=CONF_DIR, parser=parser())


if __name__ == "__main__":
    sys.exit(main())
