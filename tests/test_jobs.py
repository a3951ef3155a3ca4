"""Bad input fails early with one clear line, and leaves no table behind."""

from __future__ import annotations

import ast
import json
from pathlib import Path
from types import ModuleType

import pytest
from pyspark.sql import SparkSession
from pyspark.testing import assertDataFrameEqual

from parity.app.jobkit import JobContext, run_job
from parity.core.catalog import Catalog
from parity.core.conf import load_settings
from parity.demo import sample_data
from tests.conftest import TEST_SPARK
from tests.support import CONF_DIR, REPO, SubmitOptions, load_job, set_args, storage_overrides, submit


def _job(name: str) -> ModuleType:
    return load_job(name, "")


def test_every_job_parses_and_calls_one_flow_in_app() -> None:
    """A job defines `main` (and at most a `parser` its tests build) and imports parity only from
    parity.app: the job contract (jobkit) and the one flow that holds its body."""
    for path in sorted((REPO / "jobs").glob("*.py")):
        tree = ast.parse(path.read_text())
        functions = {node.name for node in tree.body if isinstance(node, ast.FunctionDef | ast.ClassDef)}
        assert functions <= {"main", "parser"}, (
            f"{path.name} defines {sorted(functions)}: its body belongs in parity.app"
        )
        imported = _parity_imports(tree)
        outside = sorted(m for m in imported if not m.startswith("parity.app."))
        assert not outside, (
            f"{path.name} imports {outside}: a job calls parity through its flow in parity.app"
        )
        flows = set(imported) - {"parity.app.jobkit"}
        assert len(flows) == 1, f"{path.name} calls {sorted(flows) or 'no flow'} in parity.app, not one flow"


