"""Monte Carlo scenarios: marginals, dependence, reproducibility, bands and the fan chart."""

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from quant_assets.lib.models.base import (
    QUANTILE_COLUMNS,
    QUANTILE_LEVELS,
    gaussian_distribution,
    quantile_distribution,
)
from quant_assets.lib.projections.montecarlo import (
    PORTFOLIO,
    bands,
    marginal_quantile,
    residual_correlation,
    simulate,
)
from quant_assets.render.charts import fan_chart_png

SYMBOLS = ["AAA", "BBB", "CCC"]
TARGET = np.array([[1.0, 0.6, -0.3], [0.6, 1.0, 0.2], [-0.3, 0.2, 1.0]])


def skewed_marginals():
    """Asymmetric quantiles (a log-normal price, as log returns shifted) differing by symbol and horizon."""
    rows = []
    for k, horizon in enumerate(["1w", "1m", "3m", "1y"]):
        for i, symbol in enumerate(SYMBOLS):
            law = stats.skewnorm(a=3.0 * (i - 1), loc=0.01 * k, scale=0.03 * (k + 1) * (1 + i / 2))
            rows.append({"symbol": symbol, "horizon": horizon, "mean": law.mean(), "std": law.std(),
                         **dict(zip(QUANTILE_COLUMNS, law.ppf(QUANTILE_LEVELS)))})
    return pd.DataFrame(rows)


def residual_frame(n=750, seed=0):
    rng = np.random.default_rng(seed)
    data = rng.multivariate_normal(np.full(3, 0.001), TARGET * 0.0004, size=n)
    return pd.DataFrame(data, columns=SYMBOLS, index=pd.bdate_range("2021-01-01", periods=n))


@pytest.mark.parametrize("copula", ["gaussian", "t"])
def test_scenarios_reproduce_the_input_quantiles(copula):
    marginals = skewed_marginals()
    sims = simulate(marginals, residual_frame(), n_scenarios=100_000, seed=3, copula=copula)
    assert sims.symbols == SYMBOLS and sims.horizons == ["1w", "1m", "3m", "1y"]
    for row in marginals.itertuples():
        r = sims.returns[row.horizon][:, SYMBOLS.index(row.symbol)]
        for column, level in zip(QUANTILE_COLUMNS, QUANTILE_LEVELS):
            assert np.mean(r <= getattr(row, column)) == pytest.approx(level, abs=0.006), (row.symbol, column)
        # Mean and std of the simulated law match base.quantile_distribution's integration of it.
        reference = quantile_distribution(np.array([[getattr(row, c) for c in QUANTILE_COLUMNS]])).iloc[0]
        assert r.mean() == pytest.approx(reference["mean"], abs=0.02 * reference["std"])
        assert r.std() == pytest.approx(reference["std"], rel=0.02)


def test_t_copula_lookup_matches_the_exact_transform():
    marginals = skewed_marginals()
    sims = simulate(marginals, residual_frame(), n_scenarios=20_000, seed=5, copula="t", dof=4)
    # Replay the copula draws (standard normals, then one chi-square per scenario) and map them exactly.
    rng = np.random.default_rng(5)
    chol = np.linalg.cholesky(sims.correlation)
    t = rng.standard_normal((20_000, 3)) @ chol.T * np.sqrt(4 / rng.chisquare(4, size=(20_000, 1)))
    z = stats.norm.ppf(stats.t.cdf(t, 4))
    for horizon in sims.horizons:
        q = marginals[marginals["horizon"] == horizon].set_index("symbol").loc[SYMBOLS, list(QUANTILE_COLUMNS)]
        exact = marginal_quantile(q.to_numpy(), z.T).T
        spread = (q["q95"] - q["q05"]).to_numpy()
        assert np.max(np.abs(sims.returns[horizon] - exact) / spread) < 2e-3


def test_dependence_matches_the_target_correlation():
    marginals = pd.concat([
        gaussian_distribution(np.zeros(3), np.array([0.02, 0.05, 0.1])).assign(symbol=SYMBOLS, horizon=h)
        for h in ("1w", "1m")
    ], ignore_index=True)
    residuals = residual_frame()
    gauss = simulate(marginals, residuals, n_scenarios=50_000, seed=1, copula="gaussian")
    estimated = residuals.corr().to_numpy()
    # Shrinkage toward the identity is d / (d + n) = 3 / 753 by default.
    np.testing.assert_allclose(gauss.correlation, estimated * (1 - 3 / 753) + np.eye(3) * 3 / 753, atol=1e-9)
    np.testing.assert_allclose(gauss.correlation, TARGET, atol=0.08)
    for horizon in gauss.horizons:
        np.testing.assert_allclose(np.corrcoef(gauss.returns[horizon].T), gauss.correlation, atol=0.02)
    t = simulate(marginals, residuals, n_scenarios=20_000, seed=1, copula="t", dof=5)
    r = t.returns["1m"]
    for i, j in [(0, 1), (0, 2), (1, 2)]:
        # Elliptical copulas: Kendall's tau = 2 / pi * arcsin(rho), whatever the marginals.
        expected = 2 / np.pi * np.arcsin(t.correlation[i, j])
        assert stats.kendalltau(r[:, i], r[:, j])[0] == pytest.approx(expected, abs=0.02)


