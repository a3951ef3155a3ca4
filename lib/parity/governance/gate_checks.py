"""The promotion gate's judgments: pure functions of what the gate read (`parity.governance.gate`).

The gate reads everything once (the versions' measurements on the holdout labels, the data
checks the train job recorded, today's code and feature tables, the recorded approvals) into
the plain values below; each `judge_*` function turns one of them into a `CheckResult`, with
no Spark, Delta or MLflow in sight, so a test gives it inline values.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from parity.governance.model_events import APPROVED, CheckResult, ModelEvent, same_identity

# The train job's record of a model's training set, inputs and data checks.
MANIFEST_ARTIFACT = "manifest.json"


@dataclass(frozen=True)
class Bar:
    """What the candidate must reach: the model's `promotion` declaration, for its task."""

    metric: str
    higher_is_better: bool
    margin: float
    min_labels: int
    floor: float | None


@dataclass(frozen=True)
class Score:
    """One version's metric on the holdout labels."""

    version: str
    value: float


@dataclass(frozen=True)
class Holdout:
    """The labels neither version trained on (later than `cutoff`, the later training cutoff),
    and each version's metric on them; `candidate` is None when too few labels were there to measure."""

    cutoff: dt.datetime
    labels: int
    candidate: float | None = None
    champion: Score | None = None


@dataclass(frozen=True)
class Unmeasurable:
    """A version the gate could not measure, and why (the error's type and first line)."""

    version: str
    error: str


@dataclass(frozen=True)
class DataCheck:
    """One data check of the candidate's training set, as the train job recorded it."""

    name: str
    share: float
    max: float
    detail: str
    passed: bool


@dataclass(frozen=True)
class RecordedChecks:
    """The data checks in the candidate's manifest: `checks` None when it records none,
    `missing` MLflow's reason when the training run has no manifest."""

    run_id: str
    checks: tuple[DataCheck, ...] | None
    missing: str | None = None


@dataclass(frozen=True)
class FeatureTable:
    """A feature set the candidate's spec reads, and its table as it is today (`version` None: gone)."""

    feature_set: str
    table: str
    needs: tuple[str, ...]
    version: int | None
    columns: frozenset[str] = frozenset()


@dataclass(frozen=True)
class SpecState:
    """The candidate's spec against today: the feature sets whose code changed, and its tables."""

    changed: tuple[str, ...]
    tables: tuple[FeatureTable, ...]


@dataclass(frozen=True)
class Approvals:
    """What the approval check weighs: whether the environment requires one, who trained the
    version, and the model's recorded events."""

    required: bool
    env: str
    version: str
    trainer: str | None
    events: tuple[ModelEvent, ...]


@dataclass(frozen=True)
class GateInputs:
    """Everything the gate judges, read once."""

    bar: Bar
    validation: Holdout | Unmeasurable
    data: RecordedChecks
    spec: SpecState
    approvals: Approvals


def judge(inputs: GateInputs) -> list[CheckResult]:
    """Every check of the gate, in order: validation, data checks, feature spec, approval."""
    return [
        judge_validation(inputs.bar, inputs.validation),
        judge_data_checks(inputs.data),
        judge_spec(inputs.spec),
        judge_approval(inputs.approvals),
    ]


