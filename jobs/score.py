"""Score a declared model's population with one registered version, as of a scoring time, into
its predictions table (see parity.app.scoring_run).

    score [--model NAME] [--model-version N|@ALIAS|latest] [--population TABLE] [--score-time TIME]

The version is resolved once, at the start; every row written carries it. Rescoring the same
(model, version, score time) replaces exactly that slice.
"""

from __future__ import annotations

import sys
from pathlib import Path

from parity.app.jobkit import JobOptions, job_parser, run_model_job
from parity.app.scoring_run import add_arguments, check_arguments, score

CONF_DIR = Path(__file__).resolve().parents[1] / "conf"


def main(argv: list[str] | None = None) -> int:
    parser = job_parser("score")
    add_arguments(parser)
    options = JobOptions(parser=parser, check_args=check_arguments)
    return run_model_job("score", argv, score, conf_dir=CONF_DIR, options=options)


if __name__ == "__main__":
    sys.exit(main())
