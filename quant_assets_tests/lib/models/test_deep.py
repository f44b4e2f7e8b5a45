"""Deep forecasters (MLP, GRU, TCN) on a small synthetic panel: one planted signal in a current feature and
one in a feature three rows back, which only the sequence models can see."""

import os
import pickle

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np
import pandas as pd
import pytest
import torch
from scipy import stats
from torch.nn import functional as F

from quant_assets.lib.models import CATALOG, make_model
from quant_assets.lib.models.base import DISTRIBUTION_COLUMNS, TARGET
from quant_assets.lib.models.deep import DeepForecaster, GRUForecaster, MLPForecaster, TCNForecaster, history_index
from quant_assets.lib.models.deep_nets import TCNNet, negative_log_likelihood
from quant_assets_tests.support.panels import assert_valid_distribution, panel_symbols, symbol_columns

NAMES = ("mlp", "gru", "tcn")
DEEP_MODELS = {"mlp": MLPForecaster, "gru": GRUForecaster, "tcn": TCNForecaster}
SEQUENCE = ("gru", "tcn")
SPLIT = pd.Timestamp("2019-06-01")
LAG = 3


def make_panel(n_symbols=4, n_days=780, seed=11):
    """Symbols x business days. ``target`` = 0.5 * signal_t + 0.5 * pulse_{t-3} + t(5) noise (times 1%):
    ``signal`` is visible on the row, ``pulse`` only on the row three steps earlier."""
    rng = np.random.default_rng(seed)
    dates = pd.bdate_range("2017-01-02", periods=n_days)
    frames = []
    for i, crypto, signal in panel_symbols(rng, n_symbols, n_days, 0.9):
        pulse = rng.standard_normal(n_days)
        lagged = np.r_[np.zeros(LAG), pulse[:-LAG]]
        noise = rng.standard_t(5, n_days) / np.sqrt(5 / 3)
        target = 0.01 * (0.5 * signal + 0.5 * lagged + noise)
        target[-5:] = np.nan  # the future is not yet known
        frames.append(pd.DataFrame({
            **symbol_columns(i, crypto, dates), "signal": signal, "pulse": pulse,
            "distractor": rng.standard_normal(n_days), "oc_flow": rng.standard_normal(n_days) if crypto else np.nan,
            "lagged_pulse": lagged,  # the truth, dropped before modelling
            TARGET: target,
        }))
    panel = pd.concat(frames, ignore_index=True)
    panel.loc[rng.random(len(panel)) < 0.03, "signal"] = np.nan
    return panel


@pytest.fixture(scope="module")
def panel():
    return make_panel()


@pytest.fixture(scope="module")
def frame(panel):
    return panel.drop(columns=["lagged_pulse"])


@pytest.fixture(scope="module")
def fitted(frame):
    train = frame[frame["date"] < SPLIT]
    return {name: DEEP_MODELS[name](horizon="1w", seed=3).fit(train) for name in NAMES}


@pytest.fixture(scope="module")
def predictions(frame, fitted):
    return {name: model.predict(frame) for name, model in fitted.items()}


def held_out(panel):
    return (panel["date"] >= SPLIT).to_numpy() & panel[TARGET].notna().to_numpy()


def test_registry_catalog_and_params():
    for name, cls in DEEP_MODELS.items():
        module, class_name, family, kind = CATALOG[name]
        model = make_model(name, horizon="1m", seed=5)
        assert type(model) is cls and class_name == cls.__name__ and module == "deep"
        assert (model.name, model.family, model.kind) == (name, family, kind) == (name, "deep", "pytorch")
        params = model.params()
        assert params["horizon"] == "1m" and params["seed"] == 5
        assert params["max_epochs"] <= 30 and params["learning_rate"] > 0 and params["distribution"] == "student_t"
    assert MLPForecaster(horizon="1w").params()["hidden"] == [64, 32]
    assert 20 <= GRUForecaster(horizon="1w").params()["lookback"] <= 30
    assert 20 <= TCNForecaster(horizon="1w").params()["lookback"] <= 30


@pytest.mark.parametrize("name", NAMES)
def test_output_shape_and_validity(name, frame, predictions, fitted):
    out = predictions[name]
    assert_valid_distribution(out, frame)
    # Student-t head: the quantiles sit where the learned t law puts them.
    info = fitted[name].fit_info_
    nu = info["dof"]
    assert 2.5 < nu < 100
    row = out.iloc[500]
    scale = row["std"] / np.sqrt(nu / (nu - 2))
    assert row["q90"] == pytest.approx(row["mean"] + scale * stats.t.ppf(0.90, nu), rel=1e-6)
    # Early stopping on a validation tail that is later than every fit row.
    assert 0 < info["best_epoch"] <= info["epochs"] <= fitted[name].max_epochs
    assert info["validation_rows"] > 0 and info["fit_rows"] > info["validation_rows"]


