"""What the web pages show, read from the warehouse in one short-lived handle each and joined with live quotes.

Every function takes an open read-only connection (the caller holds it for milliseconds) or plain rows, and
returns plain dicts; the API turns them into its response models. Nothing here fetches a price: quotes come
from :mod:`quant_assets.lib.market.live`, the one provider.
"""

from __future__ import annotations

import math
from datetime import date

from quant_assets.lib.market.live import LastClose, Quote
from quant_assets.lib.projections.projector import MAX_AMOUNT, PROJECTOR_MACRO
from quant_assets.lib.storage import personal
from quant_assets.lib.storage.warehouse import has_table
from quant_assets.lib.vocabulary import CONFIDENCE_LABELS, HORIZON_LABELS, HORIZONS

COMPARE_MIN, COMPARE_MAX = 2, 4
HISTORY_DAYS = 365


class NotFound(LookupError):
    """What the page asks for is not in the warehouse (yet); the message says what to materialize."""


class BadInput(ValueError):
    """A parameter the page refuses; the message names it."""


def _records(cursor) -> list[dict]:
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row)) for row in cursor.fetchall()]


def _has_macro(con, name: str) -> bool:
    return bool(con.execute("SELECT count(*) FROM duckdb_functions() WHERE function_name = ? "
                            "AND database_name = current_database()", [name]).fetchone()[0])


def check_amount(amount: float) -> float:
    """``amount`` if the Projector accepts it, else ``BadInput`` naming the limit."""
    if not math.isfinite(amount) or amount <= 0:
        raise BadInput(f"amount must be a positive number of dollars, got {amount}")
    if amount > MAX_AMOUNT:
        raise BadInput(f"amount {amount:,.0f} is above the {MAX_AMOUNT:.0e} dollar limit")
    return amount


def known_symbols(con) -> dict[str, LastClose]:
    """Every symbol in ``market.prices`` with its latest close."""
    if not has_table(con, "market.prices"):
        return {}
    rows = con.execute("""SELECT symbol, asset_class, close, date, source FROM market.prices
                          QUALIFY date = max(date) OVER (PARTITION BY symbol)""").fetchall()
    return {r[0]: LastClose(*r) for r in rows}


def freshness(con) -> dict[str, object]:
    """How current the warehouse is: the latest projection and market dates."""
    as_of = con.execute("SELECT max(as_of) FROM projections.allocations").fetchone()[0] \
        if has_table(con, "projections.allocations") else None
    market = con.execute("SELECT max(date) FROM market.prices").fetchone()[0] if has_table(con, "market.prices") else None
    return {"projections_as_of": as_of, "market_last_date": market,
            "projector_at_available": _has_macro(con, "projector_at")}


# -- Projector -------------------------------------------------------------------------------------------------

def projector_rows(con, amount: float, as_of: date | None) -> tuple[date, list[dict]]:
    """The rows of ``projector(amount)`` (or ``projector_at(amount, as_of)``) and the as-of date they stand on."""
    import duckdb

    check_amount(amount)
    missing = NotFound("no projections materialized yet; run `make demo` or materialize the `allocations` asset")
    # Asking the catalog (duckdb_functions()) costs ~30 ms; trying the query and catching its absence costs nothing.
    try:
        latest = con.execute("SELECT max(as_of) FROM projections.trade_plan").fetchone()[0]
        if latest is not None and (as_of is None or as_of == latest):
            return latest, _records(con.execute("SELECT * FROM projector(?)", [amount]))
    except duckdb.CatalogException:
        raise missing from None
    if latest is None:
        raise missing
    if as_of > latest:
        raise NotFound(f"as_of {as_of} is after the latest projection ({latest})")
    try:
        rows = _records(con.execute("SELECT * FROM projector_at(?, ?)", [amount, as_of]))
    except duckdb.CatalogException:
        raise NotFound(f"this warehouse has no projector_at macro, so only the latest projection ({latest}) "
                       "can be shown; materialize the projections with the advice ledger to look back") from None
    except duckdb.InvalidInputException as error:
        if "no advice stored" not in str(error):
            raise
        raise NotFound(str(error).split("Error: ", 1)[-1]) from None
    if not rows:
        raise NotFound(f"no projection as of {as_of}; the advice ledger holds none for that day")
    return as_of, rows


