"""Training sets: every label joined to the features known at its time, written with a manifest.

Each training set version records, with its Delta commit, a manifest of its inputs (table,
Delta version, commit time, content digest) and the feature lookups it joined (declarations
as they were). `build_training_set(..., rebuild=VERSION)` builds again from that record: the
same inputs at the same versions, with the declarations recorded then, giving the same rows;
it stops before writing if an input no longer matches its manifest entry. The versions that
manifests name must stay readable, so VACUUM protects them (`manifest_versions`).
"""

from __future__ import annotations

import datetime as dt
import operator
from dataclasses import dataclass, field
from functools import reduce
from typing import Any

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from parity.core.catalog import Catalog
from parity.core.columns import QUARANTINE_RULE
from parity.core.conf import (
    AllowedValuesExpectation,
    Expectation,
    FeatureSetDecl,
    ModelDecl,
    NotNullExpectation,
    Settings,
    SourceQualityConf,
    TrainingChecks,
    UniqueExpectation,
)
from parity.core.conf.models import lookup_keys
from parity.core.digests import digest_aggregates, digest_of
from parity.features import asof
from parity.features.asof import LookupJoin
from parity.features.compute import sample_keys
from parity.features.sources import SOURCE_ROW_HASH, SOURCE_ROW_OCCURRENCE, quarantine_table, validate_source

MANIFEST = "manifest"  # the commit-metadata key of a training set's inputs
FEATURE_LOOKUPS = "feature_lookups"
LABELS_UNTIL = "labels_until"  # labels later than this time were held out of the set
LABEL_COUNTS = "label_counts"  # the labels considered and those quarantined


@dataclass
class TrainingSetResult:
    """What one training-set build wrote and counted."""

    version: int
    manifest: list[dict[str, Any]]
    digest: str
    counts: dict[str, int] = field(default_factory=dict)
    labels_until: dt.datetime | None = None  # labels later than this were held out


@dataclass
class TrainingSetPlan:
    """A training set, assembled but not written: the labels (validated), the lookups pinned at
    their versions, and the joined frame. `build_training_set` writes it; a notebook looks at it."""

    model: ModelDecl
    labels: DataFrame  # the labels considered (after the declared filter and labels_known_at)
    labels_version: int
    valid: DataFrame
    quarantined: DataFrame
    lookups: list[asof.FeatureLookup]
    training: DataFrame
    known_at: dt.datetime | None
    recorded: list[dict[str, Any]]  # the manifest of the version rebuilt (empty for a new build)
    labels_until: dt.datetime | None = None  # labels later than this were held out


