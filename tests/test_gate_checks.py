"""The promotion gate's judgments on inline values: each check passes and refuses with the detail
it records (no Spark, Delta or MLflow; `test_governance.py` runs the gate on real tables)."""

from __future__ import annotations

import datetime as dt

import pytest

from parity.governance.gate_checks import (
    Approvals,
    Bar,
    DataCheck,
    FeatureTable,
    GateInputs,
    Holdout,
    RecordedChecks,
    Score,
    SpecState,
    Unmeasurable,
    judge,
    judge_approval,
    judge_champion_unchanged,
    judge_data_checks,
    judge_spec,
    judge_validation,
)
from parity.governance.model_events import APPROVED, REGISTERED, CheckResult, ModelEvent

AUC = Bar("auc", higher_is_better=True, margin=0.01, min_labels=100, floor=0.6)
RMSE = Bar("rmse", higher_is_better=False, margin=0.5, min_labels=100, floor=None)
CUTOFF = dt.datetime(2026, 3, 1, 12)
WHERE = "250 labels after the training cutoff 2026-03-01 12:00:00"


def _event(kind: str, version: str, actor: str, reason: str | None = None) -> ModelEvent:
    return ModelEvent(
        kind,
        "churn",
        "parity_churn",
        version,
        actor,
        "prod",
        "run",
        reason=reason,
        at=dt.datetime(2026, 3, 2, 9, 30),
    )


@pytest.mark.parametrize(
    ("bar", "holdout", "passed", "detail"),
    [
        (
            AUC,
            Holdout(CUTOFF, 250, 0.745, Score("3", 0.75)),
            True,
            f"auc 0.7450 on {WHERE}; champion version 3: 0.7500, margin 0.01, so at least 0.7400",
        ),
        (
            AUC,
            Holdout(CUTOFF, 250, 0.735, Score("3", 0.75)),
            False,
            f"auc 0.7350 on {WHERE}; champion version 3: 0.7500, margin 0.01, so at least 0.7400",
        ),
        (
            RMSE,
            Holdout(CUTOFF, 250, 10.4, Score("3", 10.0)),
            True,
            f"rmse 10.4000 on {WHERE}; champion version 3: 10.0000, margin 0.5, so at most 10.5000",
        ),
        (
            RMSE,
            Holdout(CUTOFF, 250, 10.6, Score("3", 10.0)),
            False,
            f"rmse 10.6000 on {WHERE}; champion version 3: 10.0000, margin 0.5, so at most 10.5000",
        ),
        (
            AUC,
            Holdout(CUTOFF, 250, 0.61),
            True,
            f"auc 0.6100 on {WHERE}; no champion yet, floor 0.6 (higher is better)",
        ),
        (
            AUC,
            Holdout(CUTOFF, 250, 0.59),
            False,
            f"auc 0.5900 on {WHERE}; no champion yet, floor 0.6 (higher is better)",
        ),
        (
            RMSE,
            Holdout(CUTOFF, 250, 1.0),
            False,
            f"rmse 1.0000 on {WHERE}; there is no champion yet and promotion.floor is not declared",
        ),
        (
            AUC,
            Holdout(CUTOFF, 99, 0.9),
            False,
            "99 labels after the training cutoff 2026-03-01 12:00:00; promotion.min_labels is 100",
        ),
        (
            AUC,
            Unmeasurable("3", "ValueError: needs both classes"),
            False,
            "cannot measure version 3: ValueError: needs both classes",
        ),
    ],
    ids=[
        "champion-pass",
        "champion-refuse",
        "lower-pass",
        "lower-refuse",
        "floor-pass",
        "floor-refuse",
        "no-floor",
        "few-labels",
        "unmeasurable",
    ],
)
def test_validation_judges_the_candidate_against_the_champion_or_the_floor(
    bar: Bar, holdout: Holdout | Unmeasurable, passed: bool, detail: str
) -> None:
    assert judge_validation(bar, holdout) == CheckResult("validation", passed, detail)


NO_FEATURES = DataCheck("without_features", 0.02, 0.05, "4 of 200 labels", passed=True)
QUARANTINED = DataCheck("quarantined", 0.10, 0.05, "20 of 200 labels", passed=False)


