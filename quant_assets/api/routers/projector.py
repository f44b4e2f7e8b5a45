"""The Projector: what to do with an amount of dollars, at live prices."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, Depends, Query

from quant_assets.api.deps import get_live, get_state
from quant_assets.api.models import ProjectorResponse
from quant_assets.api.state import ApiState
from quant_assets.api import pages
from quant_assets.lib.market.live import LivePrices

router = APIRouter(tags=["projector"])


@router.get("/projector", response_model=ProjectorResponse)
def projector(
    state: Annotated[ApiState, Depends(get_state)],
    live: Annotated[LivePrices, Depends(get_live)],
    amount: Annotated[float, Query(description="dollars to allocate, e.g. 10000", allow_inf_nan=False)],
    as_of: Annotated[dt.date | None, Query(description="an earlier session's projection (projector_at)")] = None,
):
    pages.check_amount(amount)
    if as_of is not None and as_of > dt.date.today():
        raise pages.BadInput(f"as_of {as_of} is in the future")
    if as_of is None:
        read = state.read(("projector snapshot",), pages.projector_snapshot)
        cursor = read.value.cursor()
        try:
            day, rows = pages.projector_rows(cursor, amount, None)
        finally:
            cursor.close()
    else:
        read = state.read(("projector", amount, as_of), lambda con: pages.projector_rows(con, amount, as_of))
        day, rows = read.value
    quotes = live.quotes(r["symbol"] for r in rows if r["rank"] is not None)
    closes = state.last_closes(quotes)
    return {
        "amount": amount, "as_of": day, "lines": pages.overlay_projector(rows, quotes),
        "synthetic_symbols": sorted(s for s, c in closes.items() if c.source == "synthetic"),
        "freshness": read.freshness(state.stamp()),
    }
