"""Alerts after a day's advice (pure): a held position whose last close left the P10–P90 band the previous advice
gave it, and a book whose weights drift from the day's advised weights by more than the no-trade tolerance. Each
alert names the band (or the weights) and the day."""

from __future__ import annotations

import math

import pandas as pd

from quant_assets.lib.vocabulary import HORIZONS, HORIZON_LABELS

ALERT_COLUMNS = ["kind", "symbol", "day", "advice_as_of", "horizon", "price", "p10", "p90", "held_weight",
                 "advised_weight", "message"]


def _horizon_days(asset_class: str) -> dict[str, int]:
    # Equity sessions read as calendar days at 7/5 per session (as the plays page reads them).
    return {h.label: h.crypto_days if asset_class == "crypto" else round(h.equity_sessions * 7 / 5) for h in HORIZONS}


def band_alerts(held: list[str], bands: pd.DataFrame, closes: pd.DataFrame) -> list[dict]:
    """Held symbols whose last close fell outside the P10–P90 band of the latest advice given before that close, at
    the shortest horizon covering the days between them. ``bands``: ``symbol, as_of, horizon, p10, p90`` (log
    returns) and ``last_price`` (the as-of close); ``closes``: ``symbol, asset_class, date, close``."""
    alerts = []
    for symbol in sorted(set(held)):
        close = closes[closes["symbol"] == symbol]
        if close.empty:
            continue
        day, price, asset_class = close["date"].iloc[0], float(close["close"].iloc[0]), close["asset_class"].iloc[0]
        earlier = bands[(bands["symbol"] == symbol) & (bands["as_of"] < day)]
        if earlier.empty:
            continue
        as_of = earlier["as_of"].max()
        elapsed = (day - as_of).days
        horizon = next((h for h, n in _horizon_days(asset_class).items() if n >= elapsed), HORIZON_LABELS[-1])
        row = earlier[(earlier["as_of"] == as_of) & (earlier["horizon"] == horizon)].iloc[0]
        low, high = (float(row["last_price"]) * math.exp(float(row[p])) for p in ("p10", "p90"))
        if low <= price <= high:
            continue
        side = f"below P10 (${low:,.2f})" if price < low else f"above P90 (${high:,.2f})"
        alerts.append({"kind": "band", "symbol": symbol, "day": day, "advice_as_of": as_of, "horizon": horizon,
                       "price": price, "p10": low, "p90": high, "held_weight": None, "advised_weight": None,
                       "message": f"{symbol} closed at ${price:,.2f} on {day}, {side} of the {horizon} P10–P90 band "
                                  f"${low:,.2f}–${high:,.2f} the advice of {as_of} gave"})
    return alerts


def drift_alerts(held: dict[str, float], advice: pd.DataFrame, tolerance: float) -> list[dict]:
    """Symbols whose weight in the book (the held value of the symbols the advice covers) is more than
    ``tolerance`` from the day's advised weight. ``held``: shares per symbol; ``advice``: the day's ``as_of, symbol,
    last_price, half_kelly_weight``."""
    if advice.empty:
        return []
    rows = advice.assign(shares=advice["symbol"].map(held).fillna(0.0))
    value = rows["shares"] * rows["last_price"]
    if value.sum() <= 0:
        return []
    rows = rows.assign(held_weight=value / value.sum())
    alerts = []
    for row in rows.itertuples():
        drift = row.held_weight - row.half_kelly_weight
        if abs(drift) <= tolerance:
            continue
        alerts.append({"kind": "drift", "symbol": row.symbol, "day": row.as_of, "advice_as_of": row.as_of,
                       "horizon": None, "price": float(row.last_price), "p10": None, "p90": None,
                       "held_weight": float(row.held_weight), "advised_weight": float(row.half_kelly_weight),
                       "message": f"{row.symbol} is {row.held_weight:.1%} of the book against {row.half_kelly_weight:.1%} "
                                  f"advised on {row.as_of}: {abs(drift):.1%} of drift, beyond the ±{tolerance:.1%} "
                                  "tolerance"})
    return alerts


def load_alert_inputs(con, symbols: list[str]) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """From the warehouse: the bands every advice gave ``symbols``, their last closes, and the latest day's advice."""
    bands = con.execute(
        """SELECT b.symbol, b.as_of, b.horizon, b.p10, b.p90, a.last_price
           FROM projections.bands b JOIN projections.allocations a USING (as_of, symbol)
           WHERE b.symbol IN (SELECT unnest(?::VARCHAR[]))""", [symbols]).df()
    closes = con.execute(
        """SELECT symbol, asset_class, date, close FROM market.prices WHERE symbol IN (SELECT unnest(?::VARCHAR[]))
           QUALIFY date = max(date) OVER (PARTITION BY symbol)""", [symbols]).df()
    advice = con.execute(
        """SELECT as_of, symbol, last_price, half_kelly_weight FROM projections.allocations
           WHERE as_of = (SELECT max(as_of) FROM projections.allocations)""").df()
    for frame, column in ((bands, "as_of"), (closes, "date"), (advice, "as_of")):
        frame[column] = pd.to_datetime(frame[column]).dt.date
    return bands, closes, advice


def alerts(held: dict[str, float], bands: pd.DataFrame, closes: pd.DataFrame, advice: pd.DataFrame,
           tolerance: float) -> list[dict]:
    """Every alert for the book ``held`` (shares per symbol): its band alerts, then its drift alerts."""
    return band_alerts(list(held), bands, closes) + drift_alerts(held, advice, tolerance)
