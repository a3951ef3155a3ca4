"""Governance: the promotion gate refuses on each of its checks, approvals and rollbacks are
recorded, and the audit tables take appends only."""

from __future__ import annotations

import datetime as dt
import importlib
import importlib.util
import json
import linecache
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest
import requests
from mlflow.tracking import MlflowClient
from pyspark.sql import SparkSession
from sklearn.metrics import roc_auc_score, root_mean_squared_error

from parity.app import cli
from parity.core.catalog import Catalog
from parity.core.conf import ConfError, FeatureSetDecl, load_settings
from parity.core.hashing import HASH_SCHEME_KEY, SCHEME
from parity.governance import configure_mlflow
from parity.governance.gate import approval_check
from parity.governance.lineage import AuditTableError, RunRecord, append_audit
from parity.governance.lineage_query import Node, as_table, runs_from_rows, unfinished, walk
from parity.governance.model_events import (
    APPROVED,
    PROMOTED,
    REGISTERED,
    ROLLED_BACK,
    IdentityError,
    ModelEvent,
    append_events,
    champions,
    current_identity,
    read_events,
)
from parity.model.code_artifact import CodeArtifactError, check_code_artifact, code_record, write_wheel
from parity.model.spec import FeatureSpec, TransformCodeChangedError, check_transform_code
from parity.training.learners import holdout_metric
from tests.conftest import TEST_SPARK, PipelineRun
from tests.support import CONF_DIR, free_port, load_job, set_args, storage_overrides

APPEND_ONLY_REFUSAL = "DELTA_CANNOT_MODIFY_APPEND_ONLY"


def _event(kind: str, version: str, actor: str = "ana", **fields: Any) -> ModelEvent:
    return ModelEvent(kind, "churn", "parity_churn", version, actor, "dev", "run", **fields)


def test_audit_tables_refuse_delete_update_and_overwrite(spark: SparkSession, tmp_path: Path) -> None:
    settings = load_settings(CONF_DIR, overrides=storage_overrides(tmp_path) + TEST_SPARK)
    catalog = Catalog(spark, settings)
    record = RunRecord("r1", "build_features", "dev", "c", "g", "h", dt.datetime(2026, 6, 1))
    append_audit(
        catalog, record.to_frame(spark, started=True), settings.tables.audit_runs, nullable=("ended_at",)
    )
    append_events(catalog, [_event(REGISTERED, "1")], settings.tables.audit_model_events)
    for table in (settings.tables.audit_runs, settings.tables.audit_model_events):
        path, before = catalog.path(table), catalog.read(table).collect()
        for statement in (f"DELETE FROM delta.`{path}`", f"UPDATE delta.`{path}` SET env = 'changed'"):
            with pytest.raises(Exception, match=APPEND_ONLY_REFUSAL):
                spark.sql(statement)
        with pytest.raises(Exception, match=APPEND_ONLY_REFUSAL):
            catalog.write(catalog.read(table).limit(0), table)  # an overwrite
        assert sorted(catalog.read(table).collect()) == sorted(before)
    # Appends still land: the run's closing row next to its started row.
    record.status, record.ended_at = "succeeded", dt.datetime(2026, 6, 1, 0, 5)
    append_audit(catalog, record.to_frame(spark), settings.tables.audit_runs)
    rows = catalog.read(settings.tables.audit_runs).orderBy("status").collect()
    assert [(r.run_id, r.status, r.ended_at) for r in rows] == [
        ("r1", "started", None),
        ("r1", "succeeded", dt.datetime(2026, 6, 1, 0, 5)),
    ]
    # Someone turns the protection off: no job appends to the table again until it is reviewed.
    spark.sql(
        f"ALTER TABLE delta.`{catalog.path(settings.tables.audit_runs)}` "
        "SET TBLPROPERTIES ('delta.appendOnly' = 'false')"
    )
    with pytest.raises(
        AuditTableError, match=r"audit\.runs has delta\.appendOnly=false: its protection was turned off"
    ):
        append_audit(catalog, record.to_frame(spark, started=True), settings.tables.audit_runs)


