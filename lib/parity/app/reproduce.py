"""`parity reproduce`: rebuild a model version's training set with the code the model carries.

    parity reproduce --model NAME --version N [--env NAME] [--set k=v ...] [--keep] [--timeout SECONDS]

1. Here: resolve the version, download its artifacts, and check its code artifact (the parity
   wheel it was trained with) against the digest its spec recorded.
2. Install that wheel into a virtual environment of its own (`build/reproduce/<model>-v<N>`).
   parity comes from the wheel only; the pinned third-party packages (pyspark, delta-spark,
   mlflow ...) are those of the project's environment, made visible to it by a .pth line, and
   checked against the versions the model recorded (its pip requirements: mlflow, numpy,
   pandas, scikit-learn, skops, pyspark ...).
3. There, in a Python process of its own (`python -m parity.app.cli reproduce-worker ...`): check
   that every input of the training set's manifest still holds the rows it held, rebuild the
   training set from its manifest (the declarations and versions recorded with it, nothing
   written), and compare its digest with the one the train job recorded.

It prints one JSON line and exits 0 when the digests agree. Otherwise it exits 1 and says
exactly what is gone or differs: the code artifact, an input version, or the rows.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path
from typing import Any

from parity.core.conf import ConfError, Settings, load_settings

PTH = "_parity_reproduce_packages.pth"


class ReproduceError(RuntimeError):
    """What stops a reproduction: a gone artifact or input, or a different result."""


def _settings(args: argparse.Namespace) -> Settings:
    return load_settings(args.conf_dir, env=args.env, overrides=args.overrides)


def reproduce(args: argparse.Namespace) -> dict[str, Any]:
    """The `parity reproduce` command: steps 1 and 2 here, step 3 in the environment it makes.

    Returns:
        The worker's result (`reproduced`, the digests, where parity came from, and for a
        failed reproduction the `problem`), with the model, its version and its code record.

    Raises:
        ReproduceError: the model, its code artifact, its manifest or this environment stop it.
    """
    from parity.governance import registry, tracking
    from parity.governance.gate import MANIFEST_ARTIFACT
    from parity.model.code_artifact import CODE_ARTIFACT, CodeArtifactError, check_code_artifact
    from parity.model.packaged import SPEC_ARTIFACT
    from parity.model.spec import FeatureSpec

    settings = _settings(args)
    try:
        model = settings.model(args.model)
    except ValueError as exc:
        raise ConfError(str(exc)) from None
    tracking.configure_mlflow(settings)
    try:
        uri, version, run_id = registry.resolve_model_version(model.registered_model, args.version)
        with tempfile.TemporaryDirectory() as tmp:
            local = tracking.download_artifacts(uri, tmp)
            spec = FeatureSpec.from_json((local / "artifacts" / f"{SPEC_ARTIFACT}.json").read_text())
            if not spec.code:
                raise ReproduceError(
                    f"model {model.registered_model} v{version} carries no code artifact: it was packaged "
                    "before models did"
                )
            wheel = check_code_artifact(local / "artifacts" / CODE_ARTIFACT, spec.code)
            requirements = (
                (local / "requirements.txt").read_text().split()
                if (local / "requirements.txt").is_file()
                else []
            )
            manifest = tracking.load_run_dict(run_id, MANIFEST_ARTIFACT)
            recorded = manifest.get("training_set", {})
            if "digest" not in recorded:
                raise ReproduceError(
                    f"the training run {run_id} recorded no digest of its training set: it was trained before runs did"
                )
            differ = _requirements_differ(requirements)
            if differ:
                raise ReproduceError(
                    f"this environment's packages differ from the model's requirements: {'; '.join(differ)}"
                )
            folder = Path(settings.project_root) / "build" / "reproduce" / f"{model.name}-v{version}"
            python = make_environment(folder, wheel)  # type: ignore[arg-type]
    except ReproduceError:
        raise
    except (
        CodeArtifactError,
        registry.ModelNotFoundError,
        tracking.ArtifactNotFoundError,
        OSError,
        subprocess.SubprocessError,
        ValueError,
    ) as exc:
        raise ReproduceError(f"{type(exc).__name__}: {(str(exc).strip().splitlines() or [''])[0]}") from exc
    command = [
        str(python),
        "-m",
        "parity.app.cli",
        "reproduce-worker",
        "--conf-dir",
        str(Path(args.conf_dir).resolve()),
        "--model",
        model.name,
        "--table",
        str(recorded["table"]),
        "--table-version",
        str(recorded["version"]),
        "--digest",
        str(recorded["digest"]),
        *(["--env", args.env] if args.env else []),
        *[a for item in args.overrides for a in ("--set", item)],
    ]
    environment = {
        **os.environ,
        "PYSPARK_PYTHON": str(python),
        "PYSPARK_DRIVER_PYTHON": str(python),
        "TZ": "UTC",
    }
    try:
        done = subprocess.run(
            command, cwd=folder, env=environment, capture_output=True, text=True, timeout=args.timeout
        )
    except subprocess.TimeoutExpired:
        raise ReproduceError(
            f"the rebuild in {folder} took longer than {args.timeout:g} s (--timeout)"
        ) from None
    finally:
        if not args.keep:
            shutil.rmtree(folder, ignore_errors=True)
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if not lines:
        raise ReproduceError(
            f"the rebuild in {folder} failed: {(done.stderr.strip().splitlines() or ['no output'])[-1]}"
        )
    return {**json.loads(lines[-1]), "model": model.name, "model_version": version, "code": spec.code}


def _requirements_differ(requirements: list[str]) -> list[str]:
    """The model's pinned requirements (`name==version`) this environment does not meet."""
    differ = []
    for line in requirements:
        name, _, wanted = line.partition("==")
        if not wanted:
            continue
        try:
            found = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            found = "none"
        if found != wanted:
            differ.append(f"{name} {found} (the model recorded {wanted})")
    return differ


