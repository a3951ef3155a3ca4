"""The score job's flow: resolve a declared model's registered version once, recreate its
features from its spec as of the scoring time for its population, quarantine the population's
bad keys, and write its predictions as one slice (model, version, score time): rescoring a
slice replaces exactly that slice."""

from __future__ import annotations

import argparse
import datetime as dt
import time
from typing import Any

from pyspark.sql import functions as F

from parity.app.jobkit import JobContext, UsageError
from parity.core.columns import SCORE_TS
from parity.core.conf import ModelDecl, Settings, check_table_name
from parity.core.durations import utc_naive
from parity.features.asof import FeatureLookup
from parity.governance import registry, tracking
from parity.governance.registry import ResolvedModel, resolve_model
from parity.scoring import batch
from parity.scoring.batch import read_lookups


def add_version_argument(parser: argparse.ArgumentParser) -> None:
    """`--model-version`, which a scoring job resolves once, at its start."""
    parser.add_argument(
        "--model-version", default=None, metavar="N|@ALIAS|latest", help="default: conf scoring.model_version"
    )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The score job's own arguments."""
    add_version_argument(parser)
    parser.add_argument(
        "--population",
        default=None,
        metavar="TABLE",
        help="score this table's keys instead of the declared population",
    )
    parser.add_argument(
        "--score-time",
        default=None,
        metavar="TIME",
        help="score as of this UTC time (ISO 8601) instead of the model's rule",
    )


def check_arguments(args: argparse.Namespace, settings: Settings) -> None:
    """Refuse a bad model version, population table name or score time before Spark starts."""
    try:
        if args.model_version is not None:
            registry.check_version_request(args.model_version)
        if getattr(args, "population", None) is not None:
            check_table_name(args.population)
        if getattr(args, "score_time", None) is not None:
            args.score_time = utc_naive(_iso_time(args.score_time))
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def _iso_time(text: str) -> dt.datetime:
    try:
        return dt.datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(
            f"--score-time '{text}' is not an ISO 8601 time (e.g. 2026-06-01T00:00:00; UTC unless it has an offset)"
        ) from None


def score(ctx: JobContext, model: ModelDecl) -> None:
    """Score the model's population as of the scoring time into its predictions table (the score job's body)."""
    settings, args = ctx.settings, ctx.args
    tracking.configure_mlflow(settings)
    resolved = resolve_model(
        model,
        args.model_version or settings.scoring.model_version,
        allow_code_mismatch=settings.scoring.allow_code_mismatch,
    )
    ctx.record.mlflow_run_id, ctx.record.model_version = resolved.run_id, resolved.version
    lookups = read_lookups(ctx.catalog, resolved.spec)
    score_time = args.score_time or settings.scoring.score_time or _score_time(model, lookups)
    population_table = args.population or model.scoring.population.table
    population = batch.declared_population(
        ctx.catalog.read(population_table),
        model.scoring.population if args.population is None else None,
        score_time,
    )
    keys, quarantined = batch.split_population(population, resolved.spec, source=population_table)
    spine = keys.withColumn(SCORE_TS, F.lit(score_time).cast("timestamp"))
    predictions = batch.score(
        ctx.spark,
        spine,
        lookups,
        resolved.spec,
        model=batch.ScoredModel(resolved.uri, resolved.name, resolved.version, resolved.run_id),
        options=batch.ScoringOptions(
            strategy=settings.scoring.asof_strategy,
            allow_code_mismatch=settings.scoring.allow_code_mismatch,
            batch_rows=settings.scoring.batch_rows,
        ),
    )
    lineage = resolved.lineage(ctx.record.run_id)
    keys_in = population.select(*resolved.spec.caller_columns).distinct().count()
    started = time.perf_counter()
    scored = batch.write_slice(
        ctx.catalog,
        batch.with_lineage(predictions, **lineage),
        model.predictions(),
        **_slice(resolved, score_time),
    )
    scoring_seconds = time.perf_counter() - started
    rejected = batch.with_lineage(
        quarantined.withColumn(SCORE_TS, F.lit(score_time).cast("timestamp")), **lineage
    )
    held = batch.write_slice(
        ctx.catalog, rejected, model.scoring_quarantine(), **_slice(resolved, score_time)
    )

    ctx.counts.update({"keys.in": keys_in, "predictions.out": scored, "keys.quarantined": held})
    ctx.summary_extra(
        model=model.name,
        model_name=resolved.name,
        model_uri=resolved.uri,
        score_ts=str(score_time),
        slice={"model_name": resolved.name, "model_version": resolved.version, "score_ts": str(score_time)},
        population=population_table,
        seconds={"scoring": round(scoring_seconds, 3)},
    )


def _slice(resolved: ResolvedModel, score_time: dt.datetime) -> dict[str, Any]:
    return {"model_name": resolved.name, "model_version": resolved.version, "score_time": score_time}


def _score_time(model: ModelDecl, lookups: list[FeatureLookup]) -> dt.datetime:
    """The model's scoring-time rule: the newest feature time of its first lookup, or now (UTC, to the second)."""
    if model.scoring.score_time == "now":
        return dt.datetime.now(dt.UTC).replace(tzinfo=None, microsecond=0)
    return batch.default_score_time(lookups)