def projector_snapshot(con):
    """An in-memory DuckDB holding a copy of ``projections.trade_plan`` and the same ``projector`` macro: it answers
    any amount in a millisecond and keeps answering while the pipeline holds the warehouse file."""
    import duckdb

    memory = duckdb.connect(":memory:")
    if has_table(con, "projections.trade_plan"):
        memory.register("plan", con.execute("""SELECT * FROM projections.trade_plan
            WHERE as_of = (SELECT max(as_of) FROM projections.trade_plan)""").df())
        memory.execute("CREATE SCHEMA projections")
        memory.execute("CREATE TABLE projections.trade_plan AS SELECT * FROM plan")
        memory.unregister("plan")
        memory.execute(PROJECTOR_MACRO)
    return memory


def overlay_projector(rows: list[dict], quotes: dict[str, Quote]) -> list[dict]:
    """Each line with its dollar bands per horizon and, for positions, the live quote: shares bought at the live
    price and price bands that apply the forecast returns from it (value = shares x price band)."""
    lines = []
    for row in rows:
        dollars = float(row["dollars"])
        quote = quotes.get(row["symbol"])
        line = {k: row.get(k) for k in ("rank", "symbol", "asset_class", "side", "confidence", "confidence_source",
                                         "weight", "dollars", "shares", "last_price", "expected_return")}
        line["confidence_label"] = CONFIDENCE_LABELS.get(row.get("confidence_source"))
        line["quote"] = quote.as_dict() if quote else None
        line["bands"] = []
        for h in HORIZON_LABELS:
            values = {p: float(row[f"{p}_{h}"]) for p in ("p10", "p50", "p90")}
            band = {"horizon": h, **values}
            if quote and dollars > 0 and row.get("rank") is not None:
                growth = {p: v / dollars for p, v in values.items()}
                shares = math.floor(dollars / quote.price * 1e6) / 1e6
                band.update({f"price_{p}": round(quote.price * g, 4) for p, g in growth.items()})
                band.update({p: round(shares * quote.price * g, 2) for p, g in growth.items()})
            line["bands"].append(band)
        if quote and row.get("rank") is not None:
            line["live_price"] = quote.price
            line["shares"] = math.floor(dollars / quote.price * 1e6) / 1e6
        lines.append(line)
    return lines


# -- Backtest --------------------------------------------------------------------------------------------------

def backtest_view(con) -> dict[str, object]:
    """Growth (1 = start) and drawdown per strategy and window, the summary table, and the current allocation."""
    if not has_table(con, "projections.backtest"):
        raise NotFound("no decision backtest yet; materialize the `decision_backtest` asset (make demo does)")
    # The period in progress has no cumulative growth yet: it is marked at live prices by open_period.
    periods = _records(con.execute("""SELECT strategy, window_start, period_return, cumulative_log_growth
                                      FROM projections.backtest WHERE cumulative_log_growth IS NOT NULL
                                      ORDER BY strategy, window_start"""))
    series: dict[str, list[dict]] = {}
    for row in periods:
        points = series.setdefault(row["strategy"], [])
        growth = math.exp(row["cumulative_log_growth"])
        peak = max([growth, *(p["growth"] for p in points)])
        points.append({"window_start": row["window_start"], "period_return": row["period_return"],
                       "growth": growth, "drawdown": growth / peak - 1.0})
    summary = _records(con.execute("SELECT * FROM projections.backtest_summary ORDER BY strategy")) \
        if has_table(con, "projections.backtest_summary") else []
    held = _records(con.execute("""SELECT as_of, symbol, half_kelly_weight, kelly_weight, last_price
                                   FROM projections.allocations WHERE as_of = (SELECT max(as_of) FROM projections.allocations)
                                   AND (kelly_weight > 0 OR half_kelly_weight > 0) ORDER BY rank""")) \
        if has_table(con, "projections.allocations") else []
    return {"series": series, "summary": summary, "held": held}


