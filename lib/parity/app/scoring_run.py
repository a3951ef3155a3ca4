"""The score job's flow: resolve a declared model's registered version, recreate its features from
its spec as of the scoring time for its population, and write its predictions (rescoring one time
replaces that time's rows)."""

from __future__ import annotations

import datetime as dt
import time

from pyspark.sql import functions as F

from parity.app.jobkit import JobContext
from parity.core.columns import SCORE_TS, struct_of
from parity.core.conf import FeatureSetDecl, ModelDecl
from parity.features import asof
from parity.features.quality import require_columns
from parity.governance import registry, tracking
from parity.model.packaged import load_feature_spec
from parity.model.spec import check_transform_code
from parity.scoring import batch


def score(ctx: JobContext, model: ModelDecl) -> None:
    """Score the model's population as of the scoring time into its predictions table (the score job's body)."""
    settings = ctx.settings
    tracking.configure_mlflow(settings)
    model_uri, model_version, model_run_id = registry.resolve_model_version(model.registered_model, settings.scoring.model_version)
    spec = load_feature_spec(model_uri)
    if not spec.feature_sets:
        raise ValueError(f"model {model_uri} names no feature sets in its spec; retrain it with parity")
    check_transform_code(spec, allow_mismatch=settings.scoring.allow_code_mismatch)
    # The feature sets the model was trained on, as declared then and joined as then, read at their newest versions.
    decls = [FeatureSetDecl.model_validate(fs["feature_set"]) for fs in spec.feature_sets]
    joins = [asof.LookupJoin.described(fs) for fs in spec.feature_sets]
    lookups = asof.read_feature_lookups(ctx.catalog, decls, joins=joins)

    score_time = settings.scoring.score_time or _score_time(model, lookups)
    population_decl = model.scoring.population
    population = ctx.catalog.read(population_decl.table)
    require_columns(population, struct_of(spec.caller_columns), source=population_decl.table)
    if population_decl.filter:
        population = population.filter(population_decl.filter)
    if population_decl.known_from:
        population = population.filter(F.col(population_decl.known_from) <= F.lit(score_time))
    spine = batch.scoring_spine(population, columns=list(spec.caller_columns), score_time=score_time)
    predictions = batch.score(
        ctx.spark,
        spine,
        lookups,
        spec,
        model_uri=model_uri,
        model_name=model.registered_model,
        model_version=model_version,
        model_run_id=model_run_id,
        strategy=settings.scoring.asof_strategy,
        allow_code_mismatch=settings.scoring.allow_code_mismatch,
    )
    name = model.predictions()
    replace = batch.replace_predicate(score_time) if ctx.catalog.exists(name) else None
    started = time.perf_counter()
    version = ctx.catalog.write(predictions, name, replace_where=replace)
    scoring_seconds = time.perf_counter() - started
    written = ctx.catalog.snapshot(name, version).filter(F.col(SCORE_TS) == F.lit(score_time))

    ctx.record.mlflow_run_id, ctx.record.model_version = model_run_id, model_version
    ctx.counts.update({"keys.in": spine.count(), "predictions.out": written.count()})
    ctx.summary_extra(
        model=model.name,
        model_name=model.registered_model,
        model_uri=model_uri,
        score_ts=str(score_time),
        seconds={"scoring": round(scoring_seconds, 3)},
    )


def _score_time(model: ModelDecl, lookups: list[asof.FeatureLookup]) -> dt.datetime:
    """The model's scoring-time rule: the newest feature time of its first lookup, or now (UTC, to the second)."""
    if model.scoring.score_time == "now":
        return dt.datetime.now(dt.UTC).replace(tzinfo=None, microsecond=0)
    return batch.default_score_time(lookups)
