"""Settings from the environment: the walk-forward windows follow the data unless the user sets them."""

from datetime import date

import pytest
from pydantic import ValidationError

from quant_assets.defs.walk_forward.partitions import window_partitions
from quant_assets.settings import get_settings


def test_sample_windows_end_with_the_sample(quant_home):
    settings = get_settings()
    assert (settings.wf_start, settings.wf_end) == (date(2020, 1, 1), date(2023, 1, 1))
    assert window_partitions(settings).get_partition_keys()[-1] == "2022-12-01"


def test_windows_follow_the_last_date_of_a_prices_file(quant_home, tmp_path, monkeypatch):
    prices = tmp_path / "mine.csv"
    prices.write_text("symbol,date,close\nABC,2021-06-14,10\nABC,2021-06-15,10.5\nXYZ,2021-06-11,3\n")
    monkeypatch.setenv("QUANT_PRICES_FILE", str(prices))
    settings = get_settings()
    assert (settings.wf_start, settings.wf_end) == (date(2018, 7, 1), date(2021, 7, 1))
    assert window_partitions(settings).get_partition_keys()[-3:] == ["2021-04-01", "2021-05-01", "2021-06-01"]


def test_an_unreadable_prices_file_leaves_the_error_to_the_prices_asset(quant_home, tmp_path, monkeypatch):
    prices = tmp_path / "broken.csv"
    prices.write_text("ticker,when\nABC,yesterday\n")
    monkeypatch.setenv("QUANT_PRICES_FILE", str(prices))
    assert get_settings().wf_end > date(2023, 1, 1)


def test_network_windows_include_the_window_in_progress(quant_home, monkeypatch):
    monkeypatch.setenv("QUANT_PROVIDER", "network")
    keys = window_partitions(get_settings()).get_partition_keys()
    assert keys[-1] == date.today().replace(day=1).isoformat()


def test_explicit_windows_must_be_in_order(quant_home, monkeypatch):
    monkeypatch.setenv("QUANT_WF_START", "2022-01-01")
    monkeypatch.setenv("QUANT_WF_END", "2021-01-01")
    with pytest.raises(ValidationError, match="must be before QUANT_WF_END"):
        get_settings()


def test_an_explicit_end_alone_starts_the_windows_three_years_earlier(quant_home, monkeypatch):
    monkeypatch.setenv("QUANT_WF_END", "2024-02-29")
    settings = get_settings()
    assert (settings.wf_start, settings.wf_end) == (date(2021, 2, 1), date(2024, 2, 29))


def test_history_starts_where_the_first_window_needs_it(quant_home, monkeypatch):
    from datetime import timedelta

    from quant_assets.lib.walk_forward.plan import plan_window

    monkeypatch.delenv("QUANT_HISTORY_START", raising=False)
    settings = get_settings()
    first = plan_window(settings.wf_start, date(settings.wf_start.year, settings.wf_start.month, 28),
                        train_years=settings.wf_train_years)[0]
    # The first training day has a full year of history behind it for the 252-session rolling features.
    assert settings.history_start <= first.train_start - timedelta(days=365)
    assert settings.history_start == date(2009, 1, 1)
    monkeypatch.setenv("QUANT_HISTORY_START", "2015-03-02")
    assert get_settings().history_start == date(2015, 3, 2)
