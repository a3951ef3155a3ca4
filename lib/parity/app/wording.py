"""The command line's wording of library errors.

The library's errors carry data (which table, which version, which model) and say what went
wrong in the library's terms (`full_refresh=True`); a user of the command line types flags
instead (`--full-refresh`). `cli_wording` says such an error as the command line's error line
does; an error it does not know keeps the library's words.
"""

from __future__ import annotations

import sys

from parity.features.incremental import BuildOptionError, DeclarationChangedError

FLAGS = {
    "full_refresh": "--full-refresh",
    "assume_valid_since": "--assume-valid-since",
    "feature_sets": "--feature-set",
}  # build_features'


def cli_wording(exc: BaseException) -> str | None:
    """What the error line says after the error's type, in the command line's terms (None: the library's words)."""
    if isinstance(exc, DeclarationChangedError):
        return f"{exc.why}; rebuild it with --full-refresh"
    if isinstance(exc, BuildOptionError):
        return exc.say(FLAGS)
    # The registry's errors, where it was imported (not at every job's start: it imports MLflow).
    registry = sys.modules.get("parity.governance.registry")
    if registry is not None and isinstance(exc, registry.NoChampionError):
        return (
            f"registered model '{exc.registered_model}' has no @{exc.alias}: promote a version through the gate "
            f"(parity promote --model {exc.model} --version N), or name one (--model-version N)"
        )
    return None
