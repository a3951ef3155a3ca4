"""Batch scoring: keys and a time in, features recreated from the model's spec, predictions out.

The population's keys are validated first: a null, blank or malformed key goes to quarantine
with a reason (`split_population`), so keys in = keys scored + keys quarantined. The features
are assembled by the same `assemble_features` that built the training set, from the feature
tables the spec names, and reach the model as they are: the model prepares its own inputs
(`parity.training.inputs`). A single-node model predicts on the executors with
`parity.scoring.predictor` (loaded once per Python worker, Arrow batches); a Spark ML model
is a distributed transform.

A slice of a predictions table is one (model, model version, score time): `slice_predicate`
selects it, so that rescoring replaces exactly it and a champion and a challenger scored at
the same time keep their own rows.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, Literal

import mlflow
from pyspark.ml.functions import vector_to_array
from pyspark.sql import Column, DataFrame, SparkSession, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T

from parity.core.catalog import Catalog
from parity.core.columns import (
    MODEL_NAME,
    MODEL_RUN_ID,
    MODEL_VERSION,
    PREDICTION,
    QUARANTINE_REASON,
    QUARANTINE_RULE,
    SCORE_DATE,
    SCORE_TS,
    SCORING_RUN_ID,
)
from parity.core.conf import FeatureSetDecl, PopulationDecl
from parity.features.asof import FeatureLookup, LookupJoin, Strategy, assemble_features, read_feature_lookups
from parity.features.quality import MissingColumnsError, Rule, split_valid
from parity.model.packaged import ALLOW_CODE_MISMATCH
from parity.model.spec import FeatureSpec, signature_types
from parity.scoring.predictor import BATCH_ROWS, ShippedModel, predict_batches, ship_model

Predictor = Literal["parity", "spark_udf"]
_RANK = "_parity_rank"


def scoring_spine(population: DataFrame, *, columns: list[str], score_time: dt.datetime) -> DataFrame:
    """One row per distinct combination of `columns` (the model's keys and the columns its
    lookups map from), stamped with the scoring time.

    Needs: `columns`. Returns: `columns`, score_ts.
    """
    return population.select(*columns).distinct().withColumn(SCORE_TS, F.lit(score_time).cast("timestamp"))


def split_population(population: DataFrame, spec: FeatureSpec, *, source: str) -> tuple[DataFrame, DataFrame]:
    """The population's distinct caller columns (the model's keys and the columns its lookups
    map from), split into valid ones and ones to quarantine (see `split_valid_keys`).

    Returns:
        (the valid combinations, typed as the spec declares them; the quarantined ones, each
        column as text as it arrived, with `quarantine_rule` and `quarantine_reason`).

    Raises:
        MissingColumnsError: the population lacks a caller column.
    """
    return split_valid_keys(population, spec.caller_columns, source=source, distinct=True)


def split_valid_keys(
    rows: DataFrame,
    columns: dict[str, str],
    *,
    source: str,
    carry: list[str] | None = None,
    distinct: bool = False,
) -> tuple[DataFrame, DataFrame]:
    """Rows whose `columns` (name -> Spark type) all hold a value of their type, and the rest.

    A column may arrive in another type (a key kept as text, say): it is cast, and a value that
    does not cast is malformed. A null is quarantined under `not_null:<column>`, a value that
    does not cast or an empty string under `malformed:<column>`. `carry` columns travel along
    unchecked. `distinct` keeps one row per distinct combination: of several that become the
    same key once cast ("7" and "07"), the first in text order is kept and the others are
    quarantined under `duplicate:<columns>`, so that distinct rows in = valid + quarantined.

    Returns:
        (valid rows: `columns` typed, then `carry`; quarantined rows: `columns` and `carry` as
        text as they arrived, with `quarantine_rule` and `quarantine_reason`).

    Raises:
        MissingColumnsError: `rows` lacks one of `columns` or `carry`.
    """
    carry = carry or []
    missing = [c for c in [*columns, *carry] if c not in rows.columns]
    if missing:
        raise MissingColumnsError(f"{source}: missing required column(s) {', '.join(missing)}")
    raw = rows.select(*columns, *carry)
    raw = raw.distinct() if distinct else raw
    typed = {name: _typed(raw, name, kind) for name, kind in columns.items()}
    rules: list[Rule] = [Rule(f"not_null:{c}", F.col(c).isNotNull(), f"{c} is null") for c in columns]
    for name, kind in columns.items():
        well_formed = typed[name].isNotNull() & (
            F.trim(typed[name]) != "" if kind == "string" else F.lit(True)
        )
        rules.append(Rule(f"malformed:{name}", F.col(name).isNull() | well_formed, f"{name} is not a {kind}"))
    valid, quarantined = split_valid(raw, rules)
    if distinct and any(raw.schema[c].dataType != T.DataType.fromDDL(kind) for c, kind in columns.items()):
        ranked = valid.withColumn(
            _RANK, F.row_number().over(Window.partitionBy(*typed.values()).orderBy(*columns))
        )
        doubles = (
            ranked.filter(F.col(_RANK) > 1)
            .drop(_RANK)
            .select(
                *raw.columns,
                F.lit(f"duplicate:{','.join(columns)}").alias(QUARANTINE_RULE),
                F.lit("another row holds the same key once cast to its declared type").alias(
                    QUARANTINE_REASON
                ),
            )
        )
        valid, quarantined = ranked.filter(F.col(_RANK) == 1).drop(_RANK), quarantined.unionByName(doubles)
    valid = valid.select(*(value.alias(name) for name, value in typed.items()), *carry)
    as_text = [F.col(c).cast("string").alias(c) for c in [*columns, *carry]]
    return valid, quarantined.select(*as_text, QUARANTINE_RULE, QUARANTINE_REASON)


def _typed(df: DataFrame, column: str, kind: str) -> Column:
    """`column` in the type `kind` (a cast that fails gives null)."""
    wanted = T.DataType.fromDDL(kind)
    return F.col(column) if df.schema[column].dataType == wanted else F.col(column).try_cast(wanted)


def default_score_time(lookups: list[FeatureLookup]) -> dt.datetime:
    """The newest feature time of the first feature set: score as of the latest complete data.

    Raises:
        ValueError: the feature table is empty.
    """
    first = lookups[0]
    newest = first.frame.agg(F.max(first.feature_set.timestamp).alias("newest")).first()
    if newest is None or newest["newest"] is None:
        raise ValueError(f"{first.table} is empty: there is nothing to score as of")
    return newest["newest"]


def slice_predicate(
    model_name: str, model_version: str, score_time: dt.datetime, *, by_date: bool = True
) -> str:
    """The Delta replaceWhere of one slice (model, version, score time) of a predictions or
    scoring-quarantine table: rescoring it replaces exactly its rows, and no other slice's.
    `by_date` names the slice's partition too (a table partitioned by score date)."""
    conditions = [f"{SCORE_DATE} = DATE '{score_time.date().isoformat()}'"] if by_date else []
    conditions += [
        f"{SCORE_TS} = TIMESTAMP '{score_time.isoformat(sep=' ')}'",
        f"{MODEL_NAME} = {_sql_text(model_name)}",
        f"{MODEL_VERSION} = {_sql_text(model_version)}",
    ]
    return " AND ".join(conditions)


