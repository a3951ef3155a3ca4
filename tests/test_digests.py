"""Formatting is not a code change: code digests (`parity.core.hashing`) are taken over the
syntax tree (scheme `ast1`), so `ruff format`, comments and docstrings move no digest, while an
edit of a covered function, a helper it reaches or a constant it reads still does. A digest
recorded before schemes were (the source text) is checked as it was recorded: the model
fixtures of parity 0.1 still load, and an old feature table's build state asks for no full
refresh while its code is unchanged, also after a formatter ran over the code, through the texts
kept from before it (`scripts/keep_texts.py`)."""

from __future__ import annotations

import importlib
import json
import linecache
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pyspark.sql import SparkSession

from parity.core import hashing
from parity.core.catalog import Catalog
from parity.core.conf import DataConf, FeatureSetDecl, Settings, load_settings
from parity.core.hashing import (
    AST_SCHEME,
    HASH_SCHEME_KEY,
    TEXT_SCHEME,
    closure_digest,
    code_form,
    declaration_digest,
    kept_texts,
    package_digest,
    source_texts,
)
from parity.demo.sample_data import generate_customers
from parity.features import DeclarationChangedError, build_feature_set
from parity.features.asof import FeatureLookup, describe_lookups
from parity.features.build import inputs_as_recorded, plan_feature_build, transform_code_hash
from parity.features.incremental import BUILD_STATE_KEY, BuildInputs, BuildState, plan_build
from parity.model.packaged import load_feature_spec
from parity.model.spec import FeatureSpec, TransformCodeChangedError, changed_transforms, check_transform_code
from tests.support import REPO

RUFF = Path(sys.executable).with_name("ruff")
PACKAGE = "digestfeat"
# A user's feature code as someone wrote it by hand: single quotes, two-space indents, a
# statement on its def's line, no blank lines; `ruff format` rewrites nearly every line.
HELPERS = """OFFSET = 0.5
def scale(column, factor):
  # keep the band's offset
  return column*factor+OFFSET
def shout(text): return text.upper()
"""
TRANSFORMS = """'''Team features.'''
from pyspark.sql import functions as F
from digestfeat import helpers
SCALE=2
def with_scaled_limit(df, *, column, output):
  '''Needs `column`; adds `output`.'''
  return df.withColumn(output, helpers.scale(F.col(column),
                                             SCALE).cast('double'))
class Bands:
  def band(self, value):
    return value//1000
"""


def _write(package: Path, module: str, text: str) -> None:
    (package / f"{module}.py").write_text(text)
    _reload(package)


def _reload(package: Path) -> None:
    linecache.checkcache()  # inspect.getsource reads through linecache
    for module in ("helpers", "transforms"):
        importlib.reload(importlib.import_module(f"{PACKAGE}.{module}"))


def _format(package: Path) -> None:
    """`ruff format` (line length 110, as the library will be), then a comment on every function's first line."""
    subprocess.run(
        [str(RUFF), "format", "--isolated", "--line-length", "110", str(package)],
        check=True,
        capture_output=True,
    )
    for path in package.glob("*.py"):
        path.write_text(path.read_text().replace("):\n", "):  # reviewed\n"))
    _reload(package)


@pytest.fixture()
def package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The user's package `digestfeat` (HELPERS, TRANSFORMS), importable from tmp_path."""
    root = tmp_path / PACKAGE
    root.mkdir()
    (root / "__init__.py").write_text('"""A team\'s features."""\n')
    (root / "helpers.py").write_text(HELPERS)
    (root / "transforms.py").write_text(TRANSFORMS)
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        yield root
    finally:
        for name in [m for m in sys.modules if m == PACKAGE or m.startswith(f"{PACKAGE}.")]:
            del sys.modules[name]


def _digests(scheme: str) -> tuple[str, str, str]:
    transforms = importlib.import_module(f"{PACKAGE}.transforms")
    functions = [transforms.with_scaled_limit, transforms.Bands]
    return (
        declaration_digest({"n": 1}, functions, scheme),
        closure_digest({"n": 1}, functions, scheme),
        package_digest(PACKAGE, scheme),
    )


def test_formatting_and_comments_leave_the_ast1_digests_as_they_were(package: Path) -> None:
    before, text_before = _digests(AST_SCHEME), _digests(TEXT_SCHEME)
    _format(package)
    assert (package / "transforms.py").read_text() != TRANSFORMS  # the formatter did rewrite it
    assert _digests(AST_SCHEME) == before
    assert all(
        now != then for now, then in zip(_digests(TEXT_SCHEME), text_before, strict=True)
    )  # as the text scheme could not


