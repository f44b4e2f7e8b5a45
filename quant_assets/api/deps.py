"""Dependencies the routes declare: the process's state (warehouse reads, the person's store, the live provider)."""

from __future__ import annotations

from fastapi import Request

from quant_assets.api.state import ApiState
from quant_assets.lib.market.live import LivePrices


def get_state(request: Request) -> ApiState:
    return request.app.state.api


def get_live(request: Request) -> LivePrices:
    return request.app.state.api.live
