"""Rebalance and alerts: the trades that move the person's plays toward the day's cost-aware target, and the alerts
on their positions after the latest advice. The plays come from their own file, the day's sizing scenarios from the
warehouse (kept until the file changes); the maths is ``lib.projections``'s."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request

from quant_assets.api import pages
from quant_assets.api.deps import get_state
from quant_assets.api.models import AlertsResponse, RebalanceResponse
from quant_assets.api.state import ApiState
from quant_assets.book_commands import trading_terms
from quant_assets.lib.projections.alerts import alerts, load_alert_inputs
from quant_assets.lib.projections.rebalance_book import held_shares, load_day_advice, rebalance
from quant_assets.lib.projections.rebalance_terms import NoAdvice, RebalanceError

router = APIRouter(tags=["rebalance"])
# The query parameters /api/rebalance reads; any other is refused, so a misspelt setting never passes unnoticed.
TERM_PARAMETERS = ("cost_bp", "min_fee", "min_trade", "tolerance", "turnover_cap", "fractional_shares")
KNOWN_PARAMETERS = {"cash", "as_of", *TERM_PARAMETERS}


def _terms(**overrides):
    try:
        return trading_terms(overrides)
    except RebalanceError as error:
        raise pages.BadInput(str(error)) from None


@router.get("/rebalance", response_model=RebalanceResponse)
def rebalance_book(
    request: Request,
    state: Annotated[ApiState, Depends(get_state)],
    cash: Annotated[float, Query(description="dollars added to the book (negative: withdrawn)", allow_inf_nan=False)] = 0.0,
    as_of: Annotated[dt.date | None, Query(description="an earlier day's advice")] = None,
    cost_bp: Annotated[float | None, Query(description="cost per trade, basis points")] = None,
    min_fee: Annotated[float | None, Query(description="the smallest fee of one order, dollars")] = None,
    min_trade: Annotated[float | None, Query(description="the smallest order, dollars")] = None,
    tolerance: Annotated[float | None, Query(description="no-trade band, in weight")] = None,
    turnover_cap: Annotated[float | None, Query(description="the largest sum of |weight changes|")] = None,
    fractional_shares: Annotated[bool | None, Query(description="equities in fractions of a share")] = None,
):
    unknown = sorted(set(request.query_params) - KNOWN_PARAMETERS)
    if unknown:
        raise pages.BadInput(f"unknown rebalance setting {', '.join(unknown)}; the settings are "
                             f"{', '.join(TERM_PARAMETERS)}")
    terms = _terms(cost_bp=cost_bp, min_fee=min_fee, min_trade=min_trade, tolerance=tolerance,
                   turnover_cap=turnover_cap, fractional_shares=fractional_shares)

    def load(con):
        try:
            return load_day_advice(con, as_of)
        except NoAdvice as error:
            raise pages.NotFound(str(error)) from None

    read = state.read(("rebalance advice", as_of), load)
    try:
        lines, summary = rebalance(read.value, state.plays(), cash, terms)
    except RebalanceError as error:
        raise pages.BadInput(str(error)) from None
    records = [{k: (None if v != v else v) for k, v in row.items()} for row in lines.to_dict("records")]
    return {"summary": summary, "lines": records, "freshness": read.freshness(state.stamp())}


@router.get("/alerts", response_model=AlertsResponse)
def book_alerts(state: Annotated[ApiState, Depends(get_state)],
                tolerance: Annotated[float | None, Query(description="the drift allowed, in weight")] = None):
    allowed = _terms(tolerance=tolerance).tolerance
    held = held_shares(state.plays())
    if not held:
        return {"tolerance": allowed, "alerts": []}
    read = state.read(("alerts", *sorted(held)), lambda con: load_alert_inputs(con, sorted(held)))
    return {"tolerance": allowed, "alerts": alerts(held, *read.value, tolerance=allowed),
            "freshness": read.freshness(state.stamp())}