@pytest.mark.parametrize("name", NAMES)
def test_held_out_signal_and_coverage(name, panel, predictions):
    held = held_out(panel)
    out = predictions[name][held]
    y = panel.loc[held, TARGET].to_numpy()
    rho = stats.spearmanr(out["mean"], y).statistic
    assert rho > 0.25, f"{name}: held-out rank correlation {rho:.3f}"
    coverage = np.mean((y >= out["q10"].to_numpy()) & (y <= out["q90"].to_numpy()))
    assert 0.65 <= coverage <= 0.93, f"{name}: q10-q90 coverage {coverage:.2f}"


def test_only_sequence_models_see_the_lagged_signal(panel, predictions):
    held = held_out(panel)
    lagged = panel.loc[held, "lagged_pulse"].to_numpy()
    seen = {name: stats.spearmanr(predictions[name]["mean"][held], lagged).statistic for name in NAMES}
    # The MLP sees only the current signal, so it follows the lagged pulse no more than the signal does by chance.
    chance = stats.spearmanr(panel.loc[held, "signal"].fillna(0.0), lagged).statistic
    assert abs(seen["mlp"] - chance) < 0.05, (seen, chance)
    for name in SEQUENCE:
        assert seen[name] > chance + 0.25, (seen, chance)
    y = panel.loc[held, TARGET].to_numpy()
    rho = {name: stats.spearmanr(predictions[name]["mean"][held], y).statistic for name in NAMES}
    assert min(rho["gru"], rho["tcn"]) > rho["mlp"], rho


@pytest.mark.parametrize("name", NAMES)
def test_only_sequence_models_read_history(name, frame, fitted, predictions):
    """The walk-forward predicts only the window's rows of a model that does not read history: the MLP gives
    any subset of rows the values it gives them within the whole frame; the GRU and TCN read the past."""
    assert fitted[name].reads_history == (name in SEQUENCE)
    keep = (frame["date"] >= SPLIT).to_numpy() & (np.arange(len(frame)) % 3 == 0)
    alone = fitted[name].predict(frame[keep]).reset_index(drop=True)
    within = predictions[name][keep].reset_index(drop=True)
    if name in SEQUENCE:
        assert not np.allclose(alone["mean"], within["mean"])
    else:
        pd.testing.assert_frame_equal(alone, within)


@pytest.mark.parametrize("name", NAMES)
def test_seeded_determinism_and_torch_state_restored(name, frame, predictions):
    train = frame[frame["date"] < SPLIT]
    torch.manual_seed(1234)
    rng_state = torch.get_rng_state()
    threads = torch.get_num_threads()
    deterministic = torch.are_deterministic_algorithms_enabled()
    again = DEEP_MODELS[name](horizon="1w", seed=3).fit(train)
    pd.testing.assert_frame_equal(again.predict(frame), predictions[name])
    assert torch.equal(torch.get_rng_state(), rng_state)
    assert torch.get_num_threads() == threads and torch.are_deterministic_algorithms_enabled() == deterministic

    other = DEEP_MODELS[name](horizon="1w", seed=4, max_epochs=3).fit(train).predict(frame)
    short = DEEP_MODELS[name](horizon="1w", seed=3, max_epochs=3).fit(train).predict(frame)
    assert not np.allclose(other["mean"], short["mean"])


@pytest.mark.parametrize("name", NAMES)
def test_save_load_round_trip(name, tmp_path, frame, fitted, predictions):
    path = tmp_path / f"{name}_1w.pt"
    fitted[name].save(path)
    loaded = DeepForecaster.load(path)
    assert type(loaded) is DEEP_MODELS[name]
    assert loaded.params() == fitted[name].params() and loaded.fit_info_ == fitted[name].fit_info_
    pd.testing.assert_frame_equal(loaded.predict(frame), predictions[name])
    pd.testing.assert_frame_equal(DEEP_MODELS[name].load(path).predict(frame), predictions[name])
    pd.testing.assert_frame_equal(pickle.loads(pickle.dumps(fitted[name])).predict(frame), predictions[name])
    wrong = next(cls for key, cls in DEEP_MODELS.items() if key != name)
    with pytest.raises(ValueError, match=f"holds a '{name}' model"):
        wrong.load(path)


@pytest.mark.parametrize("name", SEQUENCE)
def test_sequence_history_is_by_symbol_and_date_and_causal(name, frame, fitted, predictions):
    model = fitted[name]
    # Row order does not matter: history is read by date within each symbol.
    shuffled = frame.sample(frac=1.0, random_state=2)
    out = model.predict(shuffled)
    pd.testing.assert_frame_equal(out, predictions[name].loc[shuffled.index].reset_index(drop=True))

    # Causal and per symbol: changing later rows of S0 and every row of S1 leaves S0's earlier rows alone.
    cut = pd.Timestamp("2019-09-02")
    changed = frame.copy()
    later = (changed["symbol"] == "S0") & (changed["date"] > cut)
    changed.loc[later | (changed["symbol"] == "S1"), ["signal", "pulse"]] = 3.0
    before = ((frame["symbol"] == "S0") & (frame["date"] <= cut)).to_numpy()
    out = model.predict(changed)
    pd.testing.assert_frame_equal(out[before], predictions[name][before])
    assert not np.allclose(out.loc[later.to_numpy(), "mean"], predictions[name].loc[later.to_numpy(), "mean"])

    # A symbol with a single row (no history) still predicts, and so does an unseen one.
    lone = frame.iloc[[100]].assign(symbol="NEW")
    alone = model.predict(lone)
    assert len(alone) == 1 and np.isfinite(alone[list(DISTRIBUTION_COLUMNS)].to_numpy()).all()


