"""The exploratory notebook, executed headless as a user would, computes the job's features."""

from __future__ import annotations

import ast
import importlib
import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

import nbclient
import nbformat
import pytest
from jupyter_client.manager import KernelManager
from mlflow.tracking import MlflowClient
from pyspark.sql import SparkSession
from pyspark.sql import functions as F
from pyspark.testing import assertDataFrameEqual

from parity import features
from parity.core.catalog import table_path
from parity.core.versioned import current_rows
from tests.support import CONF_DIR, REPO

pytestmark = pytest.mark.integration  # runs jobs through spark-submit (not in make test-fast)

if TYPE_CHECKING:
    from tests.conftest import PipelineRun

NOTEBOOK = REPO / "notebooks" / "explore_features.ipynb"
MODEL_NOTEBOOK = REPO / "notebooks" / "explore_model.ipynb"
ACTIVITY = "customer_activity"
SAMPLE = 0.5
KERNEL = "python3"
NOTEBOOK_SPARK = [
    "spark.master=local[2]",
    "spark.conf.spark.sql.shuffle.partitions=2",
    "spark.conf.spark.ui.enabled=false",
]


def _parameters_cell(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    tagged = [cell for cell in nb.cells if "parameters" in cell.get("metadata", {}).get("tags", [])]
    assert len(tagged) == 1, f"expected one cell tagged 'parameters', found {len(tagged)}"
    return tagged[0]


def _run_notebook(
    nb: nbformat.NotebookNode, *, conf_dir: Path, overrides: list[str], export_path: Path, feature_set: str
) -> None:
    _execute(
        nb,
        conf_dir=str(conf_dir),
        env="dev",
        overrides=overrides,
        feature_set=feature_set,
        sample_fraction=SAMPLE,
        export_path=str(export_path),
    )


def _execute(nb: nbformat.NotebookNode, **parameters: object) -> None:
    """Run a notebook headless as a user would, its parameters cell replaced by `parameters`."""
    _parameters_cell(nb).source = "\n".join(f"{name} = {value!r}" for name, value in parameters.items())
    client = nbclient.NotebookClient(
        nb, timeout=600, kernel_name=KERNEL, resources={"metadata": {"path": str(REPO / "notebooks")}}
    )
    client.execute()


def _code(notebook: Path) -> ast.Module:
    """A notebook's code cells as one module (IPython magics and shell lines left out)."""
    cells = [cell.source for cell in nbformat.read(notebook, as_version=4).cells if cell.cell_type == "code"]
    lines = [line for cell in cells for line in cell.splitlines() if not line.lstrip().startswith(("%", "!"))]
    return ast.parse("\n".join(lines))


@pytest.mark.parametrize("notebook", [NOTEBOOK, MODEL_NOTEBOOK], ids=lambda p: p.stem)
def test_notebook_uses_the_installed_package_as_it_is(notebook: Path) -> None:
    """The notebook's code imports parity as installed (no edit of sys.path, no import by file),
    and every name it takes from parity, and every attribute it reads from a parity module it
    imported, exists in the library: a renamed API breaks this test, not a user's notebook."""
    tree = _code(notebook)
    taken: list[str] = []
    modules: dict[str, ModuleType] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "sys":
            assert node.attr != "path", f"{notebook.name} edits sys.path"
        if isinstance(node, ast.Import | ast.ImportFrom):
            assert not any(alias.name in {"importlib", "runpy"} for alias in node.names), (
                f"{notebook.name} imports by file"
            )
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "parity":
            source = importlib.import_module(node.module or "")
            for alias in node.names:
                taken.append(f"{node.module}.{alias.name}")
                if not hasattr(source, alias.name) and importlib.util.find_spec(
                    f"{node.module}.{alias.name}"
                ):
                    importlib.import_module(
                        f"{node.module}.{alias.name}"
                    )  # a submodule, as `from ... import` finds it
                assert hasattr(source, alias.name), f"{notebook.name}: {node.module} has no {alias.name}"
                if isinstance(value := getattr(source, alias.name), ModuleType):
                    modules[alias.asname or alias.name] = value
    assert any(name.startswith("parity.core.session.get_spark") for name in taken), (
        f"{notebook.name} imports no parity session"
    )
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in modules:
            module = modules[node.value.id]
            assert hasattr(module, node.attr), (
                f"{notebook.name} reads {module.__name__}.{node.attr}, which is gone"
            )


def test_notebook_features_equal_the_jobs(
    pipeline: PipelineRun, spark: SparkSession, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The kernel must be this venv's Python, which has parity installed (no sys.path hacks).
    kernel_cmd = KernelManager(kernel_name=KERNEL).format_kernel_cmd()
    assert kernel_cmd[0] == sys.executable, (
        f"kernel '{KERNEL}' would run {kernel_cmd[0]}, not {sys.executable}"
    )
    monkeypatch.setenv("TZ", "UTC")  # inherited by the kernel

    nb = nbformat.read(NOTEBOOK, as_version=4)
    assert "sys.path" not in "\n".join(cell.source for cell in nb.cells)
    export_path = tmp_path / "nb_features"
    _run_notebook(
        nb,
        conf_dir=CONF_DIR,
        overrides=pipeline.overrides + NOTEBOOK_SPARK,
        export_path=export_path,
        feature_set=ACTIVITY,
    )
    assert any(
        o.get("output_type") == "display_data" and "image/png" in o.get("data", {})
        for c in nb.cells
        for o in c.get("outputs", [])
    )

    settings = pipeline.settings()
    decl = settings.feature_sets[ACTIVITY]
    from_job = features.sample_entities(
        current_rows(spark.read.format("delta").load(table_path(settings, decl.table))).drop(
            features.FEATURE_DATE
        ),
        decl,
        fraction=SAMPLE,
    )
    from_notebook = spark.read.parquet(str(export_path / ACTIVITY))
    assert from_notebook.columns == from_job.columns
    assert 0 < from_job.count() < spark.read.format("delta").load(table_path(settings, decl.table)).count()
    assertDataFrameEqual(from_notebook, from_job)


def test_model_notebook_builds_the_jobs_training_set_and_logs_one_trial(
    pipeline: PipelineRun, spark: SparkSession, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TZ", "UTC")  # inherited by the kernel
    nb = nbformat.read(MODEL_NOTEBOOK, as_version=4)
    export_path = tmp_path / "nb_training"
    overrides = pipeline.overrides + NOTEBOOK_SPARK
    _execute(
        nb,
        conf_dir=str(CONF_DIR),
        env="dev",
        overrides=overrides,
        model_name="churn",
        sample_fraction=SAMPLE,
        export_path=str(export_path),
    )
    assert any(
        o.get("output_type") == "display_data" and "image/png" in o.get("data", {})
        for c in nb.cells
        for o in c.get("outputs", [])
    )

    # The sample's training set is the job's, for the same label keys.
    settings = pipeline.settings()
    model = settings.model("churn")
    version = pipeline.summary("build_training_set")["outputs"][0]["version"]
    job_set = (
        spark.read.format("delta")
        .option("versionAsOf", version)
        .load(table_path(settings, model.training_set()))
    )
    from_job = features.sample_keys(job_set, list(model.labels.keys), fraction=SAMPLE)
    # The job held its newest labels out for the promotion gate; the notebook explores them all.
    held_out_after = pipeline.summary("build_training_set")["labels_until"]
    from_notebook = spark.read.parquet(str(export_path / "churn")).filter(
        F.col(model.labels.time) <= F.lit(held_out_after).cast("timestamp")
    )
    assert from_notebook.columns == from_job.columns
    assert 0 < from_job.count() < job_set.count()
    assertDataFrameEqual(from_notebook, from_job)

    # One trial, logged to MLflow as an exploratory run under the model's experiment.
    client = MlflowClient(settings.mlflow.tracking_uri, settings.mlflow.tracking_uri)
    runs = client.search_runs(
        [client.get_experiment_by_name(settings.mlflow.experiment).experiment_id],
        filter_string="tags.`parity.notebook` = 'explore_model'",
    )
    assert (
        len(runs) == 1
        and runs[0].data.tags["parity.model"] == "churn"
        and "best_val_auc" in runs[0].data.metrics
    )
    trials = client.search_runs(
        [runs[0].info.experiment_id], filter_string=f"tags.mlflow.parentRunId = '{runs[0].info.run_id}'"
    )
    assert len(trials) == 1 and trials[0].info.status == "FINISHED"
