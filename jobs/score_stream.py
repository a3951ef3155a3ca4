"""Score a declared model's scoring requests as a stream, exactly once, into its stream
predictions table (see parity.app.stream_run and parity.scoring.stream).

    score_stream [--model NAME] [--model-version N|@ALIAS|latest] [--available-now]

Without --available-now the stream runs until stopped, starting a micro-batch every
`scoring.stream.trigger_seconds`; with it, it scores every request there is and stops. A
stopped or killed stream resumes from its checkpoint; it never rolls its tables back.
"""

from __future__ import annotations

import sys
from pathlib import Path

from parity.app.jobkit import JobOptions, job_parser, run_model_job
from parity.app.stream_run import add_arguments, check_stream_arguments, score_stream

CONF_DIR = Path(__file__).resolve().parents[1] / "conf"


def main(argv: list[str] | None = None) -> int:
    parser = job_parser("score_stream")
    add_arguments(parser)
    return run_model_job(
        "score_stream",
        argv,
        score_stream,
        conf_dir=CONF_DIR,
        options=JobOptions(parser=parser, check_args=check_stream_arguments, keep_writes_on_failure=True),
    )


if __name__ == "__main__":
    sys.exit(main())