def _parity_imports(tree: ast.Module) -> list[str]:
    """The parity modules a module imports at its top level (`from parity.app import x` as parity.app.x)."""
    modules = []
    for node in tree.body:
        if isinstance(node, ast.Import):
            modules += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module == "parity.app":
            modules += [f"parity.app.{alias.name}" for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            modules.append(node.module)
    return [m for m in modules if m.split(".")[0] == "parity"]


@pytest.mark.integration
def test_unknown_conf_key_fails_before_spark_starts(tmp_path: Path) -> None:
    run = submit(
        "build_features", storage_overrides(tmp_path) + ["feature_sets.customer_activity.lookbak_days=3"]
    )
    assert run.returncode == 2
    assert run.error_lines == [run.stderr.strip()]  # exactly one line, and it is the error
    assert "unknown conf key 'feature_sets.customer_activity.lookbak_days'" in run.stderr
    assert not (tmp_path / "data").exists()


@pytest.mark.integration
def test_bad_job_arguments_fail_before_spark_starts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = submit(
        "build_features", storage_overrides(tmp_path), extra_job_args=["--backfill", "--from", "2026-02-01"]
    )
    assert run.returncode == 2
    assert (
        run.error_lines == [run.stderr.strip()] and "--backfill needs --from DAY and --to DAY" in run.stderr
    )
    job = _job("build_features")
    for args, message in (
        (
            ["--backfill", "--from", "2026-02-09", "--to", "2026-02-01"],
            "--from 2026-02-09 is after --to 2026-02-01",
        ),
        (["--from", "2026-02-01", "--to", "2026-02-02"], "--from and --to only go with --backfill"),
        (["--backfill", "--from", "Feb 1", "--to", "2026-02-02"], "'Feb 1' is not a day (YYYY-MM-DD)"),
        (
            ["--full-refresh", "--backfill", "--from", "2026-02-01", "--to", "2026-02-02"],
            "exclude each other",
        ),
        (["--feature-set", "churn_risk"], "no declared feature set(s) churn_risk"),
    ):
        assert job.main([*set_args(storage_overrides(tmp_path)), *args]) == 2, args
        err = capsys.readouterr().err.strip()
        assert err.count("\n") == 0 and message in err, err
    assert not (tmp_path / "data").exists()


@pytest.mark.integration
def test_unknown_job_name_lists_the_jobs(tmp_path: Path) -> None:
    run = submit("build_featurez", storage_overrides(tmp_path))
    assert run.returncode == 2
    assert run.stderr.strip().count("\n") == 0
    assert "unknown job 'build_featurez'" in run.stderr and "build_features" in run.stderr
    assert not (tmp_path / "data").exists()


def test_missing_required_column_fails_before_any_write(
    spark: SparkSession, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    overrides = storage_overrides(tmp_path) + TEST_SPARK + ["data.customers=40", "data.days=60"]
    settings = load_settings(CONF_DIR, overrides=overrides)
    catalog = Catalog(spark, settings)
    catalog.write(sample_data.generate_customers(spark, settings.data), settings.tables.raw_customers)
    catalog.write(
        sample_data.generate_events(spark, settings.data).drop("amount"), settings.tables.raw_events
    )

    args = [a for item in overrides for a in ("--set", item)]
    code = _job("build_features").main(args)

    err = capsys.readouterr().err.strip()
    assert code == 1
    assert err.count("\n") == 0 and err.startswith("error: build_features:")
    assert "raw.events: missing required column(s) amount" in err
    for name in (
        "features.customer_activity",
        "features.customer_profile",
        "quarantine.events",
        "quarantine.customers",
    ):
        assert not catalog.exists(name), f"{name} was written by a failed job"
    audit = sorted(catalog.read(settings.tables.audit_runs).collect(), key=lambda r: r.ended_at is not None)
    assert [(r.job, r.status) for r in audit] == [("build_features", "started"), ("build_features", "failed")]
    assert (
        audit[0].run_id == audit[1].run_id and audit[0].ended_at is None
    )  # the row appended before the first write
    assert "amount" in audit[1].error and json.loads(audit[1].summary)["status"] == "failed"


def test_a_job_failing_after_some_writes_leaves_every_table_as_it_was(
    spark: SparkSession, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    overrides = storage_overrides(tmp_path) + TEST_SPARK
    settings = load_settings(CONF_DIR, overrides=overrides)
    Catalog(spark, settings).write(spark.range(4), "features.customer_activity")

    def body(ctx: JobContext) -> None:
        ctx.catalog.write(spark.range(40), "features.customer_activity")
        ctx.catalog.merge(spark.range(50), "features.customer_profile", keys=["id"])
        raise RuntimeError("the third write went wrong")

    code = run_job("two_writes", [a for item in overrides for a in ("--set", item)], body, conf_dir=CONF_DIR)

    assert code == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: two_writes: RuntimeError: the third write went wrong (rolled back")
    catalog = Catalog(spark, settings)
    assertDataFrameEqual(catalog.read("features.customer_activity"), spark.range(4))
    assert not catalog.exists("features.customer_profile")
    audit = catalog.read(settings.tables.audit_runs).collect()
    assert sorted((r.job, r.status, r.outputs) for r in audit) == [
        ("two_writes", "failed", []),
        ("two_writes", "started", []),
    ]


@pytest.mark.integration
def test_a_failing_submitted_job_prints_exactly_one_error_line(tmp_path: Path) -> None:
    run = submit("build_training_set", storage_overrides(tmp_path), extra_job_args=["--model", "churn"])
    assert run.returncode == 1
    assert run.stderr.strip().splitlines() == run.error_lines
    assert len(run.error_lines) == 1 and "table raw.labels does not exist" in run.error_lines[0]
    assert not (tmp_path / "data" / "training").exists()


@pytest.mark.integration
def test_extra_arguments_cannot_replace_the_jars_or_the_master(tmp_path: Path) -> None:
    run = submit(
        "build_features",
        [*storage_overrides(tmp_path), "data.customers=10"],
        options=SubmitOptions(extra=["--jars", "x.jar"]),
    )
    assert run.returncode == 2
    assert run.stderr.strip().splitlines() == run.error_lines
    assert "'--jars' would replace what parity sets" in run.error_lines[0]


# A command's whole run and its rollback (make test); the inner loop keeps the job contract's unit test above.
@pytest.mark.integration
def test_send_requests_runs_under_the_job_contract(
    spark: SparkSession, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`parity send-requests` appends one commit and records its run in audit.runs; a failure
    after its append rolls the append back and records the failed run."""
    from parity.app import cli

    overrides = storage_overrides(tmp_path) + TEST_SPARK + ["data.customers=20"]
    settings = load_settings(CONF_DIR, overrides=overrides)
    catalog = Catalog(spark, settings)
    catalog.write(sample_data.generate_customers(spark, settings.data), settings.tables.raw_customers)
    argv = ["send-requests", "--conf-dir", str(CONF_DIR), "--model", "churn", *set_args(overrides)]
    argv += ["--count", "5", "--malformed", "1", "--at", "2026-06-01T00:00:00"]

    assert cli.main(argv) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert (summary["job"], summary["model"], summary["status"]) == ("send_requests", "churn", "succeeded")
    assert summary["outputs"] == [{"table": "raw.churn_requests", "version": 0}]
    assert summary["counts"] == {"requests.out": 6} and summary["at"] == "2026-06-01 00:00:00"
    assert catalog.read("raw.churn_requests").count() == 6

    def broken(self: Catalog, name: str, version: int) -> dict[str, int]:
        raise RuntimeError(f"no metrics for {name}@{version}")

    monkeypatch.setattr(Catalog, "operation_metrics", broken)  # fails after the second run's append
    assert cli.main(argv) == 1
    err = capsys.readouterr().err.strip()
    assert (
        err
        == "error: send_requests: RuntimeError: no metrics for raw.churn_requests@1 (rolled back raw.churn_requests)"
    )
    assert catalog.read("raw.churn_requests").count() == 6  # the first run's requests, and no more
    audit = catalog.read(settings.tables.audit_runs).collect()
    assert sorted((r.job, r.status, r.model) for r in audit) == [
        ("send_requests", status, "churn") for status in ("failed", "started", "started", "succeeded")
    ]
    inputs = {i.table for r in audit if r.status == "succeeded" for i in r.inputs}
    assert inputs == {settings.tables.raw_customers}
