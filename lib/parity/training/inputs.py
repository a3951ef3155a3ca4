"""The model-input contract: which columns a model consumes, and the one preparation that
turns a caller's values into model inputs.

Numeric and boolean features are numeric inputs (float, missing as NaN), string features
categorical ones (text, missing as None; the fitted pipeline gives missing its own level,
`MISSING_LEVEL`). Timestamps only feed request-time features.

The preparation is the first step of every fitted pipeline, so training, the packaged model
and scoring run the same code on whatever types the caller's columns have:
- scikit-learn: `PrepareModelInputs`, whose transform is `to_model_input`;
- Spark ML: a built-in `SQLTransformer` (`spark_input_stage`) that writes the prepared inputs
  to new columns (`spark_input_column`), leaving the caller's columns as they are.

A model's feature spec records the contract it was built with (`input_contract`):
`LEGACY_INPUT_CONTRACT` models (packaged before the preparation moved inside) expect
prepared inputs; loading puts this same preparation in front of them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin

from parity.core.conf import FeatureSetDecl
from parity.core.conf.base import NUMERIC_TYPES

if TYPE_CHECKING:
    from pyspark.ml.feature import SQLTransformer

LEGACY_INPUT_CONTRACT = 1  # the caller prepared the inputs; the fitted model holds no preparation
INPUT_CONTRACT = 2  # the fitted model prepares its own inputs, in its first step
MISSING_LEVEL = "missing"
SPARK_INPUT_PREFIX = "_input_"


def model_inputs(decls: list[FeatureSetDecl]) -> tuple[list[str], list[str]]:
    """The (numeric, categorical) columns a model of these sets (each joined unprefixed, every
    feature kept) consumes, in declaration order."""
    return _inputs([(decl, "", None) for decl in decls])


def model_inputs_of(lookups: list[dict[str, Any]]) -> tuple[list[str], list[str]]:
    """The (numeric, categorical) columns a model consumes, from the lookups its training set
    recorded (`parity.features.asof.describe_lookups`): each set's kept features and request-time
    features, under the lookup's prefix, in declaration order."""
    return _inputs(
        [
            (
                FeatureSetDecl.model_validate(lookup["feature_set"]),
                str(lookup.get("prefix") or ""),
                lookup.get("features"),
            )
            for lookup in lookups
        ]
    )


def _inputs(lookups: list[tuple[FeatureSetDecl, str, list[str] | None]]) -> tuple[list[str], list[str]]:
    numeric: list[str] = []
    categorical: list[str] = []
    for decl, prefix, kept in lookups:
        for column in [*decl.features, *[r.output for r in decl.request_time]]:
            if kept is not None and column.name not in kept:
                continue
            if column.type in NUMERIC_TYPES:
                numeric.append(f"{prefix}{column.name}")
            elif column.type == "string":
                categorical.append(f"{prefix}{column.name}")
    return numeric, categorical


def to_model_input(frame: pd.DataFrame, numeric: list[str], categorical: list[str]) -> pd.DataFrame:
    """The model's input columns in a fixed order: numeric as float, categorical as string or None.

    Only `PrepareModelInputs` calls this: the preparation lives inside the fitted pipeline.
    """
    out = pd.DataFrame(index=frame.index)
    for column in numeric:
        out[column] = pd.to_numeric(frame[column], errors="coerce").astype("float64")
    for column in categorical:
        out[column] = frame[column].astype("object").where(frame[column].notna(), None)
    return out


class PrepareModelInputs(TransformerMixin, BaseEstimator):
    """The first step of a fitted scikit-learn pipeline: the caller's columns as model inputs.

    Stateless (fitting learns nothing), so a pipeline fitted without it can be given it later,
    as loading does for legacy models. It is saved with skops as a type trusted on purpose
    (`parity.model.packaged.SKOPS_TRUSTED_TYPES`), so its import path is part of every saved
    model: keep it importable as `parity.training.inputs.PrepareModelInputs`.
    """

    def __init__(self, numeric: Sequence[str] = (), categorical: Sequence[str] = ()) -> None:
        self.numeric = numeric
        self.categorical = categorical

    def fit(self, frame: pd.DataFrame, y: Any = None) -> PrepareModelInputs:
        return self

    def transform(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Needs: the numeric and categorical columns (any others are left out). Returns: them, prepared."""
        return to_model_input(frame, list(self.numeric), list(self.categorical))

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        return np.asarray([*self.numeric, *self.categorical], dtype=object)

    def __sklearn_is_fitted__(self) -> bool:
        return True


def spark_input_column(name: str) -> str:
    """Where a Spark ML pipeline's first stage writes the prepared input `name`."""
    return f"{SPARK_INPUT_PREFIX}{name}"


def _quoted(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


def spark_input_stage(
    numeric: list[str], categorical: list[str], *, in_place: bool = False
) -> SQLTransformer:
    """The first stage of a Spark ML pipeline: numeric inputs cast to double, categorical ones to
    string with null as `MISSING_LEVEL`.

    Needs: the numeric and categorical columns. Adds: `spark_input_column(name)` for each, and
    leaves the caller's columns as they are; with `in_place`, replaces each input under its own
    name instead (what a model of the legacy contract reads).
    """
    from pyspark.ml.feature import SQLTransformer

    prepared = {name: f"CAST({_quoted(name)} AS DOUBLE)" for name in numeric}
    prepared |= {
        name: f"COALESCE(CAST({_quoted(name)} AS STRING), '{MISSING_LEVEL}')" for name in categorical
    }
    if not prepared:
        return SQLTransformer(statement="SELECT * FROM __THIS__")
    if in_place:
        kept = f"* EXCEPT ({', '.join(map(_quoted, prepared))})"
        columns = [f"{expression} AS {_quoted(name)}" for name, expression in prepared.items()]
    else:
        kept = "*"
        columns = [
            f"{expression} AS {_quoted(spark_input_column(name))}" for name, expression in prepared.items()
        ]
    return SQLTransformer(statement=f"SELECT {', '.join([kept, *columns])} FROM __THIS__")
