"""The packaged model: an MLflow pyfunc that carries its feature spec and fitted pipeline.

A single-node learner's fitted sklearn Pipeline (preprocessing + estimator) is saved with
MLflow's skops format, with the types skops does not trust by default named explicitly
below: nothing is pickled. A distributed learner's fitted Spark ML PipelineModel is saved in
Spark's own format (`flavor: spark`). The pyfunc wrapper itself is logged as code
(`parity/model/_entry.py`), not pickled either.

Loading checks the transform code (see `parity.model.spec`), unless the loader passes
`model_config={"allow_code_mismatch": True}`.
"""

from __future__ import annotations

import tempfile
from dataclasses import asdict
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd
import skops.io
from mlflow.pyfunc import PythonModel, PythonModelContext
from sklearn.pipeline import Pipeline

from parity.model.spec import FeatureSpec, MissingFeaturesError, caller_signature, check_transform_code
from parity.training.inputs import to_model_input

# Types a fitted parity pipeline holds that skops does not trust out of the box. Saving fails
# if a pipeline holds any other untrusted type, so this list is reviewed when learners change.
SKOPS_TRUSTED_TYPES = [
    "numpy.dtype",
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
]
ENTRY_POINT = Path(__file__).with_name("_entry.py")
ALLOW_CODE_MISMATCH = "allow_code_mismatch"
SPEC_ARTIFACT = "feature_spec"
ESTIMATOR_ARTIFACT = "estimator"


class UntrustedModelTypesError(TypeError):
    """The fitted pipeline holds types that are not in SKOPS_TRUSTED_TYPES."""


def predict_frame(model: Any, spec: FeatureSpec, model_input: pd.DataFrame) -> pd.Series:
    """P(label = 1) for assembled feature rows, with a fitted sklearn Pipeline or Spark ML PipelineModel.

    Raises:
        MissingFeaturesError: a feature of the spec is absent (keys and a time alone are not enough here).
    """
    missing = [c for c in spec.inputs if c not in model_input.columns]
    if missing:
        raise MissingFeaturesError(
            f"the model needs its features assembled as of {spec.timestamp}: missing {', '.join(missing)}; "
            "parity.scoring assembles them from the feature tables its spec names"
        )
    frame = to_model_input(model_input, spec.numeric, spec.categorical)
    if spec.flavor == "sklearn":
        return pd.Series(model.predict_proba(frame)[:, 1], index=model_input.index, name="prediction")
    from pyspark.ml.functions import vector_to_array
    from pyspark.sql import SparkSession
    from pyspark.sql import functions as F

    spark = SparkSession.builder.getOrCreate()
    rows = frame.assign(_row=range(len(frame)))
    for column in spec.categorical:
        rows[column] = rows[column].fillna("missing")
    scored = model.transform(spark.createDataFrame(rows)).select("_row", vector_to_array(F.col("probability"))[1].alias("p")).toPandas()
    by_row = scored.set_index("_row")["p"].sort_index()
    return pd.Series(by_row.to_numpy(), index=model_input.index, name="prediction")


class ParityModel(PythonModel):
    """Scores assembled feature rows with the fitted pipeline: returns P(label = 1)."""

    def load_context(self, context: PythonModelContext) -> None:
        self.spec = FeatureSpec.from_json(Path(context.artifacts[SPEC_ARTIFACT]).read_text())
        check_transform_code(self.spec, allow_mismatch=bool((context.model_config or {}).get(ALLOW_CODE_MISMATCH, False)))
        if self.spec.flavor == "spark":
            from pyspark.ml import PipelineModel

            self.model = PipelineModel.load(context.artifacts[ESTIMATOR_ARTIFACT])
        else:
            self.model = mlflow.sklearn.load_model(context.artifacts[ESTIMATOR_ARTIFACT])

    def predict(self, context: PythonModelContext, model_input: pd.DataFrame, params: dict[str, Any] | None = None) -> pd.Series:
        return predict_frame(self.model, self.spec, model_input)


def check_trusted(pipeline: Pipeline) -> None:
    """Fail unless every type skops would refuse to load is named in SKOPS_TRUSTED_TYPES.

    Raises:
        UntrustedModelTypesError: naming the types to review.
    """
    untrusted = set(skops.io.get_untrusted_types(data=skops.io.dumps(pipeline)))
    unknown = sorted(untrusted - set(SKOPS_TRUSTED_TYPES))
    if unknown:
        raise UntrustedModelTypesError(f"fitted pipeline holds types not in SKOPS_TRUSTED_TYPES: {', '.join(unknown)}")


def log_packaged_model(
    model: Any, spec: FeatureSpec, example: pd.DataFrame, *, registered_model: str | None
) -> mlflow.models.model.ModelInfo:
    """Log the pyfunc (spec + the fitted model, saved without pickle) in the active run; register it if named."""
    example = pd.concat(
        [example[[spec.entity]].astype("int64"), pd.to_datetime(example[spec.timestamp]).dt.tz_localize(None).rename(spec.timestamp),
         to_model_input(example, spec.numeric, spec.categorical)],
        axis=1,
    )
    with tempfile.TemporaryDirectory() as tmp:
        estimator_dir = Path(tmp) / ESTIMATOR_ARTIFACT
        if spec.flavor == "sklearn":
            check_trusted(model)
            mlflow.sklearn.save_model(model, str(estimator_dir), serialization_format="skops", skops_trusted_types=SKOPS_TRUSTED_TYPES)
        else:
            model.write().save(str(estimator_dir))
        spec_file = Path(tmp) / "feature_spec.json"
        spec_file.write_text(spec.to_json())
        signature = caller_signature(spec)
        return mlflow.pyfunc.log_model(
            name="model",
            python_model=str(ENTRY_POINT),
            artifacts={ESTIMATOR_ARTIFACT: str(estimator_dir), SPEC_ARTIFACT: str(spec_file)},
            signature=signature,
            input_example=example,
            registered_model_name=registered_model,
            metadata={SPEC_ARTIFACT: asdict(spec)},
            model_config={ALLOW_CODE_MISMATCH: False},  # a loader may override it, explicitly
        )


def load_feature_spec(model_uri: str) -> FeatureSpec:
    """Read a logged model's feature spec without loading the estimator."""
    metadata = mlflow.models.get_model_info(model_uri).metadata or {}
    if SPEC_ARTIFACT not in metadata:
        raise ValueError(f"model {model_uri} carries no feature spec; it was not logged by parity")
    return FeatureSpec(**metadata[SPEC_ARTIFACT])
