"""Why this trade: what one day's weight of each position rests on, from the warehouse as it was written — the
members' forecasts at the sizing horizon and their spread, the ensemble's skill there, the prior, the sizing mean
and its shrinkage, the probability of a gain shown and its base rate, the weight and what limits it. A load, then
pure maths on its frames."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import numpy as np
import pandas as pd

from quant_assets.lib.storage.warehouse import has_table
from quant_assets.lib.vocabulary import CONFIDENCE_LABELS, DEFAULT_SIZING_HORIZON

# The reference the skill is measured against, and the name the ensemble's own scores are stored under.
BASELINE, ENSEMBLE = "baseline", "ensemble"
SKILL_MEASURE = "CRPS skill of the ensemble against the baseline: 1 - CRPS(ensemble) / CRPS(baseline), out of sample"


class NoWhy(LookupError):
    """No advice stored for the day asked, or no such symbol in it; the message is one sentence."""


@dataclass
class WhyInputs:
    """One advice day's stored rows: its allocations, the ensemble rows and members' predictions it was sized on
    (each symbol's latest at or before the day, at the sizing horizon) and the window's scores there."""

    as_of: date
    horizon: str
    window: date | None
    allocations: pd.DataFrame
    ensemble: pd.DataFrame
    predictions: pd.DataFrame
    scores: pd.DataFrame


def load_why_inputs(con, as_of: date | None = None) -> WhyInputs:
    """The rows the advice of ``as_of`` (None: the latest day) rests on; ``NoWhy`` when that day has no advice."""
    if not has_table(con, "projections.allocations"):
        raise NoWhy("no advice stored yet; materialize the projections partition of a day")
    day = con.execute("SELECT max(as_of) FROM projections.allocations" + (" WHERE as_of = ?" if as_of else ""),
                      [as_of] if as_of else []).fetchone()[0]
    if day is None:
        raise NoWhy(f"no advice stored for {as_of}" if as_of else "no advice stored yet; materialize the projections "
                    "partition of a day")
    allocations = con.execute("SELECT * FROM projections.allocations WHERE as_of = ? ORDER BY rank", [day]).df()
    horizon = allocations["sizing_horizon"].dropna().iloc[0] if allocations["sizing_horizon"].notna().any() \
        else DEFAULT_SIZING_HORIZON
    window = con.execute("SELECT max(window_start) FROM forecasts.ensemble WHERE window_start <= ?", [day]).fetchone()[0]
    latest = """SELECT * FROM {table} WHERE window_start = ? AND date <= ? AND horizon = ?
                QUALIFY date = max(date) OVER (PARTITION BY {keys})"""
    ensemble = con.execute(latest.format(table="forecasts.ensemble", keys="symbol"), [window, day, horizon]).df()
    predictions = con.execute(latest.format(table="forecasts.predictions", keys="model, symbol"),
                              [window, day, horizon]).df() if has_table(con, "forecasts.predictions") else pd.DataFrame()
    scores = con.execute("SELECT * FROM forecasts.scores WHERE window_start = ? AND horizon = ?",
                         [window, horizon]).df() if has_table(con, "forecasts.scores") else pd.DataFrame()
    return WhyInputs(day, horizon, window, allocations, ensemble, predictions, scores)


def _number(value) -> float | None:
    return None if value is None or pd.isna(value) else float(value)


def crps_skill(scores: pd.DataFrame) -> float | None:
    """``1 - CRPS(ensemble) / CRPS(baseline)`` from one window and horizon's scores (None when either is missing)."""
    crps = scores.set_index("model")["crps"] if not scores.empty else pd.Series(dtype="float64")
    if ENSEMBLE not in crps or BASELINE not in crps or not crps[BASELINE] > 0:
        return None
    return float(1.0 - crps[ENSEMBLE] / crps[BASELINE])


def why(inputs: WhyInputs, symbol: str | None = None) -> list[dict[str, object]]:
    """Per position of the day (or the one ``symbol``), what its weight rests on; ``NoWhy`` for a symbol the day
    has no advice on. The members are the fitted models other than the baseline; their spread is the standard
    deviation (ddof 0) of their means. The shrinkage is the factor the sizing applied to the sizing mean's departure
    from the prior, as stored with the allocation (None for a day written before it was)."""
    allocations = inputs.allocations
    if symbol is not None:
        allocations = allocations[allocations["symbol"] == symbol]
        if allocations.empty:
            raise NoWhy(f"no advice on {symbol} stored for {inputs.as_of}; the day advises on "
                        f"{', '.join(sorted(inputs.allocations['symbol']))}")
    ensemble = inputs.ensemble.set_index("symbol")
    skill = crps_skill(inputs.scores)
    members = inputs.predictions[inputs.predictions["model"] != BASELINE] if not inputs.predictions.empty else None
    answers = []
    for row in allocations.to_dict("records"):
        name = row["symbol"]
        stored = ensemble.loc[name] if name in ensemble.index else pd.Series(dtype="object")
        forecasts = [] if members is None else [
            {"model": m["model"], "mean": float(m["mean"]), "p10": _number(m["q10"]), "p90": _number(m["q90"])}
            for m in members[members["symbol"] == name].sort_values("model").to_dict("records")]
        source = row.get("confidence_source")
        answers.append({
            "symbol": name, "as_of": inputs.as_of, "horizon": inputs.horizon, "window_start": inputs.window,
            "members": forecasts,
            "member_spread": float(np.std([f["mean"] for f in forecasts])) if forecasts else None,
            "ensemble_mean": _number(stored.get("mean")),
            "skill": skill, "skill_measure": SKILL_MEASURE,
            "prior": _number(stored.get("sizing_prior")), "sizing_mean": _number(stored.get("sizing_mean")),
            "mean_uncertainty": _number(stored.get("mean_uncertainty")), "shrinkage": _number(row.get("shrinkage")),
            "expected_return": _number(row.get(f"expected_return_{inputs.horizon}")),
            "prob_gain": _number(row.get("prob_gain")), "prob_gain_base_rate": _number(row.get("prob_gain_base_rate")),
            "confidence": _number(row["confidence"]),
            "confidence_source": None if source is None or pd.isna(source) else source,
            "confidence_label": CONFIDENCE_LABELS.get(source) if isinstance(source, str) else None,
            "weight": float(row["half_kelly_weight"]), "kelly_weight": float(row["kelly_weight"]),
            "weight_limit": row.get("weight_limit") if isinstance(row.get("weight_limit"), str) else None,
            "weight_limit_reason": row.get("weight_limit_reason")
            if isinstance(row.get("weight_limit_reason"), str) else None,
        })
    return answers

