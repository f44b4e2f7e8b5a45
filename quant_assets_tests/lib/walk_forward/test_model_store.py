"""The model store: every family's fitted models survive a round trip through $QUANT_HOME/models and predict
identically; the daily step's pure prediction of one day equals the whole context's prediction of that day."""

from datetime import date

import numpy as np
import pandas as pd
import pytest

from quant_assets.lib.models import BASELINE, MODEL_NAMES, make_model
from quant_assets.lib.models.base import DISTRIBUTION_COLUMNS, TARGET
from quant_assets.lib.vocabulary import HORIZONS
from quant_assets.lib.walk_forward.model_store import load_window_models, models_folder, save_window_models
from quant_assets.lib.walk_forward.predict_daily import load_models, predict_day
from quant_assets.lib.walk_forward.training import PREDICTION_COLUMNS
from quant_assets_tests.support.panels import make_panel

WINDOW = date(2018, 6, 1)
# Deep models kept tiny: the round trip, not the skill, is under test.
TINY = {"mlp": {"max_epochs": 2}, "gru": {"max_epochs": 1, "lookback": 5}, "tcn": {"max_epochs": 1, "lookback": 5}}


def _fit(name: str, train: pd.DataFrame) -> dict:
    models = {}
    for horizon in HORIZONS:
        model = make_model(name, horizon=horizon.label, seed=3)
        if name in TINY:
            model = type(model)(horizon=horizon.label, seed=3, **TINY[name])
        models[horizon.label] = model.fit(train)
    return models


@pytest.fixture(scope="module")
def panel():
    return make_panel(n_symbols=3, n_days=420)


@pytest.fixture(scope="module")
def stored(panel, tmp_path_factory):
    """Every model of the catalog and the baseline fitted on the rows before the window, stored in a QUANT_HOME."""
    home = tmp_path_factory.mktemp("store")
    train = panel[panel["date"] < pd.Timestamp(WINDOW)]
    fitted = {name: _fit(name, train) for name in (*MODEL_NAMES, BASELINE)}
    for name, models in fitted.items():
        save_window_models(home, WINDOW, name, models)
    return home, fitted


@pytest.mark.parametrize("name", [*MODEL_NAMES, BASELINE])
def test_round_trip_predicts_identically(name, panel, stored):
    home, fitted = stored
    loaded = load_window_models(home, WINDOW, name)
    assert sorted(loaded) == sorted(h.label for h in HORIZONS)
    features = panel.drop(columns=[TARGET])
    for horizon, model in fitted[name].items():
        assert type(loaded[horizon]) is type(model) and loaded[horizon].horizon == model.horizon
        before = model.predict(features)[list(DISTRIBUTION_COLUMNS)].to_numpy()
        after = loaded[horizon].predict(features)[list(DISTRIBUTION_COLUMNS)].to_numpy()
        assert np.isfinite(after).all()
        assert np.abs(after - before).max() == 0.0


def test_saving_again_replaces_the_fit(panel, stored, tmp_path):
    _, fitted = stored
    save_window_models(tmp_path, WINDOW, "ridge", fitted["ridge"])
    save_window_models(tmp_path, WINDOW, "ridge", {**fitted["ridge"], "1w": fitted["ridge"]["1m"]})
    assert load_window_models(tmp_path, WINDOW, "ridge")["1w"].horizon.label == "1m"
    assert sorted(p.name for p in models_folder(tmp_path, WINDOW, "ridge").parent.iterdir()) == ["ridge"]


def test_incomplete_or_absent_fit_is_reported_missing(stored, tmp_path):
    _, fitted = stored
    save_window_models(tmp_path, WINDOW, "ridge", {"1w": fitted["ridge"]["1w"]})
    save_window_models(tmp_path, WINDOW, "garch", fitted["garch"])
    models, missing = load_models(tmp_path, WINDOW, ["ridge", "garch", "lightgbm"])
    assert sorted(models) == ["garch"] and missing == ["ridge", "lightgbm"]


