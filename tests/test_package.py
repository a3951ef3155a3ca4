"""parity is a real package: `pip wheel .` builds a wheel holding every module and py.typed,
and that wheel alone, installed into a fresh virtualenv, gives a working `parity` command and
imports every module. The fresh environment borrows the project's third-party packages
(a .pth file naming .venv's site-packages, whose own .pth files, the editable install
among them, are not read), so parity itself can only come from the wheel."""

from __future__ import annotations

import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

import parity
from tests.support import REPO

pytestmark = pytest.mark.integration  # builds a wheel (pip fetches setuptools) and a fresh venv

LIB = REPO / "lib" / "parity"


def _run(*cmd: str | Path, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([str(c) for c in cmd], cwd=cwd, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, (
        f"{' '.join(map(str, cmd))} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    )
    return proc


def test_the_wheel_alone_installs_and_runs(tmp_path: Path) -> None:
    _run(sys.executable, "-m", "pip", "wheel", "--no-deps", "--wheel-dir", tmp_path / "dist", REPO)
    (wheel,) = (tmp_path / "dist").glob(f"parity-{parity.__version__}-*.whl")
    held = set(zipfile.ZipFile(wheel).namelist())
    modules = {f"parity/{p.relative_to(LIB).as_posix()}" for p in LIB.rglob("*.py")}
    assert modules <= held, f"the wheel lacks {sorted(modules - held)}"
    assert "parity/py.typed" in held

    venv = tmp_path / "fresh"
    _run(sys.executable, "-m", "venv", "--without-pip", venv)
    python = venv / "bin" / "python"
    site = Path(
        _run(python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])").stdout.strip()
    )
    (site / "project_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    _run(sys.executable, "-m", "pip", "--python", python, "install", "--no-deps", "--quiet", wheel)

    assert "usage: parity" in _run(venv / "bin" / "parity", "--help", cwd=tmp_path).stdout
    imported = _run(
        python,
        "-c",
        "import importlib, pkgutil, parity\n"
        "names = [m.name for m in pkgutil.walk_packages(parity.__path__, 'parity.')]\n"
        "for name in names: importlib.import_module(name)\n"
        "import parity.conf, parity.transforms\n"
        "print(parity.__file__); print(len(names))",
        cwd=tmp_path,
    ).stdout.split()
    assert imported[0].startswith(str(venv)), f"parity came from {imported[0]}, not the wheel"
    assert int(imported[1]) == len(modules) - 1  # every module but parity/__init__.py itself