def test_history_index_matches_a_per_symbol_reference():
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        {
            "symbol": rng.choice(["A", "B", "C"], 40),
            "date": pd.Timestamp("2020-01-01") + pd.to_timedelta(rng.permutation(40), unit="D"),
        }
    )
    index = history_index(frame, 4, "test")
    for i, row in frame.iterrows():
        past = frame[(frame["symbol"] == row["symbol"]) & (frame["date"] <= row["date"])].sort_values("date")
        expected = list(past.index[-4:])
        expected = [len(frame)] * (4 - len(expected)) + expected
        assert list(index[i]) == expected


def test_sparse_tcn_equals_full_causal_convolution():
    torch.manual_seed(0)
    kernel, dilations, lookback = 3, (1, 2, 4, 8), 20
    net = TCNNet(5, 8, kernel, dilations, lookback, dropout=0.0, student_t=True).eval()
    x = torch.randn(7, lookback, 5)
    with torch.no_grad():
        sparse = net.blocks(x[:, net.inputs])[:, -1]
        h = x.transpose(1, 2)
        for block, d in zip(net.blocks, dilations):
            # Linear taps are ordered newest first; conv1d wants oldest first.
            weight = block.linear.weight.view(block.linear.out_features, kernel, -1).flip(1).permute(0, 2, 1)
            conv = F.conv1d(F.pad(h, ((kernel - 1) * d, 0)), weight, block.linear.bias, dilation=d)
            skip = h if isinstance(block.skip, torch.nn.Identity) else block.skip(h.transpose(1, 2)).transpose(1, 2)
            h = F.gelu(conv + skip)
    torch.testing.assert_close(sparse, h[:, :, -1], rtol=1e-5, atol=1e-5)


def test_negative_log_likelihood_matches_scipy():
    rng = np.random.default_rng(1)
    y, mean, log_scale = rng.standard_normal(50), rng.standard_normal(50) * 0.3, rng.standard_normal(50) * 0.2
    t = lambda a: torch.tensor(a, dtype=torch.float64)  # noqa: E731
    got_t = negative_log_likelihood(t(mean), t(log_scale), t(y), t(np.array(5.0)))
    want_t = -stats.t.logpdf(y, 5.0, loc=mean, scale=np.exp(log_scale)).mean()
    assert float(got_t) == pytest.approx(want_t, rel=1e-10)
    got_n = negative_log_likelihood(t(mean), t(log_scale), t(y), None)
    assert float(got_n) == pytest.approx(-stats.norm.logpdf(y, loc=mean, scale=np.exp(log_scale)).mean(), rel=1e-10)


def test_gaussian_head_and_validation_split(frame):
    train = frame[frame["date"] < SPLIT]
    model = MLPForecaster(horizon="1w", seed=0, distribution="gaussian", max_epochs=3).fit(train)
    out = model.predict(frame)
    assert model.fit_info_["dof"] == float("inf")
    np.testing.assert_allclose(out["q95"], out["mean"] + stats.norm.ppf(0.95) * out["std"], rtol=1e-9, atol=1e-12)

    # The validation tail is the latest dates, separated from the fit rows by the horizon's length.
    model = GRUForecaster(horizon="1m", seed=0)
    dates = pd.to_datetime(train["date"]).to_numpy().astype("int64")
    known = np.flatnonzero(train[TARGET].notna().to_numpy())
    fit, validation = model._split(dates, known)
    assert dates[validation].min() - dates[fit].max() > 30 * 86_400 * 10**9
    assert 0.1 < len(validation) / len(known) < 0.2

    # Too few rows for a validation tail: train for max_epochs on all of them.
    tiny = train[train["symbol"] == "S0"].iloc[:60]
    model = TCNForecaster(horizon="1w", seed=0, max_epochs=2).fit(tiny)
    assert model.fit_info_["validation_rows"] == 0 and model.fit_info_["epochs"] == 2
    assert np.isfinite(model.predict(tiny)[list(DISTRIBUTION_COLUMNS)].to_numpy()).all()


def test_bad_inputs_get_clear_errors(frame):
    with pytest.raises(ValueError, match="no 'target' column"):
        MLPForecaster(horizon="1w").fit(frame.drop(columns=[TARGET]))
    with pytest.raises(ValueError, match="not fitted"):
        GRUForecaster(horizon="1w").predict(frame)
    with pytest.raises(ValueError, match="distribution must be one of"):
        TCNForecaster(horizon="1w", distribution="cauchy")
    model = GRUForecaster(horizon="1w", seed=0, max_epochs=1).fit(frame)
    with pytest.raises(ValueError, match=r"lacks feature column\(s\) \['signal'\]"):
        model.predict(frame.drop(columns=["signal"]))
    with pytest.raises(ValueError, match="no 'symbol' column"):
        model.predict(frame.drop(columns=["symbol"]))
