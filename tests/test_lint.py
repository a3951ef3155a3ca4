"""The code base passes ruff (ruff.toml): imports sorted, no unused names, modern idioms."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.support import REPO


def test_ruff_finds_nothing() -> None:
    ruff = Path(sys.executable).with_name("ruff")
    proc = subprocess.run(
        [str(ruff), "check", "lib", "jobs", "tests", "bench", "scripts"], cwd=REPO, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
