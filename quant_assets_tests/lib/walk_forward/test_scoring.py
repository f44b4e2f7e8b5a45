"""Scores against independent references: scoringrules, scipy, naive loops and hand-computed values."""

import math

import numpy as np
import pandas as pd
import pytest
import scoringrules as sr
from scipy import stats

from quant_assets.lib.models.base import QUANTILE_COLUMNS, QUANTILE_LEVELS, crps_gaussian
from quant_assets.lib.walk_forward.scoring import (
    brier,
    coverage,
    crps_quantiles,
    information_coefficient,
    pinball_loss,
    rank_ic,
    score_predictions,
    skill,
)

LEVELS = np.array(QUANTILE_LEVELS)


def test_crps_gaussian_matches_scoringrules():
    rng = np.random.default_rng(0)
    y, mean, std = rng.normal(size=200), rng.normal(size=200), rng.uniform(0.01, 3.0, 200)
    expected = sr.crps_normal(y, mean, std, backend="numpy")
    np.testing.assert_allclose(crps_gaussian(y, mean, std), expected, rtol=1e-12, atol=1e-14)
    # A point forecast's CRPS is the absolute error.
    np.testing.assert_allclose(crps_gaussian([0.3, -1.0], [0.1, 0.0], [0.0, 0.0]), [0.2, 1.0])
    with pytest.raises(ValueError, match="std must be non-negative"):
        crps_gaussian([0.0], [0.0], [-1.0])


def test_crps_quantiles_matches_scoringrules_including_ties_and_crossings():
    rng = np.random.default_rng(1)
    y = rng.normal(size=300)
    q = np.sort(rng.normal(size=(300, 7)), axis=1)
    q[:50] = rng.normal(size=(50, 7))  # crossing quantiles are scored as given, not sorted
    q[50:60, 3] = y[50:60]  # observation exactly on a quantile
    expected = sr.crps_quantile(y, q, LEVELS, backend="numpy")
    np.testing.assert_allclose(crps_quantiles(y, q), expected, rtol=1e-12, atol=1e-15)
    levels = np.array([0.1, 0.5, 0.9])
    np.testing.assert_allclose(crps_quantiles(y, q[:, [1, 3, 5]], levels),
                               sr.crps_quantile(y, q[:, [1, 3, 5]], levels, backend="numpy"), rtol=1e-12)


def test_crps_quantiles_approaches_the_gaussian_crps_with_many_levels():
    levels = (np.arange(999) + 0.5) / 999
    y = np.array([-1.5, 0.0, 0.7])
    q = stats.norm.ppf(levels)[None, :].repeat(3, axis=0)
    np.testing.assert_allclose(crps_quantiles(y, q, levels), crps_gaussian(y, np.zeros(3), np.ones(3)), rtol=2e-3)


def test_pinball_loss_matches_a_naive_loop():
    rng = np.random.default_rng(2)
    y = rng.normal(size=40)
    q = rng.normal(size=(40, 7))
    expected = []
    for i in range(40):
        losses = []
        for j, level in enumerate(QUANTILE_LEVELS):
            if y[i] >= q[i, j]:
                losses.append(level * (y[i] - q[i, j]))
            else:
                losses.append((1 - level) * (q[i, j] - y[i]))
        expected.append(sum(losses) / len(losses))
    np.testing.assert_allclose(pinball_loss(y, q), expected, rtol=1e-13)
    np.testing.assert_allclose(crps_quantiles(y, q), 2 * np.array(expected), rtol=1e-13)


def test_quantile_scores_reject_mismatched_shapes_and_levels():
    with pytest.raises(ValueError, match=r"quantiles must be n x 7 .* got shape \(3, 6\) for 3 observations"):
        pinball_loss(np.zeros(3), np.zeros((3, 6)))
    with pytest.raises(ValueError, match="strictly between 0 and 1"):
        pinball_loss(np.zeros(2), np.zeros((2, 2)), [0.0, 0.5])


def test_coverage_and_brier_by_hand():
    assert coverage([0.0, 1.0, 2.0, 3.0], [0.0, 0.0, 2.5, 3.5], [1.0, 0.5, 3.0, 4.0]) == 0.25
    assert math.isnan(coverage([], [], []))
    # The outcome is "up" only when y > 0: a flat return counts as down.
    np.testing.assert_allclose(brier([0.02, 0.0, -0.01, 0.5], [0.7, 0.4, 0.1, 1.0]), [0.09, 0.16, 0.01, 0.0])


