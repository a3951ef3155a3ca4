"""The one SparkSession factory, shared by notebooks, jobs and tests.

`get_spark(settings)` reuses the active session when there is one. Otherwise it builds one
from conf with Delta configured and the project's Python on the executors. Under
spark-submit (spark-submit.sh), the master and the jars were given on the command line; they
are not set again here.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from pyspark.sql import SparkSession

from parity.core.conf import Settings

DELTA_CONF = {
    "spark.sql.extensions": "io.delta.sql.DeltaSparkSessionExtension",
    "spark.sql.catalog.spark_catalog": "org.apache.spark.sql.delta.catalog.DeltaCatalog",
}
_DEFAULT_CONF = {
    "spark.sql.session.timeZone": "UTC",
    "spark.ui.showConsoleProgress": "false",
}


class MissingJarsError(RuntimeError):
    """The Delta jars are not in the cache folder."""


def delta_jars(settings: Settings) -> list[str]:
    """The cached Delta jars, as absolute paths.

    Raises:
        MissingJarsError: the cache is empty; `make setup` fills it.
    """
    jars = sorted(str(p) for p in Path(settings.spark.jars_dir).glob("*.jar"))
    if not jars:
        raise MissingJarsError(
            f"no Delta jars in {settings.spark.jars_dir}; run `make setup` (scripts/fetch_jars.py) to fetch them"
        )
    return jars


def session_conf(settings: Settings) -> dict[str, str]:
    """Every Spark conf parity sets, in the order it is applied (later wins)."""
    conf = {**_DEFAULT_CONF, **settings.spark.conf, **DELTA_CONF}
    conf.setdefault("spark.pyspark.python", python_executable())
    return conf


def python_executable() -> str:
    """The project's Python, used by the driver and the executors."""
    return os.environ.get("PYSPARK_PYTHON") or sys.executable


def submitted_by_spark_submit() -> bool:
    """True in a driver that spark-submit started (the JVM is already up)."""
    return "PYSPARK_GATEWAY_PORT" in os.environ


def _use_utc() -> None:
    """parity works in UTC: Spark's session zone, and the Python process that collects timestamps."""
    if os.environ.get("TZ") != "UTC":
        os.environ["TZ"] = "UTC"
        time.tzset()


def get_spark(settings: Settings) -> SparkSession:
    """Return the active SparkSession, or build one from `settings` with Delta configured."""
    active = SparkSession.getActiveSession()
    if active is not None:
        return active
    _use_utc()
    os.environ.setdefault("PYSPARK_PYTHON", python_executable())
    builder = SparkSession.builder.appName(settings.spark.app_name)
    if not submitted_by_spark_submit():
        builder = builder.master(settings.spark.master).config("spark.jars", ",".join(delta_jars(settings)))
    for key, value in session_conf(settings).items():
        builder = builder.config(key, value)
    return builder.getOrCreate()
