"""Scoring: keys and a time in, features recreated from the model's spec, predictions out (`batch`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from parity.core.exports import lazy_exports

_EXPORTS = {
    "ScoredModel": "batch",
    "ScoringOptions": "batch",
    "default_score_time": "batch",
    "model_input_columns": "batch",
    "replace_predicate": "batch",
    "score": "batch",
    "scoring_spine": "batch",
}
__all__ = [
    "ScoredModel",
    "ScoringOptions",
    "default_score_time",
    "model_input_columns",
    "replace_predicate",
    "score",
    "scoring_spine",
]
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

if TYPE_CHECKING:
    from parity.scoring.batch import (
        ScoredModel,
        ScoringOptions,
        default_score_time,
        model_input_columns,
        replace_predicate,
        score,
        scoring_spine,
    )