def open_period(held: list[dict], quotes: dict[str, Quote]) -> dict[str, object] | None:
    """The current recommendation marked at live prices since its as-of close, per strategy."""
    if not held:
        return None
    moves = {h["symbol"]: quotes[h["symbol"]].price / h["last_price"] - 1.0 for h in held if h["symbol"] in quotes}
    return {
        "since": held[0]["as_of"],
        "half_kelly_return": sum(h["half_kelly_weight"] * moves.get(h["symbol"], 0.0) for h in held),
        "full_kelly_return": sum(h["kelly_weight"] * moves.get(h["symbol"], 0.0) for h in held),
        "quotes": [quotes[h["symbol"]].as_dict() for h in held if h["symbol"] in quotes],
    }


# -- My plays --------------------------------------------------------------------------------------------------

def check_play(symbol: str, shares: float, entry_price: float, entry_date: date, note: str | None,
               known: dict[str, LastClose], today: date) -> dict[str, object]:
    """A play's fields, cleaned, or ``BadInput`` naming the first field that is wrong (a symbol the warehouse has no
    prices for included: the page values what it adds)."""
    if symbol.strip().upper() not in known:
        raise BadInput(f"symbol {symbol.strip().upper()!r} is not in the warehouse; known symbols: "
                       f"{', '.join(sorted(known))}")
    try:
        return personal.validate_play(symbol, shares, entry_price, entry_date, note, today)
    except personal.PlayError as error:
        raise BadInput(str(error)) from None


def advice_bands(con, symbols: list[str]) -> dict[str, list[dict]]:
    """Per symbol, every projection (as_of, horizon, p10/p50/p90 log returns, the as-of close) it has had."""
    if not symbols or not has_table(con, "projections.bands"):
        return {}
    rows = _records(con.execute(
        """SELECT b.symbol, b.as_of, b.horizon, b.p10, b.p50, b.p90, a.last_price
           FROM projections.bands b JOIN projections.allocations a USING (as_of, symbol)
           WHERE b.symbol IN (SELECT unnest(?::VARCHAR[])) ORDER BY b.as_of""", [symbols]))
    out: dict[str, list[dict]] = {}
    for row in rows:
        out.setdefault(row["symbol"], []).append(row)
    return out


def _horizon_days(asset_class: str) -> dict[str, int]:
    # Equity sessions read as calendar days at 7/5 per session.
    return {h.label: h.crypto_days if asset_class == "crypto" else round(h.equity_sessions * 7 / 5) for h in HORIZONS}


def value_play(play: dict, quote: Quote | None, last: LastClose | None, advice: list[dict]) -> dict:
    """A play with its live value and P&L, and where today's price sits in the band the advice gave for it: the
    projection as of the entry date (or the first one after it), at the shortest horizon that covers the days
    from then to the price's own date."""
    price = quote.price if quote else (last.close if last else None)
    cost = play["shares"] * play["entry_price"]
    view = {**play, "quote": quote.as_dict() if quote else None, "price": price}
    if price is not None:
        value = play["shares"] * price
        view.update(value=round(value, 2), cost=round(cost, 2), pnl=round(value - cost, 2), pnl_pct=value / cost - 1.0)
    view["band"] = None
    dated = sorted({row["as_of"] for row in advice})
    if not dated or price is None:
        return view
    before = [d for d in dated if d <= play["entry_date"]]
    as_of = before[-1] if before else dated[0]
    priced_on = quote.timestamp.date() if quote else last.date
    elapsed = max((priced_on - as_of).days, 1)
    days = _horizon_days(last.asset_class if last else "equity")
    horizon = next((h for h in HORIZON_LABELS if days[h] >= elapsed), HORIZON_LABELS[-1])
    row = next(r for r in advice if r["as_of"] == as_of and r["horizon"] == horizon)
    low, mid, high = (row["last_price"] * math.exp(row[p]) for p in ("p10", "p50", "p90"))
    where = "below P10" if price < low else ("above P90" if price > high else "inside P10-P90")
    view["band"] = {"as_of": as_of, "horizon": horizon, "p10": low, "p50": mid, "p90": high, "where": where,
                    "position": (price - low) / (high - low) if high > low else 0.5}
    return view


