"""Join a declared model's labels to the features known at each label's time (as-of) and write a
versioned training set (see parity.app.training_set_run).

    build_training_set [--model NAME] [--rebuild VERSION] [--holdout-days N]

Each training set records a manifest of its inputs (table, Delta version, commit time, content
digest). `--rebuild VERSION` builds again from the manifest of that version: the same inputs
at the same versions, with the declarations recorded then, giving the same rows (the same
digest); it stops before writing if an input no longer matches its manifest entry.
`--holdout-days N` leaves out the labels of the newest N days (by label time): labels a model
trained on the set never saw, which the promotion gate validates it on.
"""

from __future__ import annotations

import sys
from pathlib import Path

from parity.app.jobkit import JobOptions, job_parser, run_model_job
from parity.app.training_set_run import add_arguments, build_training_set, check_arguments

CONF_DIR = Path(__file__).resolve().parents[1] / "conf"


def main(argv: list[str] | None = None) -> int:
    parser = job_parser("build_training_set")
    add_arguments(parser)
    return run_model_job(
        "build_training_set",
        argv,
        build_training_set,
        conf_dir=CONF_DIR,
        options=JobOptions(parser=parser, check_args=check_arguments),
    )


if __name__ == "__main__":
    sys.exit(main())
