"""Walk-forward window plans, with purging by label end date and an embargo before each window.

A window is the half-open interval ``[window_start, window_end)`` of dates whose rows are predicted.
A training row's label covers the closed interval ``[date, end]`` (``end`` is the date on which the
forward return is realized). A row may train a model for the window only if its label is known and its
interval ends strictly before ``window_start - embargo_days``: purging by the label's end, not the row's
date, is what keeps a 1y label observed 200 sessions before the window out of training, and the
embargo keeps a margin of calendar days between the last label used and the first date predicted.
The embargo is counted in calendar days, so one plan serves equities (sessions) and crypto (days).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

import numpy as np
import pandas as pd

from quant_assets.lib.vocabulary import HORIZON_BY_LABEL, HORIZONS

MODES = ("rolling", "expanding")


@dataclass(frozen=True)
class WindowRules:
    """How every window's training rows are chosen: ``plan_window``'s embargo, training span and mode."""

    embargo_days: int = 5
    train_years: int = 10
    mode: str = "rolling"


@dataclass(frozen=True)
class WindowPlan:
    """Training and evaluation bounds of one (window, horizon).

    ``train_end`` is the exclusive bound on training label end dates (``window_start - embargo_days``);
    ``train_start`` is the first training row date in rolling mode and ``None`` in expanding mode.
    """

    window_start: date
    window_end: date
    embargo_days: int
    train_start: date | None
    train_end: date
    horizon: str
    mode: str

    def __post_init__(self) -> None:
        # Plans read back from the warehouse carry Timestamps; bounds are compared as plain dates.
        for name in ("window_start", "window_end", "train_end"):
            object.__setattr__(self, name, _as_date(getattr(self, name), name))
        if self.train_start is not None and not pd.isna(self.train_start):
            object.__setattr__(self, "train_start", _as_date(self.train_start, "train_start"))
        else:
            object.__setattr__(self, "train_start", None)
        object.__setattr__(self, "embargo_days", int(self.embargo_days))

    @property
    def embargo_start(self) -> date:
        """First date of the embargo, re-derived from the window (never taken from ``train_end``)."""
        return self.window_start - timedelta(days=int(self.embargo_days))


def plan_window(
    window_start: date | str,
    window_end: date | str,
    *,
    embargo_days: int = 5,
    train_years: int = 10,
    mode: str = "rolling",
) -> list[WindowPlan]:
    """One plan per horizon (in ``HORIZONS`` order) for the window ``[window_start, window_end)``.

    Rolling plans train on rows dated on or after ``window_start`` minus ``train_years`` years;
    expanding plans use all history. Every plan admits only labels ending before
    ``window_start - embargo_days``.
    """
    start = _as_date(window_start, "window_start")
    end = _as_date(window_end, "window_end")
    if end <= start:
        raise ValueError(f"window_end {end} must be after window_start {start}")
    if isinstance(embargo_days, bool) or not isinstance(embargo_days, (int, np.integer)) or embargo_days < 0:
        raise ValueError(f"embargo_days must be a non-negative integer, got {embargo_days!r}")
    if isinstance(train_years, bool) or not isinstance(train_years, (int, np.integer)) or train_years < 1:
        raise ValueError(f"train_years must be a positive integer, got {train_years!r}")
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    train_start = _years_before(start, int(train_years)) if mode == "rolling" else None
    train_end = start - timedelta(days=int(embargo_days))
    return [
        WindowPlan(
            window_start=start,
            window_end=end,
            embargo_days=int(embargo_days),
            train_start=train_start,
            train_end=train_end,
            horizon=h.label,
            mode=mode,
        )
        for h in HORIZONS
    ]


def training_mask(labels: pd.DataFrame, plan: WindowPlan) -> np.ndarray:
    """Boolean mask of the ``labels`` rows that may train ``plan``'s horizon.

    ``labels`` needs ``date``, ``end_<h>`` and ``fwd_<h>``. A row is used only if its label is known
    (finite ``fwd_<h>`` and a non-null ``end_<h>``), its label ends strictly before both
    ``window_start - embargo_days`` and the plan's ``train_end`` (the stricter wins), and, when the plan
    has a ``train_start``, its date is on or after it.
    """
    end_col, fwd_col = f"end_{plan.horizon}", f"fwd_{plan.horizon}"
    _require(labels, ["date", end_col, fwd_col], "labels")
    dates = _datetimes(labels["date"], "labels", "date")
    ends = _datetimes(labels[end_col], "labels", end_col)
    _reject_backward_intervals(labels, dates, ends, end_col)
    fwd = pd.to_numeric(labels[fwd_col], errors="coerce").astype("float64").to_numpy()
    bound = pd.Timestamp(min(plan.train_end, plan.embargo_start))
    mask = np.isfinite(fwd) & ends.notna().to_numpy() & (ends < bound).to_numpy()
    if plan.train_start is not None:
        mask &= (dates >= pd.Timestamp(plan.train_start)).to_numpy()
    return mask


def eval_mask(frame: pd.DataFrame, plan: WindowPlan) -> pd.Series:
    """Boolean Series (on ``frame``'s index) of the rows with ``window_start <= date < window_end``."""
    _require(frame, ["date"], "frame")
    dates = _datetimes(frame["date"], "frame", "date")
    return (dates >= pd.Timestamp(plan.window_start)) & (dates < pd.Timestamp(plan.window_end))


def overlaps(plan: WindowPlan, label_intervals: pd.DataFrame) -> pd.DataFrame:
    """The label intervals ``[date, end]`` that intersect ``[window_start - embargo_days, window_end)``.

    The forbidden zone is re-derived from the plan's window and embargo, so a plan whose stored
    ``train_end`` was altered is still judged by its window. A missing ``end`` (a label not yet realized)
    counts as open-ended. Returns the offending rows with every input column plus ``overlap_start`` and
    ``overlap_last`` (first and last day inside the zone) and ``zone`` (``embargo``, ``window`` or
    ``embargo+window``), ordered by date.
    """
    _require(label_intervals, ["date", "end"], "label_intervals")
    dates = _datetimes(label_intervals["date"], "label_intervals", "date")
    ends = _datetimes(label_intervals["end"], "label_intervals", "end")
    zone_start, window_start = pd.Timestamp(plan.embargo_start), pd.Timestamp(plan.window_start)
    window_end = pd.Timestamp(plan.window_end)
    open_ended = ends.isna()
    # Positional masks throughout: the caller's index may repeat labels.
    hits = ((dates < window_end) & (open_ended | (ends >= zone_start))).to_numpy()
    d, e, unknown = dates.to_numpy()[hits], ends.to_numpy()[hits], open_ended.to_numpy()[hits]
    last_day = (window_end - pd.Timedelta(days=1)).to_datetime64()
    in_embargo = (d < window_start) & (unknown | (e >= zone_start)) & (zone_start < window_start)
    in_window = unknown | (e >= window_start)
    out = label_intervals.loc[hits].copy()
    out["overlap_start"] = np.where(d > zone_start, d, zone_start.to_datetime64())
    out["overlap_last"] = np.where(~unknown & (e < last_day), e, last_day)
    out["zone"] = np.select(
        [in_embargo & in_window, in_embargo, in_window], ["embargo+window", "embargo", "window"], default="window"
    )
    return out.iloc[np.argsort(d, kind="stable")]


def audit_training_rows(rows: pd.DataFrame, plan: WindowPlan) -> list[str]:
    """Human-readable violations of ``plan`` by the training ``rows`` (``date``, ``end``, optionally ``symbol``).

    Checks the plan itself (a sane window, a non-negative embargo, a ``train_end`` no later than
    ``window_start - embargo_days``, a known mode and horizon) and every row: it must have a date, its
    label must be known, its interval must not run backwards, and it must end before the embargo.
    An empty list means clean.
    """
    _require(rows, ["date", "end"], "rows")
    rows = rows.reset_index(drop=True)
    problems = _plan_problems(plan)
    dates = _datetimes(rows["date"], "rows", "date")
    ends = _datetimes(rows["end"], "rows", "end")
    names = rows["symbol"].astype("string").fillna("?") if "symbol" in rows.columns else pd.Series("", index=rows.index)
    where = f"window [{plan.window_start}, {plan.window_end}) horizon {plan.horizon}"
    for name in names[dates.isna().to_numpy()]:
        problems.append(f"{name or 'a row'}: a training row without a date ({where})")
    backwards = (ends.notna() & (ends < dates)).to_numpy()
    for name, day, end in zip(names[backwards], dates[backwards], ends[backwards]):
        problems.append(f"{_row_name(name, day)}: label interval ends {end:%Y-%m-%d}, before its own date ({where})")
    offenders = overlaps(plan, rows.loc[~backwards])
    zone = f"[{plan.embargo_start}, {plan.window_end})"
    index = offenders.index
    for name, day, end, hit in zip(names[index], dates[index], ends[index], offenders["zone"]):
        if pd.isna(end):
            problems.append(
                f"{_row_name(name, day)}: trains with a label whose end date is unknown, so it may reach into {zone} ({where})"
            )
        else:
            problems.append(
                f"{_row_name(name, day)}: label interval [{day:%Y-%m-%d}, {end:%Y-%m-%d}] reaches into the {hit} "
                f"{zone} ({where}, embargo {plan.embargo_days} days)"
            )
    return problems


def _plan_problems(plan: WindowPlan) -> list[str]:
    where = f"plan for window {plan.window_start} horizon {plan.horizon}"
    problems = []
    if plan.window_end <= plan.window_start:
        problems.append(f"{where}: window_end {plan.window_end} is not after window_start {plan.window_start}")
    if plan.embargo_days < 0:
        problems.append(f"{where}: negative embargo of {plan.embargo_days} days")
    if plan.train_end > plan.embargo_start:
        problems.append(
            f"{where}: admits labels ending before {plan.train_end}, later than window_start minus the "
            f"{plan.embargo_days}-day embargo ({plan.embargo_start})"
        )
    if plan.mode not in MODES:
        problems.append(f"{where}: unknown mode {plan.mode!r}; expected one of {MODES}")
    if plan.horizon not in HORIZON_BY_LABEL:
        problems.append(f"{where}: unknown horizon {plan.horizon!r}; expected one of {sorted(HORIZON_BY_LABEL)}")
    return problems


def _row_name(symbol: str, when: pd.Timestamp) -> str:
    day = "<no date>" if pd.isna(when) else f"{when:%Y-%m-%d}"
    return f"{symbol} {day}" if symbol else f"row dated {day}"


def _reject_backward_intervals(labels: pd.DataFrame, dates: pd.Series, ends: pd.Series, end_col: str) -> None:
    backwards = (ends < dates).to_numpy()
    if backwards.any():
        i = labels.index[backwards][0]
        symbol = f"symbol {labels.at[i, 'symbol']} " if "symbol" in labels.columns else ""
        raise ValueError(
            f"labels: {end_col} {ends[i]:%Y-%m-%d} precedes the row's own date {dates[i]:%Y-%m-%d} "
            f"({symbol}row {i}); a label must be realized on or after its date"
        )


def _require(frame: pd.DataFrame, columns: list[str], name: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"{name} lacks column(s) {missing}; it has {list(frame.columns)}")


def _datetimes(values: pd.Series, name: str, column: str) -> pd.Series:
    try:
        out = pd.to_datetime(values, cache=False)  # the cache's uniqueness probe costs more than it saves here
    except (ValueError, TypeError) as exc:
        raise ValueError(f"{name}.{column} holds values that are not dates: {exc}") from exc
    if getattr(out.dt, "tz", None) is not None:
        out = out.dt.tz_localize(None)
    return out


def _as_date(value: object, what: str) -> date:
    if isinstance(value, pd.Timestamp) or isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, (str, np.datetime64)):
        try:
            return pd.Timestamp(value).date()
        except ValueError as exc:
            raise ValueError(f"{what} {value!r} is not a date") from exc
    raise ValueError(f"{what} must be a date, got {type(value).__name__} {value!r}")


def _years_before(day: date, years: int) -> date:
    # 29 February has no twin in a common year; the 28th keeps the span at whole years.
    try:
        return day.replace(year=day.year - years)
    except ValueError:
        return day.replace(year=day.year - years, day=28)
