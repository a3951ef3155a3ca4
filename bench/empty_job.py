"""The floor of a job: spark-submit starts the JVM and this driver, which loads the conf, gets
the session with Delta configured, and runs one trivial Spark action. bench/fixed_cost.py
submits it with the arguments spark-submit.sh would give a job."""

from __future__ import annotations

import sys
from pathlib import Path

from parity.core.conf import load_settings
from parity.core.session import get_spark

settings = load_settings(Path(__file__).resolve().parents[1] / "conf", overrides=sys.argv[1:])
get_spark(settings).range(1).count()
