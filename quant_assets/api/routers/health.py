"""Health: the latest as-of date, data freshness, the live provider's state."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends

from quant_assets.api.deps import get_live, get_state
from quant_assets.api.models import HealthResponse
from quant_assets.api.state import ApiState, WarehouseUnavailable
from quant_assets.api import pages
from quant_assets.lib.market.live import LivePrices

router = APIRouter(tags=["health"])


@router.get("/health", response_model=HealthResponse)
def health(state: Annotated[ApiState, Depends(get_state)], live: Annotated[LivePrices, Depends(get_live)]):
    base = {"live": live.state(), "writes_require_token": bool(state.config.token)}
    try:
        read = state.read(("health",), lambda con: (pages.freshness(con), sorted(pages.known_symbols(con))))
    except (pages.NotFound, WarehouseUnavailable) as problem:
        return {**base, "status": str(problem), "projections_as_of": None, "market_last_date": None,
                "projector_at_available": False, "symbols": [], "freshness": None}
    facts, symbols = read.value
    status = "ok" if facts["projections_as_of"] else "no projections yet: run `make demo`"
    return {**base, **facts, "status": status, "symbols": symbols, "freshness": read.freshness(state.stamp())}
