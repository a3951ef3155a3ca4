"""Training: the model-input contract, time splits, learners, search spaces and the trial engine.

- `inputs`: which columns a model consumes, and in what shape;
- `splits`: time splits that validate on later labels (pandas and Spark);
- `learners`, `search_space`, `sweep`: what a sweep fits, over which space, and how trials run;
- `declared_sweep`: a declared sweep run on a training set, best model refitted.

Nothing here logs to MLflow.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from parity.core.exports import lazy_exports

_EXPORTS = {
    "TrainedSweep": "declared_sweep",
    "run_declared_sweep": "declared_sweep",
    "model_inputs": "inputs",
    "to_model_input": "inputs",
    "LabelledColumns": "splits",
    "SparkTrainingData": "splits",
    "TrainingData": "splits",
    "spark_time_split": "splits",
    "split_cutoff": "splits",
    "time_split": "splits",
}
__all__ = [
    "LabelledColumns",
    "SparkTrainingData",
    "TrainedSweep",
    "TrainingData",
    "model_inputs",
    "run_declared_sweep",
    "spark_time_split",
    "split_cutoff",
    "time_split",
    "to_model_input",
]
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

if TYPE_CHECKING:
    from parity.training.declared_sweep import TrainedSweep, run_declared_sweep
    from parity.training.inputs import model_inputs, to_model_input
    from parity.training.splits import (
        LabelledColumns,
        SparkTrainingData,
        TrainingData,
        spark_time_split,
        split_cutoff,
        time_split,
    )
