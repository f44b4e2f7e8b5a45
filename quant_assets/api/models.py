"""The request and response models of every endpoint (what /docs shows)."""

from __future__ import annotations

import datetime as dt

from pydantic import BaseModel, Field


class Freshness(BaseModel):
    """How current the answer is: when it was read, when the warehouse last changed, whether it was kept from
    an earlier read because the pipeline was writing."""

    read_at: str
    warehouse_modified_at: str | None
    served_from_cache: bool
    note: str = ""


class Quote(BaseModel):
    symbol: str
    price: float
    source: str = Field(description="'polygon' or 'coinbase' as of the price's own timestamp, or 'last_close' when the "
                                    "live source is off, failed, or has no price newer than the warehouse's last close")
    timestamp: str
    age_seconds: float
    delayed: bool
    stale: bool
    note: str = ""


class Band(BaseModel):
    horizon: str
    p10: float
    p50: float
    p90: float
    price_p10: float | None = None
    price_p50: float | None = None
    price_p90: float | None = None


class ProjectorLine(BaseModel):
    rank: int | None
    symbol: str
    asset_class: str | None
    side: str | None
    confidence: float | None = Field(description="the probability of a gain over the sizing horizon: calibrated "
                                                 "out of fold, or the base rate where calibration showed no skill")
    confidence_source: str | None = Field(None, description="'calibrated' or 'base_rate'")
    confidence_label: str | None = Field(None, description="what a person reads beside the confidence")
    weight: float
    dollars: float
    shares: float | None
    last_price: float | None
    live_price: float | None = None
    expected_return: float | None
    quote: Quote | None
    bands: list[Band] = Field(description="P10/P50/P90 of the line's value in dollars per horizon")


class ProjectorResponse(BaseModel):
    amount: float
    as_of: dt.date
    lines: list[ProjectorLine]
    synthetic_symbols: list[str] = Field(description="symbols whose history is simulated (the sample's crypto)")
    freshness: Freshness


class SeriesPoint(BaseModel):
    window_start: dt.date
    period_return: float
    growth: float
    drawdown: float


class OpenPeriod(BaseModel):
    since: dt.date
    half_kelly_return: float
    full_kelly_return: float
    quotes: list[Quote]


class BacktestResponse(BaseModel):
    series: dict[str, list[SeriesPoint]]
    summary: list[dict[str, float | int | str | None]]
    open_period: OpenPeriod | None
    freshness: Freshness


class PlayIn(BaseModel):
    symbol: str = Field(min_length=1, max_length=20)
    shares: float
    entry_price: float
    entry_date: dt.date
    note: str | None = None


class PlayPatch(BaseModel):
    symbol: str | None = Field(default=None, min_length=1, max_length=20)
    shares: float | None = None
    entry_price: float | None = None
    entry_date: dt.date | None = None
    note: str | None = None


class PlayBand(BaseModel):
    as_of: dt.date
    horizon: str
    p10: float
    p50: float
    p90: float
    where: str
    position: float = Field(description="0 at P10, 1 at P90")


class Play(BaseModel):
    play_id: int
    symbol: str
    shares: float
    entry_price: float
    entry_date: dt.date
    note: str | None
    price: float | None
    value: float | None = None
    cost: float | None = None
    pnl: float | None = None
    pnl_pct: float | None = None
    quote: Quote | None
    band: PlayBand | None


class PlaysResponse(BaseModel):
    plays: list[Play]
    total_value: float
    total_cost: float
    total_pnl: float
    freshness: Freshness


class HistoryPoint(BaseModel):
    date: dt.date
    value: float


class TrackPoint(BaseModel):
    date: dt.date
    q10: float
    q50: float
    q90: float
    realized: float


class Agreement(BaseModel):
    share: float = Field(description="share of the models whose mean has the ensemble's sign")
    models: int


class CompareBand(BaseModel):
    horizon: str
    p10: float
    p25: float
    p50: float
    p75: float
    p90: float
    prob_loss: float | None


