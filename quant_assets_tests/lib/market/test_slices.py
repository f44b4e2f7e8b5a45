"""A slice's stored rows against a fresh answer, on frames alone: a stored row is replaced only by a valid new version
of its key, and the days the answer left out are named."""

from datetime import date, timedelta

import polars as pl

from quant_assets.lib.market.providers.schema import PRICE_SCHEMA, ValidationReport
from quant_assets.lib.market.slices import PRICE_KEY, keep_stored

DAYS = [date(2022, 6, 13) + timedelta(days=i) for i in range(5)]


def prices(symbol, days, close):
    return pl.DataFrame([(symbol, d, "equity", close, close, close, close, 1e6, "file") for d in days],
                        schema=PRICE_SCHEMA, orient="row")


def test_a_partial_answer_keeps_the_stored_days_it_left_out_and_names_them():
    stored = pl.concat([prices("ACME", DAYS, 10.0), prices("BETA", DAYS, 20.0)])
    fresh = pl.concat([prices("ACME", DAYS[:3], 11.0), prices("BETA", DAYS, 21.0)])
    frame, unanswered, invalid = keep_stored(stored, PRICE_KEY, fresh, ValidationReport())
    assert frame.height == stored.height and invalid == 0
    closes = dict(zip(zip(frame["symbol"], frame["date"]), frame["close"]))
    assert [closes["ACME", d] for d in DAYS] == [11.0, 11.0, 11.0, 10.0, 10.0]
    assert {closes["BETA", d] for d in DAYS} == {21.0}
    assert unanswered == {"ACME": ["2022-06-16..2022-06-17 (2 days)"]}


def test_a_row_whose_new_version_was_invalid_keeps_its_stored_value_and_is_counted():
    stored = prices("ACME", DAYS, 10.0)
    report = ValidationReport(dropped_keys=[pl.DataFrame({"symbol": ["ACME"], "date": [DAYS[4]]})])
    frame, unanswered, invalid = keep_stored(stored, PRICE_KEY, prices("ACME", DAYS[:4], 12.0), report)
    assert frame.filter(pl.col("date") == DAYS[4])["close"].to_list() == [10.0]
    assert invalid == 1 and unanswered == {}


def test_before_the_table_exists_the_answer_is_the_slice():
    fresh = prices("ACME", DAYS[:2], 12.0)
    assert keep_stored(None, PRICE_KEY, fresh, ValidationReport()) == (fresh, {}, 0)
