"""The decision backtest: growth and drawdown per strategy, the open period marked at live prices."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends

from quant_assets.api.deps import get_live, get_state
from quant_assets.api.models import BacktestResponse
from quant_assets.api.state import ApiState
from quant_assets.api import pages
from quant_assets.lib.market.live import LivePrices

router = APIRouter(tags=["backtest"])


@router.get("/backtest", response_model=BacktestResponse)
def backtest(state: Annotated[ApiState, Depends(get_state)], live: Annotated[LivePrices, Depends(get_live)]):
    read = state.read(("backtest",), pages.backtest_view)
    view = read.value
    quotes = live.quotes(h["symbol"] for h in view["held"])
    return {"series": view["series"], "summary": view["summary"], "open_period": pages.open_period(view["held"], quotes),
            "freshness": read.freshness(state.stamp())}
