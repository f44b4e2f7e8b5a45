"""Which bars are final at a moment: NYSE sessions (holidays, half days) and UTC crypto days."""

from datetime import date, datetime, timezone

import pytest

from quant_assets.lib.market.calendar import clock_moment, completed_days, last_completed_day, last_completed_session, session_close


def utc(*parts):
    return datetime(*parts, tzinfo=timezone.utc)


def test_a_session_is_final_only_once_the_exchange_has_closed():
    # 2022-12-28 closes at 16:00 New York = 21:00 UTC.
    assert last_completed_day("equity", utc(2022, 12, 28, 20, 59)) == date(2022, 12, 27)
    assert last_completed_day("equity", utc(2022, 12, 28, 21, 0)) == date(2022, 12, 28)


def test_half_days_close_early_and_holidays_have_no_session():
    assert session_close(date(2022, 11, 25)) == utc(2022, 11, 25, 18, 0)  # day after Thanksgiving, 13:00 New York
    assert session_close(date(2022, 12, 26)) is None  # Christmas observed
    assert last_completed_session(utc(2022, 12, 27, 12)) == date(2022, 12, 23)
    assert completed_days("equity", date(2022, 12, 22), date(2022, 12, 31), clock_moment(date(2022, 12, 28))) == [
        date(2022, 12, 22), date(2022, 12, 23), date(2022, 12, 27), date(2022, 12, 28)]


def test_a_crypto_day_is_final_once_it_has_ended_in_utc():
    assert last_completed_day("crypto", utc(2022, 12, 28, 23, 59)) == date(2022, 12, 27)
    assert last_completed_day("crypto", clock_moment(date(2022, 12, 28))) == date(2022, 12, 28)
    assert len(completed_days("crypto", date(2022, 12, 24), date(2022, 12, 31), utc(2022, 12, 29, 1))) == 5


def test_unknown_asset_class_is_named():
    with pytest.raises(ValueError, match="unknown asset class 'bond'"):
        last_completed_day("bond", utc(2022, 1, 3))
