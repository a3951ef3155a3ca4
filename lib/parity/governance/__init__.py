"""Governance: MLflow tracking (`tracking`), the model registry (`registry`), and lineage (`lineage`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from parity.core.exports import lazy_exports

_EXPORTS = {
    "AUDIT_RUNS": "lineage",
    "RunRecord": "lineage",
    "git_sha": "lineage",
    "ModelNotFoundError": "registry",
    "resolve_model_version": "registry",
    "set_alias": "registry",
    "tag_model_version": "registry",
    "DeltaInput": "tracking",
    "FinishedTrial": "tracking",
    "configure_mlflow": "tracking",
    "log_delta_input": "tracking",
    "log_sweep_declaration": "tracking",
    "log_trial": "tracking",
}
__all__ = [
    "AUDIT_RUNS",
    "DeltaInput",
    "FinishedTrial",
    "ModelNotFoundError",
    "RunRecord",
    "configure_mlflow",
    "git_sha",
    "log_delta_input",
    "log_sweep_declaration",
    "log_trial",
    "resolve_model_version",
    "set_alias",
    "tag_model_version",
]
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

if TYPE_CHECKING:
    from parity.governance.lineage import AUDIT_RUNS, RunRecord, git_sha
    from parity.governance.registry import (
        ModelNotFoundError,
        resolve_model_version,
        set_alias,
        tag_model_version,
    )
    from parity.governance.tracking import (
        DeltaInput,
        FinishedTrial,
        configure_mlflow,
        log_delta_input,
        log_sweep_declaration,
        log_trial,
    )
