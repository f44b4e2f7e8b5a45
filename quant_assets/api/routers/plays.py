"""My plays: the positions the person holds (``portfolio.plays`` in their own file, never written by the pipeline),
valued live."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, Depends, Path

from quant_assets.api.deps import get_live, get_state
from quant_assets.api.models import Play, PlayIn, PlayPatch, PlaysResponse
from quant_assets.api.state import ApiState
from quant_assets.api import pages
from quant_assets.lib.market.live import LivePrices
from quant_assets.lib.storage import personal

router = APIRouter(tags=["plays"])
PlayId = Annotated[int, Path(ge=1, description="the play's id")]


def _today() -> dt.date:
    return dt.datetime.now(dt.timezone.utc).date()


def _valued(state: ApiState, live: LivePrices) -> PlaysResponse:
    plays = state.plays()
    symbols = sorted({p["symbol"] for p in plays})
    read = state.read(("advice", *symbols), lambda con: pages.advice_bands(con, symbols))
    advice = read.value
    quotes, closes = live.quotes(symbols), state.last_closes(symbols)
    views = [pages.value_play(p, quotes.get(p["symbol"]), closes.get(p["symbol"]), advice.get(p["symbol"], []))
             for p in plays]
    return {"plays": views, "total_value": round(sum(v.get("value") or 0.0 for v in views), 2),
            "total_cost": round(sum(v.get("cost") or 0.0 for v in views), 2),
            "total_pnl": round(sum(v.get("pnl") or 0.0 for v in views), 2), "freshness": read.freshness(state.stamp())}


def _one(state: ApiState, live: LivePrices, play_id: int) -> Play:
    found = [p for p in _valued(state, live)["plays"] if p["play_id"] == play_id]
    if not found:
        raise pages.NotFound(f"no play with id {play_id}")
    return found[0]


def _checked(state: ApiState, play: PlayIn) -> dict:
    known = state.read(("known",), pages.known_symbols).value
    return pages.check_play(play.symbol, play.shares, play.entry_price, play.entry_date, play.note, known, _today())


@router.get("/plays", response_model=PlaysResponse)
def list_plays(state: Annotated[ApiState, Depends(get_state)], live: Annotated[LivePrices, Depends(get_live)]):
    return _valued(state, live)


@router.post("/plays", response_model=Play, status_code=201)
def add_play(play: PlayIn, state: Annotated[ApiState, Depends(get_state)], live: Annotated[LivePrices, Depends(get_live)]):
    fields = _checked(state, play)
    with state.personal.writer() as con:
        play_id = personal.insert_play(con, fields)
    return _one(state, live, play_id)


@router.put("/plays/{play_id}", response_model=Play)
def replace_play(play_id: PlayId, play: PlayIn, state: Annotated[ApiState, Depends(get_state)],
                 live: Annotated[LivePrices, Depends(get_live)]):
    fields = _checked(state, play)
    with state.personal.writer() as con:
        if not personal.update_play(con, play_id, fields):
            raise pages.NotFound(f"no play with id {play_id}")
    return _one(state, live, play_id)


@router.patch("/plays/{play_id}", response_model=Play)
def edit_play(play_id: PlayId, patch: PlayPatch, state: Annotated[ApiState, Depends(get_state)],
              live: Annotated[LivePrices, Depends(get_live)]):
    current = _one(state, live, play_id)
    merged = PlayIn(**{k: current[k] for k in PlayIn.model_fields} | patch.model_dump(exclude_unset=True))
    return replace_play(play_id, merged, state, live)


@router.delete("/plays/{play_id}", status_code=204)
def delete_play(play_id: PlayId, state: Annotated[ApiState, Depends(get_state)]):
    with state.personal.writer() as con:
        if not personal.delete_play(con, play_id):
            raise pages.NotFound(f"no play with id {play_id}")
