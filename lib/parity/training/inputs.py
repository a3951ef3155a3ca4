"""The model-input contract: which columns a model consumes, and in what shape.

Numeric and boolean features are numeric inputs (float, missing as NaN), string features
categorical ones (text, missing as None). Timestamps only feed request-time features.
"""

from __future__ import annotations

import pandas as pd

from parity.core.conf import FeatureSetDecl
from parity.core.conf.base import NUMERIC_TYPES


def model_inputs(decls: list[FeatureSetDecl]) -> tuple[list[str], list[str]]:
    """The (numeric, categorical) columns a model consumes, in declaration order."""
    numeric: list[str] = []
    categorical: list[str] = []
    for decl in decls:
        for column in [*decl.features, *[r.output for r in decl.request_time]]:
            if column.type in NUMERIC_TYPES:
                numeric.append(column.name)
            elif column.type == "string":
                categorical.append(column.name)
    return numeric, categorical


def to_model_input(frame: pd.DataFrame, numeric: list[str], categorical: list[str]) -> pd.DataFrame:
    """The model's input columns in a fixed order: numeric as float, categorical as string or None."""
    out = pd.DataFrame(index=frame.index)
    for column in numeric:
        out[column] = pd.to_numeric(frame[column], errors="coerce").astype("float64")
    for column in categorical:
        out[column] = frame[column].astype("object").where(frame[column].notna(), None)
    return out
