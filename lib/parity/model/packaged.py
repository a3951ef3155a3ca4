"""The packaged model: an MLflow pyfunc that carries its feature spec and fitted pipeline.

A single-node learner's fitted sklearn Pipeline (input preparation + preprocessing +
estimator) is saved with MLflow's skops format, with the types skops does not trust by
default named explicitly below: nothing is pickled. A distributed learner's fitted Spark ML
PipelineModel is saved in Spark's own format (`flavor: spark`). The pyfunc wrapper itself is
logged as code (`parity/model/_entry.py`), not pickled either.

Either flavor prepares its own inputs (`parity.training.inputs`); a model packaged before
that (`LEGACY_INPUT_CONTRACT` in its spec) is given the same preparation when it loads
(`with_input_preparation`), so it scores as it always did.

Loading checks the transform code (see `parity.model.spec`), unless the loader passes
`model_config={"allow_code_mismatch": True}`. The model also carries the wheel of the parity
library it was trained with (`parity.model.code_artifact`), whose digest loading checks.
"""

from __future__ import annotations

import dataclasses
import importlib.metadata
import importlib.resources
import tempfile
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd
import skops.io
from mlflow.pyfunc import PythonModel, PythonModelContext
from sklearn.pipeline import Pipeline

from parity.model.code_artifact import CODE_ARTIFACT, check_code_artifact, code_record, write_wheel
from parity.model.spec import (
    FeatureSpec,
    MissingFeaturesError,
    caller_signature,
    check_transform_code,
    signature_types,
)
from parity.training.inputs import (
    INPUT_CONTRACT,
    LEGACY_INPUT_CONTRACT,
    PrepareModelInputs,
    spark_input_stage,
)

# Types a fitted parity pipeline holds that skops does not trust out of the box. Saving fails
# if a pipeline holds any other untrusted type, so this list is reviewed when learners change.
SKOPS_TRUSTED_TYPES = [
    "numpy.dtype",
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
    # On purpose: parity's own input preparation, the first step of every fitted pipeline. It
    # is stateless and holds only the input column names (lists of str, which skops trusts).
    "parity.training.inputs.PrepareModelInputs",
]
ENTRY_POINT = Path(__file__).with_name("_entry.py")
ALLOW_CODE_MISMATCH = "allow_code_mismatch"
SPEC_ARTIFACT = "feature_spec"
ESTIMATOR_ARTIFACT = "estimator"
_ROW = "_row"


class UntrustedModelTypesError(TypeError):
    """The fitted pipeline holds types that are not in SKOPS_TRUSTED_TYPES."""


def input_contract_of(model: Any, flavor: str) -> int:
    """The input contract a fitted model was built with: `INPUT_CONTRACT` if its first step
    prepares its inputs, `LEGACY_INPUT_CONTRACT` if it expects them prepared."""
    if flavor == "sklearn":
        first = model.steps[0][1] if isinstance(model, Pipeline) and model.steps else None
        return INPUT_CONTRACT if isinstance(first, PrepareModelInputs) else LEGACY_INPUT_CONTRACT
    from pyspark.ml.feature import SQLTransformer

    return (
        INPUT_CONTRACT
        if model.stages and isinstance(model.stages[0], SQLTransformer)
        else LEGACY_INPUT_CONTRACT
    )


def with_input_preparation(model: Any, spec: FeatureSpec) -> Any:
    """The fitted model as one that prepares its own inputs.

    A model of the current contract already does; a legacy one is put behind the same
    preparation (for Spark ML, in place: it reads its inputs under the feature names), so
    there is one implementation of it.

    Raises:
        ValueError: the spec names a contract this code does not know (a newer parity made it).
    """
    if spec.input_contract == INPUT_CONTRACT:
        return model
    if spec.input_contract != LEGACY_INPUT_CONTRACT:
        raise ValueError(
            f"the model was built with input contract {spec.input_contract}; this parity knows "
            f"{LEGACY_INPUT_CONTRACT} and {INPUT_CONTRACT}: load it with the parity version that trained it, or newer"
        )
    if spec.flavor == "sklearn":
        return Pipeline([("prepare", PrepareModelInputs(spec.numeric, spec.categorical)), ("model", model)])
    from pyspark.ml import PipelineModel

    return PipelineModel(stages=[spark_input_stage(spec.numeric, spec.categorical, in_place=True), model])