@pytest.mark.parametrize(
    ("module", "edit", "old", "new"),
    [
        ("transforms", "the covered function's code", "cast('double')", "cast('float')"),
        ("transforms", "a method of a covered class", "value//1000", "value//100"),
        ("transforms", "a constant it reads", "SCALE=2", "SCALE=3"),
        ("helpers", "a helper it reaches", "column*factor+OFFSET", "column*factor-OFFSET"),
        ("helpers", "a constant its helper reads", "OFFSET = 0.5", "OFFSET = 0.25"),
    ],
)
def test_a_real_change_moves_the_digest_that_covers_it(
    package: Path, module: str, edit: str, old: str, new: str
) -> None:
    declared, reached, whole = _digests(AST_SCHEME)
    text = HELPERS if module == "helpers" else TRANSFORMS
    _write(package, module, text.replace(old, new))
    now = _digests(AST_SCHEME)
    assert now[1] != reached, f"{edit} did not change the closure digest"
    assert now[2] != whole, f"{edit} did not change the package digest"
    if (module, edit) != ("transforms", "a constant it reads"):  # declaration digests cover code, not globals
        assert (now[0] != declared) == (module == "transforms"), edit


def test_moving_a_helper_to_another_module_leaves_the_ast1_closure_digest(package: Path) -> None:
    """What the split of a big module does: the code a transform reaches is the same code."""
    reached, reached_text = _digests(AST_SCHEME)[1], _digests(TEXT_SCHEME)[1]
    (package / "tools.py").write_text(HELPERS)
    _write(package, "transforms", TRANSFORMS.replace("import helpers", "import tools as helpers"))
    assert _digests(AST_SCHEME)[1] == reached
    assert _digests(TEXT_SCHEME)[1] != reached_text  # the text scheme names modules, as it always did


def test_docstrings_are_not_code_but_strings_in_code_are(package: Path) -> None:
    before = _digests(AST_SCHEME)
    _write(package, "transforms", TRANSFORMS.replace("adds `output`", "adds the scaled `output`"))
    assert _digests(AST_SCHEME) == before
    _write(package, "helpers", HELPERS.replace("text.upper()", "text.upper() + '!'"))
    assert _digests(AST_SCHEME)[2] != before[2]  # `shout` is in the package, reached by no transform


def test_a_method_whose_string_starts_at_column_0_is_digested_by_its_tree() -> None:
    class Report:
        def text(self) -> str:
            return """
line at column 0"""

    assert code_form(Report.text).startswith(b"Module(body=[FunctionDef(name='text',")
    assert (
        code_form(Report.text, TEXT_SCHEME)
        == b'        def text(self) -> str:\n            return """\nline at column 0"""\n'
    )


def test_models_recorded_before_digest_schemes_are_checked_with_the_text_scheme() -> None:
    for flavor in ("sklearn", "spark"):
        spec = load_feature_spec(str(REPO / "tests" / "fixtures" / "model_before_layout" / flavor))
        assert all(HASH_SCHEME_KEY not in lookup for lookup in spec.feature_sets)
        assert changed_transforms(spec) == []
        recorded = [str(lookup["code_hash"]) for lookup in spec.feature_sets]
        decls = [FeatureSetDecl.model_validate(lookup["feature_set"]) for lookup in spec.feature_sets]
        assert [decl.code_hash(TEXT_SCHEME) for decl in decls] == recorded  # byte for byte as recorded in 0.1
        assert all(
            decl.code_hash() != digest for decl, digest in zip(decls, recorded, strict=True)
        )  # new records: ast1


def test_the_demos_text_digests_are_those_parity_0_3_recorded_before_the_formatter_and_the_splits() -> None:
    """Feature tables and models recorded before digest schemes hold these digests (the text
    scheme, which names each function reached by its module): `ruff format` (through the kept
    texts) and the transforms moved to `row_transforms` (through `TEXT_SCHEME_MODULE`) keep them."""
    recorded = json.loads((REPO / "tests" / "fixtures" / "text_scheme_digests_0_3.json").read_text())
    decls = load_settings(REPO / "conf").feature_sets
    for name, digests in recorded.items():
        if name.startswith("_"):
            continue
        decl = decls[name]
        assert {
            "code_hash": decl.code_hash(TEXT_SCHEME),
            "closure_hash": decl.closure_hash(TEXT_SCHEME),
            "table_hash": decl.table_hash(TEXT_SCHEME),
        } == digests, name


