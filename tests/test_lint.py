"""The code base passes ruff (ruff.toml), is laid out as `ruff format` lays it out, and the
library passes mypy (mypy.ini).

Both run in processes of their own from the moment the tests are collected (`tests.background`),
beside the Spark tests."""

from __future__ import annotations

import pytest

from tests.background import BIN, register, result

register("ruff", str(BIN / "ruff"), "check", "lib", "jobs", "tests", "bench", "scripts")
register("ruff-format", str(BIN / "ruff"), "format", "--check", "lib", "jobs", "tests", "bench", "scripts")
register("mypy", str(BIN / "mypy"))


@pytest.mark.background("ruff")
def test_ruff_finds_nothing() -> None:
    proc, _ = result("ruff")
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.background("ruff-format")
def test_the_code_is_formatted() -> None:
    proc, _ = result("ruff-format")
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.background("mypy")
def test_mypy_finds_nothing_in_the_library() -> None:
    proc, _ = result("mypy")
    assert proc.returncode == 0, proc.stdout + proc.stderr
