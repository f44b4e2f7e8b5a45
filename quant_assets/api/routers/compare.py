"""Ticker comparison: 2-4 symbols side by side."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query

from quant_assets.api.deps import get_live, get_state
from quant_assets.api.models import CompareResponse
from quant_assets.api.state import ApiState
from quant_assets.api import pages
from quant_assets.lib.market.live import LivePrices

router = APIRouter(tags=["compare"])


@router.get("/compare", response_model=CompareResponse)
def compare(state: Annotated[ApiState, Depends(get_state)], live: Annotated[LivePrices, Depends(get_live)],
            symbols: Annotated[str, Query(description="2 to 4 comma-separated symbols, e.g. AAPL,BTC")]):
    known = state.read(("known",), pages.known_symbols).value
    chosen = pages.parse_symbols(symbols, known)
    read = state.read(("compare", *chosen), lambda con: pages.compare_view(con, chosen))
    quotes = live.quotes(chosen)
    return {
        "symbols": [{
            "symbol": s, "asset_class": known[s].asset_class, "synthetic": known[s].source == "synthetic",
            "last_close": known[s].close, "last_close_date": known[s].date,
            "quote": quotes[s].as_dict() if s in quotes else None, **read.value[s],
        } for s in chosen],
        "freshness": read.freshness(state.stamp()),
    }
