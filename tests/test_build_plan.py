"""Deciding a feature build from what was read (`decide_build`): plain values in, a decision
or a named error out, no Spark and no table. The builds that read real tables are in
test_incremental.py, test_snapshots.py and test_bitemporal.py."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

import pytest

from parity.core.conf import FeatureSetDecl, SourceQualityConf, load_settings
from parity.features.build_plan import BuildFacts, BuildOptions, check_options, decide_build
from parity.features.incremental import BuildInputs, BuildOptionError, BuildState, DeclarationChangedError
from tests.support import CONF_DIR
from tests.test_snapshots import STORE_PROFILE

EVENTS = load_settings(CONF_DIR).feature_sets["customer_activity"]
SNAPSHOT = STORE_PROFILE  # a snapshot set (test_snapshots.py builds it on real tables)
INPUTS = BuildInputs("raw.events", 7, "table-id", "quality-digest", "code-digest", "quarantine-id")
MARK = dt.datetime(2026, 3, 1, 12)  # the last build's watermark
CLOCK = dt.datetime(2026, 3, 2, 9)  # this build's time


def _facts(
    decl: FeatureSetDecl, *, built: BuildState | None, newest: bool = True, **read: object
) -> BuildFacts:
    """What a build of `decl` reads when its table's live build state is `built` (no table when
    None and `table_version` is not given), recorded by the newest commit when `newest`."""
    facts = BuildFacts(
        decl=decl,
        source_table=decl.source,
        conf=SourceQualityConf(),
        inputs=INPUTS,
        table_version=None if built is None else 4,
        table_versioned=True,
        newest_state=built if newest else None,
        live_state=built,
        compared=INPUTS if built is not None and newest else None,
        clock=CLOCK,
    )
    return replace(facts, **read)  # type: ignore[arg-type]


def test_a_first_build_reads_everything_and_records_its_inputs_unless_it_backfills() -> None:
    first = decide_build(_facts(EVENTS, built=None), BuildOptions())
    assert (first.range.reason, first.state, first.inputs, first.stamp) == ("first build", None, INPUTS, None)
    backfill = BuildOptions(backfill=(dt.date(2026, 2, 1), dt.date(2026, 2, 2)))
    assert decide_build(_facts(EVENTS, built=None), backfill).inputs is None  # it reads part of the source


def test_only_the_newest_commits_own_build_state_can_make_a_build_up_to_date() -> None:
    built = BuildState(MARK, EVENTS.table_hash(), INPUTS)
    assert decide_build(_facts(EVENTS, built=built), BuildOptions()).range.up_to_date
    later_writer = decide_build(
        _facts(EVENTS, built=built, newest=False), BuildOptions()
    )  # an OPTIMIZE since
    assert (
        later_writer.state == built
        and later_writer.range.reason == f"incremental from watermark {MARK.isoformat()}"
    )
    assert decide_build(_facts(EVENTS, built=built), BuildOptions(full_refresh=True)).range.reason == (
        "full refresh"
    )


def test_a_changed_declaration_or_the_older_layout_needs_a_full_refresh() -> None:
    changed = BuildState(MARK, "another declaration's hash", INPUTS)
    with pytest.raises(DeclarationChangedError, match=r"changed since features\.customer_activity was built"):
        decide_build(_facts(EVENTS, built=changed), BuildOptions())
    older = _facts(EVENTS, built=BuildState(MARK, EVENTS.table_hash(), INPUTS), table_versioned=False)
    with pytest.raises(DeclarationChangedError, match="before feature rows kept their landing times"):
        decide_build(older, BuildOptions())
    assert decide_build(older, BuildOptions(full_refresh=True)).range.reason == "full refresh"


def test_a_snapshot_is_stamped_with_the_builds_time_or_the_day_the_user_vouches_for() -> None:
    assert decide_build(_facts(SNAPSHOT, built=None), BuildOptions()).stamp == CLOCK
    vouched = BuildOptions(assume_valid_since=dt.date(2026, 1, 15))
    assert decide_build(_facts(SNAPSHOT, built=None), vouched).stamp == dt.datetime(2026, 1, 15)
    with pytest.raises(BuildOptionError, match="values cannot be vouched for in the future"):
        decide_build(_facts(SNAPSHOT, built=None), BuildOptions(assume_valid_since=dt.date(2026, 3, 3)))


def test_a_snapshots_history_is_never_restarted_or_rewritten_without_a_full_refresh() -> None:
    built = BuildState(MARK, SNAPSHOT.table_hash(), replace(INPUTS, source_version=6))
    with pytest.raises(BuildOptionError, match=r"stamps the first build of features\.store_profile"):
        decide_build(_facts(SNAPSHOT, built=built), BuildOptions(assume_valid_since=dt.date(2026, 1, 15)))
    with pytest.raises(BuildOptionError, match="holds a snapshot history but no build state"):
        decide_build(_facts(SNAPSHOT, built=None, table_version=4), BuildOptions())
    assert decide_build(_facts(SNAPSHOT, built=built), BuildOptions()).stamp == CLOCK
    with pytest.raises(ValueError, match="is not after its last build's"):  # stamps only move forward
        decide_build(_facts(SNAPSHOT, built=built, clock=MARK), BuildOptions())
    restarted = decide_build(_facts(SNAPSHOT, built=None, table_version=4), BuildOptions(full_refresh=True))
    assert restarted.range.reason == "full refresh"


def test_assume_valid_since_is_refused_for_a_set_with_event_times_before_anything_is_read() -> None:
    check_options(SNAPSHOT, BuildOptions(assume_valid_since=dt.date(2026, 1, 15)))
    with pytest.raises(BuildOptionError, match="customer_activity has event times"):
        check_options(EVENTS, BuildOptions(assume_valid_since=dt.date(2026, 1, 15)))
