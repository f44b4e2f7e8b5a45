"""The expected return sizing uses: a no-information prior per asset class, moved toward the ensemble's mean only
as far as its out-of-fold departures from the prior showed up in outcomes, and the ensemble's comparison with the
reference that decides whether a horizon may drive sizing at all.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from quant_assets.lib.ensemble.frames import horizon_steps, key_columns
from quant_assets.lib.ensemble.history import effective_rows
from quant_assets.lib.ensemble.stacking import DEFAULT_MIN_ROWS
from quant_assets.lib.models.base import QUANTILE_COLUMNS
from quant_assets.lib.vocabulary import CRYPTO, HORIZON_BY_LABEL
from quant_assets.lib.walk_forward.scoring import crps_quantiles

SIZING_COLUMNS: tuple[str, ...] = ("sizing_mean", "mean_uncertainty", "sizing_prior", "beats_reference")
# Blocks of a horizon's length of out-of-fold history before its forecast means may move sizing off the prior.
SKILL_MIN_BLOCKS = 4


def reference_comparison(past: pd.DataFrame, history: pd.DataFrame, reference: str | None, horizons) -> dict:
    """Per horizon: out-of-fold CRPS of the ensemble and of the reference on the same rows, and whether the
    ensemble beat it (needs ``DEFAULT_MIN_ROWS`` effective rows of evidence)."""
    out = {}
    for h in horizons:
        rows = past[past["horizon"] == h]
        entry = {"rows": len(rows), "crps_ensemble": None, "crps_reference": None, "beats": reference is None,
                 "reason": "no reference" if reference is None else ""}
        if len(rows):
            y = rows["realized"].to_numpy(dtype="float64")
            entry["crps_ensemble"] = float(np.mean(crps_quantiles(y, rows[list(QUANTILE_COLUMNS)].to_numpy(dtype="float64"))))
        if reference is not None:
            ref = history[(history["model"] == reference) & (history["horizon"] == h)]
            joined = rows[key_columns(rows)].merge(ref, on=key_columns(rows), how="inner")
            n_eff = effective_rows(joined["date"], joined["realized"], h) if len(joined) else 0.0
            if len(joined):
                entry["crps_reference"] = float(np.mean(crps_quantiles(
                    joined["realized"].to_numpy(dtype="float64"), joined[list(QUANTILE_COLUMNS)].to_numpy(dtype="float64"))))
            if n_eff < DEFAULT_MIN_ROWS:
                entry["reason"] = f"{n_eff:.1f} effective out-of-fold rows < {DEFAULT_MIN_ROWS:g}"
            elif entry["crps_ensemble"] >= entry["crps_reference"]:
                entry["reason"] = (f"out-of-fold CRPS {entry['crps_ensemble']:.5f} not below the reference's "
                                   f"{entry['crps_reference']:.5f}")
            else:
                entry["beats"] = True
        out[h] = entry
    return out


def member_uncertainty(preds: pd.DataFrame, combined: pd.DataFrame, weights) -> dict[str, np.ndarray]:
    """The standard error of the ensemble mean taken as the weighted spread of its members' means around it."""
    keys = key_columns(combined)
    rows = preds[[*keys, "model", "mean"]].merge(combined[[*keys, "mean"]].rename(columns={"mean": "ens"}), on=keys)
    rows["w"] = [float(weights.get(h, {}).get(m, 0.0)) for h, m in zip(rows["horizon"], rows["model"])]
    rows["wd"] = rows["w"] * (rows["mean"] - rows["ens"]) ** 2
    sums = rows.groupby(keys, sort=False)[["w", "wd"]].sum()
    spread = np.sqrt(sums["wd"] / sums["w"].where(sums["w"] > 0)).fillna(0.0)
    aligned = spread.reindex(pd.MultiIndex.from_frame(combined[keys])).to_numpy()
    return {"sizing_mean": combined["mean"].to_numpy(), "mean_uncertainty": np.nan_to_num(aligned)}


def sizing_from_reference(out: pd.DataFrame, preds: pd.DataFrame, past: pd.DataFrame, history: pd.DataFrame,
                          reference: str, drift_days: Mapping[str, float],
                          class_growth: Mapping[str, float] | None) -> tuple[pd.DataFrame, dict[str, dict]]:
    """The expected return sizing uses: the reference's no-information prior (``sizing_prior``), moved toward the
    ensemble's mean by as much as its departures from the prior showed up in outcomes out of fold (per horizon,
    ``forecast_skill``). On horizons that have not beaten the reference the sizing mean is the prior, with the
    standard error of a drift estimated over ``drift_days`` of the horizon (a trailing year by default: the
    reference's spread times ``sqrt(steps / days)``). Returns the rows and the skill found per horizon."""
    keys = key_columns(out)
    ref = preds[preds["model"] == reference][[*keys, "mean", "std"]].rename(columns={"mean": "ref_mean", "std": "ref_std"})
    out = out.merge(ref, on=keys, how="left")
    # A row the reference did not forecast keeps a prior of zero: its mean is shrunk toward no return.
    out["sizing_prior"] = np.nan_to_num(sizing_prior(out, class_growth), nan=0.0)
    past_ref = history[history["model"] == reference][[*key_columns(history), "mean", "std"]].rename(
        columns={"mean": "ref_mean", "std": "ref_std"})
    past = past.merge(past_ref, on=key_columns(past), how="inner")
    past = past.assign(sizing_prior=sizing_prior(past, class_growth))
    skill = {h: forecast_skill(past[past["horizon"] == h], h) for h in out["horizon"].unique()}
    beta = out["horizon"].map(lambda h: skill[h]["slope"]).to_numpy(dtype="float64")
    prior = out["sizing_prior"].to_numpy(dtype="float64")
    out["sizing_mean"] = prior + beta * (out["sizing_mean"].to_numpy(dtype="float64") - prior)
    out["mean_uncertainty"] = beta * out["mean_uncertainty"].to_numpy(dtype="float64")
    fallback = ~out["beats_reference"].to_numpy(dtype=bool) & out["ref_mean"].notna().to_numpy()
    steps = out["horizon"].map(lambda h: horizon_steps(h)).to_numpy(dtype="float64")
    days = out["horizon"].map(lambda h: float(drift_days.get(h, 252.0))).to_numpy(dtype="float64")
    out.loc[fallback, "sizing_mean"] = out.loc[fallback, "sizing_prior"]
    out.loc[fallback, "mean_uncertainty"] = (out["ref_std"] * np.sqrt(steps / days))[fallback]
    return out.drop(columns=["ref_mean", "ref_std"]), skill


