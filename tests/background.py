"""Checks that run in a process of their own (mypy, ruff, a fresh interpreter), started as soon
as the session's tests are collected so that they run beside the Spark tests: those leave a core
idle much of the time, waiting on the latency of Spark's jobs. A test marked
`@pytest.mark.background("name")` makes the session start that check; the test then waits for
its result with `result("name")`.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from tests.support import REPO

BIN = Path(sys.executable).parent
TIMEOUT_SECONDS = 900


@dataclass(frozen=True)
class Check:
    command: tuple[str, ...]
    in_empty_folder: bool = False  # run where nothing is, to see what the command leaves behind


CHECKS: dict[str, Check] = {}
_started: dict[str, tuple[subprocess.Popen[bytes], Path, Path]] = {}


def register(name: str, *command: str, in_empty_folder: bool = False) -> None:
    """Declare a check (a test module does this at import, before collection ends)."""
    CHECKS[name] = Check(tuple(command), in_empty_folder)


def start(names: Iterable[str]) -> None:
    """Start the checks named (each once per session), their output going to files."""
    for name in names:
        if name in _started or name not in CHECKS:
            continue
        check = CHECKS[name]
        folder = Path(tempfile.mkdtemp(prefix=f"parity-check-{name}-"))
        cwd = folder / "cwd"
        cwd.mkdir()
        out, err = folder / "stdout", folder / "stderr"
        with out.open("wb") as stdout, err.open("wb") as stderr:
            process = subprocess.Popen(
                check.command, cwd=cwd if check.in_empty_folder else REPO, stdout=stdout, stderr=stderr
            )
        _started[name] = (process, out, err)


def result(name: str) -> tuple[subprocess.CompletedProcess[str], Path]:
    """Wait for a check (starting it now if nothing did) and return what it did, with the
    folder it ran in."""
    start([name])
    process, out, err = _started[name]
    process.wait(timeout=TIMEOUT_SECONDS)
    completed = subprocess.CompletedProcess(
        list(CHECKS[name].command), process.returncode, out.read_text(), err.read_text()
    )
    folder = out.parent / "cwd" if CHECKS[name].in_empty_folder else REPO
    return completed, folder


def stop_all() -> None:
    for process, _, _ in _started.values():
        if process.poll() is None:
            process.kill()
            process.wait()