def test_data_checks_pass_only_when_every_recorded_check_passed() -> None:
    passed = judge_data_checks(RecordedChecks("run-1", (NO_FEATURES,)))
    assert passed == CheckResult("data_checks", True, "without_features 2.00% (max 5.00%, 4 of 200 labels)")
    refused = judge_data_checks(RecordedChecks("run-1", (NO_FEATURES, QUARANTINED)))
    assert refused == CheckResult(
        "data_checks",
        False,
        "failed quarantined: quarantined 10.00% (max 5.00%, 20 of 200 labels); "
        "without_features 2.00% (max 5.00%, 4 of 200 labels)",
    )


def test_data_checks_refuse_a_model_without_recorded_checks() -> None:
    gone = judge_data_checks(RecordedChecks("run-1", None, missing="No such file or directory"))
    assert gone == CheckResult(
        "data_checks", False, "the training run run-1 has no manifest.json: No such file or directory"
    )
    for none in (None, ()):
        refused = judge_data_checks(RecordedChecks("run-1", none))
        assert not refused.passed and refused.detail.startswith("the model's manifest records no data checks")


PROFILE = FeatureTable(
    "customer_profile",
    "features.customer_profile",
    ("customer_id", "ts", "age"),
    4,
    frozenset({"customer_id", "ts", "age"}),
)


def test_the_feature_spec_resolves_against_todays_code_and_tables() -> None:
    assert judge_spec(SpecState((), (PROFILE,))) == CheckResult(
        "feature_spec", True, "feature sets customer_profile resolve against today's code and tables"
    )
    gone = FeatureTable("customer_activity", "features.customer_activity", ("customer_id", "ts"), None)
    narrower = FeatureTable(
        "customer_profile",
        "features.customer_profile",
        ("customer_id", "ts", "age", "city"),
        5,
        PROFILE.columns,
    )
    refused = judge_spec(
        SpecState(("customer_activity (trained with abc, installed code gives def)",), (gone, narrower))
    )
    assert refused == CheckResult(
        "feature_spec",
        False,
        "code changed: customer_activity (trained with abc, installed code gives def); "
        "features.customer_activity does not exist; features.customer_profile@5 lacks city",
    )


def _approvals(*events: ModelEvent, required: bool = True, trainer: str | None = "ana") -> Approvals:
    return Approvals(required, "prod", "2", trainer, (_event(REGISTERED, "2", "ana"), *events))


def test_an_approval_counts_when_someone_other_than_the_trainer_gave_it_for_this_version() -> None:
    assert judge_approval(_approvals(required=False)) == CheckResult(
        "approval", True, "not required in env prod (governance.require_approval: false)"
    )
    given = judge_approval(_approvals(_event(APPROVED, "2", "ben", "read the validation")))
    assert given == CheckResult(
        "approval", True, "approved by ben at 2026-03-02 09:30:00 UTC: read the validation"
    )


@pytest.mark.parametrize(
    ("approvals", "detail"),
    [
        (
            _approvals(),
            "no approval of version 2 by someone other than its trainer (ana); run parity approve",
        ),
        (
            _approvals(_event(APPROVED, "2", "ANA", "mine")),
            "no approval of version 2 by someone other than its trainer (ana); run parity approve",
        ),
        (
            _approvals(_event(APPROVED, "1", "ben", "another version")),
            "no approval of version 2 by someone other than its trainer (ana); run parity approve",
        ),
        (
            _approvals(_event(APPROVED, "2", "ben", "ok"), trainer=None),
            "who trained version 2 is not recorded, so no approval can be shown to be someone else's",
        ),
    ],
    ids=["none", "by-the-trainer", "other-version", "trainer-unknown"],
)
def test_an_approval_is_refused_without_one_from_someone_else(approvals: Approvals, detail: str) -> None:
    assert judge_approval(approvals) == CheckResult("approval", False, detail)


def test_the_gate_judges_every_check_in_order_and_a_moved_champion_refuses() -> None:
    inputs = GateInputs(
        AUC,
        Holdout(CUTOFF, 50),
        RecordedChecks("run-1", (NO_FEATURES,)),
        SpecState((), (PROFILE,)),
        _approvals(required=False),
    )
    assert [(c.check, c.passed) for c in judge(inputs)] == [
        ("validation", False),
        ("data_checks", True),
        ("feature_spec", True),
        ("approval", True),
    ]
    assert judge_champion_unchanged("3", "3", "champion") is None
    assert judge_champion_unchanged("3", "4", "champion") == CheckResult(
        "champion_unchanged", False, "@champion moved from 3 to 4 while the checks ran; promote again"
    )
