"""Computing a declared feature set: its transforms over validated source rows, checked against
its declaration.

A feature set is declared once (conf/features/*.yaml, see `FeatureSetDecl`): its entity,
source, event time, transforms by dotted path, and typed output columns. The same
`compute_feature_set` serves the build job and the notebooks, so a feature is defined once.
"""

from __future__ import annotations

import datetime as dt
import math

from pyspark.errors import AnalysisException
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from parity.core.conf import FeatureSetDecl, Settings, SourceQualityConf
from parity.features import transform_marks
from parity.features.quality import MissingColumnsError
from parity.features.sources import required_columns, validate_source


class DeclarationError(ValueError):
    """A feature set declaration does not fit its source: the message names the set, step and column."""


def history(decl: FeatureSetDecl) -> dt.timedelta:
    """How much source data before an output row's period computing the row reads."""
    if decl.history_delta is not None:
        return decl.history_delta
    return max(
        (transform_marks.history(step.function(), decl.step_params(step)) for step in decl.transforms),
        default=dt.timedelta(0),
    )


def history_days(decl: FeatureSetDecl) -> int:
    """`history` in whole days, rounded up."""
    return math.ceil(history(decl) / dt.timedelta(days=1))


def compute_feature_set(
    decl: FeatureSetDecl, source: DataFrame, *, stamped_at: dt.datetime | None = None
) -> DataFrame:
    """Run a declaration's transforms over (validated) source rows and select its outputs.

    A snapshot set's rows are stamped with `stamped_at` (its build's time; now by default).

    Returns: the entity keys, the feature timestamp and the declared features, in that order.

    Raises:
        DeclarationError: a transform needs a column the data lacks, or the result misses a
            declared column or holds it with another type.
    """
    df = source
    for index, step in enumerate(decl.transforms):
        try:
            df = df.transform(step.function(), **decl.step_params(step))
            _ = df.schema  # analyse now, so a missing column is blamed on this step
        except AnalysisException as exc:
            raise DeclarationError(
                f"feature set {decl.name}: transforms[{index}] {step.fn} cannot run: {_first_line(exc)}"
            ) from None
    if decl.kind == "snapshot":
        if decl.timestamp in df.columns:
            raise DeclarationError(
                f"feature set {decl.name} is a snapshot: its builds stamp {decl.timestamp}, so its "
                "transforms must not produce it"
            )
        df = df.withColumn(
            decl.timestamp, F.lit(stamped_at).cast("timestamp") if stamped_at else F.current_timestamp()
        )
    expected = {decl.timestamp: "timestamp", **{f.name: f.type for f in decl.features}}
    actual = dict(df.dtypes)
    missing = [c for c in [*decl.entity, *expected] if c not in actual]
    if missing:
        raise DeclarationError(
            f"feature set {decl.name}: its transforms do not produce declared column(s) {', '.join(missing)}"
        )
    retyped = [f"{c} is {actual[c]}, declared {kind}" for c, kind in expected.items() if actual[c] != kind]
    if retyped:
        raise DeclarationError(f"feature set {decl.name}: {'; '.join(retyped)}")
    described = {f.name: f.description for f in decl.features}
    return df.select(
        *decl.entity,
        decl.timestamp,
        *[F.col(name).alias(name, metadata={"comment": text}) for name, text in described.items()],
    )


def sample_entities(df: DataFrame, decl: FeatureSetDecl, *, fraction: float, seed: int = 0) -> DataFrame:
    """Keep every row of a deterministic sample of the entities (all of each entity's rows, so
    windows over its history stay complete).

    Needs: the entity keys. Returns the same columns.
    """
    return sample_keys(df, decl.entity, fraction=fraction, seed=seed)


def sample_keys(df: DataFrame, keys: list[str], *, fraction: float, seed: int = 0) -> DataFrame:
    """Keep every row of a deterministic share (`fraction`) of the distinct values of `keys`.

    Needs: `keys`. Returns the same columns.
    """
    if not 0 < fraction <= 1:
        raise ValueError(f"fraction must be in (0, 1], got {fraction}")
    bucket = F.pmod(F.xxhash64(F.lit(seed), *[F.col(k) for k in keys]), F.lit(10_000))
    return df.filter(bucket < F.lit(int(fraction * 10_000)))


def newest_event_time(decl: FeatureSetDecl, valid: DataFrame) -> dt.datetime | None:
    """The newest event time among validated source rows (runs a Spark job): what a build's watermark becomes."""
    if decl.event_time is None:
        return None
    newest = valid.agg(F.max(decl.event_time).alias("newest")).first()
    return None if newest is None else newest["newest"]


def check_declaration(
    spark: SparkSession, decl: FeatureSetDecl, source_schema: T.StructType, conf: SourceQualityConf
) -> None:
    """Check a declaration against a source's schema without reading data (Spark analysis only).

    Raises:
        MissingColumnsError: the source lacks a column its contract declares.
        DeclarationError: as `compute_feature_set`.
    """
    empty = spark.createDataFrame([], source_schema)
    valid, _ = validate_source(empty, conf, source=decl.source, required=required_columns(decl))
    if decl.event_time is not None and decl.event_time not in valid.columns:
        raise MissingColumnsError(
            f"feature set {decl.name}: source {decl.source} has no event_time column {decl.event_time}"
        )
    _ = compute_feature_set(decl, valid).schema


def _first_line(exc: Exception) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def declared_sets(settings: Settings, names: list[str] | None = None) -> list[FeatureSetDecl]:
    """The declared feature sets by name (all of them by default), in a stable order.

    Raises:
        ValueError: a name is not declared.
    """
    chosen = names or sorted(settings.feature_sets)
    unknown = [n for n in chosen if n not in settings.feature_sets]
    if unknown:
        raise ValueError(
            f"no declared feature set(s) {', '.join(unknown)}; declared: {', '.join(sorted(settings.feature_sets))}"
        )
    return [settings.feature_sets[n] for n in chosen]
