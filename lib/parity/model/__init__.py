"""The packaged model: its feature spec (`spec`) and the MLflow pyfunc that carries it (`packaged`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from parity.core.exports import lazy_exports

_EXPORTS = {
    "ALLOW_CODE_MISMATCH": "packaged",
    "ENTRY_POINT": "packaged",
    "ESTIMATOR_ARTIFACT": "packaged",
    "ParityModel": "packaged",
    "SKOPS_TRUSTED_TYPES": "packaged",
    "SPEC_ARTIFACT": "packaged",
    "UntrustedModelTypesError": "packaged",
    "check_trusted": "packaged",
    "load_feature_spec": "packaged",
    "log_packaged_model": "packaged",
    "predict_frame": "packaged",
    "FeatureSpec": "spec",
    "MissingFeaturesError": "spec",
    "TransformCodeChangedError": "spec",
    "caller_signature": "spec",
    "changed_transforms": "spec",
    "check_transform_code": "spec",
}
__all__ = [
    "ALLOW_CODE_MISMATCH",
    "ENTRY_POINT",
    "ESTIMATOR_ARTIFACT",
    "SKOPS_TRUSTED_TYPES",
    "SPEC_ARTIFACT",
    "FeatureSpec",
    "MissingFeaturesError",
    "ParityModel",
    "TransformCodeChangedError",
    "UntrustedModelTypesError",
    "caller_signature",
    "changed_transforms",
    "check_transform_code",
    "check_trusted",
    "load_feature_spec",
    "log_packaged_model",
    "predict_frame",
]
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

if TYPE_CHECKING:
    from parity.model.packaged import (
        ALLOW_CODE_MISMATCH,
        ENTRY_POINT,
        ESTIMATOR_ARTIFACT,
        SKOPS_TRUSTED_TYPES,
        SPEC_ARTIFACT,
        ParityModel,
        UntrustedModelTypesError,
        check_trusted,
        load_feature_spec,
        log_packaged_model,
        predict_frame,
    )
    from parity.model.spec import (
        FeatureSpec,
        MissingFeaturesError,
        TransformCodeChangedError,
        caller_signature,
        changed_transforms,
        check_transform_code,
    )
