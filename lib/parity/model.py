"""The packaged model: an MLflow pyfunc that carries its feature spec and fitted pipeline.

The fitted sklearn Pipeline (preprocessing + estimator) is saved with MLflow's skops format,
with the types skops does not trust by default named explicitly below: nothing is pickled.
The pyfunc wrapper itself is logged as code (`parity/_model_entry.py`), not pickled either.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd
import skops.io
from mlflow.models import ModelSignature, infer_signature
from mlflow.pyfunc import PythonModel, PythonModelContext
from sklearn.pipeline import Pipeline

from parity.training import to_model_input

# Types a fitted parity pipeline holds that skops does not trust out of the box. Saving fails
# if a pipeline holds any other untrusted type, so this list is reviewed when learners change.
SKOPS_TRUSTED_TYPES = [
    "numpy.dtype",
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
]
ENTRY_POINT = Path(__file__).with_name("_model_entry.py")
SPEC_ARTIFACT = "feature_spec"
ESTIMATOR_ARTIFACT = "estimator"


class UntrustedModelTypesError(TypeError):
    """The fitted pipeline holds types that are not in SKOPS_TRUSTED_TYPES."""


@dataclass
class FeatureSpec:
    """What a model needs to recreate its inputs.

    `feature_sets` holds, per set, its declaration as trained on (transforms, columns, TTL and
    request-time features), its table and version, and its code hash; `request_time` lists
    the request-time features; `numeric` and `categorical` are the model's input columns.
    """

    entity: str
    timestamp: str
    feature_sets: list[dict[str, Any]]
    request_time: list[dict[str, Any]]
    numeric: list[str]
    categorical: list[str]
    code_hash: str
    training_set: dict[str, Any] = field(default_factory=dict)

    @property
    def inputs(self) -> list[str]:
        return [*self.numeric, *self.categorical]

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True, default=str)

    @classmethod
    def from_json(cls, text: str) -> FeatureSpec:
        return cls(**json.loads(text))


class ParityModel(PythonModel):
    """Scores assembled feature rows with the fitted pipeline: returns P(label = 1)."""

    def load_context(self, context: PythonModelContext) -> None:
        self.spec = FeatureSpec.from_json(Path(context.artifacts[SPEC_ARTIFACT]).read_text())
        self.pipeline = mlflow.sklearn.load_model(context.artifacts[ESTIMATOR_ARTIFACT])

    def predict(self, context: PythonModelContext, model_input: pd.DataFrame, params: dict[str, Any] | None = None) -> pd.Series:
        frame = to_model_input(model_input, self.spec.numeric, self.spec.categorical)
        return pd.Series(self.pipeline.predict_proba(frame)[:, 1], index=model_input.index, name="prediction")


def check_trusted(pipeline: Pipeline) -> None:
    """Fail unless every type skops would refuse to load is named in SKOPS_TRUSTED_TYPES.

    Raises:
        UntrustedModelTypesError: naming the types to review.
    """
    untrusted = set(skops.io.get_untrusted_types(data=skops.io.dumps(pipeline)))
    unknown = sorted(untrusted - set(SKOPS_TRUSTED_TYPES))
    if unknown:
        raise UntrustedModelTypesError(f"fitted pipeline holds types not in SKOPS_TRUSTED_TYPES: {', '.join(unknown)}")


def signature_for(example: pd.DataFrame, pipeline: Pipeline) -> ModelSignature:
    return infer_signature(example, pd.Series(pipeline.predict_proba(example)[:, 1], name="prediction"))


def log_packaged_model(
    pipeline: Pipeline, spec: FeatureSpec, example: pd.DataFrame, *, registered_model: str | None
) -> mlflow.models.model.ModelInfo:
    """Log the pyfunc (spec + skops-saved pipeline) in the active run; register it if named."""
    check_trusted(pipeline)
    example = to_model_input(example, spec.numeric, spec.categorical)
    with tempfile.TemporaryDirectory() as tmp:
        estimator_dir = Path(tmp) / ESTIMATOR_ARTIFACT
        mlflow.sklearn.save_model(
            pipeline,
            str(estimator_dir),
            serialization_format="skops",
            skops_trusted_types=SKOPS_TRUSTED_TYPES,
        )
        spec_file = Path(tmp) / "feature_spec.json"
        spec_file.write_text(spec.to_json())
        return mlflow.pyfunc.log_model(
            name="model",
            python_model=str(ENTRY_POINT),
            artifacts={ESTIMATOR_ARTIFACT: str(estimator_dir), SPEC_ARTIFACT: str(spec_file)},
            signature=signature_for(example, pipeline),
            input_example=example,
            registered_model_name=registered_model,
            metadata={SPEC_ARTIFACT: asdict(spec)},
        )


def load_feature_spec(model_uri: str) -> FeatureSpec:
    """Read a logged model's feature spec without loading the estimator."""
    metadata = mlflow.models.get_model_info(model_uri).metadata or {}
    if SPEC_ARTIFACT not in metadata:
        raise ValueError(f"model {model_uri} carries no feature spec; it was not logged by parity")
    return FeatureSpec(**metadata[SPEC_ARTIFACT])
