"""A model's feature spec: what it needs to recreate its inputs, and the check that the code
behind its features has not changed since it was trained.

Loading a model recomputes each feature set's code hash from the code installed where it
loads; a mismatch fails with the sets that changed, unless the loader allows it explicitly
(scoring's conf key `scoring.allow_code_mismatch`). A model must not score features its code
no longer makes.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from mlflow.models import ModelSignature
from mlflow.types import ColSpec, DataType, Schema, TensorSpec

from parity.core.conf import FeatureSetDecl
from parity.core.hashing import recorded_scheme
from parity.training.inputs import LEGACY_INPUT_CONTRACT


class TransformCodeChangedError(RuntimeError):
    """The transform code behind a model's features differs from the code it was trained with."""


@dataclass
class FeatureSpec:
    """What a model needs to recreate its inputs.

    `feature_sets` holds, per set, its declaration as trained on (transforms, columns, TTL and
    request-time features), its table and version, and its code hash; `request_time` lists
    the request-time features; `numeric` and `categorical` are the model's input columns.
    A caller gives `entity` and `timestamp` (the time to score as of). `learner` names the
    learner and `flavor` how the fitted model is stored: `sklearn` (skops) or `spark` (a Spark
    ML PipelineModel, which needs a Spark session to predict; one is started if none is active).
    `input_contract` says where the model's inputs are prepared (`parity.training.inputs`):
    `INPUT_CONTRACT`, inside the fitted model; `LEGACY_INPUT_CONTRACT` (the default, so specs
    logged before the field existed still load), by the caller, which loading now adapts.

    `keys` are the model's key columns (its labels' keys), and `columns` every column a caller
    gives besides the time (the keys and the other columns the lookups map from) with its Spark
    type. Specs logged before models were declared have neither: their one key is `entity`, a
    bigint. `task` says what `prediction` is: P(label = 1) (binary) or the value (regression).
    `code` names the wheel of the parity library the model was trained with, and its digest
    (empty for a model packaged before models carried their code).
    """

    entity: str
    timestamp: str
    feature_sets: list[dict[str, Any]]
    request_time: list[dict[str, Any]]
    numeric: list[str]
    categorical: list[str]
    code_hash: str
    training_set: dict[str, Any] = field(default_factory=dict)
    learner: str = ""
    flavor: Literal["sklearn", "spark"] = "sklearn"
    input_contract: int = LEGACY_INPUT_CONTRACT
    model: str = ""
    task: Literal["binary", "regression"] = "binary"
    keys: list[str] = field(default_factory=list)
    columns: dict[str, str] = field(default_factory=dict)
    code: dict[str, str] = field(
        default_factory=dict
    )  # the library wheel the model carries (parity.model.code_artifact)

    @property
    def inputs(self) -> list[str]:
        return [*self.numeric, *self.categorical]

    @property
    def key_columns(self) -> list[str]:
        """The model's key columns (a legacy spec's one `entity`)."""
        return list(self.keys) or [self.entity]

    @property
    def caller_columns(self) -> dict[str, str]:
        """Every column a caller gives besides the time, with its Spark type."""
        return dict(self.columns) or {self.entity: "bigint"}

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True, default=str)

    @classmethod
    def from_json(cls, text: str) -> FeatureSpec:
        return cls(**json.loads(text))


def changed_transforms(spec: FeatureSpec) -> list[str]:
    """The feature sets whose code hash, recomputed from the code installed here, differs from the spec's.

    A spec records each set's `closure_hash`: its transforms and everything they reach. One
    recorded before that existed holds only `code_hash` (the transforms' own code), checked as such.
    Each is recomputed with the digest scheme the spec records beside it (`hash_scheme`; none:
    the source text, as specs were recorded before schemes were), so formatting the code changes
    nothing a model recorded with the syntax-tree scheme checks.
    """
    changed = []
    for lookup in spec.feature_sets:
        decl = FeatureSetDecl.model_validate(lookup["feature_set"])
        scheme = recorded_scheme(lookup)
        if "closure_hash" in lookup:
            recorded, now = str(lookup["closure_hash"]), decl.closure_hash(scheme)
        else:
            recorded, now = str(lookup.get("code_hash", "")), decl.code_hash(scheme)
        if recorded != now:
            changed.append(f"{decl.name} (trained with {recorded or 'no hash'}, installed code gives {now})")
    return changed


def check_transform_code(spec: FeatureSpec, *, allow_mismatch: bool = False) -> None:
    """Fail if the transform code behind the model's features changed since it was trained.

    Raises:
        TransformCodeChangedError: naming each changed feature set, unless `allow_mismatch`.
    """
    changed = changed_transforms(spec)
    if changed and not allow_mismatch:
        raise TransformCodeChangedError(
            f"the transform code behind this model's features has changed: {'; '.join(changed)}. "
            "Retrain the model on the current code, or allow the mismatch explicitly "
            "(scoring.allow_code_mismatch: true)"
        )


class MissingFeaturesError(ValueError):
    """A caller gave keys and a time but not the features the model's spec recreates."""


# Spark types (as conf names them) as MLflow signature types.
_SIGNATURE_TYPES = {
    "boolean": DataType.boolean,
    "int": DataType.integer,
    "bigint": DataType.long,
    "float": DataType.float,
    "double": DataType.double,
    "string": DataType.string,
    "date": DataType.datetime,
    "timestamp": DataType.datetime,
}


def caller_signature(spec: FeatureSpec) -> ModelSignature:
    """What a caller provides: the keys and the columns the lookups map from, and a time
    (required), and the model's features (optional: batch scoring passes them assembled from
    the spec's feature tables)."""
    inputs: list[ColSpec | TensorSpec] = [
        ColSpec(_SIGNATURE_TYPES[kind], name) for name, kind in spec.caller_columns.items()
    ]
    inputs.append(ColSpec(DataType.datetime, spec.timestamp))
    inputs += [ColSpec(DataType.double, name, required=False) for name in spec.numeric]
    inputs += [ColSpec(DataType.string, name, required=False) for name in spec.categorical]
    return ModelSignature(inputs=Schema(inputs), outputs=Schema([ColSpec(DataType.double, "prediction")]))


def signature_types(spec: FeatureSpec) -> dict[str, Any]:
    """Each caller column's Spark type as the model's signature declares it (numeric double,
    categorical string): how values travel to the model, which MLflow enforces; the model
    prepares them itself."""
    return {f.name: f.dataType for f in caller_signature(spec).inputs.as_spark_schema().fields}
