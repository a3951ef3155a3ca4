"""Join a declared model's labels to the features known at each label's time (as-of) and write a
versioned training set.

    build_training_set [--model NAME] [--rebuild VERSION]

Each training set records a manifest of its inputs (table, Delta version, commit time, content
digest). `--rebuild VERSION` builds again from the manifest of that version: the same inputs
at the same versions, with the declarations recorded then, giving the same rows (the same
digest); it stops before writing if an input no longer matches its manifest entry.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from parity.app.jobkit import JobContext, job_parser, run_model_job
from parity.core.conf import ModelDecl
from parity.features.training_sets import build_training_set

CONF_DIR = Path(__file__).resolve().parents[1] / "conf"


def parser() -> argparse.ArgumentParser:
    parser = job_parser("build_training_set")
    parser.add_argument(
        "--rebuild", type=int, default=None, metavar="VERSION",
        help="rebuild training-set version VERSION from its manifest: the same inputs at the same versions",
    )
    return parser


def body(ctx: JobContext, model: ModelDecl) -> None:
    result = build_training_set(ctx.catalog, ctx.settings, model, rebuild=ctx.args.rebuild)
    ctx.counts.update(result.counts)
    ctx.summary_extra(manifest=result.manifest, training_set_digest=result.digest)


def main(argv: list[str] | None = None) -> int:
    return run_model_job("build_training_set", argv, body, conf_dir=CONF_DIR, parser=parser())


if __name__ == "__main__":
    sys.exit(main())