def make_environment(folder: Path, wheel: Path) -> Path:
    """A fresh virtual environment in `folder` with the model's parity wheel installed, and the
    project environment's third-party packages visible; its Python."""
    shutil.rmtree(folder, ignore_errors=True)
    subprocess.run(
        [sys.executable, "-m", "venv", "--without-pip", str(folder)], check=True, capture_output=True
    )
    python = folder / "bin" / "python"
    packages = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    # Third-party packages only: .pth files in that folder (the project's editable parity among them) are not read.
    (Path(packages) / PTH).write_text(sysconfig.get_paths()["purelib"] + "\n")
    installed = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            str(python),
            "install",
            "--quiet",
            "--no-deps",
            "--no-index",
            str(wheel),
        ],
        capture_output=True,
        text=True,
    )
    if installed.returncode != 0:
        raise ReproduceError(f"cannot install {wheel.name} into {folder}: {installed.stderr.strip()[-500:]}")
    return python


def worker(args: argparse.Namespace) -> dict[str, Any]:
    """Step 3, in the reproduction's environment (`parity reproduce-worker`): check the inputs,
    rebuild the training set from its manifest, compare digests."""
    import parity
    from parity.core.catalog import Catalog
    from parity.core.digests import content_digest
    from parity.core.session import get_spark
    from parity.features.training_sets import MANIFEST, plan_training_set

    here = Path(parity.__file__).resolve()
    result: dict[str, Any] = {
        "training_set": f"{args.table}@{args.table_version}",
        "recorded_digest": args.digest,
        "parity_from": str(here.parent),
    }
    if not here.is_relative_to(Path(sys.prefix).resolve()):
        return {
            **result,
            "reproduced": False,
            "problem": f"parity was imported from {here}, not from the model's wheel",
        }
    settings = _settings(args)
    model = settings.model(args.model)
    catalog = Catalog(get_spark(settings), settings)
    built_with = catalog.commit_metadata(args.table, args.table_version)
    if MANIFEST not in built_with:
        return {
            **result,
            "reproduced": False,
            "problem": (
                f"{args.table}@{args.table_version} records no manifest "
                "(its commit is gone from the table's log)"
            ),
        }
    for entry in built_with[MANIFEST]:  # type: ignore[attr-defined]
        name, version = str(entry["table"]), int(entry["version"])
        try:
            now = catalog.manifest_entry(name, version)
        except Exception as exc:  # a vacuumed version, a removed table
            return {
                **result,
                "reproduced": False,
                "problem": f"input {name}@{version} is gone: {str(exc).strip().splitlines()[0][:300]}",
            }
        if now["digest"] != entry.get("digest"):
            return {
                **result,
                "reproduced": False,
                "problem": (
                    f"input {name}@{version} no longer holds the rows it held "
                    f"(digest {now['digest']}, recorded {entry.get('digest')})"
                ),
            }
    plan = plan_training_set(catalog, settings, model, rebuild=int(args.table_version))
    result["rebuilt_digest"] = content_digest(plan.training)
    if result["rebuilt_digest"] != args.digest:
        return {
            **result,
            "reproduced": False,
            "problem": (
                f"the rebuilt training set has digest {result['rebuilt_digest']}, "
                f"not the recorded {args.digest}"
            ),
        }
    return {**result, "reproduced": True}
