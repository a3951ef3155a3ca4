"""The exploratory notebook, executed headless as a user would, computes the job's features."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import nbclient
import nbformat
import pytest
from jupyter_client.manager import KernelManager
from pyspark.sql import SparkSession
from pyspark.testing import assertDataFrameEqual

from parity import features
from parity.core.catalog import table_path
from tests.support import CONF_DIR, REPO

pytestmark = pytest.mark.integration  # runs jobs through spark-submit (not in make test-fast)

if TYPE_CHECKING:
    from tests.conftest import PipelineRun

NOTEBOOK = REPO / "notebooks" / "explore_features.ipynb"
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


def _run_notebook(nb: nbformat.NotebookNode, *, conf_dir: Path, overrides: list[str], export_path: Path, feature_set: str) -> None:
    _parameters_cell(nb).source = "\n".join(
        [
            f"conf_dir = {str(conf_dir)!r}",
            'env = "dev"',
            f"overrides = {overrides!r}",
            f"feature_set = {feature_set!r}",
            f"sample_fraction = {SAMPLE}",
            f"export_path = {str(export_path)!r}",
        ]
    )
    client = nbclient.NotebookClient(
        nb, timeout=600, kernel_name=KERNEL, resources={"metadata": {"path": str(REPO / "notebooks")}}
    )
    client.execute()


def test_notebook_imports_the_installed_package() -> None:
    source = NOTEBOOK.read_text()
    assert "sys.path" not in source
    assert "import parity" in source or "from parity" in source


def test_notebook_features_equal_the_jobs(
    pipeline: PipelineRun, spark: SparkSession, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The kernel must be this venv's Python, which has parity installed (no sys.path hacks).
    kernel_cmd = KernelManager(kernel_name=KERNEL).format_kernel_cmd()
    assert kernel_cmd[0] == sys.executable, f"kernel '{KERNEL}' would run {kernel_cmd[0]}, not {sys.executable}"
    monkeypatch.setenv("TZ", "UTC")  # inherited by the kernel

    nb = nbformat.read(NOTEBOOK, as_version=4)
    assert "sys.path" not in "\n".join(cell.source for cell in nb.cells)
    export_path = tmp_path / "nb_features"
    _run_notebook(
        nb, conf_dir=CONF_DIR, overrides=pipeline.overrides + NOTEBOOK_SPARK, export_path=export_path, feature_set=ACTIVITY
    )
    assert any(o.get("output_type") == "display_data" and "image/png" in o.get("data", {}) for c in nb.cells for o in c.get("outputs", []))

    settings = pipeline.settings()
    decl = settings.feature_sets[ACTIVITY]
    from_job = features.sample_entities(
        spark.read.format("delta").load(table_path(settings, decl.table)).drop(features.FEATURE_DATE), decl, fraction=SAMPLE
    )
    from_notebook = spark.read.parquet(str(export_path / ACTIVITY))
    assert from_notebook.columns == from_job.columns
    assert 0 < from_job.count() < spark.read.format("delta").load(table_path(settings, decl.table)).count()
    assertDataFrameEqual(from_notebook, from_job)