def test_the_champions_follow_promotions_and_rollbacks() -> None:
    events = [
        _event(REGISTERED, "1"),
        _event(PROMOTED, "1"),
        _event(APPROVED, "2", actor="ben"),
        _event(PROMOTED, "2"),
        _event(PROMOTED, "3"),
    ]
    assert champions(events) == ["1", "2", "3"]
    assert champions([*events, _event(ROLLED_BACK, "2", previous_version="3")]) == ["1", "2"]
    assert champions([*events, _event(ROLLED_BACK, "2"), _event(ROLLED_BACK, "1")]) == ["1"]
    assert champions([_event(REGISTERED, "1")]) == []


def test_an_approval_counts_only_when_required_and_given_by_someone_other_than_the_trainer(
    settings: Any,
) -> None:
    dev = settings
    prod = load_settings(
        CONF_DIR, overrides=[f"storage.root={settings.storage.root}", "governance.require_approval=true"]
    )
    assert approval_check(dev, [], "2", "ana").passed
    by_trainer = [_event(APPROVED, "2", actor="ana", reason="mine")]
    assert not approval_check(prod, by_trainer, "2", "ana").passed
    assert not approval_check(
        prod, [_event(APPROVED, "1", actor="ben", reason="another version")], "2", "ana"
    ).passed
    given = approval_check(
        prod, [*by_trainer, _event(APPROVED, "2", actor="ben", reason="read the validation")], "2", "ana"
    )
    assert given.passed and "approved by ben" in given.detail and "read the validation" in given.detail


def test_holdout_metrics_are_the_sweeps_metrics() -> None:
    labels, predicted = np.array([0, 1, 1, 0, 1]), np.array([0.2, 0.7, 0.4, 0.5, 0.9])
    assert holdout_metric("auc", labels, predicted) == pytest.approx(roc_auc_score(labels, predicted))
    assert holdout_metric("rmse", labels, predicted) == pytest.approx(
        root_mean_squared_error(labels, predicted)
    )
    with pytest.raises(ValueError, match="both classes"):
        holdout_metric("auc", np.array([1, 1]), np.array([0.3, 0.6]))


def test_a_promotion_metric_must_fit_the_task() -> None:
    with pytest.raises(
        ConfError,
        match=r"promotion\.metric is rmse, which a binary model is not measured by; use one of auc, log_loss",
    ):
        load_settings(CONF_DIR, overrides=["models.churn.promotion.metric=rmse"])


# --- the gate on the pipeline's tables, through the jobs -----------------------------------------


def _job(name: str) -> ModuleType:
    return load_job(name, "_governance")


class Governed:
    """A copy of the pipeline's tables and MLflow store, where the jobs run in process."""

    def __init__(self, pipeline: PipelineRun, root: Path, capsys: pytest.CaptureFixture[str]) -> None:
        for part in ("data", "mlflow.db"):
            copy = shutil.copytree if (pipeline.root / part).is_dir() else shutil.copy
            copy(pipeline.root / part, root / part)
        # New runs' artifacts go where the copied experiment says: the pipeline's folder, read-only here.
        self.overrides = [
            f"storage.root={root}/data",
            f"mlflow.tracking_uri=sqlite:///{root}/mlflow.db",
            f"mlflow.artifact_root={pipeline.root}/mlartifacts",
            *[o for o in pipeline.overrides if o.startswith(("data.", "sweeps."))],
            *TEST_SPARK,
        ]
        self.capsys = capsys
        self.settings = load_settings(CONF_DIR, overrides=self.overrides)
        configure_mlflow(self.settings)
        self.name = self.settings.model("churn").registered_model

    def run(
        self, job: str, *args: str, extra: tuple[str, ...] = ()
    ) -> tuple[int, dict[str, Any] | None, str]:
        code = _job(job).main(["--model", "churn", *args, *set_args([*self.overrides, *extra])])
        out, err = self.capsys.readouterr()
        lines = out.strip().splitlines()
        return code, json.loads(lines[-1]) if code == 0 and lines else None, err.strip()

    def copy_of(self, version: str) -> str:
        """A new version: the same model, registered again (its run, manifest and spec)."""
        return str(MlflowClient().copy_model_version(f"models:/{self.name}/{version}", self.name).version)

    def champion(self) -> str:
        return str(MlflowClient().get_model_version_by_alias(self.name, "champion").version)


