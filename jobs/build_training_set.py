"""Join a declared model's labels to the features known at each label's time (as-of) and write a
versioned training set.

    build_training_set [--model NAME] [--rebuild VERSION] [--holdout-days N]

Each training set records a manifest of its inputs (table, Delta version, commit time, content
digest). `--rebuild VERSION` builds again from the manifest of that version: the same inputs
at the same versions, with the declarations recorded then, giving the same rows (the same
digest); it stops before writing if an input no longer matches its manifest entry.
`--holdout-days N` leaves out the labels of the newest N days (by label time): labels a model
trained on the set never saw, which the promotion gate validates it on.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from parity.app.jobkit import JobContext, UsageError, job_parser, run_model_job
from parity.core.conf import ModelDecl, Settings
from parity.features.training_sets import build_training_set

CONF_DIR = Path(__file__).resolve().parents[1] / "conf"


def parser() -> argparse.ArgumentParser:
    parser = job_parser("build_training_set")
    parser.add_argument(
        "--rebuild", type=int, default=None, metavar="VERSION",
        help="rebuild training-set version VERSION from its manifest: the same inputs at the same versions",
    )
    parser.add_argument(
        "--holdout-days", type=_days, default=None, metavar="N",
        help="leave out the labels of the newest N days, for the promotion gate to validate on",
    )
    return parser


def _days(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"'{text}' is not a number of days (1 or more)")
    return int(text)


def check_args(args: argparse.Namespace, settings: Settings) -> None:
    if args.rebuild is not None and args.holdout_days is not None:
        raise UsageError("--holdout-days and --rebuild cannot be combined: a rebuild uses what its version held out")


def body(ctx: JobContext, model: ModelDecl) -> None:
    result = build_training_set(ctx.catalog, ctx.settings, model, rebuild=ctx.args.rebuild, holdout_days=ctx.args.holdout_days)
    ctx.counts.update(result.counts)
    ctx.summary_extra(
        manifest=result.manifest, training_set_digest=result.digest, labels_until=None if result.labels_until is None else str(result.labels_until)
    )


def main(argv: list[str] | None = None) -> int:
    return run_model_job("build_training_set", argv, body, conf_dir=CONF_DIR, parser=parser(), check_args=check_args)


if __name__ == "__main__":
    sys.exit(main())