def test_residual_correlation_is_pairwise_then_repaired_to_positive_definite():
    residuals = residual_frame(300, seed=2)
    residuals.iloc[:80, 0] = np.nan
    residuals.iloc[150:200, 2] = np.nan
    corr, thin = residual_correlation(residuals, SYMBOLS, shrinkage=0.0)
    np.testing.assert_allclose(corr, residuals.corr().to_numpy(), atol=1e-9)
    assert thin == []
    corr, thin = residual_correlation(residuals, [*SYMBOLS, "NEW"])
    assert thin == ["NEW"] and np.allclose(corr[3, :3], 0.0) and corr[3, 3] == 1.0
    # Pairwise estimates from disjoint stretches that no joint law can have: A~B, B~C, A~-C.
    rng = np.random.default_rng(4)
    base = rng.normal(size=300)
    noise = lambda: 0.3 * rng.normal(size=300)  # noqa: E731
    frame = pd.DataFrame({"A": base + noise(), "B": base + noise(), "C": base + noise()})
    frame.loc[200:, "A"] = -base[200:] + noise()[200:]
    frame.loc[200:, "B"] = np.nan
    frame.loc[:99, "C"] = np.nan
    frame.loc[100:199, "A"] = np.nan
    pairwise = frame.corr().to_numpy()
    assert np.linalg.eigvalsh(pairwise).min() < 0
    corr, _ = residual_correlation(frame, ["A", "B", "C"], shrinkage=0.0)
    assert np.linalg.eigvalsh(corr).min() > 0 and np.allclose(np.diag(corr), 1.0)
    np.linalg.cholesky(corr)


def test_same_seed_same_scenarios():
    marginals, residuals = skewed_marginals(), residual_frame()
    a = simulate(marginals, residuals, n_scenarios=2_000, seed=7)
    b = simulate(marginals.sample(frac=1.0, random_state=1), residuals, n_scenarios=2_000, seed=7)
    c = simulate(marginals, residuals, n_scenarios=2_000, seed=8)
    for horizon in a.horizons:
        np.testing.assert_array_equal(a.returns[horizon], b.returns[horizon])
        assert not np.array_equal(a.returns[horizon], c.returns[horizon])


def test_bands_per_symbol_and_portfolio():
    sims = simulate(skewed_marginals(), residual_frame(), n_scenarios=5_000, seed=2)
    weights = {"AAA": 0.5, "CCC": 0.3}
    frame = bands(sims, weights)
    assert list(frame.columns) == ["symbol", "horizon", "p10", "p25", "p50", "p75", "p90", "prob_loss"]
    assert len(frame) == 4 * (3 + 1)
    r = sims.returns["3m"]
    row = frame[(frame["symbol"] == "BBB") & (frame["horizon"] == "3m")].iloc[0]
    assert row["p90"] == pytest.approx(np.quantile(r[:, 1], 0.9))
    assert row["prob_loss"] == pytest.approx(np.mean(r[:, 1] < 0))
    simple = 0.5 * np.expm1(r[:, 0]) + 0.3 * np.expm1(r[:, 2])
    port = frame[(frame["symbol"] == PORTFOLIO) & (frame["horizon"] == "3m")].iloc[0]
    assert port["p10"] == pytest.approx(np.log1p(np.quantile(simple, 0.1)))
    assert port["prob_loss"] == pytest.approx(np.mean(simple < 0))
    values = frame[["p10", "p25", "p50", "p75", "p90"]].to_numpy()
    assert np.all(np.diff(values, axis=1) >= 0)
    assert PORTFOLIO not in set(bands(sims)["symbol"])
    with pytest.raises(ValueError, match="ZZZ"):
        bands(sims, {"ZZZ": 0.1})
    with pytest.raises(ValueError, match="at most 1"):
        bands(sims, {"AAA": 0.8, "BBB": 0.5})
    png = fan_chart_png(frame)
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5_000


def test_bad_marginals_are_named():
    marginals = skewed_marginals()
    with pytest.raises(ValueError, match="symbol 'BBB', horizon '3m'"):
        simulate(marginals.drop(index=marginals.index[(marginals["symbol"] == "BBB") & (marginals["horizon"] == "3m")]),
                 residual_frame())
    with pytest.raises(ValueError, match=r"lacks column\(s\) \['q50'\]"):
        simulate(marginals.drop(columns="q50"), residual_frame())
    with pytest.raises(ValueError, match="copula must be"):
        simulate(marginals, residual_frame(), copula="clayton")
