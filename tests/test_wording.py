"""Library errors carry data and say what went wrong in the library's terms; the command line's
error line says it with the flags a user types (`parity.app.wording`)."""

from __future__ import annotations

from parity.app import jobkit
from parity.app.wording import cli_wording
from parity.features.incremental import DeclarationChangedError
from parity.governance.registry import ModelNotFoundError, NoChampionError

CHANGED = DeclarationChangedError(
    "feature set customer_activity changed since features.customer_activity was built (declaration hash ab12 -> cd34)",
    table="features.customer_activity", recorded="ab12", now="cd34",
)


def test_a_changed_declaration_names_its_table_and_hashes_and_the_command_line_names_the_flag() -> None:
    assert (CHANGED.table, CHANGED.recorded, CHANGED.now) == ("features.customer_activity", "ab12", "cd34")
    assert str(CHANGED).endswith("(declaration hash ab12 -> cd34); rebuild it with full_refresh=True")
    assert cli_wording(CHANGED) == (
        "feature set customer_activity changed since features.customer_activity was built (declaration hash ab12 -> cd34); "
        "rebuild it with --full-refresh"
    )


def test_a_missing_champion_names_the_model_and_the_command_line_says_how_to_promote_one() -> None:
    missing = NoChampionError("parity_churn", "churn", "champion")
    assert isinstance(missing, ModelNotFoundError) and "--" not in str(missing)
    assert cli_wording(missing) == (
        "registered model 'parity_churn' has no @champion: promote a version through the gate "
        "(parity promote --model churn --version N), or name one (--model-version N)"
    )
    assert cli_wording(ValueError("no flags here")) is None


def test_a_jobs_error_line_words_a_library_error_for_the_command_line() -> None:
    assert jobkit._one_line(CHANGED) == (  # the line run_job prints after "error: <job>: "
        "DeclarationChangedError: feature set customer_activity changed since features.customer_activity was built "
        "(declaration hash ab12 -> cd34); rebuild it with --full-refresh"
    )
    assert jobkit._one_line(ValueError("no flags here")) == "ValueError: no flags here"