def predict_frame(model: Any, spec: FeatureSpec, model_input: pd.DataFrame) -> pd.Series:
    """The prediction for assembled feature rows (P(label = 1) for a binary model, the value for a
    regression one), with a fitted sklearn Pipeline or Spark ML
    PipelineModel that prepares its own inputs (see `with_input_preparation`).

    The rows reach the model as they are; a Spark ML model gets them as a Spark DataFrame of
    the types the model's signature declares.

    Raises:
        MissingFeaturesError: a feature of the spec is absent (keys and a time alone are not enough here).
    """
    missing = [c for c in spec.inputs if c not in model_input.columns]
    if missing:
        raise MissingFeaturesError(
            f"the model needs its features assembled as of {spec.timestamp}: missing {', '.join(missing)}; "
            "parity.scoring assembles them from the feature tables its spec names"
        )
    if spec.flavor == "sklearn":
        predicted = (
            model.predict(model_input)
            if spec.task == "regression"
            else model.predict_proba(model_input)[:, 1]
        )
        return pd.Series(predicted, index=model_input.index, name="prediction", dtype="float64")
    from pyspark.ml.functions import vector_to_array
    from pyspark.sql import SparkSession
    from pyspark.sql import functions as F
    from pyspark.sql.types import LongType, StructField, StructType

    spark = SparkSession.builder.getOrCreate()
    types = signature_types(spec)
    schema = StructType(
        [*(StructField(c, types[c]) for c in spec.inputs), StructField(_ROW, LongType(), nullable=False)]
    )
    rows = spark.createDataFrame(
        model_input[spec.inputs].assign(**{_ROW: range(len(model_input))}), schema=schema
    )
    predicted = (
        F.col("prediction").cast("double")
        if spec.task == "regression"
        else vector_to_array(F.col("probability"))[1]
    )
    scored = model.transform(rows).select(_ROW, predicted.alias("p")).toPandas()
    by_row = scored.set_index(_ROW)["p"].sort_index()
    return pd.Series(by_row.to_numpy(), index=model_input.index, name="prediction")


class ParityModel(PythonModel):
    """Scores assembled feature rows with the fitted pipeline: P(label = 1), or the value for a regression model."""

    def load_context(self, context: PythonModelContext) -> None:
        self.spec = FeatureSpec.from_json(Path(context.artifacts[SPEC_ARTIFACT]).read_text())
        code = context.artifacts.get(CODE_ARTIFACT)
        check_code_artifact(Path(code) if code else None, self.spec.code)
        check_transform_code(
            self.spec, allow_mismatch=bool((context.model_config or {}).get(ALLOW_CODE_MISMATCH, False))
        )
        if self.spec.flavor == "spark":
            from pyspark.ml import PipelineModel

            fitted = PipelineModel.load(context.artifacts[ESTIMATOR_ARTIFACT])
        else:
            fitted = mlflow.sklearn.load_model(context.artifacts[ESTIMATOR_ARTIFACT])
        self.model = with_input_preparation(fitted, self.spec)

    def predict(
        self, context: PythonModelContext, model_input: pd.DataFrame, params: dict[str, Any] | None = None
    ) -> pd.Series:
        return predict_frame(self.model, self.spec, model_input)


def check_trusted(pipeline: Pipeline) -> None:
    """Fail unless every type skops would refuse to load is named in SKOPS_TRUSTED_TYPES.

    Raises:
        UntrustedModelTypesError: naming the types to review.
    """
    untrusted = set(skops.io.get_untrusted_types(data=skops.io.dumps(pipeline)))
    unknown = sorted(untrusted - set(SKOPS_TRUSTED_TYPES))
    if unknown:
        raise UntrustedModelTypesError(
            f"fitted pipeline holds types not in SKOPS_TRUSTED_TYPES: {', '.join(unknown)}"
        )


