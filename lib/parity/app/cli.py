"""The `parity` command: helpers for spark-submit.sh and the demo.

- `parity submit-args`: validates the conf and prints the spark-submit arguments it implies,
  one per line (master, Delta jars, Spark conf), so a bad conf fails before Spark starts.
- `parity package`: zips lib/parity for `--py-files`, so executors import the same code.
- `parity report`: reads the newest run of each pipeline job from audit.runs with an
  independent Delta reader (delta-rs) and checks each reported table's row count.
- `parity vacuum`: VACUUMs the raw, feature and training tables without deleting any version
  a training set's manifest names.
- `parity send-requests`: appends sample scoring requests to a model's requests table, as a
  producer would (what the demo's stream then drains).
- `parity lineage`: walks audit.runs backwards (what a table version, a model version or a
  run came from) or forwards (what depends on it), as a table or as JSON.
- `parity reproduce`: rebuilds a model version's training set with the parity wheel the
  model carries, in a virtual environment of its own, and compares digests.
- `parity promote | approve | rollback ...`: the governance jobs, run as
  `./spark-submit.sh <job> ...` would run them (see `parity.app.governance_run`).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
import zipfile
from pathlib import Path
from typing import Any

import parity
from parity.app.jobkit import OneLineParser, UsageError
from parity.core.catalog import table_path
from parity.core.conf import ConfError, Settings, load_settings
from parity.core.hashing import KEPT_TEXTS
from parity.core.session import DELTA_CONF, MissingJarsError, delta_jars, python_executable, session_conf

GOVERNANCE_JOBS = ("promote", "approve", "rollback")  # `parity <job> ...` runs ./spark-submit.sh <job> ...
PIPELINE = ("generate_data", "build_features", "build_training_set", "train", "promote", "score")
MODEL_JOBS = ("build_training_set", "train", "promote", "score")  # run once per declared model (--model NAME)


def _settings(args: argparse.Namespace) -> Settings:
    return load_settings(args.conf_dir, env=args.env, overrides=args.overrides)


def submit_args(args: argparse.Namespace) -> int:
    """Print the spark-submit arguments the conf implies, one per line; with `--package-out`,
    also write the library zip (one Python start for both, before the JVM's)."""
    settings = _settings(args)
    lines = ["--master", settings.spark.master, "--name", settings.spark.app_name, "--jars", ",".join(delta_jars(settings))]
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


def report(args: argparse.Namespace) -> int:
    """Print what the pipeline produced, re-counting every table with delta-rs."""
    from deltalake import DeltaTable

    settings = _settings(args)
    audit_path = table_path(settings, settings.tables.audit_runs)
    runs = DeltaTable(audit_path).to_pandas()
    runs = runs[runs["status"] == "succeeded"].sort_values("ended_at")
    problems = []
    print(f"parity demo report (env {settings.env}, storage {settings.storage.root})")
    steps = [(job, model) for job in PIPELINE for model in (sorted(settings.models) if job in MODEL_JOBS else [None])]
    streamed = sorted(name for name, declared in settings.models.items() if declared.scoring.stream is not None)
    steps += [("score_stream", model) for model in streamed if (runs["job"] == "score_stream").any()]
    for job, model in steps:
        job_runs = runs[(runs["job"] == job) & ((runs["model"] == model) if model else True)] if "model" in runs else runs[runs["job"] == job]
        named = f"{job} --model {model}" if model else job
        if job_runs.empty:
            problems.append(f"no successful run of {named} in {settings.tables.audit_runs}")
            continue
        summary = json.loads(job_runs.iloc[-1]["summary"])
        print(f"\n{named}  run {summary['run_id'][:12]}")
        for output in summary["outputs"]:
            table = DeltaTable(table_path(settings, output["table"]), version=output["version"])
            rows = table.to_pyarrow_dataset().count_rows()
            print(f"  wrote {output['table']:<32} version {output['version']:<4} rows {rows}")
        for key, value in sorted(summary["counts"].items()):
            print(f"  {key:<38} {value}")
        if job == "train":
            print(f"  best {json.dumps(summary.get('best_metric'))}  mlflow run {summary['mlflow_run_id']}")
            print(f"  registered {summary.get('model_name')} version {summary['model_version']}")
        if job == "promote":
            print(f"  {summary.get('model_name')} version {summary['version']} {summary['outcome']} (champion before: {summary.get('previous_champion')})")
            for check in summary.get("checks", []):
                print(f"  {check['check']:<14} {'passed' if check['passed'] else 'FAILED'}: {check['detail']}")
        problems += _check_counts(settings, job, summary)
    if problems:
        for problem in problems:
            print(f"error: {problem}", file=sys.stderr)
        return 1
    print("\nevery reported table opened with delta-rs and its row count matches the job summary")
    return 0


def _check_counts(settings: Settings, job: str, summary: dict[str, Any]) -> list[str]:
    """Compare the summary's row counts with what delta-rs reads at the reported versions."""
    from deltalake import DeltaTable

    counts = summary["counts"]
    expected: dict[str, int] = {}
    if job == "generate_data":
        expected = {output["table"]: counts[f"{output['table']}.rows"] for output in summary["outputs"]}
    elif job == "build_features":
        for name, built in summary["feature_sets"].items():
            if built["range"]["start"] is None:  # a whole-table write: the table holds what it wrote
                expected[built["table"]] = counts[f"{name}.rows_written"]
            if counts[f"{name}.in"] != counts[f"{name}.out"] + counts[f"{name}.quarantined"]:
                return [f"build_features: {name}: {counts[f'{name}.in']} rows in != out + quarantined"]
    elif job == "build_training_set":
        expected = {settings.model(summary["model"]).training_set(): counts["rows.out"]}
        if counts["rows.out"] + counts["labels.quarantined"] != counts["labels.in"]:
            return [f"build_training_set: {counts['labels.in']} labels in != {counts['rows.out']} rows out + {counts['labels.quarantined']} quarantined"]
    elif job == "score":
        predictions = settings.model(summary["model"]).predictions()
        version = next(o["version"] for o in summary["outputs"] if o["table"] == predictions)
        at = DeltaTable(table_path(settings, predictions), version=version).to_pandas(columns=["score_ts", "model_version"])
        in_slice = (at["score_ts"].astype(str).str.slice(0, 19) == str(summary["score_ts"])[:19]) & (at["model_version"] == summary["model_version"])
        if int(in_slice.sum()) != counts["predictions.out"]:
            return [f"score: {predictions} has {int(in_slice.sum())} rows in its slice, summary says {counts['predictions.out']}"]
        if counts["keys.in"] != counts["predictions.out"] + counts.get("keys.quarantined", 0):
            return [f"score: {counts['keys.in']} keys in != {counts['predictions.out']} scored + {counts.get('keys.quarantined', 0)} quarantined"]
    elif job == "score_stream":
        accounted = counts["predictions.out"] + counts["requests.quarantined"] + counts["requests.already_committed"]
        if counts["requests.in"] != accounted:
            return [f"score_stream: {counts['requests.in']} requests in != {accounted} scored, quarantined or already committed"]
    problems = []
    versions = {o["table"]: o["version"] for o in summary["outputs"]}
    for name, want in expected.items():
        got = DeltaTable(table_path(settings, name), version=versions[name]).to_pyarrow_dataset().count_rows()
        if got != want:
            problems.append(f"{job}: {name} has {got} rows at version {versions[name]}, summary says {want}")
    return problems


def models(args: argparse.Namespace) -> int:
    """Print the declared models' names, one a line (what `make demo` runs the model jobs for);
    with `--streaming`, only those that declare a stream of scoring requests."""
    for name, declared in sorted(_settings(args).models.items()):
        if not args.streaming or declared.scoring.stream is not None:
            print(name)
    return 0


def vacuum(args: argparse.Namespace) -> int:
    """VACUUM the raw, label, feature and training tables, keeping every version a training set's manifest names."""
    from parity.core.catalog import Catalog
    from parity.core.session import get_spark
    from parity.features.training_sets import manifest_versions

    settings = _settings(args)
    catalog = Catalog(get_spark(settings), settings)
    tables = settings.tables
    protected: dict[str, set[int]] = {}
    for model in settings.models.values():
        if catalog.exists(model.training_set()):
            for name, versions in manifest_versions(catalog, model.training_set()).items():
                protected.setdefault(name, set()).update(versions)
    names = [tables.raw_customers, tables.raw_events, tables.raw_labels]
    names += [table for model in settings.models.values() for table in (model.labels.table, model.training_set())]
    names += [decl.table for decl in settings.feature_sets.values()]
    for name in dict.fromkeys(names):
        if not catalog.exists(name):
            continue
        keep = protected.get(name, set())
        hours = catalog.vacuum(name, retain_hours=args.retain_hours, protect=keep)
        kept = f"; keeps version(s) {', '.join(map(str, sorted(keep)))} named by manifests" if keep else ""
        print(f"{name}: vacuumed with {hours:g} h retention{kept}")
    return 0


def lineage(args: argparse.Namespace) -> int:
    """Print the chain of runs behind (or, with --forward, in front of) a table version, a
    model version or a run, read from audit.runs with delta-rs."""

    from parity.governance import lineage_query as q

    settings = _settings(args)
    runs = q.runs_from_rows(_append_only_rows(table_path(settings, settings.tables.audit_runs)))
    direction = "forwards" if args.forward else "backwards"
    first: list[q.Step] = []
    if args.run:
        found = [r for r in runs if r.run_id.startswith(args.run)]
        if len(found) != 1:
            raise ConfError(f"{'no run' if not found else 'several runs'} in {settings.tables.audit_runs} with id {args.run}")
        start_node = q.Node("run", found[0].job, found[0].run_id)
        first = [q.Step(0, found[0], start_node)]
        start = found[0].inputs if direction == "backwards" else found[0].outputs
    elif args.model:
        try:
            settings.model(args.model)
        except ValueError as exc:
            raise ConfError(str(exc)) from None
        start_node = q.Node("model", args.model, args.version)
        start = [start_node]
    else:
        start_node = q.Node("table", args.table, args.version)
        start = [start_node]
    steps = first + q.walk(runs, start, direction)
    pending = q.unfinished(runs)
    if args.format == "json":
        print(json.dumps({"start": start_node.label() if start_node.kind != "run" else f"run {args.run}", "direction": direction,
                          "steps": [s.as_dict() for s in steps], "unfinished": [q.Step(0, r, start_node).as_dict() for r in pending]},
                         indent=2, default=str))
    else:
        print(f"lineage {direction} from {start_node.label() if start_node.kind != 'run' else f'run {args.run}'} ({len(steps)} runs)")
        print(q.as_table(steps, pending))
    return 0


def _append_only_rows(path: str) -> list[dict[str, Any]]:
    """The rows of an append-only Delta table (no deletes, so no deletion vectors), as dicts:
    delta-rs lists the files, pyarrow reads them. (Reading the rows through delta-rs itself
    makes the process abort now and then as it exits: delta-rs issue #2184.)"""
    import pyarrow as pa
    import pyarrow.parquet as pq
    from deltalake import DeltaTable

    files = DeltaTable(path).file_uris()
    return pa.concat_tables([pq.read_table(f) for f in files], promote_options="default").to_pylist() if files else []


def _reproduce(args: argparse.Namespace) -> int:
    """`parity reproduce`: one JSON line, and exit 1 with the problem when it did not reproduce."""
    from parity.app.reproduce import ReproduceError, reproduce

    try:
        result = reproduce(args)
    except ReproduceError as exc:
        print(f"error: reproduce: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(result, sort_keys=True, default=str))
    if not result.get("reproduced"):
        print(f"error: reproduce: {result.get('problem')}", file=sys.stderr)
        return 1
    return 0


def _reproduce_worker(args: argparse.Namespace) -> int:
    """The step `parity reproduce` runs in the environment it made: one JSON line."""
    from parity.app.reproduce import worker

    try:
        result = worker(args)
    except ValueError as exc:
        raise ConfError(str(exc)) from None
    print(json.dumps(result, sort_keys=True, default=str))
    return 0 if result.get("reproduced") else 1


def _iso_time(text: str) -> dt.datetime:
    try:
        return dt.datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not an ISO 8601 time (e.g. 2026-06-01T00:00:00)") from None


def _count(text: str) -> int:
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"'{text}' is not a count (0 or more)")
    return int(text)


def send_requests(args: argparse.Namespace) -> int:
    """Append `--count` sample requests (and `--malformed` bad ones) to a model's requests table,
    timed `--at` (default: the newest feature time of the model's first lookup)."""
    import uuid

    from pyspark.sql import functions as F

    from parity.core.catalog import Catalog
    from parity.core.session import get_spark
    from parity.scoring.stream import sample_requests

    settings = _settings(args)
    model = settings.model(args.model)
    if model.scoring.stream is None:
        raise ConfError(f"model {model.name} declares no scoring.stream")
    catalog = Catalog(get_spark(settings), settings)
    at = args.at
    if at is None:
        first = settings.feature_sets[model.features[0].feature_set]
        newest = catalog.read(first.table).agg(F.max(first.timestamp)).first()
        at = newest[0] if newest is not None else None
        if at is None:
            raise ConfError(f"{first.table} is empty: build the features first, or give --at")
    population = catalog.read(model.scoring.population.table)
    rows = sample_requests(population, list(model.labels.lookup_columns()), model.scoring.stream, count=args.count, at=at,
                           tag=uuid.uuid4().hex[:8], malformed=args.malformed)
    version = catalog.write(rows, model.scoring.stream.requests, mode="append")
    appended = catalog.operation_metrics(model.scoring.stream.requests, version).get("numOutputRows", 0)
    print(f"{model.scoring.stream.requests}: appended {appended} requests at {at} (version {version})")
    return 0


def run_job_script(job: str, argv: list[str]) -> int:
    """Run one of parity's jobs through the checkout's spark-submit.sh, in place of this process."""
    script = Path(parity.__file__).resolve().parents[2] / "spark-submit.sh"
    if not script.is_file():
        print(f"error: parity {job}: no spark-submit.sh beside this parity ({script}); run it from a parity checkout", file=sys.stderr)
        return 2
    sys.stdout.flush()
    os.execv(str(script), [str(script), job, *argv])


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] in GOVERNANCE_JOBS:
        return run_job_script(argv[0], argv[1:])
    parser = OneLineParser(prog="parity")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=OneLineParser)
    for name, fn in (("submit-args", submit_args), ("report", report), ("vacuum", vacuum), ("models", models)):
        cmd = sub.add_parser(name)
        cmd.add_argument("--conf-dir", default="conf")
        cmd.add_argument("--env", default=None)
        cmd.add_argument("--set", dest="overrides", action="append", default=[])
        cmd.set_defaults(fn=fn)
        if name == "submit-args":
            cmd.add_argument("--log-file", default=None, help="where the driver's Spark log goes")
            cmd.add_argument("--package-out", default=None, help="also write the library zip for --py-files here")
        if name == "models":
            cmd.add_argument("--streaming", action="store_true", help="only the models that declare scoring.stream")
        if name == "vacuum":
            cmd.add_argument("--retain-hours", type=float, default=168.0, help="Delta's default is 168 (7 days)")
    send = sub.add_parser("send-requests")
    for flag, default in (("--conf-dir", "conf"), ("--env", None), ("--model", None)):
        send.add_argument(flag, default=default)
    send.add_argument("--set", dest="overrides", action="append", default=[])
    send.add_argument("--at", type=_iso_time, default=None, help="the requests' time (ISO 8601, UTC)")
    send.add_argument("--count", type=_count, default=100)
    send.add_argument("--malformed", type=_count, default=0, help="also append this many requests with a null key (at most --count)")
    send.set_defaults(fn=send_requests)
    trace = sub.add_parser("lineage", help="what a table version, model version or run came from, or what depends on it")
    for flag, default in (("--conf-dir", "conf"), ("--env", None)):
        trace.add_argument(flag, default=default)
    trace.add_argument("--set", dest="overrides", action="append", default=[])
    start = trace.add_mutually_exclusive_group(required=True)
    start.add_argument("--model", default=None, help="a declared model (with --version N)")
    start.add_argument("--table", default=None, help="a logical table, e.g. raw.events (with --version N)")
    start.add_argument("--run", default=None, help="a run id (or its start), e.g. a prediction's scoring_run_id")
    trace.add_argument("--version", default=None, help="the model or table version")
    trace.add_argument("--forward", action="store_true", help="what depends on it (default: what it came from)")
    trace.add_argument("--format", choices=("table", "json"), default="table")
    trace.set_defaults(fn=lineage)
    again = sub.add_parser("reproduce", help="rebuild a model version's training set with the code the model carries")
    for flag, default in (("--conf-dir", "conf"), ("--env", None)):
        again.add_argument(flag, default=default)
    again.add_argument("--set", dest="overrides", action="append", default=[])
    again.add_argument("--model", default=None, help="a declared model (optional when only one is)")
    again.add_argument("--version", required=True, help="the registered model version")
    again.add_argument("--keep", action="store_true", help="keep the reproduction's virtual environment (build/reproduce/)")
    again.add_argument("--timeout", type=float, default=3600.0, help="seconds the rebuild may take (default 3600)")
    again.set_defaults(fn=_reproduce)
    inside = sub.add_parser("reproduce-worker")  # what `parity reproduce` runs in the environment it made
    for flag, default in (("--conf-dir", "conf"), ("--env", None)):
        inside.add_argument(flag, default=default)
    inside.add_argument("--set", dest="overrides", action="append", default=[])
    inside.add_argument("--model", required=True)
    inside.add_argument("--table", required=True)
    inside.add_argument("--table-version", type=int, required=True)
    inside.add_argument("--digest", required=True)
    inside.set_defaults(fn=_reproduce_worker)
    pkg = sub.add_parser("package")
    pkg.add_argument("--out", required=True)
    pkg.set_defaults(fn=package)
    try:
        args, unknown = parser.parse_known_args(argv)
        if unknown and args.command != "submit-args":  # submit-args ignores a job's own arguments
            parser.error(f"unrecognized arguments: {' '.join(unknown)}")
        if args.command == "lineage" and (args.model or args.table) and not (args.version or "").isdigit():
            parser.error("lineage: --model and --table need --version N")
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        return int(args.fn(args))
    except (ConfError, MissingJarsError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
