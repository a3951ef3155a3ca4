"""The code a model carries: the parity library it was trained with, as a wheel.

`write_wheel` builds a pure-Python wheel of the installed parity package (every module and
py.typed, with its dist-info and RECORD), byte for byte the same for the same code: entries in
name order with a fixed time stamp. The packaged model stores it as an artifact and records
its digest in the feature spec (`code`); loading the model checks the artifact against that
digest (`check_code_artifact`), and `parity reproduce` installs it into a virtual environment
of its own to rebuild the training set with exactly that code.

MLflow's `code_paths` are not used for this: they are put in front of `sys.path`, so an
already-imported parity would silently win over them.
"""

from __future__ import annotations

import importlib.resources
import zipfile
from importlib.resources.abc import Traversable
from pathlib import Path

import parity
from parity.core.hashing import KEPT_TEXTS, bytes_digest, record_hash

CODE_ARTIFACT = "code"  # the artifact holding the wheel
_FIXED_TIME = (1980, 1, 1, 0, 0, 0)


class CodeArtifactError(RuntimeError):
    """A model's code artifact is missing or is not what was recorded when it was trained."""


def wheel_name(version: str = parity.__version__) -> str:
    return f"parity-{version}-py3-none-any.whl"


def write_wheel(folder: Path) -> Path:
    """A wheel of the installed parity package in `folder`; the same bytes for the same code."""
    version = parity.__version__
    info = f"parity-{version}.dist-info"
    files = dict(sorted(_package_files(importlib.resources.files("parity"), "parity")))
    files[f"{info}/METADATA"] = (
        f"Metadata-Version: 2.1\nName: parity\nVersion: {version}\nSummary: "
        f"{parity.__doc__.splitlines()[0] if parity.__doc__ else ''}\n".encode()
    )
    files[f"{info}/WHEEL"] = (
        b"Wheel-Version: 1.0\nGenerator: parity.model.code_artifact\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
    )
    record = (
        "".join(f"{name},{record_hash(data)},{len(data)}\n" for name, data in files.items())
        + f"{info}/RECORD,,\n"
    )
    files[f"{info}/RECORD"] = record.encode()
    folder.mkdir(parents=True, exist_ok=True)
    out = folder / wheel_name(version)
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as wheel:
        for name, data in files.items():
            entry = zipfile.ZipInfo(name, date_time=_FIXED_TIME)
            entry.external_attr = 0o644 << 16
            entry.compress_type = zipfile.ZIP_DEFLATED
            wheel.writestr(entry, data)
    return out


def _package_files(folder: Traversable, prefix: str) -> list[tuple[str, bytes]]:
    """Every module (and py.typed, and the texts kept from before a formatter ran,
    `parity.core.hashing.KEPT_TEXTS`) under a package folder, as (path in the wheel, bytes): read
    as resources, so that a parity imported from spark-submit's zip is packaged too."""
    found: list[tuple[str, bytes]] = []
    for entry in folder.iterdir():
        name = f"{prefix}/{entry.name}"
        if entry.is_dir() and entry.name != "__pycache__":
            found += _package_files(entry, name)
        elif entry.is_file() and (entry.name.endswith(".py") or entry.name in ("py.typed", KEPT_TEXTS)):
            found.append((name, entry.read_bytes()))
    return found


def code_record(wheel: Path) -> dict[str, str]:
    """What a feature spec records of the wheel: its file name and digest."""
    return {"wheel": wheel.name, "digest": bytes_digest(wheel.read_bytes()), "parity": parity.__version__}


def check_code_artifact(folder: Path | None, recorded: dict[str, str]) -> Path | None:
    """The model's wheel, checked against the digest its spec recorded (None for a model
    packaged before models carried their code: nothing was recorded).

    Raises:
        CodeArtifactError: the wheel is missing, or its bytes are not the ones recorded.
    """
    if not recorded:
        return None
    wheel = None if folder is None else Path(folder) / recorded["wheel"]
    if wheel is None or not wheel.is_file():
        raise CodeArtifactError(
            f"the model's code artifact {recorded['wheel']} is gone from its {CODE_ARTIFACT} artifact"
        )
    found = bytes_digest(wheel.read_bytes())
    if found != recorded["digest"]:
        raise CodeArtifactError(
            f"the model's code artifact {recorded['wheel']} has digest {found}, not the "
            f"{recorded['digest']} recorded when it was trained"
        )
    return wheel
