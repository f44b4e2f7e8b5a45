"""The advice scorecard: every stored as-of day's advice against what happened once each horizon passed.

For each recommended position (fractional-Kelly weight, stored as ``half_kelly_weight``, > 0) and for the portfolio (``PORTFOLIO``: the positions plus
cash at 0%), per horizon: the P10/P50/P90 the advice gave for the value of one dollar, the realized value once
the horizon has ended, and whether it fell inside the P10-P90 band. Realized returns come from
``labels.forward_returns`` at the last session at or before the as-of day (the entry the advice priced), so a
horizon counts only once its label exists, i.e. once its end session has been stored.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta

import numpy as np
import pandas as pd

from quant_assets.lib.projections.montecarlo import PORTFOLIO
from quant_assets.lib.storage.warehouse import Warehouse, ensure_columns, replace_in
from quant_assets.lib.vocabulary import HORIZON_LABELS, HORIZONS

COLUMNS = ["as_of", "symbol", "horizon", "weight", "p10", "p50", "p90", "p10_value", "p50_value", "p90_value",
           "horizon_end", "realized_log_return", "realized_value", "inside_band", "outcome", "sizing_horizon"]
# What became of a row of advice: not known yet, inside or outside its P10-P90 band, or a portfolio that held only
# cash (its band and outcome are 0 by construction: counting it "inside" would flatter the bands).
PENDING, INSIDE, OUTSIDE, ALL_CASH = "pending", "inside", "outside", "all_cash"


@dataclass
class ScorecardInputs:
    """Stored advice and the outcomes known so far.

    ``positions``: as_of, symbol, asset_class, weight, and per horizon ``fwd_<h>`` (realized log return, NaN while
    unknown) and ``end_<h>`` (its end date). ``bands``: as_of, symbol, horizon, p10, p50, p90 (log returns).
    ``as_of_days``: every as-of day with advice (a day advised all cash has no position rows).
    ``sizing_horizons``: per as-of day, the horizon its weights were sized at (absent for advice stored before
    allocations recorded it).
    """

    positions: pd.DataFrame
    bands: pd.DataFrame
    as_of_days: list[date]
    today: date
    sizing_horizons: dict[date, str] = field(default_factory=dict)


def load_scorecard_inputs(warehouse: Warehouse, today: date) -> ScorecardInputs:
    """Read the stored advice and the labels at each position's entry session, in one read-only visit."""
    for table, remedy in (("projections.allocations", "materialize the projections partitions first"),
                          ("labels.forward_returns", "materialize the features group first")):
        if not warehouse.table_exists(table):
            raise ValueError(f"the advice scorecard needs {table}, which {warehouse.path} does not hold; {remedy}")
    outcomes = ", ".join(f"l.fwd_{h}, l.end_{h}" for h in HORIZON_LABELS)
    with warehouse.reader() as con:
        positions = con.execute(f"""
            SELECT a.as_of, a.symbol, a.asset_class, a.half_kelly_weight AS weight, {outcomes}
            FROM projections.allocations a
            ASOF LEFT JOIN labels.forward_returns l ON l.symbol = a.symbol AND l.date <= a.as_of
            WHERE a.half_kelly_weight > 0 AND a.as_of <= ?""", [today]).df()
        bands = con.execute("SELECT as_of, symbol, horizon, p10, p50, p90 FROM projections.bands WHERE as_of <= ?",
                            [today]).df()
        days = con.execute("SELECT DISTINCT as_of FROM projections.allocations WHERE as_of <= ? ORDER BY 1",
                           [today]).fetchall()
        recorded = "sizing_horizon" in {c for (c,) in con.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = 'projections' "
            "AND table_name = 'allocations'").fetchall()}
        horizons = con.execute("SELECT as_of, any_value(sizing_horizon) FROM projections.allocations "
                               "WHERE as_of <= ? AND sizing_horizon IS NOT NULL GROUP BY as_of", [today]).fetchall() \
            if recorded else []
    return ScorecardInputs(positions, bands, [pd.Timestamp(d).date() for (d,) in days], today,
                           {pd.Timestamp(d).date(): h for d, h in horizons})


