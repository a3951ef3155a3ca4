"""The score job's flow: resolve the registered model, recreate its features from its spec as of
the scoring time, and write its predictions (rescoring one time replaces that time's rows)."""

from __future__ import annotations

import time

from pyspark.sql import functions as F

from parity.app.jobkit import JobContext
from parity.core.columns import CUSTOMER_ID, SCORE_TS, UPDATED_AT
from parity.core.conf import FeatureSetDecl
from parity.features import asof
from parity.governance import registry, tracking
from parity.model.packaged import load_feature_spec
from parity.model.spec import check_transform_code
from parity.scoring import batch


def score(ctx: JobContext) -> None:
    """Score every known customer as of the scoring time into the predictions table (the score job's body)."""
    settings, tables = ctx.settings, ctx.settings.tables
    tracking.configure_mlflow(settings)
    model_uri, model_version, model_run_id = registry.resolve_model_version(settings)
    spec = load_feature_spec(model_uri)
    if not spec.feature_sets:
        raise ValueError(f"model {model_uri} names no feature sets in its spec; retrain it with parity")
    check_transform_code(spec, allow_mismatch=settings.scoring.allow_code_mismatch)
    # The feature sets the model was trained on, as declared then, read at their newest versions.
    decls = [FeatureSetDecl.model_validate(fs["feature_set"]) for fs in spec.feature_sets]
    lookups = asof.read_feature_lookups(ctx.catalog, decls)

    score_time = settings.scoring.score_time or batch.default_score_time(lookups)
    customers = ctx.catalog.read(tables.raw_customers).filter(F.col(UPDATED_AT) <= F.lit(score_time))
    spine = batch.scoring_spine(customers, entity=CUSTOMER_ID, score_time=score_time)
    predictions = batch.score(
        ctx.spark,
        spine,
        lookups,
        spec,
        model_uri=model_uri,
        model_name=settings.mlflow.registered_model,
        model_version=model_version,
        model_run_id=model_run_id,
        strategy=settings.scoring.asof_strategy,
        allow_code_mismatch=settings.scoring.allow_code_mismatch,
    )
    name = tables.predictions
    replace = batch.replace_predicate(score_time) if ctx.catalog.exists(name) else None
    started = time.perf_counter()
    version = ctx.catalog.write(predictions, name, replace_where=replace)
    scoring_seconds = time.perf_counter() - started
    written = ctx.catalog.snapshot(name, version).filter(F.col(SCORE_TS) == F.lit(score_time))

    ctx.record.mlflow_run_id, ctx.record.model_version = model_run_id, model_version
    ctx.counts.update({"keys.in": spine.count(), "predictions.out": written.count()})
    ctx.summary_extra(
        model_name=settings.mlflow.registered_model,
        model_uri=model_uri,
        score_ts=str(score_time),
        seconds={"scoring": round(scoring_seconds, 3)},
    )
