"""Models registered before the library moved into rooms still load and score the same.

`tests/fixtures/model_before_layout/` holds two models packaged by the flat 0.1 code (commit
7a14043), one per flavor, and the predictions that code made with them at a fixed time (see
its README.md). Here the current code rebuilds the same sample data and feature tables, loads
each model (its pyfunc entry imports `parity.model.ParityModel`; its feature spec names
`parity.transforms.*` and the code hash of each set), and scores the same customers: every
prediction must equal the recorded one.
"""

from __future__ import annotations

import datetime as dt

import mlflow
import pandas as pd
import pytest
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from parity.core.catalog import Catalog
from parity.core.conf import FeatureSetDecl, load_settings
from parity.demo.columns import CUSTOMER_ID, SCORE_TS, UPDATED_AT
from parity.demo.sample_data import generate_customers, generate_events
from parity.features.asof import read_feature_lookups
from parity.features.build import BuildOptions, build_declared_sets
from parity.model.packaged import load_feature_spec
from parity.model.spec import changed_transforms
from parity.scoring.batch import ScoredModel, score, scoring_spine
from tests.conftest import TEST_SPARK
from tests.support import CONF_DIR, REPO, SMALL_DATA, storage_overrides

pytestmark = pytest.mark.integration  # a regression on the whole sample data (not in make test-fast)
FIXTURE = REPO / "tests" / "fixtures" / "model_before_layout"
SCORE_TIME = dt.datetime(2026, 5, 20)  # as recorded in the fixture's README


@pytest.fixture(scope="module")
def catalog(spark: SparkSession, tmp_path_factory: pytest.TempPathFactory) -> Catalog:
    """The fixture's sample data and feature tables, built by the current code."""
    root = tmp_path_factory.mktemp("before_layout")
    settings = load_settings(CONF_DIR, overrides=storage_overrides(root) + TEST_SPARK + SMALL_DATA)
    catalog = Catalog(spark, settings)
    catalog.write(
        generate_customers(spark, settings.data), settings.tables.raw_customers
    )  # what the models' sets read
    catalog.write(generate_events(spark, settings.data), settings.tables.raw_events)
    build_declared_sets(catalog, settings, None, BuildOptions(full_refresh=True))
    return catalog


@pytest.mark.parametrize("flavor", ["sklearn", "spark"])
def test_a_model_registered_before_the_move_scores_as_it_did(
    spark: SparkSession, catalog: Catalog, flavor: str
) -> None:
    model = FIXTURE / flavor
    spec = load_feature_spec(str(model))
    assert spec.flavor == flavor
    assert changed_transforms(spec) == []  # parity.transforms.* still names the very same code
    assert (
        type(mlflow.pyfunc.load_model(str(model)).unwrap_python_model()).__module__ == "parity.model.packaged"
    )

    decls = [FeatureSetDecl.model_validate(lookup["feature_set"]) for lookup in spec.feature_sets]
    customers = catalog.read(catalog.settings.tables.raw_customers).filter(
        F.col(UPDATED_AT) <= F.lit(SCORE_TIME)
    )
    predictions = score(
        spark,
        scoring_spine(customers, columns=[CUSTOMER_ID], score_time=SCORE_TIME),
        read_feature_lookups(catalog, decls),
        spec,
        model=ScoredModel(str(model), "parity_churn", version="before-layout", run_id="before-layout"),
    )
    got = (
        predictions.select(CUSTOMER_ID, SCORE_TS, "prediction")
        .toPandas()
        .sort_values(CUSTOMER_ID)
        .reset_index(drop=True)
    )
    recorded = pd.read_csv(FIXTURE / f"{flavor}_predictions.csv", parse_dates=[SCORE_TS])

    assert got[CUSTOMER_ID].tolist() == recorded[CUSTOMER_ID].tolist()
    assert (got[SCORE_TS] == recorded[SCORE_TS]).all()
    pd.testing.assert_series_equal(
        got["prediction"], recorded["prediction"], check_exact=False, rtol=1e-12, atol=1e-15
    )
