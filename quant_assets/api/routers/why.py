"""Why this trade: what each position of a day's advice rests on (``lib.projections.why``)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, Depends, Query

from quant_assets.api import pages
from quant_assets.api.deps import get_state
from quant_assets.api.models import WhyResponse
from quant_assets.api.state import ApiState
from quant_assets.lib.projections.why import NoWhy, load_why_inputs, why

router = APIRouter(tags=["why"])


@router.get("/why", response_model=WhyResponse)
def why_this_trade(
    state: Annotated[ApiState, Depends(get_state)],
    symbol: Annotated[str | None, Query(description="one position (default: all of the day's)")] = None,
    as_of: Annotated[dt.date | None, Query(description="an earlier day's advice (default: the latest)")] = None,
):
    def load(con):
        try:
            return load_why_inputs(con, as_of)
        except NoWhy as error:
            raise pages.NotFound(str(error)) from None

    read = state.read(("why", as_of), load)
    try:
        lines = why(read.value, symbol.upper() if symbol else None)
    except NoWhy as error:
        raise pages.NotFound(str(error)) from None
    return {"as_of": read.value.as_of, "lines": lines, "freshness": read.freshness(state.stamp())}