# -- Compare ---------------------------------------------------------------------------------------------------

def parse_symbols(text: str, known: dict[str, LastClose]) -> list[str]:
    """The 2-4 distinct known symbols of a comma-separated list, or ``BadInput`` naming the problem."""
    symbols = [s.strip().upper() for s in text.split(",") if s.strip()]
    if len(set(symbols)) != len(symbols):
        raise BadInput(f"symbols {text!r} lists a symbol twice")
    if not COMPARE_MIN <= len(symbols) <= COMPARE_MAX:
        raise BadInput(f"symbols must name {COMPARE_MIN} to {COMPARE_MAX} symbols separated by commas, got {len(symbols)}")
    unknown = [s for s in symbols if s not in known]
    if unknown:
        raise BadInput(f"unknown symbol {', '.join(unknown)}; known symbols: {', '.join(sorted(known))}")
    return symbols


def compare_view(con, symbols: list[str]) -> dict[str, dict]:
    """Per symbol: the latest bands, confidence, the models' agreement, a year of closes normalized to 100, and
    the ensemble's past 1-month forecasts against what happened."""
    out: dict[str, dict] = {s: {"bands": [], "confidence": None, "agreement": {}, "history": [], "track_record": []}
                            for s in symbols}
    listed = [symbols]
    if has_table(con, "projections.bands"):
        for row in _records(con.execute(
                """SELECT b.symbol, b.horizon, b.p10, b.p25, b.p50, b.p75, b.p90, b.prob_loss, a.confidence, a.last_price,
                          b.as_of FROM projections.bands b JOIN projections.allocations a USING (as_of, symbol)
                   WHERE b.as_of = (SELECT max(as_of) FROM projections.allocations)
                     AND b.symbol IN (SELECT unnest(?::VARCHAR[]))""", listed)):
            entry = out[row["symbol"]]
            entry["confidence"], entry["as_of"] = row["confidence"], row["as_of"]
            entry["bands"].append({k: row[k] for k in ("horizon", "p10", "p25", "p50", "p75", "p90", "prob_loss")})
        for entry in out.values():
            entry["bands"].sort(key=lambda b: HORIZON_LABELS.index(b["horizon"]))
    if has_table(con, "forecasts.predictions") and has_table(con, "forecasts.ensemble"):
        for row in con.execute(
                """WITH e AS (SELECT symbol, horizon, window_start, date, mean FROM forecasts.ensemble
                              WHERE symbol IN (SELECT unnest(?::VARCHAR[]))
                              QUALIFY row_number() OVER (PARTITION BY symbol, horizon ORDER BY window_start DESC, date DESC) = 1)
                   SELECT e.symbol, e.horizon, avg(CASE WHEN sign(p.mean) = sign(e.mean) THEN 1.0 ELSE 0.0 END), count(*)
                   FROM e JOIN forecasts.predictions p USING (symbol, horizon, window_start, date)
                   WHERE p.model <> 'baseline' GROUP BY ALL""", listed).fetchall():
            out[row[0]]["agreement"][row[1]] = {"share": row[2], "models": row[3]}
        for row in _records(con.execute(
                """SELECT symbol, date, q10, q50, q90, realized FROM forecasts.ensemble
                   WHERE symbol IN (SELECT unnest(?::VARCHAR[])) AND horizon = '1m' AND realized IS NOT NULL
                   QUALIFY row_number() OVER (PARTITION BY symbol ORDER BY date DESC) <= 120
                   ORDER BY symbol, date""", listed)):
            out[row.pop("symbol")]["track_record"].append(row)
    for symbol, day, close in con.execute(
            f"""SELECT symbol, date, 100 * close / first_value(close) OVER (PARTITION BY symbol ORDER BY date)
                FROM market.prices WHERE symbol IN (SELECT unnest(?::VARCHAR[]))
                  AND date > (SELECT max(date) FROM market.prices) - INTERVAL {HISTORY_DAYS} DAY
                ORDER BY symbol, date""", listed).fetchall():
        out[symbol]["history"].append({"date": day, "value": close})
    return out
