"""The governance jobs' flows: promote a version through the gate, approve it, roll back.

    promote  --model NAME --version N                 moves @champion to N if every check passes
    approve  --model NAME --version N --reason TEXT   records an approval by someone other than N's trainer
    rollback --model NAME [--reason TEXT]             moves @champion back to the previous champion

Each appends its event to audit.model_events (append-only) and tags the version; a refused
promotion is recorded there too, and the job then fails naming what refused it (a refused
approval or rollback changes nothing, and its failed run is in audit.runs). Each is a job like
any other (`./spark-submit.sh promote ...`, or `parity promote ...`): a summary
line, an audit.runs row, exit codes.
"""

from __future__ import annotations

import argparse

from parity.app.jobkit import JobContext, job_parser
from parity.core.catalog import Catalog
from parity.core.conf import ModelDecl
from parity.governance import gate, registry, tracking
from parity.governance.gate_checks import judge, judge_champion_unchanged
from parity.governance.model_events import (
    APPROVED,
    PROMOTED,
    REFUSED,
    ROLLED_BACK,
    CheckResult,
    ModelEvent,
    append_events,
    champions,
    current_identity,
    read_events,
    same_identity,
    trainer_of,
)
from parity.model.spec import TransformCodeChangedError


class GateRefusedError(RuntimeError):
    """The gate refused a promotion (recorded in audit.model_events), an approval or a rollback."""


def _version(text: str) -> str:
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"'{text}' is not a model version number")
    return text


def _reason(text: str) -> str:
    if not text.strip():
        raise argparse.ArgumentTypeError("a reason cannot be empty")
    return text.strip()


def parser(job: str) -> argparse.ArgumentParser:
    """The arguments of one governance job (`promote`, `approve` or `rollback`)."""
    parser = job_parser(job)
    if job in ("promote", "approve"):
        parser.add_argument(
            "--version", required=True, type=_version, metavar="N", help="the registered model version"
        )
    parser.add_argument(
        "--reason",
        required=job == "approve",
        type=_reason,
        default=None,
        metavar="TEXT",
        help="why (recorded)",
    )
    return parser


def _trainer(events: list[ModelEvent], name: str, version: str) -> str | None:
    """Who trained a version: its `registered` event's actor, or (a version trained before
    events were recorded) the user MLflow recorded on its run."""
    recorded = trainer_of(events, version)
    if recorded is not None:
        return recorded
    run_id = registry.version_run_id(name, version)
    return tracking.run_user(run_id) if run_id else None


def _record(ctx: JobContext, event: ModelEvent) -> None:
    """Append one event to audit.model_events with a catalog of its own: a recorded event stays,
    whatever the job does next."""
    append_events(
        Catalog(ctx.spark, ctx.settings, run_id=ctx.record.run_id),
        [event],
        ctx.settings.tables.audit_model_events,
    )


def _event(
    ctx: JobContext, model: ModelDecl, kind: str, version: str, actor: str, **fields: object
) -> ModelEvent:
    return ModelEvent(
        kind,
        model.name,
        model.registered_model,
        version,
        actor,
        ctx.settings.env,
        ctx.record.run_id,
        **fields,  # type: ignore[arg-type]
    )


def promote(ctx: JobContext, model: ModelDecl) -> None:
    """Run every check of the gate on `--version`; move @champion to it only if all pass.

    The decision is recorded first, then the alias moved (if the alias moved meanwhile, the
    promotion is refused), then the version tagged: a failure part-way leaves a record that
    says what was decided.
    """
    settings, name = ctx.settings, model.registered_model
    tracking.configure_mlflow(settings)
    actor = current_identity(
        settings.mlflow.tracking_uri, authenticated=settings.governance.require_authenticated_identity
    )
    candidate = registry.resolve_model(
        model, ctx.args.version, allow_code_mismatch=True
    )  # the feature_spec check judges the code
    previous = registry.alias_version(name, registry.CHAMPION)
    if previous == candidate.version:
        raise GateRefusedError(f"version {candidate.version} of {name} is @{registry.CHAMPION} already")
    champion = None if previous is None else registry.resolve_model(model, previous, allow_code_mismatch=True)
    events = read_events(ctx.catalog, settings.tables.audit_model_events, name)
    request = gate.PromotionRequest(
        model, candidate, champion, events=events, trainer=_trainer(events, name, candidate.version)
    )
    inputs = gate.read_inputs(ctx.spark, ctx.catalog, settings, request)
    checks = judge(inputs)
    moved = judge_champion_unchanged(
        previous, registry.alias_version(name, registry.CHAMPION), registry.CHAMPION
    )
    if moved is not None:
        checks.append(moved)
    passed = all(check.passed for check in checks)
    outcome = PROMOTED if passed else REFUSED
    _record(
        ctx,
        _event(
            ctx,
            model,
            outcome,
            candidate.version,
            actor,
            reason=ctx.args.reason,
            previous_version=previous,
            checks=checks,
        ),
    )
    if passed:
        registry.set_alias(name, registry.CHAMPION, candidate.version)
    tags = {
        f"parity.gate.{c.check}": f"{'passed' if c.passed else 'failed'}: {c.detail}"[:4900] for c in checks
    }
    registry.tag_model_version(name, candidate.version, {"parity.gate": outcome, **tags})
    ctx.record.model_version = candidate.version
    ctx.counts.update(
        {"checks.passed": sum(c.passed for c in checks), "checks.failed": sum(not c.passed for c in checks)}
    )
    ctx.summary_extra(
        model_name=name,
        version=candidate.version,
        outcome=outcome,
        previous_champion=previous,
        actor=actor,
        checks=[{"check": c.check, "passed": c.passed, "detail": c.detail} for c in checks],
    )
    if not passed:
        raise GateRefusedError(
            "promotion refused: "
            + "; ".join(f"{c.check} failed ({c.detail})" for c in checks if not c.passed)
        )


