"""Library errors carry data and say what went wrong in the library's terms; the command line's
error line says it with the flags a user types (`parity.app.wording`)."""

from __future__ import annotations

from parity.app import jobkit
from parity.app.wording import FLAGS, cli_wording
from parity.features.incremental import BuildOptionError, DeclarationChangedError
from parity.governance.registry import ModelNotFoundError, NoChampionError

WHY = "feature set customer_activity changed since features.customer_activity was built (declaration hash ab12 -> cd34)"
CHANGED = DeclarationChangedError(
    WHY,
    table="features.customer_activity",
    recorded="ab12",
    now="cd34",
)


def test_a_changed_declaration_names_its_table_and_hashes_and_the_command_line_names_the_flag() -> None:
    assert (CHANGED.table, CHANGED.recorded, CHANGED.now) == ("features.customer_activity", "ab12", "cd34")
    assert str(CHANGED).endswith("(declaration hash ab12 -> cd34); rebuild it with full_refresh=True")
    assert cli_wording(CHANGED) == f"{WHY}; rebuild it with --full-refresh"


def test_a_build_option_error_says_options_as_parameters_and_the_command_line_as_flags() -> None:
    assert set(FLAGS) == set(BuildOptionError.OPTIONS)  # every option the library names has its flag
    exists = BuildOptionError(
        "{assume_valid_since} stamps the first build of {table}, which exists already; add {full_refresh} "
        "to restart it",
        table="features.stores",
    )
    assert exists.values == {"table": "features.stores"}
    assert str(exists) == (
        "assume_valid_since stamps the first build of features.stores, which exists already; "
        "add full_refresh=True to restart it"
    )
    assert cli_wording(exists) == (
        "--assume-valid-since stamps the first build of features.stores, which exists already; "
        "add --full-refresh to restart it"
    )
    restart = BuildOptionError(
        "{full_refresh} would restart snapshot set(s) {sets}; name them with {feature_sets} to do so",
        sets="a, b",
    )
    assert (
        cli_wording(restart)
        == "--full-refresh would restart snapshot set(s) a, b; name them with --feature-set to do so"
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
    # The line run_job prints after "error: <job>: ".
    assert jobkit._one_line(CHANGED) == f"DeclarationChangedError: {WHY}; rebuild it with --full-refresh"
    assert jobkit._one_line(ValueError("no flags here")) == "ValueError: no flags here"
