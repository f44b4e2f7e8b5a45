"""When a day's bars are complete: equity sessions by the NYSE calendar (XNYS), crypto days by UTC midnight.

A partition day D holds the rows dated D once they are final: the XNYS session of D once the exchange has
closed (13:00 New York on half days; nothing on holidays), the crypto day D once D has ended in UTC. The
moment to judge by is the clock: the wall clock for live providers, the end of ``QUANT_TODAY`` (or of the
data's last day) for the sample, a file and replays, so a replayed day reveals exactly that day.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone
from functools import cache

import exchange_calendars as xcals
import pandas as pd

EQUITY_CALENDAR = "XNYS"
ASSET_CLASSES = ("equity", "crypto")


def end_of_day(day: date) -> datetime:
    """The UTC midnight that ends ``day``."""
    return datetime.combine(day + timedelta(days=1), time(0), tzinfo=timezone.utc)


def clock_moment(clock_today: date | None) -> datetime:
    """The moment completeness is judged at: the end of ``clock_today``, or now (UTC) when it is None."""
    return end_of_day(clock_today) if clock_today is not None else datetime.now(timezone.utc)


@cache
def _xnys(first_year: int, last_year: int) -> xcals.ExchangeCalendar:
    return xcals.get_calendar(EQUITY_CALENDAR, start=f"{first_year}-01-01", end=f"{last_year}-12-31")


def _calendar_covering(first: date, last: date) -> xcals.ExchangeCalendar:
    # Built for whole decades so that a handful of calendars serves every request (building one costs ~0.1 s).
    return _xnys(min(first.year, 1990) // 10 * 10, max(last.year + 1, 2030) // 10 * 10 + 9)


def equity_sessions(first: date, last: date) -> list[date]:
    """XNYS sessions from ``first`` to ``last`` inclusive."""
    if last < first:
        return []
    sessions = _calendar_covering(first, last).sessions_in_range(pd.Timestamp(first), pd.Timestamp(last))
    return [s.date() for s in sessions]


def session_close(day: date) -> datetime | None:
    """When the XNYS session of ``day`` closes (UTC), or None if ``day`` is not a session."""
    calendar = _calendar_covering(day, day)
    stamp = pd.Timestamp(day)
    if not calendar.is_session(stamp):
        return None
    return calendar.session_close(stamp).to_pydatetime()


def last_completed_day(asset_class: str, now: datetime) -> date:
    """The latest date whose bar of ``asset_class`` is final at ``now``; every earlier date is final too.

    Crypto: the UTC day before ``now``'s. Equities: today once today's session has closed, else yesterday
    (a non-session day has nothing in progress; a session's close comes before its UTC midnight).
    """
    if asset_class not in ASSET_CLASSES:
        raise ValueError(f"unknown asset class {asset_class!r}; expected one of {', '.join(ASSET_CLASSES)}")
    today = now.astimezone(timezone.utc).date()
    if asset_class == "crypto":
        return today - timedelta(days=1)
    close = session_close(today)
    return today if close is not None and close <= now else today - timedelta(days=1)


def last_completed_session(now: datetime) -> date:
    """The latest XNYS session that has closed by ``now``."""
    last = last_completed_day("equity", now)
    sessions = equity_sessions(last - timedelta(days=14), last)
    return sessions[-1]


def completed_days(asset_class: str, first: date, last: date, now: datetime) -> list[date]:
    """The days from ``first`` to ``last`` inclusive that hold a final bar of ``asset_class`` at ``now``:
    XNYS sessions for equities, every day for crypto."""
    last = min(last, last_completed_day(asset_class, now))
    if asset_class == "equity":
        return equity_sessions(first, last)
    return [first + timedelta(days=i) for i in range((last - first).days + 1)]
