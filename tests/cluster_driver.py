"""The cluster test's second driver: one SparkSession on a standalone master, in which jobs run
one after another through their `main(argv)`, with the library shipped to the executors as a zip
as spark-submit.sh ships it (`--py-files`).

    python -m tests.cluster_driver PLAN.json

PLAN.json holds {"package": zip path, "env": conf overlay, "overrides": [--set values],
"jobs": [[job, [job args]], ...]}; each job gets `--env` and the `--set`s. The session is built
from the same conf (its master, the Delta jars, the project's Python on the executors) before
the first job, which reuses it, as do the others. One JSON line is printed at the end: each
job's return code and summary (the last line it printed), in order.
"""

from __future__ import annotations

import contextlib
import io
import json
import sys
from pathlib import Path

from parity.app.cli import write_package
from parity.core.conf import load_settings
from parity.core.session import get_spark
from tests.support import CONF_DIR, load_job, set_args


def main(plan_path: str) -> int:
    plan = json.loads(Path(plan_path).read_text())
    spark = get_spark(load_settings(CONF_DIR, env=plan["env"], overrides=plan["overrides"]))
    settings_args = ["--env", plan["env"], *set_args(plan["overrides"])]
    spark.sparkContext.addPyFile(str(write_package(Path(plan["package"]))))
    results = []
    try:
        for job, args in plan["jobs"]:
            out = io.StringIO()
            with contextlib.redirect_stdout(out):
                code = load_job(job).main([*settings_args, *args])
            lines = [line for line in out.getvalue().splitlines() if line.strip()]
            results.append(
                {"job": job, "returncode": code, "summary": json.loads(lines[-1]) if lines else None}
            )
            if code != 0:
                break
    finally:
        spark.stop()  # ends the application: its event log is complete
    print(json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