def test_text_digests_recorded_before_the_formatter_match_through_the_kept_texts(
    package: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    before, recorded = source_texts(PACKAGE), _digests(TEXT_SCHEME)
    _format(package)
    kept = kept_texts(before, PACKAGE)
    assert kept and set(kept.values()) <= set(before.values())
    monkeypatch.setattr(hashing, "_kept_texts", lambda: kept)
    assert _digests(TEXT_SCHEME) == recorded
    _write(package, "helpers", (package / "helpers.py").read_text().replace("+ OFFSET", "- OFFSET"))
    changed = _digests(TEXT_SCHEME)
    assert changed[0] == recorded[0] and changed[1:] != recorded[1:]  # the transforms' own text is as kept


# What the library's recorded digests are, run in a Python that imports the library from sys.argv[1],
# with scripts/keep_texts.py's step (sys.argv[3]) first.
PROBE = """
import importlib, json, linecache, runpy, sys
from pathlib import Path
keep = runpy.run_path(sys.argv[2] + "/scripts/keep_texts.py", run_name="keep_texts")
assert keep["main"]([sys.argv[3], sys.argv[4]]) == 0
from parity.core.conf import load_settings
from parity.features.build import transform_code_hash
from parity.model.spec import FeatureSpec, changed_transforms
lib, repo = Path(sys.argv[1]), Path(sys.argv[2])
import parity
assert Path(parity.__file__).is_relative_to(lib), parity.__file__
decls = load_settings(repo / "conf").feature_sets
fixtures, FLAVORS = repo / "tests/fixtures/model_before_layout", ("sklearn", "spark")

def digests():
    hashes = lambda d, s: [d.code_hash(s), d.closure_hash(s), d.table_hash(s)]
    out = {s: {n: hashes(d, s) for n, d in decls.items()} for s in ("text", "ast1")}
    out["package"] = [transform_code_hash("text"), transform_code_hash("ast1")]
    specs = [FeatureSpec.from_json((fixtures / f / "artifacts" / "feature_spec.json").read_text()) for f in FLAVORS]
    out["refused"] = [changed_transforms(spec) for spec in specs]
    return out

result = {"as_is": digests()}
if sys.argv[3] == "after":  # then a real change to a transform the fixtures' models and the demo's sets name
    path = lib / "parity/features/row_transforms.py"
    text = path.read_text()
    assert "F.lit(index)" in text
    path.write_text(text.replace("F.lit(index)", "F.lit(index + 1)"))
    linecache.checkcache()
    importlib.reload(importlib.import_module("parity.features.row_transforms"))
    importlib.reload(importlib.import_module("parity.features.transforms"))  # which re-exports it
    result["changed"] = digests()
print(json.dumps(result))
"""


def _probe(lib: Path, step: str) -> dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": str(lib)}
    texts = str(lib.parent / "texts.json")
    run = subprocess.run(
        [sys.executable, "-c", PROBE, str(lib), str(REPO), step, texts],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return dict(json.loads(run.stdout.splitlines()[-1]))


@pytest.mark.integration  # two Pythons importing the whole library (make test; the inner loop has the tests above)
def test_after_ruff_formats_the_library_every_recorded_digest_still_matches_and_a_real_change_does_not(
    tmp_path: Path,
) -> None:
    """The library as shipped, formatted by `ruff format` with its kept texts: the recorded
    models (the 0.1 fixtures, text scheme, recorded over the code before it was formatted) are
    not refused. A further formatter run over a copy (at another line length, with
    scripts/keep_texts.py around it, as `make format` runs it) changes no digest of the demo's
    feature sets in either scheme, and an edit of `with_buckets` afterwards is caught in both."""
    lib = tmp_path / "lib"
    shutil.copytree(REPO / "lib", lib, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    before = _probe(lib, "before")["as_is"]
    subprocess.run(
        [str(RUFF), "format", "--isolated", "--line-length", "88", str(lib)], check=True, capture_output=True
    )
    # keeps the texts the formatter rewrote, then probes, then changes with_buckets
    after = _probe(lib, "after")

    assert before["refused"] == [[], []]
    assert after["as_is"] == before
    changed = after["changed"]
    assert [[name.split(" ")[0] for name in refused] for refused in changed["refused"]] == [
        ["customer_profile"],
        ["customer_profile"],
    ]
    for scheme in (TEXT_SCHEME, AST_SCHEME):
        assert (
            changed[scheme]["customer_profile"][0] != before[scheme]["customer_profile"][0]
        )  # with_buckets is its
        assert changed[scheme]["customer_profile"][2] != before[scheme]["customer_profile"][2]
    assert changed["package"][0] != before["package"][0] and changed["package"][1] != before["package"][1]


def test_a_build_state_recorded_before_digest_schemes_asks_for_no_full_refresh(settings: Settings) -> None:
    decl = settings.feature_sets["customer_activity"]
    inputs = BuildInputs("raw.events", 3, "id", "quality", transform_code_hash(TEXT_SCHEME), "qid")
    recorded = {
        "watermark": "2026-05-01T00:00:00",
        "declaration_hash": decl.table_hash(TEXT_SCHEME),
        "inputs": inputs.as_dict(),
    }
    state = BuildState.from_metadata({BUILD_STATE_KEY: recorded})
    assert state is not None and state.hash_scheme == TEXT_SCHEME
    now = BuildInputs(
        "raw.events", 3, "id", "quality", transform_code_hash(), "qid"
    )  # as a build computes them today
    assert now != inputs and inputs_as_recorded(now, state) == inputs
    assert plan_build(
        decl, state, inputs=inputs_as_recorded(now, state)
    ).up_to_date  # not even an incremental build
    assert plan_build(decl, state).reason.startswith("incremental from watermark")
    with pytest.raises(
        DeclarationChangedError
    ):  # the same digest read as ast1 would be a changed declaration
        plan_build(decl, BuildState(state.watermark, state.declaration_hash, inputs, AST_SCHEME))


PROFILE_SCALED = {
    "fn": f"{PACKAGE}.transforms.with_scaled_limit",
    "params": {"column": "credit_limit", "output": "scaled_limit"},
}


def _user_set(settings: Settings) -> FeatureSetDecl:
    """customer_profile with the user's transform, into a table of its own."""
    declared = settings.feature_sets["customer_profile"].model_dump(mode="json", exclude={"request_time"})
    features = [
        *declared["features"],
        {"name": "scaled_limit", "type": "double", "description": "Scaled limit."},
    ]
    return FeatureSetDecl.model_validate(
        {
            **declared,
            "name": "team_profile",
            "table": "features.team_profile",
            "transforms": [*declared["transforms"], PROFILE_SCALED],
            "features": features,
        }
    )


def test_after_the_formatter_a_recorded_model_loads_and_no_table_asks_for_a_full_refresh(
    spark: SparkSession, tmp_settings: Settings, package: Path
) -> None:
    catalog = Catalog(spark, tmp_settings)
    catalog.write(generate_customers(spark, DataConf(customers=12)), tmp_settings.tables.raw_customers)
    decl = _user_set(tmp_settings)
    built = build_feature_set(catalog, tmp_settings, decl)
    state = BuildState.from_metadata(catalog.commit_metadata(decl.table, built.version))
    assert state is not None and state.hash_scheme == AST_SCHEME
    lookups: list[dict[str, Any]] = describe_lookups(
        [FeatureLookup(decl, built.version, catalog.read(decl.table), decl.code_hash())]
    )
    spec = FeatureSpec(
        entity="customer_id",
        timestamp="score_ts",
        feature_sets=lookups,
        request_time=[],
        numeric=[],
        categorical=[],
        code_hash="",
    )
    assert lookups[0][HASH_SCHEME_KEY] == AST_SCHEME

    _format(package)
    check_transform_code(spec)  # the model loads as recorded
    assert plan_feature_build(
        catalog, tmp_settings, decl
    ).range.up_to_date  # and the table is as built: no refresh

    _write(package, "helpers", (package / "helpers.py").read_text().replace("+ OFFSET", "- OFFSET"))
    with pytest.raises(TransformCodeChangedError, match="team_profile"):
        check_transform_code(spec)
    _write(
        package,
        "transforms",
        (package / "transforms.py").read_text().replace("SCALE).cast", "SCALE + 1).cast"),
    )
    with pytest.raises(DeclarationChangedError, match="full_refresh=True"):
        plan_feature_build(catalog, tmp_settings, decl)
