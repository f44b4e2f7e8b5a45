"""Crypto's labels overlap in its own days: its effective rows are counted in days, the equities' in sessions."""

import numpy as np
import pandas as pd
import pytest

from quant_assets.lib.ensemble.history import effective_rows


def test_a_coin_trading_every_day_counts_its_month_in_thirty_days_an_equity_in_twenty_one_sessions():
    rng = np.random.default_rng(9)
    coin_days = pd.date_range("2021-01-01", periods=600)  # every calendar day, weekends included
    sessions = pd.bdate_range("2021-01-01", periods=600)
    outcomes = rng.normal(size=600)  # one symbol: no design effect
    assert effective_rows(coin_days, outcomes, "1m") == pytest.approx(600 / 30)
    assert effective_rows(sessions, outcomes, "1m") == pytest.approx(600 / 21)
    assert effective_rows(coin_days, outcomes, "1y") == pytest.approx(600 / 365)
