"""QUANT_SAMPLE_SYMBOLS=N: the sample widened with seeded synthetic equities that have real cross-sections'
stylised facts, measured on the generated frame."""

from datetime import date

import numpy as np
import polars as pl
import pytest
from pydantic import ValidationError

from quant_assets.lib.market.providers.sample import load_sample, sample_equities, sample_synthetic_equities
from quant_assets.lib.market.providers.synthetic_equities import synthetic_sectors
from quant_assets.lib.vocabulary import DEFAULT_UNIVERSE, INDEX_SYMBOL, SAMPLE_LAST_DATE, synthetic_symbols
from quant_assets.settings import Settings

NAMES = 120


@pytest.fixture(scope="module")
def wide():
    """The synthetic names' log returns, sessions × names (NaN where a name is not listed), and the index's."""
    frame = sample_synthetic_equities(NAMES, seed=7)
    closes = frame.pivot(on="symbol", index="date", values="close").sort("date")
    index = sample_equities((INDEX_SYMBOL,)).select("date", pl.col("close").alias(INDEX_SYMBOL))
    joined = index.join(closes, on="date", how="left").sort("date")
    logs = np.log(joined.drop("date").to_numpy())
    returns = np.diff(logs, axis=0)
    return frame, returns[:, 0], returns[:, 1:], list(closes.columns[1:])


def test_the_same_seed_gives_the_same_frame_and_more_names_leave_the_first_ones_as_they_were():
    a, b = sample_synthetic_equities(12, seed=3), sample_synthetic_equities(12, seed=3)
    assert a.equals(b)
    assert not a.equals(sample_synthetic_equities(12, seed=4))
    more = sample_synthetic_equities(20, seed=3)
    assert more.filter(pl.col("symbol").is_in(synthetic_symbols(12))).equals(a)
    assert more["symbol"].n_unique() == 20 and set(more["source"]) == {"synthetic"}
    assert set(more["asset_class"]) == {"equity"}


def test_n_counts_every_symbol_and_the_real_ones_stay_as_they_are(monkeypatch):
    monkeypatch.delenv("QUANT_UNIVERSE", raising=False)
    monkeypatch.setenv("QUANT_SAMPLE_SYMBOLS", "40")
    settings = Settings()
    assert len(settings.universe) == 40 and settings.universe[: len(DEFAULT_UNIVERSE)] == DEFAULT_UNIVERSE
    start = date(2015, 1, 1)
    prices, onchain = load_sample(settings.universe, start, settings.seed, settings.synthetic_equity_count)
    assert prices["symbol"].n_unique() == 40
    plain_prices, plain_onchain = load_sample(DEFAULT_UNIVERSE, start, settings.seed)
    assert prices.filter(pl.col("source") != "synthetic").sort("symbol", "date").equals(
        plain_prices.filter(pl.col("source") != "synthetic").sort("symbol", "date"))
    coins = pl.col("asset_class") == "crypto"
    assert prices.filter(coins).sort("symbol", "date").equals(plain_prices.filter(coins).sort("symbol", "date"))
    assert onchain.equals(plain_onchain)


def test_sample_symbols_with_a_universe_or_below_the_default_size_is_one_clear_sentence(monkeypatch):
    monkeypatch.setenv("QUANT_SAMPLE_SYMBOLS", "40")
    monkeypatch.setenv("QUANT_UNIVERSE", "AAPL,BTC")
    with pytest.raises(ValidationError, match="QUANT_SAMPLE_SYMBOLS and QUANT_UNIVERSE are both set"):
        Settings()
    monkeypatch.delenv("QUANT_UNIVERSE")
    monkeypatch.setenv("QUANT_SAMPLE_SYMBOLS", "10")
    with pytest.raises(ValidationError, match="greater than or equal to 23"):
        Settings()


def test_names_share_a_market_factor_and_more_so_within_their_sector(wide):
    _, market, returns, names = wide
    corr_with_market = [np.corrcoef(market[ok], r[ok])[0, 1] for r in returns.T if (ok := ~np.isnan(r)).any()]
    assert np.median(corr_with_market) > 0.3
    recent = returns[-1500:]  # the last six years: most names listed
    listed = ~np.isnan(recent).any(axis=0)
    corr = np.corrcoef(recent[:, listed].T)
    sector = np.array([synthetic_sectors(NAMES, 7)[n] for n in np.array(names)[listed]])
    same = sector[:, None] == sector[None, :]
    off_diagonal = ~np.eye(len(sector), dtype=bool)
    assert corr[same & off_diagonal].mean() > corr[~same].mean() + 0.05


def test_betas_and_volatilities_spread_across_names(wide):
    _, market, returns, _ = wide
    betas, vols = [], []
    for r in returns.T:
        ok = ~np.isnan(r)
        betas.append(np.cov(market[ok], r[ok])[0, 1] / market[ok].var())
        vols.append(r[ok].std())
    assert np.percentile(betas, 90) - np.percentile(betas, 10) > 0.4
    assert np.percentile(vols, 90) / np.percentile(vols, 10) > 1.6


def test_returns_have_fat_tails_and_volatility_clusters(wide):
    _, _, returns, _ = wide
    rng = np.random.default_rng(0)
    kurtosis, clustering, shuffled = [], [], []
    for r in returns.T:
        r = r[~np.isnan(r)]
        z = (r - r.mean()) / r.std()
        kurtosis.append((z**4).mean() - 3.0)
        clustering.append(np.corrcoef(z[1:] ** 2, z[:-1] ** 2)[0, 1])
        permuted = rng.permutation(z)  # the same returns with their order (and so any clustering) destroyed
        shuffled.append(np.corrcoef(permuted[1:] ** 2, permuted[:-1] ** 2)[0, 1])
    assert np.median(kurtosis) > 2.0  # a normal's excess kurtosis is 0
    assert np.median(clustering) > 0.1 and abs(np.median(shuffled)) < 0.02


def test_listings_start_at_different_dates_and_a_few_names_delist(wide):
    frame, *_ = wide
    spans = frame.group_by("symbol").agg(pl.col("date").min().alias("first"), pl.col("date").max().alias("last"),
                                         pl.len().alias("sessions"))
    assert spans["first"].n_unique() > NAMES // 3
    delisted = spans.filter(pl.col("last") < SAMPLE_LAST_DATE)
    assert 1 <= len(delisted) <= NAMES // 10
    assert (spans["sessions"] >= 504).all() and (frame["close"] > 0).all()
