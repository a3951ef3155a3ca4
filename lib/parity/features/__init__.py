"""Features: transforms, PII, quality, source validation, feature-set builds, as-of joins, training sets.

- `transforms`, `pii`: pure DataFrame and Column functions, named in declarations by dotted path
  (`parity.transforms.add_window_aggregates` stays the documented path);
- `quality`, `sources`: contracts, row rules, and quarantine;
- `compute`, `incremental`, `build_plan`, `build`: computing a declared set, and planning and
  building its table incrementally;
- `asof`, `training_sets`: point-in-time joins, and training sets with their manifests.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from parity.core.exports import lazy_exports

_EXPORTS = {
    "BuildResult": "build",
    "BuildOptions": "build_plan",
    "PlannedBuild": "build_plan",
    "build_declared_sets": "build",
    "build_feature_set": "build",
    "plan_feature_build": "build_plan",
    "run_feature_build": "build",
    "transform_code_hash": "build_plan",
    "DeclarationError": "compute",
    "NUMERIC_TYPES": "parity.core.conf.base",
    "check_declaration": "compute",
    "compute_feature_set": "compute",
    "declared_sets": "compute",
    "history": "compute",
    "history_days": "compute",
    "newest_event_time": "compute",
    "sample_entities": "compute",
    "sample_keys": "compute",
    "BUILD_STATE_KEY": "incremental",
    "BuildRange": "incremental",
    "BuildState": "incremental",
    "DeclarationChangedError": "incremental",
    "FEATURE_DATE": "incremental",
    "new_rows": "incremental",
    "plan_build": "incremental",
    "preview_feature_set": "incremental",
    "read_slice": "incremental",
    "SOURCE_ROW_HASH": "sources",
    "SOURCE_ROW_OCCURRENCE": "sources",
    "quarantine_table": "sources",
    "required_columns": "sources",
    "source_contract": "sources",
    "validate_source": "sources",
    "TrainingSetPlan": "training_sets",
    "TrainingSetResult": "training_sets",
    "build_training_set": "training_sets",
    "plan_training_set": "training_sets",
    "manifest_versions": "training_sets",
}
__all__ = [
    "BUILD_STATE_KEY",
    "FEATURE_DATE",
    "NUMERIC_TYPES",
    "SOURCE_ROW_HASH",
    "SOURCE_ROW_OCCURRENCE",
    "BuildOptions",
    "BuildRange",
    "BuildResult",
    "BuildState",
    "DeclarationChangedError",
    "DeclarationError",
    "PlannedBuild",
    "TrainingSetPlan",
    "TrainingSetResult",
    "build_declared_sets",
    "build_feature_set",
    "build_training_set",
    "check_declaration",
    "compute_feature_set",
    "declared_sets",
    "history",
    "history_days",
    "manifest_versions",
    "new_rows",
    "newest_event_time",
    "plan_build",
    "plan_feature_build",
    "plan_training_set",
    "preview_feature_set",
    "quarantine_table",
    "read_slice",
    "required_columns",
    "run_feature_build",
    "sample_entities",
    "sample_keys",
    "source_contract",
    "transform_code_hash",
    "validate_source",
]
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

if TYPE_CHECKING:
    from parity.core.conf.base import NUMERIC_TYPES
    from parity.features.build import BuildResult, build_declared_sets, build_feature_set, run_feature_build
    from parity.features.build_plan import BuildOptions, PlannedBuild, plan_feature_build, transform_code_hash
    from parity.features.compute import (
        DeclarationError,
        check_declaration,
        compute_feature_set,
        declared_sets,
        history,
        history_days,
        newest_event_time,
        sample_entities,
        sample_keys,
    )
    from parity.features.incremental import (
        BUILD_STATE_KEY,
        FEATURE_DATE,
        BuildRange,
        BuildState,
        DeclarationChangedError,
        new_rows,
        plan_build,
        preview_feature_set,
        read_slice,
    )
    from parity.features.sources import (
        SOURCE_ROW_HASH,
        SOURCE_ROW_OCCURRENCE,
        quarantine_table,
        required_columns,
        source_contract,
        validate_source,
    )
    from parity.features.training_sets import (
        TrainingSetPlan,
        TrainingSetResult,
        build_training_set,
        manifest_versions,
        plan_training_set,
    )