class CompareSymbol(BaseModel):
    symbol: str
    asset_class: str
    synthetic: bool
    last_close: float
    last_close_date: dt.date
    quote: Quote | None
    confidence: float | None
    bands: list[CompareBand] = Field(description="log returns per horizon")
    agreement: dict[str, Agreement]
    history: list[HistoryPoint] = Field(description="the last year of closes, 100 at its first day")
    track_record: list[TrackPoint] = Field(description="past 1-month forecasts (log returns) and what happened")


class CompareResponse(BaseModel):
    symbols: list[CompareSymbol]
    freshness: Freshness


class HealthResponse(BaseModel):
    status: str
    projections_as_of: dt.date | None
    market_last_date: dt.date | None
    projector_at_available: bool
    symbols: list[str]
    live: dict[str, object]
    writes_require_token: bool
    freshness: Freshness | None


class ErrorResponse(BaseModel):
    detail: str


class RebalanceLine(BaseModel):
    """One symbol of the book: what is held, the target, and the order (weights are fractions of the book plus the
    cash added)."""

    symbol: str
    asset_class: str | None
    covered: bool = Field(description="False for a symbol the advice does not cover: kept as held, never sold")
    shares_held: float
    last_price: float | None
    value: float | None
    current_weight: float | None
    advised_weight: float | None = Field(description="the day's fractional-Kelly weight, from cash")
    target_weight: float | None = Field(description="the cost-aware target from the current weights")
    drift: float | None = Field(description="current weight less target")
    side: str = Field(description="BUY, SELL or HOLD")
    shares: float
    dollars: float
    cost: float
    shares_after: float
    weight_after: float | None
    note: str


class RebalanceTerms(BaseModel):
    cost_bp: float
    min_fee: float
    min_trade: float
    tolerance: float
    turnover_cap: float
    fractional_shares: bool


class RebalanceSummary(BaseModel):
    as_of: dt.date
    horizon: str
    cash_added: float
    book_value: float = Field(description="the held value of the symbols the advice covers")
    total: float
    cash_left: float
    total_cost: float
    expected_growth_gained: float = Field(description="certainty-equivalent dollars gained at the sizing horizon, "
                                                      "before the cost paid")
    turnover: float
    target_turnover: float
    turnover_cap_binds: bool
    uncovered_symbols: list[str]
    terms: RebalanceTerms


class RebalanceResponse(BaseModel):
    summary: RebalanceSummary
    lines: list[RebalanceLine]
    freshness: Freshness


class Alert(BaseModel):
    kind: str = Field(description="'band': the last close left the P10-P90 band; 'drift': beyond the tolerance")
    symbol: str
    day: dt.date
    advice_as_of: dt.date
    horizon: str | None
    price: float | None
    p10: float | None
    p90: float | None
    held_weight: float | None
    advised_weight: float | None
    message: str


class AlertsResponse(BaseModel):
    tolerance: float
    alerts: list[Alert]
    freshness: Freshness | None = None


class MemberForecast(BaseModel):
    model: str
    mean: float = Field(description="the member's mean log return at the sizing horizon")
    p10: float | None
    p90: float | None


class WhyLine(BaseModel):
    symbol: str
    as_of: dt.date
    horizon: str = Field(description="the sizing horizon")
    window_start: dt.date | None
    members: list[MemberForecast]
    member_spread: float | None = Field(description="standard deviation of the members' means (log return)")
    ensemble_mean: float | None
    skill: float | None
    skill_measure: str
    prior: float | None
    sizing_mean: float | None
    mean_uncertainty: float | None
    shrinkage: float | None
    expected_return: float | None = Field(description="the simple expected return the weight bets on")
    prob_gain: float | None = Field(description="the calibrated probability of a gain")
    prob_gain_base_rate: float | None
    confidence: float | None = Field(description="the probability shown: prob_gain or its base rate")
    confidence_source: str | None
    confidence_label: str | None
    weight: float = Field(description="the advised (fractional-Kelly) weight")
    kelly_weight: float
    weight_limit: str | None = Field(description="'cap', 'budget', 'not eligible' or 'utility'")
    weight_limit_reason: str | None


class WhyResponse(BaseModel):
    as_of: dt.date
    lines: list[WhyLine]
    freshness: Freshness