def sizing_prior(frame: pd.DataFrame, class_growth: Mapping[str, float] | None = None) -> np.ndarray:
    """The expected log return sizing starts from without information: every symbol of an asset class (``segment``,
    one class without it) gets the same *arithmetic* expected return, so its log mean is the class's log expected
    gross return less half its own variance (``std`` of ``frame``). The random walk's equal *log* drifts would hand
    the most volatile names the largest arithmetic returns, and Kelly would favour them for their volatility alone.

    The class's log expected gross return at the horizon is ``class_growth[class]`` (per session or day, over the
    training span) times the horizon's steps; for a class without it, the reference's (``ref_mean`` plus half
    ``ref_std`` squared), averaged over the class's symbols on the date."""
    segment = frame["segment"].astype(str) if "segment" in frame.columns else pd.Series("all", index=frame.index)
    arithmetic = frame["ref_mean"].to_numpy(dtype="float64") + 0.5 * frame["ref_std"].to_numpy(dtype="float64") ** 2
    groups = [c for c in key_columns(frame) if c != "symbol"]
    per_class = pd.Series(arithmetic, index=frame.index).groupby(
        [frame[c] for c in groups] + [segment], sort=False).transform("mean").to_numpy()
    if class_growth:
        steps = np.asarray([_class_steps(h, c) for h, c in zip(frame["horizon"], segment)], dtype="float64")
        long_run = segment.map(class_growth).to_numpy(dtype="float64") * steps
        per_class = np.where(np.isfinite(long_run), long_run, per_class)
    return per_class - 0.5 * frame["std"].to_numpy(dtype="float64") ** 2


def _class_steps(horizon: str, asset_class: str) -> int:
    """The horizon's length in the class's own steps: days for crypto, sessions otherwise."""
    h = HORIZON_BY_LABEL[horizon]
    return h.crypto_days if asset_class == CRYPTO else h.equity_sessions


def forecast_skill(past: pd.DataFrame, horizon: str, min_blocks: int = SKILL_MIN_BLOCKS) -> dict[str, object]:
    """How much of the out-of-fold ensemble's departure from the prior showed up in outcomes at ``horizon``.

    The slope of ``realized - sizing_prior`` on ``mean - sizing_prior`` (through the origin), with a standard
    error clustered in blocks of the horizon's length (overlapping labels and one market day's common move count
    once), and the slope sizing uses: ``b * max(0, 1 - (se / b)^2)`` clipped to [0, 1] (a positive-part
    James-Stein shrinkage of a noisy slope toward no skill), 0 with fewer than ``min_blocks`` blocks. A forecast
    whose cross-section is noise gets ~0, and sizing keeps the prior: Kelly does not bet on it."""
    entry: dict[str, object] = {"rows": len(past), "blocks": 0, "raw_slope": None, "standard_error": None,
                                "slope": 0.0, "reason": ""}
    rows = past[np.isfinite(pd.to_numeric(past["realized"], errors="coerce").astype("float64"))]
    if rows.empty:
        entry["reason"] = "no realized out-of-fold rows"
        return entry
    x = (rows["mean"] - rows["sizing_prior"]).to_numpy(dtype="float64")
    y = (rows["realized"] - rows["sizing_prior"]).to_numpy(dtype="float64")
    dates = pd.to_datetime(rows["date"])
    span_days = max(int(round(horizon_steps(horizon) * 7 / 5)), 1)
    block = ((dates - dates.min()).dt.days // span_days).to_numpy()
    blocks = np.unique(block)
    entry["blocks"] = int(len(blocks))
    sxx = float(np.sum(x * x))
    if len(blocks) < min_blocks or sxx <= 0:
        entry["reason"] = f"{len(blocks)} blocks of {span_days} days < {min_blocks}" if sxx > 0 else "no dispersion"
        return entry
    slope = float(np.sum(x * y) / sxx)
    scores = pd.Series(x * (y - slope * x)).groupby(block).sum().to_numpy()
    se = float(np.sqrt(np.sum(scores**2) * len(blocks) / (len(blocks) - 1)) / sxx)
    shrink = max(0.0, 1.0 - (se / slope) ** 2) if slope > 0 else 0.0
    entry.update(raw_slope=slope, standard_error=se, slope=float(np.clip(slope * shrink, 0.0, 1.0)),
                 reason="" if slope > 0 else "departures from the prior did not show up in outcomes")
    return entry