def approve(ctx: JobContext, model: ModelDecl) -> None:
    """Record an approval of `--version` by the acting identity, which must not be its trainer's."""
    settings, name, version = ctx.settings, model.registered_model, ctx.args.version
    tracking.configure_mlflow(settings)
    registry.resolve_model_version(name, version)  # it exists
    approver = current_identity(
        settings.mlflow.tracking_uri, authenticated=settings.governance.require_authenticated_identity
    )
    events = read_events(ctx.catalog, settings.tables.audit_model_events, name)
    trainer = _trainer(events, name, version)
    if trainer is None:
        raise GateRefusedError(
            f"who trained version {version} of {name} is not recorded, so no one can approve it as someone else"
        )
    if same_identity(approver, trainer):
        raise GateRefusedError(
            f"{approver} trained version {version} of {name}: someone else must approve it"
        )
    event = _event(ctx, model, APPROVED, version, approver, reason=ctx.args.reason)
    _record(ctx, event)
    registry.tag_model_version(
        name,
        version,
        {
            "parity.approved_by": approver,
            "parity.approved_at": f"{event.at:%Y-%m-%dT%H:%M:%S}Z",
            "parity.approval_reason": ctx.args.reason,
        },
    )
    ctx.record.model_version = version
    ctx.summary_extra(
        model_name=name, version=version, approved_by=approver, trained_by=trainer, reason=ctx.args.reason
    )


def rollback(ctx: JobContext, model: ModelDecl) -> None:
    """Move @champion back to the champion before it, as audit.model_events records them."""
    settings, name = ctx.settings, model.registered_model
    tracking.configure_mlflow(settings)
    actor = current_identity(
        settings.mlflow.tracking_uri, authenticated=settings.governance.require_authenticated_identity
    )
    current = registry.alias_version(name, registry.CHAMPION)
    made = champions(read_events(ctx.catalog, settings.tables.audit_model_events, name))
    if current is None:
        raise GateRefusedError(f"{name} has no @{registry.CHAMPION} to roll back")
    if not made or made[-1] != current:
        raise GateRefusedError(
            f"@{registry.CHAMPION} of {name} is version {current}, but audit.model_events records "
            f"{made[-1] if made else 'no champion'}: "
            "the alias was moved outside parity promote; move it with parity promote"
        )
    if len(made) < 2:
        raise GateRefusedError(
            f"version {current} is the first champion of {name}: there is no earlier one to roll back to"
        )
    target = made[-2]
    try:  # the version rolled back to must still score: its features' code as it was trained
        registry.resolve_model(model, target, allow_code_mismatch=settings.scoring.allow_code_mismatch)
    except TransformCodeChangedError as exc:
        raise GateRefusedError(f"cannot roll back to version {target}: {exc}") from None
    _record(
        ctx,
        _event(
            ctx,
            model,
            ROLLED_BACK,
            target,
            actor,
            reason=ctx.args.reason,
            previous_version=current,
            checks=[CheckResult("rollback", True, f"@{registry.CHAMPION} {current} -> {target}")],
        ),
    )
    registry.set_alias(name, registry.CHAMPION, target)
    registry.tag_model_version(
        name, current, {"parity.rolled_back_at": f"{ctx.record.started_at:%Y-%m-%dT%H:%M:%S}Z"}
    )
    ctx.record.model_version = target
    ctx.summary_extra(model_name=name, champion=target, replaced=current, actor=actor, reason=ctx.args.reason)