def build_scorecard(inputs: ScorecardInputs) -> pd.DataFrame:
    """One row per (as_of, symbol, horizon) of advice, positions and ``PORTFOLIO``; realized columns stay null
    until the horizon's outcome is known on or before ``inputs.today``.

    The portfolio's realized simple return is ``sum_i w_i (exp(r_i) - 1)`` (cash earns 0%), known once every
    position's is; its horizon ends with its last position's. An all-cash day's portfolio ends the horizon's
    calendar length (the crypto days) after its as-of day, with a return of exactly 0: its ``outcome`` is
    ``all_cash`` and ``inside_band`` stays null (a band of 0 holding a return of 0 is no evidence). ``outcome`` is
    otherwise ``pending``, ``inside`` or ``outside``; ``sizing_horizon`` the horizon the day's weights were sized at.
    """
    positions = inputs.positions.copy()
    positions["as_of"] = pd.to_datetime(positions["as_of"]).dt.date
    position_rows, portfolio_rows = [], []
    for horizon in HORIZONS:
        h = horizon.label
        ended = pd.to_datetime(positions[f"end_{h}"])
        known = ended.notna() & (ended <= pd.Timestamp(inputs.today)) & positions[f"fwd_{h}"].notna()
        at_horizon = pd.DataFrame({
            "as_of": positions["as_of"], "symbol": positions["symbol"], "horizon": h, "weight": positions["weight"],
            "horizon_end": ended.where(known), "realized_log_return": positions[f"fwd_{h}"].where(known)})
        position_rows.append(at_horizon)
        for as_of in inputs.as_of_days:
            held = at_horizon[at_horizon["as_of"] == as_of]
            portfolio_rows.append({"as_of": as_of, "symbol": PORTFOLIO, "horizon": h, "weight": float(held["weight"].sum()),
                                   **_portfolio_outcome(held, as_of, horizon.crypto_days, inputs.today)})
    portfolio = pd.DataFrame(portfolio_rows, columns=["as_of", "symbol", "horizon", "weight", "horizon_end",
                                                      "realized_log_return"])
    portfolio = portfolio.astype({"horizon_end": "datetime64[ns]", "realized_log_return": float})
    realized = pd.concat([*(r for r in position_rows if not r.empty), portfolio], ignore_index=True)
    if realized.empty:
        return pd.DataFrame(columns=COLUMNS)
    bands = inputs.bands.assign(as_of=pd.to_datetime(inputs.bands["as_of"]).dt.date)
    card = realized.merge(bands, on=["as_of", "symbol", "horizon"], how="inner")
    for p in ("p10", "p50", "p90"):
        card[f"{p}_value"] = np.exp(card[p])
    card["horizon_end"] = pd.to_datetime(card["horizon_end"]).dt.date
    card["realized_value"] = np.exp(card["realized_log_return"])
    inside = (card["p10"] <= card["realized_log_return"]) & (card["realized_log_return"] <= card["p90"])
    all_cash = (card["symbol"] == PORTFOLIO) & (card["weight"] == 0)
    known = card["realized_log_return"].notna()
    card["inside_band"] = inside.astype("boolean").where(known & ~all_cash)
    card["outcome"] = np.select([~known, all_cash, inside], [PENDING, ALL_CASH, INSIDE], OUTSIDE)
    card["sizing_horizon"] = card["as_of"].map(inputs.sizing_horizons)
    order = {h: i for i, h in enumerate(HORIZON_LABELS)}
    card = card.assign(_h=card["horizon"].map(order), _p=card["symbol"] == PORTFOLIO)
    return card.sort_values(["as_of", "_p", "symbol", "_h"], ignore_index=True)[COLUMNS]


def _portfolio_outcome(held: pd.DataFrame, as_of: date, calendar_days: int, today: date) -> dict[str, object]:
    if held.empty:
        end = pd.Timestamp(as_of + timedelta(days=calendar_days))
        ended = end <= pd.Timestamp(today)
        return {"horizon_end": end if ended else None, "realized_log_return": 0.0 if ended else None}
    if held["realized_log_return"].isna().any():
        return {"horizon_end": None, "realized_log_return": None}
    simple = float((held["weight"] * np.expm1(held["realized_log_return"].astype(float))).sum())
    return {"horizon_end": max(held["horizon_end"]), "realized_log_return": float(np.log1p(simple))}


def write_scorecard(warehouse: Warehouse, card: pd.DataFrame) -> None:
    """Replace ``projections.scorecard`` whole (it is recomputed from the stored advice at every run)."""
    with warehouse.writer() as con:
        ensure_columns(con, "projections.scorecard", {"outcome": "VARCHAR", "sizing_horizon": "VARCHAR"})
        replace_in(con, "projections.scorecard", card, None)


def scorecard_summary(card: pd.DataFrame) -> dict[str, object]:
    """Per horizon, for positions and the portfolio: advice rows, realized rows, the share inside P10-P90 (a
    well-calibrated band holds about 80%) and the all-cash days, counted apart; ``table_summary`` holds them as a
    frame, the sizing horizon's row first marked."""
    realized = card[card["inside_band"].notna()]
    summary: dict[str, object] = {"advice_rows": len(card), "realized_rows": len(realized),
                                  "as_of_days": int(card["as_of"].nunique())}
    table = []
    for h in HORIZON_LABELS:
        for kind, rows in (("positions", card[card["symbol"] != PORTFOLIO]), ("portfolio", card[card["symbol"] == PORTFOLIO])):
            rows = rows[rows["horizon"] == h]
            done = rows[rows["inside_band"].notna()]
            share = float(done["inside_band"].astype(bool).mean()) if len(done) else None
            table.append({"horizon": h, "advice": kind, "rows": len(rows), "realized": len(done),
                          "inside_p10_p90": int(done["inside_band"].astype(bool).sum()), "share_inside": share,
                          "all_cash": int((rows["outcome"] == ALL_CASH).sum()),
                          "sizing_horizon": bool((rows["sizing_horizon"] == h).any())})
            summary[f"share_inside_{kind}_{h}"] = share if share is not None else "no outcome yet"
    summary["all_cash_days"] = int(card.loc[card["outcome"] == ALL_CASH, "as_of"].nunique())
    sized = card["sizing_horizon"].dropna().unique().tolist()
    summary["sizing_horizon"] = ", ".join(sorted(sized)) if sized else "not recorded"
    summary["table_summary"] = pd.DataFrame(table)
    return summary
