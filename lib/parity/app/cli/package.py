"""What spark-submit.sh asks of the `parity` command: the spark-submit arguments a conf implies
(`parity submit-args`), and the library zip executors import (`parity package`)."""

from __future__ import annotations

import argparse
import zipfile
from pathlib import Path

import parity
from parity.app.cli.conf_args import settings_of
from parity.core.hashing import KEPT_TEXTS
from parity.core.session import DELTA_CONF, delta_jars, python_executable, session_conf


def submit_args(args: argparse.Namespace) -> int:
    """Print the spark-submit arguments the conf implies, one per line; with `--package-out`,
    also write the library zip (one Python start for both, before the JVM's)."""
    settings = settings_of(args)
    jars = ",".join(delta_jars(settings))
    lines = ["--master", settings.spark.master, "--name", settings.spark.app_name, "--jars", jars]
    conf = session_conf(settings)
    conf["spark.pyspark.python"] = python_executable()
    conf["spark.pyspark.driver.python"] = python_executable()
    conf["spark.executorEnv.TZ"] = "UTC"
    options = [conf["spark.driver.extraJavaOptions"]] if conf.get("spark.driver.extraJavaOptions") else []
    options += settings.spark.job_java_options
    log4j = Path(args.conf_dir) / "log4j2.properties"
    if log4j.is_file():
        options.append(f"-Dlog4j2.configurationFile=file:{log4j.resolve()}")
        if args.log_file:
            options.append(f"-Dparity.log.file={Path(args.log_file).resolve()}")
    if options:
        conf["spark.driver.extraJavaOptions"] = " ".join(options)
    for key, value in {**conf, **DELTA_CONF}.items():
        lines += ["--conf", f"{key}={value}"]
    if args.package_out:
        write_package(Path(args.package_out))
    print("\n".join(lines))
    return 0


def package(args: argparse.Namespace) -> int:
    """Zip the installed parity package for spark-submit --py-files, and print its path."""
    print(write_package(Path(args.out)))
    return 0


def write_package(out: Path) -> Path:
    """Zip the installed parity package (pure Python, every module, py.typed and the texts kept
    from before a formatter ran): the form spark-submit's --py-files accepts (it ignores a .whl)."""
    source = Path(parity.__file__).resolve().parent
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_suffix(".zip.part")
    with zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted([*source.rglob("*.py"), source / "py.typed", *source.glob(f"core/{KEPT_TEXTS}")]):
            archive.write(path, Path("parity") / path.relative_to(source))
    partial.replace(out)
    return out
