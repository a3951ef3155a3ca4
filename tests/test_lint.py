"""The code base passes ruff (ruff.toml) and the library passes mypy (mypy.ini)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.support import REPO

BIN = Path(sys.executable).parent


def _run(*cmd: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(BIN / cmd[0]), *cmd[1:]], cwd=REPO, capture_output=True, text=True)


def test_ruff_finds_nothing() -> None:
    proc = _run("ruff", "check", "lib", "jobs", "tests", "bench", "scripts")
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_mypy_finds_nothing_in_the_library() -> None:
    proc = _run("mypy")
    assert proc.returncode == 0, proc.stdout + proc.stderr