def cross_section(seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for d in pd.date_range("2021-01-01", periods=12):
        for s in "ABCDEF":
            rows.append({"date": d, "symbol": s, "mean": rng.normal(), "realized": rng.normal()})
    frame = pd.DataFrame(rows)
    frame.loc[frame["date"] == "2021-01-02", "mean"] = np.round(frame["mean"], 0)  # ties in the prediction
    frame.loc[frame["date"] == "2021-01-03", "mean"] = 0.1  # a constant prediction: skipped
    frame.loc[frame["date"] == "2021-01-04", "realized"] = -0.3  # a constant outcome: skipped
    frame = frame[~((frame["date"] == "2021-01-05") & (frame["symbol"] > "B"))]  # two symbols: skipped
    frame.loc[(frame["date"] == "2021-01-06") & (frame["symbol"] == "A"), "realized"] = np.nan
    return frame.reset_index(drop=True)


def scipy_mean(frame: pd.DataFrame, correlation) -> float:
    values = []
    for _, day in frame.dropna(subset=["mean", "realized"]).groupby("date"):
        if len(day) >= 3 and day["mean"].nunique() > 1 and day["realized"].nunique() > 1:
            values.append(correlation(day["mean"], day["realized"])[0])
    assert len(values) == 9  # twelve dates less the three that must be skipped
    return float(np.mean(values))


@pytest.mark.parametrize("seed", [3, 4])
def test_information_coefficients_match_scipy_per_date(seed):
    frame = cross_section(seed)
    assert rank_ic(frame) == pytest.approx(scipy_mean(frame, stats.spearmanr), abs=1e-12)
    assert information_coefficient(frame) == pytest.approx(scipy_mean(frame, stats.pearsonr), abs=1e-12)


def test_information_coefficient_without_a_usable_date_is_nan():
    frame = pd.DataFrame({"date": pd.to_datetime(["2021-01-01"] * 2), "mean": [1.0, 2.0], "realized": [0.1, 0.2]})
    assert math.isnan(information_coefficient(frame)) and math.isnan(rank_ic(frame))


def hand_frame() -> pd.DataFrame:
    spread = np.array([-0.06, -0.04, -0.02, 0.0, 0.02, 0.04, 0.06])
    rows = [
        # date, symbol, mean, realized, p_up
        ("2021-01-04", "X", 0.01, 0.00, 0.6),
        ("2021-01-04", "Y", 0.02, 0.05, 0.7),
        ("2021-01-04", "Z", 0.03, 0.04, 0.8),
        ("2021-01-05", "X", 0.03, -0.02, 0.9),
        ("2021-01-05", "Y", 0.01, 0.02, 0.3),
        ("2021-01-05", "Z", 0.02, 0.01, 0.5),
        ("2021-01-06", "X", 0.00, 0.10, 0.4),
        ("2021-01-06", "Y", 0.01, -0.01, 0.2),
        ("2021-01-06", "Z", 0.05, None, 0.9),  # not yet realized: ignored
    ]
    frame = pd.DataFrame(rows, columns=["date", "symbol", "mean", "realized", "p_up"])
    frame["date"] = pd.to_datetime(frame["date"])
    frame["std"] = 0.03
    for column, offset in zip(QUANTILE_COLUMNS, spread):
        frame[column] = frame["mean"] + offset
    return frame.assign(model="alpha", horizon="1w")


def test_score_predictions_on_a_hand_computed_frame():
    alpha = hand_frame()
    # The baseline predicts the same mean for everyone, so it has no cross-sectional IC.
    baseline = hand_frame().assign(model="baseline", horizon="1m", mean=0.0)
    pred = pd.concat([baseline, alpha.assign(horizon="1m"), alpha], ignore_index=True)
    scores = score_predictions(pred)
    assert scores[["model", "horizon"]].values.tolist() == [["alpha", "1w"], ["alpha", "1m"], ["baseline", "1m"]]
    assert scores.columns.tolist() == ["model", "horizon", "n", "ic", "rank_ic", "crps", "pinball", "coverage_80", "brier"]
    row = scores.iloc[0]
    assert row["n"] == 8
    # 2021-01-04: x=[1,2,3], y=[0,5,4] -> r = 4/sqrt(2*14), ranks r = 1/2.
    # 2021-01-05: x=[3,1,2], y=[-2,2,1] -> r = -4/sqrt(2*78/9), ranks r = -1. 2021-01-06 has two symbols.
    assert row["ic"] == pytest.approx((4 / math.sqrt(28) - 4 / math.sqrt(156 / 9)) / 2, abs=1e-12)
    assert row["rank_ic"] == pytest.approx(-0.25, abs=1e-12)
    # Outside [q10, q90] = mean -/+ 0.04: 2021-01-05 X (-0.05) and 2021-01-06 X (+0.10).
    assert row["coverage_80"] == pytest.approx(6 / 8)
    assert row["brier"] == pytest.approx((0.36 + 0.09 + 0.04 + 0.81 + 0.49 + 0.25 + 0.36 + 0.04) / 8)
    known = alpha.dropna(subset=["realized"])
    expected_crps = sr.crps_quantile(known["realized"].to_numpy(), known[list(QUANTILE_COLUMNS)].to_numpy(), LEVELS,
                                     backend="numpy").mean()
    assert row["crps"] == pytest.approx(expected_crps, rel=1e-12)
    assert row["pinball"] == pytest.approx(expected_crps / 2, rel=1e-12)
    pd.testing.assert_series_equal(scores.iloc[1].drop("horizon"), row.drop("horizon"), check_names=False)
    base = scores.iloc[2]
    assert base["n"] == 8 and math.isnan(base["ic"]) and math.isnan(base["rank_ic"])


def test_score_predictions_ignores_unrealized_rows_and_reads_nullable_columns():
    pred = hand_frame()
    pred["realized"] = pred["realized"].astype("Float64")
    assert score_predictions(pred)["n"].tolist() == [8]
    empty = score_predictions(pred.assign(realized=pd.NA))
    assert empty.empty and empty.columns.tolist()[:3] == ["model", "horizon", "n"]
    with pytest.raises(ValueError, match=r"lacks column\(s\) \['p_up'\]"):
        score_predictions(pred.drop(columns="p_up"))


def test_skill_against_the_baseline():
    scores = pd.DataFrame({
        "window_start": pd.to_datetime(["2021-01-01"] * 4 + ["2021-02-01"] * 2),
        "model": ["baseline", "lgbm", "baseline", "lgbm", "baseline", "lgbm"],
        "horizon": ["1w", "1w", "1m", "1m", "1w", "1w"],
        "crps": [0.05, 0.04, 0.10, 0.12, 0.02, 0.01],
    })
    out = skill(scores)
    assert out.columns.tolist() == ["window_start", "horizon", "model", "crps", "crps_ref", "skill"]
    np.testing.assert_allclose(out["skill"], [0.0, 0.2, 0.0, -0.2, 0.0, 0.5], atol=1e-12)
    np.testing.assert_allclose(skill(scores.drop(columns="window_start").iloc[:4])["skill"], [0.0, 0.2, 0.0, -0.2])
    with pytest.raises(ValueError, match="no rows for the reference model 'ensemble'"):
        skill(scores, reference="ensemble")


@pytest.mark.parametrize("lags", [0, 5, 21])
def test_newey_west_t_matches_statsmodels_hac(lags):
    import statsmodels.api as sm

    from quant_assets.lib.walk_forward.scoring import newey_west_t

    rng = np.random.default_rng(lags)
    # An overlapping-label-like series: a 21-step moving sum of noise plus a small mean.
    x = 0.02 + np.convolve(rng.normal(0, 0.1, 521), np.ones(21) / 21, mode="valid")
    fit = sm.OLS(x, np.ones_like(x)).fit(cov_type="HAC", cov_kwds={"maxlags": lags, "use_correction": False})
    assert newey_west_t(x, lags) == pytest.approx(float(fit.tvalues[0]), rel=1e-10)
    # Overlap inflates the naive t-statistic; the HAC one is smaller.
    assert abs(newey_west_t(x, 21)) < abs(newey_west_t(x, 0))
    assert np.isnan(newey_west_t([1.0, np.nan], 3))