@pytest.fixture()
def governed(pipeline: PipelineRun, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Governed:
    return Governed(pipeline, tmp_path, capsys)


def test_the_gate_refuses_on_each_check_and_records_every_decision(
    governed: Governed, pipeline: PipelineRun, spark: SparkSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    champion = pipeline.summary("train")["model_version"]
    assert governed.champion() == champion  # the pipeline promoted its trained version through the gate
    candidate = governed.copy_of(champion)

    # validation: too few labels after the candidate's training cutoff.
    code, _, err = governed.run(
        "promote", "--version", candidate, extra=("models.churn.promotion.min_labels=100000",)
    )
    assert (
        code == 1
        and "promotion refused: validation failed" in err
        and "promotion.min_labels is 100000" in err
    )
    assert "data_checks failed" not in err and "feature_spec failed" not in err

    # feature_spec: a transform the spec names is not the code it was trained with any more.
    transforms = importlib.import_module("parity.transforms")
    original = transforms.with_ratio

    def with_ratio(df: Any, **params: Any) -> Any:  # an edited transform: the same name, other code
        return original(df, **params)

    with monkeypatch.context() as edited:
        edited.setattr(transforms, "with_ratio", with_ratio)
        code, _, err = governed.run("promote", "--version", candidate)
    assert code == 1 and "feature_spec failed (code changed: customer_activity (trained with" in err
    assert "validation failed" not in err

    # approval: the environment requires one, and only someone other than the trainer may give it.
    prod = ("governance.require_approval=true",)
    code, _, err = governed.run("promote", "--version", candidate, extra=prod)
    assert code == 1 and "promotion refused: approval failed (no approval of version" in err
    code, _, err = governed.run("approve", "--version", candidate, "--reason", "my own model")
    assert (
        code == 1 and f"trained version {candidate} of {governed.name}: someone else must approve it" in err
    )
    with (
        monkeypatch.context() as someone_else
    ):  # without an authenticating tracking server, the OS user approves
        someone_else.setenv("USER", "reviewer")
        someone_else.setenv("LOGNAME", "reviewer")
        code, approved, err = governed.run(
            "approve", "--version", candidate, "--reason", "read the validation"
        )
    assert code == 0, err
    assert approved is not None and approved["approved_by"] == "reviewer"
    code, promoted, err = governed.run("promote", "--version", candidate, extra=prod)
    assert code == 0, err
    assert (
        promoted is not None
        and promoted["outcome"] == "promoted"
        and promoted["previous_champion"] == champion
    )
    assert {c["check"]: c["passed"] for c in promoted["checks"]} == {
        "validation": True,
        "data_checks": True,
        "feature_spec": True,
        "approval": True,
    }
    assert governed.champion() == candidate
    tags = MlflowClient().get_model_version(governed.name, candidate).tags
    assert tags["parity.gate"] == "promoted" and tags["parity.approved_by"] == "reviewer"
    assert (
        tags["parity.gate.validation"].startswith("passed: auc ")
        and f"champion version {champion}" in tags["parity.gate.validation"]
    )

    # A rollback moves the champion back, and cannot go past the first champion.
    code, rolled, err = governed.run("rollback", "--reason", "a bad week")
    assert code == 0 and rolled is not None and rolled["champion"] == champion, err
    assert governed.champion() == champion
    code, _, err = governed.run("rollback")
    assert code == 1 and f"version {champion} is the first champion" in err

    events = read_events(
        Catalog(spark, governed.settings), governed.settings.tables.audit_model_events, governed.name
    )
    assert [(e.event, e.version) for e in events if e.version == candidate or e.event != "registered"] == [
        ("promoted", champion),
        ("refused", candidate),
        ("refused", candidate),
        ("refused", candidate),
        ("approved", candidate),
        ("promoted", candidate),
        ("rolled_back", champion),
    ]
    refused = [e for e in events if e.event == "refused"]
    assert [[c.check for c in e.checks if not c.passed] for e in refused] == [
        ["validation"],
        ["feature_spec"],
        ["approval"],
    ]


def test_a_model_trained_on_a_set_that_failed_its_data_checks_is_refused(governed: Governed) -> None:
    strict = (
        "models.churn.training.checks.max_without_features=0.0",
    )  # the small data's sets miss some features
    code, trained, err = governed.run("train", extra=strict)
    assert code == 0 and trained is not None, err
    assert trained["data_checks"]["without_features"]["passed"] is False
    code, _, err = governed.run("promote", "--version", trained["model_version"], extra=strict)
    assert code == 1 and "promotion refused: data_checks failed (failed without_features: " in err
    assert re.search(r"without_features [0-9.]+% \(max 0\.00%, [0-9]+ of [0-9]+ labels\)", err)
    assert "validation failed" not in err and governed.champion() != trained["model_version"]


# --- the code hash follows what a transform reaches ------------------------------------------------

TEAM_MODULES = {
    "__init__.py": "",
    "helpers.py": "FACTOR = 2\n\n\ndef scale(column):\n    return column * FACTOR\n",
    "unrelated.py": "def shout(text):\n    return text.upper()\n",
    "transforms.py": (
        "from teamfeat import helpers\n\n\n"
        "def with_scaled_limit(df):\n    return df.withColumn('scaled_limit', helpers.scale(df['credit_limit']))\n"
    ),
}


def _team_spec(settings: Any) -> FeatureSpec:
    declared = settings.feature_sets["customer_profile"].model_dump(mode="json")
    decl = FeatureSetDecl.model_validate(
        {**declared, "name": "team_profile", "transforms": [{"fn": "teamfeat.transforms.with_scaled_limit"}]}
    )
    lookup = {
        "feature_set": decl.model_dump(mode="json"),
        "table": decl.table,
        "version": 0,
        HASH_SCHEME_KEY: SCHEME,
    }
    lookup |= {"code_hash": decl.code_hash(), "closure_hash": decl.closure_hash()}
    return FeatureSpec(
        entity="customer_id",
        timestamp="score_ts",
        feature_sets=[lookup],
        request_time=[],
        numeric=[],
        categorical=[],
        code_hash="",
    )


def _edit(package: Path, module: str, text: str) -> None:
    (package / f"{module}.py").write_text(text)
    linecache.checkcache()
    for name in (f"teamfeat.{module}", "teamfeat.transforms"):
        importlib.reload(importlib.import_module(name))


def test_editing_a_helper_a_transform_calls_refuses_the_model_and_editing_other_code_does_not(
    settings: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    package = tmp_path / "teamfeat"
    package.mkdir()
    for name, text in TEAM_MODULES.items():
        (package / name).write_text(text)
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        spec = _team_spec(settings)
        check_transform_code(spec)  # as trained
        _edit(package, "unrelated", "def shout(text):\n    return text.upper() + '!'\n")
        check_transform_code(spec)  # code the transform never reaches
        _edit(
            package, "helpers", "FACTOR = 3\n\n\ndef scale(column):\n    return column * FACTOR\n"
        )  # a constant it reads
        with pytest.raises(TransformCodeChangedError, match=r"changed: team_profile \(trained with"):
            check_transform_code(spec)
        _edit(package, "helpers", "FACTOR = 2\n\n\ndef scale(column):\n    return column * FACTOR\n")
        check_transform_code(spec)  # as trained again
        _edit(
            package, "helpers", "FACTOR = 2\n\n\ndef scale(column):\n    return column * FACTOR + 0\n"
        )  # the helper's code
        with pytest.raises(TransformCodeChangedError, match=r"changed: team_profile \(trained with"):
            check_transform_code(spec)
        # The transform's own source did not change: only the closure sees the edit.
        assert (
            FeatureSetDecl.model_validate(spec.feature_sets[0]["feature_set"]).code_hash()
            == spec.feature_sets[0]["code_hash"]
        )
    finally:
        for name in [m for m in sys.modules if m == "teamfeat" or m.startswith("teamfeat.")]:
            del sys.modules[name]


def test_the_library_wheel_is_the_same_for_the_same_code_and_a_changed_one_is_refused(tmp_path: Path) -> None:
    first, second = write_wheel(tmp_path / "a"), write_wheel(tmp_path / "b")
    assert first.read_bytes() == second.read_bytes()
    recorded = code_record(first)
    names = zipfile.ZipFile(first).namelist()
    assert (
        "parity/model/code_artifact.py" in names and f"parity-{recorded['parity']}.dist-info/RECORD" in names
    )
    assert check_code_artifact(first.parent, recorded) == first
    assert check_code_artifact(None, {}) is None  # a model packaged before models carried their code
    with zipfile.ZipFile(second, "a") as wheel:
        wheel.writestr("parity/extra.py", "print('not what was trained')\n")
    with pytest.raises(
        CodeArtifactError, match=rf"has digest [0-9a-f]{{16}}, not the {recorded['digest']} recorded"
    ):
        check_code_artifact(second.parent, recorded)
    with pytest.raises(CodeArtifactError, match="is gone"):
        check_code_artifact(tmp_path / "nowhere", recorded)


def test_reproduce_rebuilds_the_training_set_with_the_code_the_model_carries(
    governed: Governed, pipeline: PipelineRun
) -> None:
    version = pipeline.summary("train")["model_version"]
    argv = ["reproduce", "--model", "churn", "--version", version, *set_args(governed.overrides)]
    code = cli.main(argv)
    out, err = governed.capsys.readouterr()
    assert code == 0, err[-3000:]
    result = json.loads(out.strip().splitlines()[-1])
    assert result["reproduced"] is True and result["rebuilt_digest"] == result["recorded_digest"]
    assert (
        result["training_set"]
        == f"training.churn@{pipeline.summary('build_training_set')['outputs'][-1]['version']}"
    )
    assert (
        "/build/reproduce/churn-v" in result["parity_from"]
    )  # parity came from the model's wheel, not this checkout

    # An input version the manifest names is gone: reproduce says which.
    shutil.rmtree(Path(governed.settings.storage.root) / "raw" / "labels")
    code = cli.main(argv)
    out, err = governed.capsys.readouterr()
    assert code == 1 and "error: reproduce: input raw.labels@0 is gone" in err


# --- who acts: the user an authenticating tracking server accepted ---------------------------------

AUTH_INI = """[mlflow]
default_permission = EDIT
database_uri = sqlite:///{folder}/basic_auth.db
admin_username = admin
admin_password = admin-password-1234
authorization_function = mlflow.server.auth:authenticate_request_basic_auth
"""


@pytest.fixture()
def auth_server(tmp_path: Path) -> Iterator[str]:
    """`mlflow server --app-name basic-auth` (users ana and ben) on a SQLite store of its own."""
    (tmp_path / "auth.ini").write_text(AUTH_INI.format(folder=tmp_path))
    port = free_port()
    env = {
        **os.environ,
        "MLFLOW_AUTH_CONFIG_PATH": str(tmp_path / "auth.ini"),
        "MLFLOW_FLASK_SERVER_SECRET_KEY": "test-only-secret",
    }
    proc = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "mlflow"),
            "server",
            "--app-name",
            "basic-auth",
            "--backend-store-uri",
            f"sqlite:///{tmp_path}/mlflow.db",
            "--default-artifact-root",
            str(tmp_path / "artifacts"),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        stdout=(tmp_path / "server.log").open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
        env=env,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while not _answers(url):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(
                    f"the basic-auth server did not come up:\n{(tmp_path / 'server.log').read_text()[-3000:]}"
                )
            time.sleep(1)
        for user in ("ana", "ben"):
            created = requests.post(
                f"{url}/api/2.0/mlflow/users/create",
                json={"username": user, "password": f"{user}-password-1234"},
                auth=("admin", "admin-password-1234"),
                timeout=30,
            )
            assert created.ok, created.text
        yield url
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)


def _answers(url: str) -> bool:
    try:
        return requests.get(f"{url}/health", timeout=2).ok
    except requests.RequestException:
        return False


def _as(monkeypatch: pytest.MonkeyPatch, user: str, password: str | None = None) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", user)
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", password or f"{user}-password-1234")


@pytest.mark.integration
def test_the_approver_is_the_user_the_tracking_server_authenticated(
    auth_server: str,
    spark: SparkSession,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    overrides = [
        f"storage.root={tmp_path}/data",
        f"mlflow.tracking_uri={auth_server}",
        "governance.require_authenticated_identity=true",
        *TEST_SPARK,
    ]
    settings = load_settings(CONF_DIR, overrides=overrides)
    monkeypatch.setenv("USER", "ben")  # the OS user's name counts for nothing here
    monkeypatch.setenv("LOGNAME", "ben")
    with pytest.raises(IdentityError, match="requires an identity the tracking server authenticates"):
        current_identity(auth_server, authenticated=True)  # no credentials given
    _as(monkeypatch, "ana", "not-her-password")
    with pytest.raises(IdentityError, match="refused the credentials of ana"):
        current_identity(auth_server)
    _as(monkeypatch, "ana")
    assert current_identity(auth_server, authenticated=True) == "ana"

    # ana registers a version (as her train job would), and the event records her as its trainer.
    configure_mlflow(settings)
    name = settings.model("churn").registered_model
    MlflowClient().create_registered_model(name)
    run = MlflowClient().create_run(
        MlflowClient().get_experiment_by_name(settings.mlflow.experiment).experiment_id
    )
    version = str(
        MlflowClient()
        .create_model_version(name, source=f"runs:/{run.info.run_id}/model", run_id=run.info.run_id)
        .version
    )
    registered = ModelEvent(
        REGISTERED, "churn", name, version, current_identity(auth_server), settings.env, "train-run"
    )
    append_events(Catalog(spark, settings), [registered], settings.tables.audit_model_events)

    approve = _job("approve")
    argv = [
        "--model",
        "churn",
        "--version",
        version,
        "--reason",
        "checked the gate's numbers",
        *set_args(overrides),
    ]
    assert approve.main(argv) == 1
    assert f"ana trained version {version} of {name}: someone else must approve it" in capsys.readouterr().err
    _as(monkeypatch, "ben")
    assert approve.main(argv) == 0, capsys.readouterr().err
    events = read_events(Catalog(spark, settings), settings.tables.audit_model_events, name)
    assert [(e.event, e.actor) for e in events] == [("registered", "ana"), ("approved", "ben")]
    assert MlflowClient().get_model_version(name, version).tags["parity.approved_by"] == "ben"


# --- lineage you can query -----------------------------------------------------------------------


def _audit_row(
    run_id: str, job: str, reads: list[tuple[str, int]], writes: list[tuple[str, int]], **fields: Any
) -> dict[str, Any]:
    """An audit.runs row of a succeeded run, but for the `fields` given (status, model, model_version)."""
    status = fields.get("status", "succeeded")
    row = {
        "run_id": run_id,
        "job": job,
        "status": status,
        "model": None,
        "model_version": None,
        "code_hash": f"code-{job}",
        "git_sha": "g",
        "mlflow_run_id": "mlflow-1" if job == "train" else None,
        "started_at": dt.datetime(2026, 6, 1),
        "ended_at": None if status == "started" else dt.datetime(2026, 6, 2),
        "inputs": [{"table": t, "version": v} for t, v in reads],
        "outputs": [{"table": t, "version": v} for t, v in writes],
        "summary": "{}",
    }
    return {**row, **fields}


def test_lineage_walks_the_runs_both_ways_and_lists_unfinished_runs() -> None:
    rows = [
        _audit_row("gen", "generate_data", [], [("raw.events", 0), ("raw.labels", 0)]),
        _audit_row("feat", "build_features", [("raw.events", 0)], [("features.a", 0)]),
        _audit_row(
            "feat-again", "build_features", [("raw.events", 0)], [("features.a", 1)], status="failed"
        ),  # rolled back: not lineage
        _audit_row("ts", "build_training_set", [("raw.labels", 0), ("features.a", 0)], [("training.m", 0)]),
        _audit_row("train", "train", [("training.m", 0)], [], model="m", model_version="3"),
        _audit_row(
            "score",
            "score",
            [("features.a", 0), ("raw.customers", 0)],
            [("predictions.m", 0)],
            model="m",
            model_version="3",
        ),
        _audit_row("killed", "build_features", [], [], status="started"),
        _audit_row(
            "score", "score", [], [], status="started", model="m"
        ),  # the scoring run's own started row
    ]
    runs = runs_from_rows(rows)
    back = walk(runs, [Node("table", "predictions.m", "0")], "backwards")
    assert [(s.depth, s.run.run_id) for s in back] == [
        (1, "score"),
        (2, "feat"),
        (2, "train"),
        (3, "gen"),
        (3, "ts"),
    ]
    forward = walk(runs, [Node("table", "raw.events", "0")], "forwards")
    assert [(s.depth, s.run.run_id) for s in forward] == [(1, "feat"), (2, "score"), (2, "ts"), (3, "train")]
    assert [r.run_id for r in unfinished(runs)] == ["killed"]
    table = as_table(back, unfinished(runs))
    assert "model m v3" in table and "unfinished runs" in table and "killed" in table


def test_parity_lineage_on_the_pipelines_runs(
    governed: Governed, pipeline: PipelineRun, spark: SparkSession
) -> None:
    version = pipeline.summary("train")["model_version"]
    killed = RunRecord(
        "killed-run", "build_features", "dev", "c", "g", "h", dt.datetime(2026, 6, 1)
    )  # started, then killed -9
    append_audit(
        Catalog(spark, governed.settings),
        killed.to_frame(spark, started=True),
        governed.settings.tables.audit_runs,
    )

    assert (
        cli.main(
            [
                "lineage",
                "--model",
                "churn",
                "--version",
                version,
                "--format",
                "json",
                *set_args(governed.overrides),
            ]
        )
        == 0
    )
    back = json.loads(governed.capsys.readouterr().out)
    jobs = {step["job"]: step for step in back["steps"]}
    assert set(jobs) == {"train", "build_training_set", "build_features", "generate_data"}
    assert jobs["train"]["mlflow_run_id"] == pipeline.summary("train")["mlflow_run_id"]
    assert jobs["build_training_set"]["manifest"] == pipeline.summary("build_training_set")["manifest"]
    assert jobs["build_features"]["code_hash"] == pipeline.summary("build_features")["code_hash"]
    assert "raw.events@0" in jobs["build_features"]["read"]
    assert [run["run_id"] for run in back["unfinished"]] == ["killed-run"]

    assert (
        cli.main(
            ["lineage", "--table", "raw.events", "--version", "0", "--forward", *set_args(governed.overrides)]
        )
        == 0
    )
    table = governed.capsys.readouterr().out
    for job in ("build_features", "build_training_set", "train", "promote", "score"):
        assert f" {job} " in table, job
    assert f"model churn v{version}" in table and "unfinished runs" in table
