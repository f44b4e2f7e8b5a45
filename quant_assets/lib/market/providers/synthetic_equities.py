"""Seeded synthetic equities that widen the sample to an index's worth of names (``QUANT_SAMPLE_SYMBOLS``).

Each name's daily log return is a one-period factor model with what real cross-sections have:

    r_it = a_i + b_i · m_t + g_i · s_{k(i),t} + e_it

``m_t`` is the real S&P 500 index's own log return (so the names co-move with ``SP500`` as stocks do), ``s_k`` one
of eleven simulated sector factors, ``e_it`` the name's own shock. Sector factors and own shocks are GARCH(1,1)
with Student-t innovations (fat tails, volatility clustering); betas, loadings and volatilities are spread across
names. A share of names lists after the first session and a few delist before the last, so every path ragged
real data takes (late starts, short histories, a symbol that stops) is exercised. Closes only, like the sample's
real equities; every row carries ``source='synthetic'``.

Every name draws from its own seeded stream, so adding names never changes the ones already there.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from quant_assets.lib.market.providers.schema import PRICE_SCHEMA
from quant_assets.lib.vocabulary import synthetic_symbols

SECTORS = 11  # the GICS sectors' count
# Of the names, the share listed from the first session on (the rest list later) and the share that delists.
LISTED_FROM_START = 0.4
DELISTED_SHARE = 0.04
# A late listing leaves at least this many sessions before the last one; a delisting keeps at least this many.
MIN_LISTED_SESSIONS = 504
DELISTING_SPAN = 756


def synthetic_sectors(count: int, seed: int) -> dict[str, int]:
    """The sector factor (0–10) each of the first ``count`` synthetic names loads on."""
    return {symbol: int(np.random.default_rng([seed, 0x5E0, i]).integers(SECTORS))
            for i, symbol in enumerate(synthetic_symbols(count))}


def _garch_t(rng_draws: np.ndarray, vol: np.ndarray, alpha: np.ndarray, beta: np.ndarray) -> np.ndarray:
    """GARCH(1,1) paths (sessions × series) driven by unit-variance shocks ``rng_draws``, long-run vol ``vol``."""
    sessions, _ = rng_draws.shape
    omega = vol**2 * (1.0 - alpha - beta)
    variance = vol**2
    out = np.empty_like(rng_draws)
    for t in range(sessions):
        out[t] = np.sqrt(variance) * rng_draws[t]
        variance = omega + alpha * out[t] ** 2 + beta * variance
    return out


def _unit_t(rng: np.random.Generator, dof: np.ndarray | float, size: tuple[int, ...]) -> np.ndarray:
    """Student-t draws scaled to unit variance."""
    dof = np.asarray(dof, dtype=float)
    return rng.standard_t(dof, size=size) / np.sqrt(dof / (dof - 2.0))


def _sector_factors(sessions: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng([seed, 0x5EC])
    vol = rng.uniform(0.005, 0.011, SECTORS)
    return _garch_t(_unit_t(rng, 5.0, (sessions, SECTORS)), vol, np.full(SECTORS, 0.07), np.full(SECTORS, 0.91))


def _name_profile(index: int, sessions: int, seed: int) -> dict:
    """One name's parameters and own shocks, from its own stream (independent of how many names there are)."""
    rng = np.random.default_rng([seed, 0x5E0, index])
    sector = int(rng.integers(SECTORS))  # drawn first: synthetic_sectors reads it alone
    alpha = rng.uniform(0.04, 0.12)
    listed_late = rng.uniform() >= LISTED_FROM_START
    first = int(rng.integers(1, sessions - MIN_LISTED_SESSIONS - 21)) if listed_late else 0
    delists = rng.uniform() < DELISTED_SHARE
    # Delistings fall in the last DELISTING_SPAN sessions, so they lie inside any loaded history of a few years.
    last = (int(rng.integers(max(first + MIN_LISTED_SESSIONS, sessions - DELISTING_SPAN), sessions - 21))
            if delists else sessions - 1)
    dof = rng.uniform(3.5, 7.0)
    return {
        "sector": sector,
        "drift": rng.normal(0.0002, 0.0002),
        "beta": float(np.clip(rng.lognormal(0.0, 0.3), 0.3, 2.2)),
        "loading": rng.uniform(0.4, 1.3),
        "vol": float(np.clip(rng.lognormal(np.log(0.014), 0.5), 0.005, 0.06)),
        "alpha": alpha,
        "persistence": rng.uniform(0.93, 0.98) - alpha,
        "shocks": _unit_t(rng, dof, (sessions,)),
        "first": first,
        "last": last,
        "level": float(np.exp(rng.uniform(np.log(5.0), np.log(300.0)))),
    }


def synthetic_equities(count: int, sessions: pl.Series, market_returns: np.ndarray, seed: int) -> pl.DataFrame:
    """``count`` synthetic equities' daily closes on ``sessions`` (dates), driven by ``market_returns``.

    ``market_returns`` holds the market factor's log return of each session (its first is ignored: a close has
    no return on the day it starts). Returns a frame in the price schema, sorted by symbol and date.
    """
    if count <= 0:
        return pl.DataFrame(schema=PRICE_SCHEMA)
    n = len(sessions)
    market = np.nan_to_num(np.asarray(market_returns, dtype=float))
    sectors = _sector_factors(n, seed)
    profiles = [_name_profile(i, n, seed) for i in range(count)]
    own = _garch_t(np.column_stack([p["shocks"] for p in profiles]), np.array([p["vol"] for p in profiles]),
                   np.array([p["alpha"] for p in profiles]), np.array([p["persistence"] for p in profiles]))
    frames = []
    for symbol, profile, shock in zip(synthetic_symbols(count), profiles, own.T, strict=True):
        returns = (profile["drift"] + profile["beta"] * market + profile["loading"] * sectors[:, profile["sector"]]
                   + shock)
        span = slice(profile["first"], profile["last"] + 1)
        listed = returns[span].copy()
        listed[0] = 0.0  # the listing day's close is the starting level
        frames.append(pl.DataFrame({"date": sessions[span], "close": profile["level"] * np.exp(np.cumsum(listed))})
                      .with_columns(pl.lit(symbol).alias("symbol")))
    frame = pl.concat(frames).with_columns(
        pl.lit("equity").alias("asset_class"), pl.lit("synthetic").alias("source"),
        *(pl.lit(None, dtype=pl.Float64).alias(c) for c in ("open", "high", "low", "volume")),
    )
    return frame.select([pl.col(c).cast(t) for c, t in PRICE_SCHEMA.items()]).sort(["symbol", "date"])
