"""The build_training_set job's flow: join a declared model's labels to the features known at
each label's time (as-of) and write a versioned training set with the manifest of its inputs,
or rebuild an earlier version from its manifest (see parity.features.training_sets)."""

from __future__ import annotations

import argparse

from parity.app.jobkit import JobContext, UsageError
from parity.core.conf import ModelDecl, Settings
from parity.features import training_sets


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The build_training_set job's own arguments."""
    parser.add_argument(
        "--rebuild",
        type=int,
        default=None,
        metavar="VERSION",
        help="rebuild training-set version VERSION from its manifest: the same inputs at the same versions",
    )
    parser.add_argument(
        "--holdout-days",
        type=_days,
        default=None,
        metavar="N",
        help="leave out the labels of the newest N days, for the promotion gate to validate on",
    )


def _days(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"'{text}' is not a number of days (1 or more)")
    return int(text)


def check_arguments(args: argparse.Namespace, settings: Settings) -> None:
    """Refuse a rebuild that also asks for a holdout, before Spark starts."""
    if args.rebuild is not None and args.holdout_days is not None:
        raise UsageError(
            "--holdout-days and --rebuild cannot be combined: a rebuild uses what its version held out"
        )


def build_training_set(ctx: JobContext, model: ModelDecl) -> None:
    """Build (or rebuild) the model's training set: the job's body."""
    result = training_sets.build_training_set(
        ctx.catalog, ctx.settings, model, rebuild=ctx.args.rebuild, holdout_days=ctx.args.holdout_days
    )
    ctx.counts.update(result.counts)
    ctx.summary_extra(
        manifest=result.manifest,
        training_set_digest=result.digest,
        labels_until=None if result.labels_until is None else str(result.labels_until),
    )