def replace_predicate(score_time: dt.datetime) -> str:
    """Every model's rows at one scoring time (0.2's slice; `slice_predicate` is the slice now)."""
    return f"{SCORE_TS} = TIMESTAMP '{score_time.isoformat(sep=' ')}'"


def _sql_text(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def with_lineage(
    rows: DataFrame, *, model_name: str, model_version: str, model_run_id: str, scoring_run_id: str
) -> DataFrame:
    """Stamp scored (or quarantined) rows with the model that scored them, the run that wrote
    them, and the score date they are partitioned by (a column the rows hold already is kept).

    Needs: score_ts. Adds: model_name, model_version, model_run_id, scoring_run_id, score_date.
    """
    stamps = {
        MODEL_NAME: model_name,
        MODEL_VERSION: model_version,
        MODEL_RUN_ID: model_run_id,
        SCORING_RUN_ID: scoring_run_id,
    }
    added = [F.lit(value).alias(name) for name, value in stamps.items() if name not in rows.columns]
    return rows.select(*rows.columns, *added, F.to_date(SCORE_TS).alias(SCORE_DATE))


def declared_population(
    rows: DataFrame, declared: PopulationDecl | None, score_time: dt.datetime
) -> DataFrame:
    """The population a model scores at `score_time`: the rows its declaration's `filter` keeps,
    once `known_from` has reached the score time (all rows without a declaration)."""
    if declared is not None and declared.filter:
        rows = rows.filter(declared.filter)
    if declared is not None and declared.known_from:
        rows = rows.filter(F.col(declared.known_from) <= F.lit(score_time))
    return rows


def write_slice(
    catalog: Catalog,
    rows: DataFrame,
    name: str,
    *,
    model_name: str,
    model_version: str,
    score_time: dt.datetime,
) -> int:
    """Write one slice (model, version, score time) of a predictions or scoring-quarantine table
    in one commit, replacing that slice's rows and no others, partitioned by score date.

    A table written before slices existed (no `score_date`) is rewritten whole in that one
    commit: its other rows kept, with the date added and no scoring run id.

    Returns:
        The slice's rows in the table after the write.
    """
    predicate = slice_predicate(model_name, model_version, score_time)
    before = catalog.version(name)  # the run's own output: read here, never recorded as an input
    if before is not None and SCORE_DATE not in catalog.schema(name).fieldNames():
        older = catalog.snapshot(name, before)
        kept = older.filter(
            ~F.coalesce(
                F.expr(slice_predicate(model_name, model_version, score_time, by_date=False)), F.lit(False)
            )
        )
        kept = kept.withColumn(SCORE_DATE, F.to_date(SCORE_TS))
        version = catalog.write(
            rows.unionByName(kept, allowMissingColumns=True), name, partition_by=[SCORE_DATE]
        )
    else:
        replace = predicate if before is not None else None
        version = catalog.write(rows, name, replace_where=replace, partition_by=[SCORE_DATE])
    return catalog.snapshot(name, version).filter(predicate).count()


def model_input_columns(spec: FeatureSpec) -> list[Column]:
    """The model's inputs as its signature types them (numeric double, categorical string)."""
    return _as_signature_types(spec, {c: F.col(c) for c in spec.inputs})


def _as_signature_types(spec: FeatureSpec, columns: dict[str, Column]) -> list[Column]:
    """Each caller column (signature name -> value) cast to its type in the model's signature,
    which MLflow's UDF enforces: how values travel, not how the model prepares them."""
    types = signature_types(spec)
    return [value.cast(types[name]).alias(name) for name, value in columns.items()]


def load_model(model_uri: str, *, allow_code_mismatch: bool = False) -> Any:
    """The packaged model's fitted pipeline, loaded once on the driver (its transform code
    checked), as it predicts: prepared inputs included (see `parity.model.packaged`)."""
    return (
        mlflow.pyfunc.load_model(model_uri, model_config={ALLOW_CODE_MISMATCH: allow_code_mismatch})
        .unwrap_python_model()
        .model
    )


@dataclass(frozen=True)
class ScoredModel:
    """A registered model version as scoring uses it: where MLflow loads it from (`uri`), and
    the identity every prediction row carries (`name`, `version`, `run_id`)."""

    uri: str
    name: str
    version: str
    run_id: str


@dataclass(frozen=True)
class ScoringOptions:
    """How `score` and `predict_rows` predict.

    `strategy` is the as-of join's (`assemble_features`); `predictor` picks parity's vectorized
    predictor or, for a single-node model, MLflow's pandas UDF (`"spark_udf"`, the reference
    the benchmarks compare with), which predict `batch_rows` rows at a time; with
    `allow_code_mismatch`, a model whose transform code has changed still loads. The `fitted`
    model may be given, loaded once (`load_model`; for a single-node model, also shipped once
    with `ship_model`), when one run predicts many times. `carry` names spine columns that
    travel to the predictions unchanged.
    """

    strategy: Strategy = "sort"
    predictor: Predictor = "parity"
    batch_rows: int = BATCH_ROWS
    allow_code_mismatch: bool = False
    fitted: Any = None
    carry: list[str] | None = None


def score(
    spark: SparkSession,
    spine: DataFrame,
    lookups: list[FeatureLookup],
    spec: FeatureSpec,
    *,
    model: ScoredModel,
    options: ScoringOptions = ScoringOptions(),
) -> DataFrame:
    """Predictions for every spine row, with the model's identity on every row: the features
    assembled as of each row's score_ts, then `predict_rows`.

    Needs: the spec's caller columns, score_ts, `options.carry`.
    Returns: the model's keys, score_ts, `options.carry`, prediction, model_name, model_version,
    model_run_id.
    """
    assembled = assemble_features(spine, lookups, spine_ts=SCORE_TS, strategy=options.strategy)
    predicted = predict_rows(spark, assembled, spec, model_uri=model.uri, options=options)
    return predicted.select(
        *predicted.columns,
        F.lit(model.name).alias(MODEL_NAME),
        F.lit(model.version).alias(MODEL_VERSION),
        F.lit(model.run_id).alias(MODEL_RUN_ID),
    )


def predict_rows(
    spark: SparkSession,
    assembled: DataFrame,
    spec: FeatureSpec,
    *,
    model_uri: str,
    options: ScoringOptions = ScoringOptions(),
) -> DataFrame:
    """The model's prediction for assembled rows: P(label = 1) for a binary model, the value
    for a regression one.

    A single-node model predicts with `parity.scoring.predictor`, or, with
    `options.predictor="spark_udf"`, MLflow's pandas UDF; a Spark ML model (`flavor: spark`)
    transforms the rows where they are. The rows are assembled already: `options.strategy`
    plays no part.

    Needs: the model's keys, score_ts, its caller columns, its inputs and `options.carry`.
    Returns: the model's keys, score_ts, `options.carry`, prediction.
    """
    allow_code_mismatch = options.allow_code_mismatch
    keep = [*spec.key_columns, SCORE_TS, *(options.carry or [])]
    if options.predictor == "spark_udf" and spec.flavor == "sklearn":
        model_config = {ALLOW_CODE_MISMATCH: allow_code_mismatch}
        predict = mlflow.pyfunc.spark_udf(
            spark, model_uri, result_type="double", env_manager="local", model_config=model_config
        )
        caller = {
            **{c: F.col(c) for c in spec.caller_columns},
            spec.timestamp: F.col(SCORE_TS),
            **{c: F.col(c) for c in spec.inputs},
        }
        return assembled.select(
            *keep, predict(F.struct(*_as_signature_types(spec, caller))).alias(PREDICTION)
        )
    fitted = (
        options.fitted
        if options.fitted is not None
        else load_model(model_uri, allow_code_mismatch=allow_code_mismatch)
    )
    rows = assembled.select(*keep, *model_input_columns(spec))
    if spec.flavor == "sklearn":
        shipped = fitted if isinstance(fitted, ShippedModel) else ship_model(spark, fitted, spec)
        return predict_batches(rows, shipped, keep=keep, batch_rows=options.batch_rows)
    prediction = (
        vector_to_array(F.col("probability"))[1]
        if spec.task == "binary"
        else F.col("prediction").cast("double")
    )
    return fitted.transform(rows).select(*keep, prediction.alias(PREDICTION))


def read_lookups(catalog: Catalog, spec: FeatureSpec, *, as_trained: bool = False) -> list[FeatureLookup]:
    """The feature sets a model was trained on, as declared then and joined as then, read at
    their newest versions; `as_trained` also joins them as known at each row's time where the
    model's training set did (a model declared `training.as_known_at`)."""
    decls = [FeatureSetDecl.model_validate(fs["feature_set"]) for fs in spec.feature_sets]
    joins = [LookupJoin.described(fs) for fs in spec.feature_sets]
    as_known_at = as_trained and any(fs.get("as_known_at") for fs in spec.feature_sets)
    return read_feature_lookups(catalog, decls, joins=joins, as_known_at=as_known_at)


def check_feature_tables(catalog: Catalog, spec: FeatureSpec) -> None:
    """Refuse a model whose feature tables are not all there (probes: nothing is recorded as an input).

    Raises:
        TableNotFoundError: a feature table the spec names does not exist.
    """
    for feature_set in spec.feature_sets:
        catalog.schema(FeatureSetDecl.model_validate(feature_set["feature_set"]).table)
