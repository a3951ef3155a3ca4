"""The library's shape, held by tests: rooms that import downwards only, no import cycles, small
modules, thin jobs, one home for code hashing, and every import path of the flat 0.1 layout
still valid (`tests/fixtures/flat_modules_0_1.json` lists what each old module exported)."""

from __future__ import annotations

import importlib
import inspect
import json
import os
import pkgutil
import shutil
import subprocess
import sys
from pathlib import Path

import grimp
import pytest

import parity
from parity.core.conf import LEARNER_NAMES
from parity.training.learners import LEARNERS
from tests.background import register, result
from tests.support import REPO

LIB = REPO / "lib" / "parity"
MAX_MODULE_LINES = 450
MAX_JOB_LINES = 70
# Names the old flat modules exported that moved to another room on purpose (a lower room
# cannot re-export them without importing upwards); each maps to its new home.
MOVED_ACROSS_ROOMS = {("features", "model_inputs"): "parity.training.inputs"}


def _modules() -> list[str]:
    return sorted(m.name for m in pkgutil.walk_packages(parity.__path__, "parity."))


def _lint_imports(lib: Path) -> subprocess.CompletedProcess[str]:
    """import-linter with the project's contracts, over the parity package in `lib`."""
    return subprocess.run(
        [
            str(Path(sys.executable).parent / "lint-imports"),
            "--config",
            str(REPO / ".importlinter"),
            "--no-cache",
        ],
        cwd=lib,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(lib)},
    )


def test_rooms_import_only_the_rooms_below_them() -> None:
    proc = _lint_imports(REPO / "lib")
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    contracts = (REPO / ".importlinter").read_text().count("[importlinter:contract:")
    assert f"{contracts} kept, 0 broken" in proc.stdout


def test_mlflow_outside_its_rooms_breaks_the_one_door_contract(tmp_path: Path) -> None:
    shutil.copytree(LIB, tmp_path / "parity", ignore=shutil.ignore_patterns("__pycache__"))
    with (tmp_path / "parity" / "app" / "training_run.py").open("a") as module:
        module.write("\nimport mlflow  # past governance.tracking\n")
    proc = _lint_imports(tmp_path)
    assert proc.returncode == 1 and "1 broken" in proc.stdout, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert (
        "Illegal imports of protected package mlflow" in proc.stdout
        and "parity.app.training_run -> mlflow" in proc.stdout
    )


def test_no_module_imports_itself_back_through_a_cycle() -> None:
    graph = grimp.build_graph("parity", cache_dir=None)
    cycles = [
        f"{importer} -> {imported} -> ... -> {importer}"
        for importer in sorted(graph.modules)
        for imported in sorted(graph.find_modules_directly_imported_by(importer))
        if imported != importer
        and not importer.startswith(imported + ".")
        and graph.chain_exists(importer=imported, imported=importer)
    ]
    assert not cycles, "\n".join(cycles)


def test_modules_and_jobs_stay_small() -> None:
    big = {
        str(p.relative_to(REPO)): n
        for p in LIB.rglob("*.py")
        if (n := len(p.read_text().splitlines())) > MAX_MODULE_LINES
    }
    assert not big, f"modules over {MAX_MODULE_LINES} lines: {big}"
    jobs = {
        p.name: n
        for p in (REPO / "jobs").glob("*.py")
        if (n := len(p.read_text().splitlines())) > MAX_JOB_LINES
    }
    assert not jobs, f"jobs over {MAX_JOB_LINES} lines (move the flow into lib): {jobs}"


def test_code_hashing_lives_in_one_module() -> None:
    hashing = LIB / "core" / "hashing.py"
    elsewhere = [
        str(p.relative_to(REPO))
        for p in LIB.rglob("*.py")
        if p != hashing and ("getsource" in p.read_text() or "hashlib" in p.read_text())
    ]
    assert not elsewhere, f"code hashing outside parity.core.hashing: {elsewhere}"


def test_every_learner_conf_knows_has_a_factory_and_no_other() -> None:
    assert set(LEARNERS) == set(LEARNER_NAMES)
    for name, learner in LEARNERS.items():
        info = LEARNER_NAMES[name]
        assert (learner.mode, learner.hyperparameters) == (info.mode, info.hyperparameters)


_IMPORT_EVERY_MODULE = """
import importlib, json, os, pkgutil, sys
import parity
failed = {}
for info in sorted(pkgutil.walk_packages(parity.__path__, "parity."), key=lambda m: m.name):
    try:
        importlib.import_module(info.name)
    except Exception as error:
        failed[info.name] = f"{type(error).__name__}: {error}"
from pyspark import SparkContext
print(json.dumps({
    "failed": failed,
    "spark_context": SparkContext._active_spark_context is not None,
    "jvm": SparkContext._gateway is not None,
    "files": sorted(os.listdir(".")),
}))
"""


register("import-every-module", sys.executable, "-c", _IMPORT_EVERY_MODULE, in_empty_folder=True)


@pytest.mark.background("import-every-module")
def test_every_module_imports_alone_with_no_side_effect() -> None:
    """In a fresh interpreter, in an empty folder: every module imports, and importing the
    library starts no Spark session or JVM and writes no file (no session, store or warehouse
    is made at import time; notebooks, jobs and the serving process all import it). It runs
    beside the other tests (`tests.background`)."""
    proc, folder = result("import-every-module")
    assert proc.returncode == 0, proc.stderr[-4000:]
    found = json.loads(proc.stdout.strip().splitlines()[-1])
    assert found == {"failed": {}, "spark_context": False, "jvm": False, "files": []}
    assert list(folder.iterdir()) == []


FLAT_0_1 = json.loads((REPO / "tests" / "fixtures" / "flat_modules_0_1.json").read_text())


@pytest.mark.parametrize(
    "old", sorted(name for name in FLAT_0_1 if not name.startswith("_"))
)  # _model_entry was private
def test_the_flat_0_1_import_paths_still_work(old: str) -> None:
    exported = FLAT_0_1[old]
    module = importlib.import_module(f"parity.{old}")
    for name in exported:
        home = MOVED_ACROSS_ROOMS.get((old, name))
        where = importlib.import_module(home) if home else module
        assert hasattr(where, name), f"parity.{old}.{name} is gone"
        value = getattr(where, name)
        if inspect.isfunction(value) or inspect.isclass(value):
            # The very object the library defines and uses, not a copy or a stand-in.
            assert value.__module__.startswith("parity."), (
                f"parity.{old}.{name} is {value.__module__}.{value.__qualname__}"
            )
            defined = getattr(importlib.import_module(value.__module__), value.__qualname__, None)
            assert value is defined, f"parity.{old}.{name} is not {value.__module__}.{value.__qualname__}"


def test_an_old_path_is_the_new_module_itself() -> None:
    import parity.features.transforms
    import parity.transforms

    assert parity.transforms is parity.features.transforms
    assert parity.transforms.__spec__.name == "parity.features.transforms"
    assert parity.transforms.add_window_aggregates.__module__ == "parity.features.transforms"