def log_packaged_model(
    model: Any, spec: FeatureSpec, example: pd.DataFrame, *, registered_model: str | None
) -> mlflow.models.model.ModelInfo:
    """Log the pyfunc (spec + the fitted model, saved without pickle) in the active run; register it if named.

    The logged spec records the input contract the model was built with, read off the model
    itself (`input_contract_of`); `example` holds caller rows, logged as the signature types them.
    """
    spec = dataclasses.replace(spec, input_contract=input_contract_of(model, spec.flavor))
    example = _as_signature_types(example, spec)
    with tempfile.TemporaryDirectory() as tmp:
        code_dir = Path(tmp) / CODE_ARTIFACT
        spec = dataclasses.replace(spec, code=code_record(write_wheel(code_dir)))
        estimator_dir = Path(tmp) / ESTIMATOR_ARTIFACT
        if spec.flavor == "sklearn":
            check_trusted(model)
            mlflow.sklearn.save_model(
                model,
                str(estimator_dir),
                serialization_format="skops",
                skops_trusted_types=SKOPS_TRUSTED_TYPES,
                pip_requirements=pip_requirements(spec),
            )
        else:
            model.write().save(str(estimator_dir))
        # Read as a resource, not by path: spark-submit imports parity from a zip (--py-files),
        # where ENTRY_POINT is no file MLflow can open.
        entry_point = Path(tmp) / ENTRY_POINT.name
        entry_point.write_bytes(
            importlib.resources.files(__package__).joinpath(ENTRY_POINT.name).read_bytes()
        )
        spec_file = Path(tmp) / "feature_spec.json"
        spec_file.write_text(spec.to_json())
        signature = caller_signature(spec)
        return mlflow.pyfunc.log_model(
            name="model",
            python_model=str(entry_point),
            artifacts={
                ESTIMATOR_ARTIFACT: str(estimator_dir),
                SPEC_ARTIFACT: str(spec_file),
                CODE_ARTIFACT: str(code_dir),
            },
            signature=signature,
            input_example=example,
            registered_model_name=registered_model,
            metadata={SPEC_ARTIFACT: dataclasses.asdict(spec)},
            model_config={ALLOW_CODE_MISMATCH: False},  # a loader may override it, explicitly
            pip_requirements=pip_requirements(spec),
        )


# What a packaged model imports where it loads, by flavor. Named, not inferred: MLflow's
# inference loads the model in a subprocess (seconds per model) and still misses skops.
_REQUIREMENTS = {
    "sklearn": ("mlflow", "cloudpickle", "numpy", "pandas", "scikit-learn", "scipy", "skops", "pyspark"),
    "spark": ("mlflow", "cloudpickle", "numpy", "pandas", "pyspark"),
}


def pip_requirements(spec: FeatureSpec) -> list[str]:
    """The packages (pinned to the installed versions) a model of the spec's flavor needs to load and predict."""
    return [f"{name}=={importlib.metadata.version(name)}" for name in _REQUIREMENTS[spec.flavor]]


def load_feature_spec(model_uri: str) -> FeatureSpec:
    """Read a logged model's feature spec without loading the estimator.

    Only the model's MLmodel file is read, so this works for a model folder copied away from
    its tracking store as well as for a `models:/` or `runs:/` URI.
    """
    metadata = mlflow.models.Model.load(model_uri).metadata or {}
    if SPEC_ARTIFACT not in metadata:
        raise ValueError(f"model {model_uri} carries no feature spec; it was not logged by parity")
    return FeatureSpec(**metadata[SPEC_ARTIFACT])


def _as_signature_types(example: pd.DataFrame, spec: FeatureSpec) -> pd.DataFrame:
    """Caller rows with the pandas types of the model's signature, which MLflow checks an input example against."""
    timestamps = pd.to_datetime(example[spec.timestamp]).dt.tz_localize(None)
    frame = example.assign(**{spec.timestamp: timestamps})
    return pd.DataFrame(
        {c.name: frame[c.name].astype(c.type.to_pandas()) for c in caller_signature(spec).inputs.inputs}
    )
