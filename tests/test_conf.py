"""Conf loading: overlays, --set overrides, and errors that name the key."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from parity.core.conf import ConfError, load_settings
from tests.support import CONF_DIR


def test_dev_is_the_default_env_and_keeps_data_inside_the_checkout() -> None:
    settings = load_settings(CONF_DIR)
    assert settings.env == "dev"
    assert settings.spark.master == "local[*]"
    root = Path(settings.project_root)
    assert Path(settings.storage.root).is_relative_to(root / ".parity")
    assert settings.mlflow.tracking_uri == f"sqlite:///{root}/.parity/mlflow.db"


def test_env_overlay_and_set_overrides_apply_in_order() -> None:
    settings = load_settings(
        CONF_DIR,
        env="cluster",
        overrides=[
            "spark.master=spark://127.0.0.1:7999",
            "data.customers=123",
            "feature_sets.customer_activity.lookback=5d",
        ],
    )
    assert settings.spark.master == "spark://127.0.0.1:7999"
    assert settings.spark.conf["spark.cores.max"] == "2"  # from cluster.yaml
    assert settings.data.customers == 123
    assert settings.feature_sets["customer_activity"].lookback_delta == dt.timedelta(
        days=5
    )  # a declaration, adjusted by --set


def test_spark_conf_keys_keep_their_dots() -> None:
    settings = load_settings(CONF_DIR, overrides=["spark.conf.spark.sql.shuffle.partitions=3"])
    assert settings.spark.conf["spark.sql.shuffle.partitions"] == "3"


def test_unknown_key_is_named() -> None:
    with pytest.raises(ConfError, match=r"unknown conf key 'storage\.rooot'.*known keys here: root"):
        load_settings(CONF_DIR, overrides=["storage.rooot=/tmp/x"])


def test_unknown_top_level_key_in_a_file_is_named(tmp_path: Path) -> None:
    conf = tmp_path / "conf"
    conf.mkdir()
    (conf / "base.yaml").write_text((CONF_DIR / "base.yaml").read_text() + "\ntrainng:\n  max_evals: 3\n")
    (conf / "dev.yaml").write_text((CONF_DIR / "dev.yaml").read_text())
    with pytest.raises(ConfError, match="unknown conf key 'trainng'"):
        load_settings(conf)


def test_bad_value_names_the_key() -> None:
    with pytest.raises(ConfError, match=r"conf key 'data\.customers'"):
        load_settings(CONF_DIR, overrides=["data.customers=-5"])


def test_bad_table_name_is_rejected() -> None:
    with pytest.raises(
        ConfError, match=r"models\.churn\.tables\.predictions.*'scores' is not a logical table name"
    ):
        load_settings(CONF_DIR, overrides=["models.churn.tables.predictions=scores"])


def test_unknown_env_lists_the_known_ones() -> None:
    with pytest.raises(ConfError, match=r"unknown env 'prod-eu'.*cluster, dev"):
        load_settings(CONF_DIR, env="prod-eu")


def test_malformed_set_is_rejected() -> None:
    with pytest.raises(ConfError, match=r"dotted\.key=value"):
        load_settings(CONF_DIR, overrides=["data.customers"])


def test_conf_hash_changes_with_the_conf() -> None:
    assert load_settings(CONF_DIR).conf_hash() == load_settings(CONF_DIR).conf_hash()
    assert (
        load_settings(CONF_DIR).conf_hash() != load_settings(CONF_DIR, overrides=["data.seed=8"]).conf_hash()
    )
