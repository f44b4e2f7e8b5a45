"""The confidence is the probability of a gain: calibrated out of fold where that beats the base rate, else the
base rate, labelled; checked against probabilities known by construction."""

import numpy as np
import pandas as pd
import pytest
from scipy import special

from quant_assets.lib.ensemble.confidence import (
    confidence_evaluation,
    fit_gain_calibration,
    gain_probability,
)
from quant_assets.lib.vocabulary import BASE_RATE, CALIBRATED

SYMBOLS = [f"S{i:02d}" for i in range(20)]


def windows_of_outcomes(rng, stated, n_windows=6, n_dates=40):
    """Earlier windows' rows (window_start, date, horizon, p_up, realized): every row's true probability of a gain is
    ``expit(z)``, its stated ``p_up`` is ``stated(z)``, and its outcome is drawn from the true probability."""
    frames = []
    for w in range(n_windows):
        dates = pd.bdate_range(pd.Timestamp("2020-01-01") + pd.DateOffset(months=w), periods=n_dates)
        n = len(dates) * len(SYMBOLS)
        z = rng.normal(0.2, 0.8, n)
        gain = rng.uniform(size=n) < special.expit(z)
        frames.append(pd.DataFrame({"window_start": dates[0], "date": np.repeat(dates, len(SYMBOLS)), "horizon": "1w",
                                    "p_up": stated(z), "realized": np.where(gain, 0.01, -0.01)}))
    return pd.concat(frames, ignore_index=True)


def fold_blocks(rows):
    return [np.array([w]) for w in np.sort(rows["window_start"].unique())]


def test_a_miscalibrated_p_up_is_calibrated_out_of_fold_decile_by_decile():
    rng = np.random.default_rng(3)
    # Overconfident and shifted: the stated logit is 0.3 + 2 z where the true one is z.
    stated = lambda z: special.expit(0.3 + 2.0 * z)  # noqa: E731
    history = windows_of_outcomes(rng, stated)
    evaluation = confidence_evaluation(history, "window_start", fold_blocks(history))
    assert evaluation["brier_calibrated"] < evaluation["brier_base_rate"]
    # The base rate out of fold, by hand: each window's rows get the share of gains in the other windows.
    gain = history["realized"] > 0
    by_window = gain.groupby(history["window_start"]).agg(["sum", "count"])
    others = (by_window["sum"].sum() - by_window["sum"]) / (by_window["count"].sum() - by_window["count"])
    assert evaluation["brier_base_rate"] == pytest.approx(np.mean((history["window_start"].map(others) - gain) ** 2))

    z_now = rng.normal(0.2, 0.8, 50_000)
    probability = gain_probability(history, stated(z_now), evaluation, prior_base_rate=0.5)
    assert probability.source == CALIBRATED and probability.reason == ""
    np.testing.assert_array_equal(probability.shown, probability.calibrated)
    truth = special.expit(z_now)
    assert np.max(np.abs(probability.calibrated - truth)) < 0.03
    # The requirement as a person would check it: in each decile of stated probability, the realized hit rate
    # is within 5 points of what was stated.
    realized = rng.uniform(size=z_now.size) < truth
    deciles = pd.qcut(probability.shown, 10, labels=False)
    table = pd.DataFrame({"stated": probability.shown, "hit": realized}).groupby(deciles).mean()
    assert len(table) == 10 and np.max(np.abs(table["stated"] - table["hit"])) < 0.05
    # The raw p_up fails the same check: calibration is what made it hold.
    raw = pd.DataFrame({"stated": stated(z_now), "hit": realized}).groupby(pd.qcut(stated(z_now), 10, labels=False)).mean()
    assert np.max(np.abs(raw["stated"] - raw["hit"])) > 0.1


def test_without_signal_the_base_rate_is_shown_and_labelled():
    rng = np.random.default_rng(4)
    history = windows_of_outcomes(rng, lambda z: rng.uniform(0.3, 0.8, z.size))  # p_up unrelated to the outcome
    evaluation = confidence_evaluation(history, "window_start", fold_blocks(history))
    assert evaluation["brier_calibrated"] >= evaluation["brier_base_rate"]
    assert abs(evaluation["auc_p_up"] - 0.5) < 0.03
    now = rng.uniform(0.3, 0.8, 100)
    probability = gain_probability(history, now, evaluation, prior_base_rate=0.5)
    share = float((history["realized"] > 0).mean())
    assert probability.source == BASE_RATE and "not below the base rate's" in probability.reason
    assert probability.base_rate == share
    np.testing.assert_array_equal(probability.shown, np.full(100, share))
    columns = probability.columns()
    assert columns["confidence_source"] == BASE_RATE and (columns["prob_gain_base_rate"] == share).all()


def test_too_little_history_gives_the_prior_base_rate():
    rng = np.random.default_rng(5)
    history = windows_of_outcomes(rng, special.expit, n_windows=1, n_dates=1)  # 20 rows: too few gains and losses
    assert confidence_evaluation(history, "window_start", fold_blocks(history)) == {}
    probability = gain_probability(history, np.array([0.7, 0.4]), {}, prior_base_rate=0.53)
    assert probability.source == BASE_RATE and "too few outcomes" in probability.reason
    np.testing.assert_array_equal(probability.shown, [0.53, 0.53])
    # The calibration itself is the identity without enough outcomes.
    np.testing.assert_allclose(fit_gain_calibration([0.7, 0.4], [True, False]).predict(np.array([0.7, 0.4])), [0.7, 0.4])


def test_a_long_run_base_rate_is_the_one_to_beat_and_the_one_shown():
    rng = np.random.default_rng(6)
    history = windows_of_outcomes(rng, lambda z: rng.uniform(0.3, 0.8, z.size))
    gain = (history["realized"] > 0).to_numpy()
    # The training span's share of gains, here that of the rows themselves: a base rate no noise can beat.
    long_run = float(gain.mean())
    evaluation = confidence_evaluation(history, "window_start", fold_blocks(history), base_rate=long_run)
    assert evaluation["brier_base_rate"] == pytest.approx(np.mean((long_run - gain) ** 2))
    probability = gain_probability(history, np.array([0.2, 0.9]), evaluation, prior_base_rate=0.5,
                                   long_run_base_rate=long_run)
    assert probability.source == BASE_RATE and probability.base_rate == long_run
    np.testing.assert_array_equal(probability.shown, [long_run, long_run])
    # A long-run rate far from the outcomes is beaten by the calibration, which then is what is shown.
    off = confidence_evaluation(history, "window_start", fold_blocks(history), base_rate=0.8)
    assert gain_probability(history, np.array([0.2, 0.9]), off, 0.5, 0.8).source == CALIBRATED