def judge_validation(bar: Bar, measured: Holdout | Unmeasurable) -> CheckResult:
    """The candidate against the champion (or, with none, the floor) on the labels neither trained on."""
    if isinstance(measured, Unmeasurable):
        return CheckResult(
            "validation", False, f"cannot measure version {measured.version}: {measured.error}"
        )
    where = f"{measured.labels} labels after the training cutoff {measured.cutoff:%Y-%m-%d %H:%M:%S}"
    if measured.labels < bar.min_labels:
        return CheckResult("validation", False, f"{where}; promotion.min_labels is {bar.min_labels}")
    if measured.candidate is None:
        raise ValueError(
            f"a holdout of {measured.labels} labels (at least promotion.min_labels) carries no candidate metric"
        )
    mine, higher, champion = measured.candidate, bar.higher_is_better, measured.champion
    measured_text = f"{bar.metric} {mine:.4f} on {where}"
    if champion is None:
        if bar.floor is None:
            return CheckResult(
                "validation",
                False,
                f"{measured_text}; there is no champion yet and promotion.floor is not declared",
            )
        passed = mine >= bar.floor if higher else mine <= bar.floor
        better = "higher" if higher else "lower"
        return CheckResult(
            "validation",
            passed,
            f"{measured_text}; no champion yet, floor {bar.floor:g} ({better} is better)",
        )
    bound = champion.value - bar.margin if higher else champion.value + bar.margin
    passed = mine >= bound if higher else mine <= bound
    return CheckResult(
        "validation",
        passed,
        f"{measured_text}; champion version {champion.version}: {champion.value:.4f}, margin {bar.margin:g}, "
        f"so at {'least' if higher else 'most'} {bound:.4f}",
    )


def judge_data_checks(recorded: RecordedChecks) -> CheckResult:
    """The data checks the train job recorded for the candidate's training set: each must have passed."""
    if recorded.missing is not None:
        return CheckResult(
            "data_checks",
            False,
            f"the training run {recorded.run_id} has no {MANIFEST_ARTIFACT}: {recorded.missing}",
        )
    if not recorded.checks:
        return CheckResult(
            "data_checks",
            False,
            "the model's manifest records no data checks; retrain it on a training set built by this parity",
        )
    checks = sorted(recorded.checks, key=lambda c: c.name)
    details = [f"{c.name} {c.share:.2%} (max {c.max:.2%}, {c.detail})" for c in checks]
    failed = [c.name for c in checks if not c.passed]
    return CheckResult(
        "data_checks",
        not failed,
        ("failed " + ", ".join(failed) + ": " if failed else "") + "; ".join(details),
    )


def judge_spec(state: SpecState) -> CheckResult:
    """The candidate's feature spec against today's transform code and feature tables."""
    problems = [f"code changed: {changed}" for changed in state.changed]
    for table in state.tables:
        if table.version is None:
            problems.append(f"{table.table} does not exist")
            continue
        missing = [c for c in table.needs if c not in table.columns]
        if missing:
            problems.append(f"{table.table}@{table.version} lacks {', '.join(missing)}")
    names = ", ".join(table.feature_set for table in state.tables)
    return CheckResult(
        "feature_spec",
        not problems,
        "; ".join(problems) or f"feature sets {names} resolve against today's code and tables",
    )


def judge_approval(approvals: Approvals) -> CheckResult:
    """An approval of the version by someone other than its trainer, where the environment requires one."""
    version, trainer = approvals.version, approvals.trainer
    if not approvals.required:
        return CheckResult(
            "approval", True, f"not required in env {approvals.env} (governance.require_approval: false)"
        )
    if trainer is None:
        return CheckResult(
            "approval",
            False,
            f"who trained version {version} is not recorded, so no approval can be shown to be someone else's",
        )
    given = [
        e
        for e in approvals.events
        if e.event == APPROVED and e.version == version and not same_identity(e.actor, trainer)
    ]
    if not given:
        return CheckResult(
            "approval",
            False,
            f"no approval of version {version} by someone other than its trainer ({trainer or 'unknown'}); "
            "run parity approve",
        )
    last = given[-1]
    return CheckResult(
        "approval", True, f"approved by {last.actor} at {last.at:%Y-%m-%d %H:%M:%S} UTC: {last.reason}"
    )


def judge_champion_unchanged(previous: str | None, now: str | None, alias: str) -> CheckResult | None:
    """A refusal when the champion alias moved while the checks ran (None when it did not)."""
    if now == previous:
        return None
    return CheckResult(
        "champion_unchanged",
        False,
        f"@{alias} moved from {previous} to {now} while the checks ran; promote again",
    )