def plan_training_set(
    catalog: Catalog,
    settings: Settings,
    model: ModelDecl,
    *,
    rebuild: int | None = None,
    sample_fraction: float | None = None,
    holdout_days: int | None = None,
) -> TrainingSetPlan:
    """Read a model's labels and feature tables, validate the labels, and as-of join them: what
    `build_training_set` writes. `sample_fraction` keeps a deterministic share of the label keys
    (every label of each kept key), as a notebook would explore it. `holdout_days` leaves out
    the labels of the newest that many days (by label time), for the promotion gate to validate on.

    With `rebuild`, use what that version recorded: its declarations, input versions and options.

    Raises:
        ValueError: the version to rebuild records no manifest.
        MissingColumnsError: the labels lack a column of their contract (or have it retyped).
    """
    labels_decl, name = model.labels, model.training_set()
    if rebuild is None:
        decls = [settings.feature_sets[lookup.feature_set] for lookup in model.features]
        joins = [
            LookupJoin(lookup_keys(lookup, decl), lookup.prefix, lookup.features)
            for lookup, decl in zip(model.features, decls, strict=True)
        ]
        pinned: dict[str, int] = {}
        as_known_at, known_at = model.training.as_known_at, model.training.labels_known_at
        labels_until: dt.datetime | None = None
        recorded: list[dict[str, Any]] = []
    else:  # everything as recorded with that version: declarations, input versions, options
        built_with = catalog.commit_metadata(name, rebuild)
        if MANIFEST not in built_with:
            raise ValueError(f"{name}@{rebuild} records no manifest to rebuild from")
        recorded = list(built_with[MANIFEST])  # type: ignore[call-overload]
        pinned = {str(m["table"]): int(m["version"]) for m in recorded}
        lookups_then = list(built_with[FEATURE_LOOKUPS])  # type: ignore[call-overload]
        decls = [FeatureSetDecl.model_validate(lookup["feature_set"]) for lookup in lookups_then]
        joins = [LookupJoin.described(lookup) for lookup in lookups_then]
        as_known_at = any(lookup.get("as_known_at") for lookup in lookups_then)
        then, until = built_with.get("labels_known_at"), built_with.get(LABELS_UNTIL)
        known_at = dt.datetime.fromisoformat(str(then)) if then else None
        labels_until = dt.datetime.fromisoformat(str(until)) if until else None
        holdout_days = None
    labels, labels_version = catalog.read_versioned(labels_decl.table, pinned.get(labels_decl.table))
    if labels_decl.filter:
        labels = labels.filter(labels_decl.filter)
    if holdout_days is not None:
        newest = labels.agg(F.max(labels_decl.time)).first()
        if newest is None or newest[0] is None:
            raise ValueError(
                f"model {model.name}: {labels_decl.table} holds no labels to hold {holdout_days} days of out"
            )
        labels_until = newest[0] - dt.timedelta(days=holdout_days)
    if labels_until is not None:
        labels = labels.filter(F.col(labels_decl.time) <= F.lit(labels_until))
    if known_at is not None:
        if labels_decl.available_at is None:
            raise ValueError(f"model {model.name}: training.labels_known_at needs labels.available_at")
        labels = labels.filter(F.col(labels_decl.available_at) <= F.lit(known_at))
    if sample_fraction is not None:
        labels = sample_keys(labels, list(labels_decl.keys), fraction=sample_fraction)
    # Labels are validated like any source: a bad one goes to quarantine.<labels table> with its reason.
    valid, quarantined = validate_source(labels, label_expectations(model), source=labels_decl.table)
    lookups = asof.read_feature_lookups(catalog, decls, as_known_at=as_known_at, versions=pinned, joins=joins)
    spine = valid.select(*labels_decl.contract())
    training = asof.assemble_features(
        spine, lookups, spine_ts=labels_decl.time, strategy=model.training.asof_strategy
    )
    return TrainingSetPlan(
        model, labels, labels_version, valid, quarantined, lookups, training, known_at, recorded, labels_until
    )


def build_training_set(
    catalog: Catalog,
    settings: Settings,
    model: ModelDecl,
    *,
    rebuild: int | None = None,
    holdout_days: int | None = None,
) -> TrainingSetResult:
    """Join a model's labels to its feature lookups as of each label's time and write a new
    version of its training set (and its bad labels to quarantine.<labels table>).
    `holdout_days` leaves the newest days of labels out (see `plan_training_set`).

    With `rebuild`, use what that version recorded: its declarations, input versions and options.

    Raises:
        ValueError: the version to rebuild records no manifest, or an input no longer matches it.
        MissingColumnsError: the labels lack a column of their contract (or have it retyped).
    """
    plan = plan_training_set(catalog, settings, model, rebuild=rebuild, holdout_days=holdout_days)
    labels_decl, name, lookups = model.labels, model.training_set(), plan.lookups
    quarantined = plan.quarantined.cache()
    quarantine_name = quarantine_table(labels_decl.table)
    try:
        rejected = quarantined.count()
        if rejected or not catalog.exists(quarantine_name):
            catalog.merge(
                quarantined, quarantine_name, keys=[SOURCE_ROW_HASH, QUARANTINE_RULE, SOURCE_ROW_OCCURRENCE]
            )
    finally:
        quarantined.unpersist()
    # The inputs, pinned: table, version, commit time and content digest of each (a set looked up twice, once).
    manifest = [catalog.manifest_entry(labels_decl.table, plan.labels_version)]
    for table, version in dict.fromkeys((lookup.table, lookup.version) for lookup in lookups):
        manifest.append(catalog.manifest_entry(table, version))
    changed = [
        f"{now['table']}@{now['version']}"
        for now, entry in zip(manifest, plan.recorded, strict=False)
        if now != entry
    ]
    if changed:  # a vacuumed or rewritten input cannot give the same training set: stop before writing
        raise ValueError(f"input(s) {', '.join(changed)} no longer match the manifest of {name}@{rebuild}")
    labels_in = plan.labels.count()
    version = catalog.write(
        plan.training,
        name,
        commit_metadata={
            "model": model.name,
            FEATURE_LOOKUPS: asof.describe_lookups(lookups),
            MANIFEST: manifest,
            "labels_known_at": plan.known_at,
            LABELS_UNTIL: plan.labels_until,
            LABEL_COUNTS: {"labels.in": labels_in, "labels.quarantined": rejected},
            "rebuilt_from": rebuild,
        },
    )
    written = catalog.snapshot(name, version)
    # A label without a feature row known at its time keeps its row with nulls; count them per lookup.
    matched = {lookup.name: lookup.matched_column for lookup in lookups}
    positive = (
        [F.count_if(F.col(labels_decl.label.name).cast("double") == 1).alias("positive")]
        if model.task == "binary"
        else []
    )
    out = written.agg(
        F.count(F.lit(1)).alias("rows"),
        *positive,
        F.count_if(reduce(operator.or_, [F.col(c).isNull() for c in matched.values()])).alias(
            "without_features"
        ),  # any of them
        *[F.count_if(F.col(c).isNull()).alias(lookup) for lookup, c in matched.items()],
        *digest_aggregates(written),  # the digest of what was written, in the same pass
    ).first()
    totals = out.asDict() if out is not None else {}
    counts = {
        "labels.in": labels_in,
        "labels.quarantined": rejected,
        "rows.out": int(totals.get("rows", 0)),
        **({"labels.positive": int(totals.get("positive", 0))} if positive else {}),
        "labels.without_features": int(totals.get("without_features", 0)),
        **{f"labels.without_{lookup}": int(totals.get(lookup, 0)) for lookup in matched},
    }
    return TrainingSetResult(version, manifest, digest_of(out), counts, plan.labels_until)