def test_predict_day_equals_the_whole_context_prediction_of_that_day(panel, stored):
    home, _ = stored
    models, missing = load_models(home, WINDOW)
    assert missing == []
    features = panel.drop(columns=[TARGET]).assign(fwd_1w=panel[TARGET], end_1w=pd.NaT,
                                                   **{f"{k}_{h.label}": np.nan for h in HORIZONS[1:] for k in ("fwd", "end")})
    day = features["date"][features["date"] >= pd.Timestamp(WINDOW)].iloc[10].date()
    # What the daily step sees: the context up to the day, nothing after it.
    rows = predict_day(models, features[features["date"] <= pd.Timestamp(day)], WINDOW, day)
    assert list(rows.columns) == PREDICTION_COLUMNS
    assert len(rows) == 3 * 4 * len(models) and (rows["date"] == pd.Timestamp(day)).all()
    for name, by_horizon in models.items():
        for horizon, model in by_horizon.items():
            whole = model.predict(features.drop(columns=[c for c in features if c.startswith(("fwd_", "end_"))]))
            expected = whole[(whole["date"] == pd.Timestamp(day)).to_numpy()].sort_values("symbol")
            got = rows[(rows["model"] == name) & (rows["horizon"] == horizon)].sort_values("symbol")
            diff = np.abs(got[list(DISTRIBUTION_COLUMNS)].to_numpy() - expected[list(DISTRIBUTION_COLUMNS)].to_numpy())
            # float32 for the torch models: batches of other shapes round apart within its precision.
            assert diff.max() <= 1e-7, (name, horizon, diff.max())
    realized_1w = rows[(rows["horizon"] == "1w") & (rows["model"] == "ridge")].sort_values("symbol")["realized"].to_numpy()
    assert np.allclose(realized_1w, panel[panel["date"] == pd.Timestamp(day)].sort_values("symbol")[TARGET])


def test_a_day_without_rows_predicts_nothing(panel, stored):
    home, _ = stored
    models, _ = load_models(home, WINDOW, ["ridge"])
    saturday = date(2018, 6, 9)
    assert predict_day(models, panel.drop(columns=[TARGET]), WINDOW, saturday).empty


@pytest.fixture
def object_store(monkeypatch):
    """moto's S3 server in a thread with a bucket, and the cluster profile's settings pointing at it."""
    import boto3
    from moto.server import ThreadedMotoServer

    from quant_assets.deploy.services import LOCAL_S3_CREDENTIALS, free_port

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    for name, value in {**LOCAL_S3_CREDENTIALS, "QUANT_PROFILE": "cluster", "QUANT_OBJECT_STORE": "s3://fits/store",
                        "QUANT_S3_ENDPOINT_URL": endpoint}.items():
        monkeypatch.setenv(name, value)
    boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket="fits")
    yield boto3.client("s3", endpoint_url=endpoint)
    server.stop()


def test_the_cluster_profile_keeps_the_models_on_the_object_store(panel, stored, object_store, quant_home):
    """Where a worker on one host fits and the warehouse's host predicts the day: the models go through the S3
    API, a second fit replaces the first, and what is loaded back predicts as the fitted models do."""
    from quant_assets.settings import Settings

    _, fitted = stored
    home = Settings().models_home
    save_window_models(home, WINDOW, "ridge", {**fitted["ridge"], "1w": fitted["ridge"]["1m"]})
    save_window_models(home, WINDOW, "ridge", fitted["ridge"])
    save_window_models(home, WINDOW, "gru", fitted["gru"])

    keys = sorted(o["Key"] for o in object_store.list_objects_v2(Bucket="fits")["Contents"])
    ridge = [k for k in keys if k.startswith(f"store/models/{WINDOW}/ridge/")]
    assert len(ridge) == 1 + len(HORIZONS)  # the pointer and one fit's files: the first fit is gone
    assert not (quant_home / "models").exists()

    models, missing = load_models(Settings().models_home, WINDOW, ["ridge", "gru", "lightgbm"])
    assert sorted(models) == ["gru", "ridge"] and missing == ["lightgbm"]
    features = panel.drop(columns=[TARGET])
    for name in ("ridge", "gru"):
        for horizon, model in fitted[name].items():
            expected = model.predict(features)[list(DISTRIBUTION_COLUMNS)].to_numpy()
            assert np.abs(models[name][horizon].predict(features)[list(DISTRIBUTION_COLUMNS)].to_numpy() - expected).max() == 0.0