def check_training_set(
    training: DataFrame, built_with: dict[str, Any], checks: TrainingChecks
) -> dict[str, dict[str, Any]]:
    """A training set's data checks against `checks`: the share of its labels without a feature
    row of some lookup at their time, and the share of the labels considered that were
    quarantined, each with its threshold and whether it passed.

    `built_with` is the set version's commit metadata (its lookups and label counts).

    Raises:
        ValueError: the version records no label counts (built before they were recorded).
    """
    counts = built_with.get(LABEL_COUNTS)
    if not isinstance(counts, dict):
        raise ValueError("the training set records no label counts; rebuild it with build_training_set")
    matched = [
        f"{lookup.get('prefix') or ''}{lookup['feature_set']['name']}_as_of"
        for lookup in built_with.get(FEATURE_LOOKUPS, [])
    ]
    row = training.agg(
        F.count(F.lit(1)).alias("rows"),
        F.count_if(reduce(operator.or_, [F.col(c).isNull() for c in matched], F.lit(False))).alias(
            "without_features"
        ),
    ).first()
    rows, without = (int(row["rows"]), int(row["without_features"])) if row is not None else (0, 0)
    considered, quarantined = int(counts["labels.in"]), int(counts["labels.quarantined"])
    shares = {
        "without_features": (
            without / rows if rows else 1.0,
            checks.max_without_features,
            f"{without} of {rows} labels",
        ),
        "quarantined": (
            quarantined / considered if considered else 1.0,
            checks.max_quarantined,
            f"{quarantined} of {considered} labels",
        ),
    }
    return {
        name: {"share": round(share, 6), "max": limit, "passed": share <= limit, "detail": detail}
        for name, (share, limit, detail) in shares.items()
    }


def label_expectations(model: ModelDecl) -> SourceQualityConf:
    """What a model's labels must hold: their typed columns; keys, time and label (and
    available-at) not null; one label per (keys, time); a binary label 0 or 1."""
    labels = model.labels
    required = [
        *labels.keys,
        labels.time,
        labels.label.name,
        *([labels.available_at] if labels.available_at else []),
    ]
    expectations: list[Expectation] = [NotNullExpectation(rule="not_null", column=c) for c in required]
    expectations.append(UniqueExpectation(rule="unique", columns=[*labels.keys, labels.time]))
    if model.task == "binary" and labels.label.type != "boolean":
        expectations.append(
            AllowedValuesExpectation(rule="allowed_values", column=labels.label.name, values=[0, 1])
        )
    return SourceQualityConf(columns=labels.contract(), expectations=expectations)


def manifest_versions(catalog: Catalog, name: str) -> dict[str, set[int]]:
    """The input versions named by the manifests of every version of a training set still in
    its history, by input table: the versions that must stay readable."""
    pinned: dict[str, set[int]] = {}
    for metadata in catalog.commit_metadata_history(name, containing=MANIFEST):
        for entry in metadata.get(MANIFEST, []):  # type: ignore[attr-defined]
            pinned.setdefault(str(entry["table"]), set()).add(int(entry["version"]))
    return pinned
