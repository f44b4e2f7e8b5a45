"""Window plans, purging by label end date and the embargo: properties over random calendars, and examples."""

from dataclasses import asdict, replace
from datetime import date, timedelta

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from quant_assets.lib.vocabulary import HORIZONS
from quant_assets.lib.walk_forward.plan import (
    WindowPlan,
    audit_training_rows,
    eval_mask,
    overlaps,
    plan_window,
    training_mask,
)

PROPERTY = settings(max_examples=40, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow])


def label_frame(calendars: dict[str, tuple[str, pd.DatetimeIndex]], seed: int, unknown_share: float = 0.05) -> pd.DataFrame:
    """Labels like labels.forward_returns: end_<h> is the date h rows ahead in the symbol's own calendar."""
    rng = np.random.default_rng(seed)
    parts = []
    for symbol, (kind, dates) in calendars.items():
        part = pd.DataFrame({"symbol": symbol, "date": dates})
        for h in HORIZONS:
            n = h.crypto_days if kind == "crypto" else h.equity_sessions
            end = pd.Series(dates).shift(-n)
            fwd = pd.Series(rng.normal(0, 0.05, len(dates))).where(end.notna())
            # Some realized dates still lack a return (a missing close), so fwd is null with a known end.
            fwd[rng.random(len(dates)) < unknown_share] = np.nan
            part[f"end_{h.label}"] = end.to_numpy()
            part[f"fwd_{h.label}"] = fwd.to_numpy()
        parts.append(part)
    return pd.concat(parts, ignore_index=True)


@st.composite
def scenarios(draw):
    """A window, a horizon, an embargo and a random universe of equity-like and crypto-like calendars."""
    seed = draw(st.integers(0, 2**31 - 1))
    rng = np.random.default_rng(seed)
    window_start = date(2017, 1, 1) + timedelta(days=draw(st.integers(0, 2000)))
    cadence = draw(st.sampled_from([1, 7, 30, 31, 91])) if draw(st.booleans()) else draw(st.integers(1, 120))
    calendars = {}
    for i in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(["equity", "crypto"]))
        first = pd.Timestamp(window_start) - pd.Timedelta(days=draw(st.integers(30, 1500)))
        last = pd.Timestamp(window_start) + pd.Timedelta(days=draw(st.integers(-20, 500)))
        if kind == "crypto":
            dates = pd.date_range(first, last, freq="D")
        else:
            dates = pd.bdate_range(first, last)
            dates = dates[rng.random(len(dates)) > 0.04]  # holidays
        calendars[f"{kind[:2].upper()}{i}"] = (kind, dates)
    return {
        "labels": label_frame(calendars, seed),
        "window_start": window_start,
        "window_end": window_start + timedelta(days=cadence),
        "horizon": draw(st.sampled_from([h.label for h in HORIZONS])),
        "embargo": draw(st.integers(0, 40)),
        "train_years": draw(st.integers(1, 4)),
    }


def plan_for(s, *, embargo=None, mode="rolling") -> WindowPlan:
    plans = plan_window(s["window_start"], s["window_end"], embargo_days=s["embargo"] if embargo is None else embargo,
                        train_years=s["train_years"], mode=mode)
    return next(p for p in plans if p.horizon == s["horizon"])


def naive_training_rows(labels: pd.DataFrame, plan: WindowPlan) -> np.ndarray:
    """The rule written out row by row: known label, interval ends before the embargo, date in the lookback."""
    bound = pd.Timestamp(plan.window_start - timedelta(days=plan.embargo_days))
    out = []
    for row in labels.itertuples(index=False):
        end, fwd = getattr(row, f"end_{plan.horizon}"), getattr(row, f"fwd_{plan.horizon}")
        ok = not pd.isna(end) and np.isfinite(fwd) and end < bound
        if plan.train_start is not None:
            ok = ok and row.date >= pd.Timestamp(plan.train_start)
        out.append(ok)
    return np.array(out, dtype=bool)


@PROPERTY
@given(scenarios())
def test_no_training_label_reaches_the_embargo_or_the_window(s):
    plan = plan_for(s)
    labels = s["labels"]
    mask = training_mask(labels, plan)
    np.testing.assert_array_equal(mask, naive_training_rows(labels, plan))
    used = labels[mask]
    start, end = used["date"], used[f"end_{plan.horizon}"]
    forbidden_from = pd.Timestamp(plan.window_start - timedelta(days=plan.embargo_days))
    # [date, end] and [window_start - embargo, window_end) are disjoint.
    assert not ((start < pd.Timestamp(plan.window_end)) & (end >= forbidden_from)).any()
    assert used[f"fwd_{plan.horizon}"].notna().all() and end.notna().all()
    rows = used[["symbol", "date"]].assign(end=end)
    assert overlaps(plan, rows).empty
    assert audit_training_rows(rows, plan) == []


@PROPERTY
@given(scenarios(), st.integers(0, 60))
def test_more_embargo_selects_a_subset(s, extra):
    labels = s["labels"]
    less = training_mask(labels, plan_for(s))
    more = training_mask(labels, plan_for(s, embargo=s["embargo"] + extra))
    assert not (more & ~less).any()


@PROPERTY
@given(scenarios())
def test_expanding_contains_rolling(s):
    labels = s["labels"]
    rolling = training_mask(labels, plan_for(s, mode="rolling"))
    expanding = training_mask(labels, plan_for(s, mode="expanding"))
    assert not (rolling & ~expanding).any()
    # Rolling drops exactly the known, purged rows dated before its lookback.
    dropped = expanding & ~rolling
    assert (labels.loc[dropped, "date"] < pd.Timestamp(plan_for(s).train_start)).all()


@PROPERTY
@given(scenarios())
def test_eval_rows_are_exactly_the_window(s):
    labels = s["labels"]
    plan = plan_for(s)
    got = eval_mask(labels, plan)
    expected = [pd.Timestamp(plan.window_start) <= d < pd.Timestamp(plan.window_end) for d in labels["date"]]
    assert got.index.equals(labels.index)
    np.testing.assert_array_equal(got.to_numpy(), np.array(expected, dtype=bool))


@PROPERTY
@given(scenarios())
def test_unpurged_rows_are_reported_exactly(s):
    plan = plan_for(s)
    labels = s["labels"]
    rows = labels[["symbol", "date"]].assign(end=labels[f"end_{plan.horizon}"]).dropna(subset=["end"])
    found = overlaps(plan, rows)
    zone_from = pd.Timestamp(plan.window_start - timedelta(days=plan.embargo_days))
    expected = rows[(rows["date"] < pd.Timestamp(plan.window_end)) & (rows["end"] >= zone_from)]
    assert sorted(found.index) == sorted(expected.index)
    assert len(audit_training_rows(rows, plan)) == len(expected)


def test_plan_window_gives_the_four_horizons():
    plans = plan_window(date(2021, 3, 1), date(2021, 4, 1), embargo_days=5, train_years=10)
    assert [p.horizon for p in plans] == ["1w", "1m", "3m", "1y"]
    for p in plans:
        assert (p.window_start, p.window_end, p.embargo_days, p.mode) == (date(2021, 3, 1), date(2021, 4, 1), 5, "rolling")
        assert p.train_start == date(2011, 3, 1)
        assert p.train_end == date(2021, 2, 24)
    expanding = plan_window("2021-03-01", "2021-04-01", mode="expanding", embargo_days=0)
    assert all(p.train_start is None and p.train_end == date(2021, 3, 1) for p in expanding)


def test_rolling_lookback_from_a_leap_day():
    plan = plan_window(date(2024, 2, 29), date(2024, 3, 31), train_years=1)[0]
    assert plan.train_start == date(2023, 2, 28)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"window_start": date(2021, 2, 1), "window_end": date(2021, 2, 1)}, "window_end 2021-02-01 must be after"),
        ({"embargo_days": -1}, "embargo_days must be a non-negative integer"),
        ({"train_years": 0}, "train_years must be a positive integer"),
        ({"mode": "sliding"}, "mode must be one of"),
        ({"window_start": 20210101}, "window_start must be a date"),
        ({"window_start": "not a date"}, "window_start 'not a date' is not a date"),
    ],
)
def test_plan_window_rejects_bad_input(kwargs, message):
    args = {"window_start": date(2021, 1, 1), "window_end": date(2021, 2, 1), **kwargs}
    with pytest.raises(ValueError, match=message):
        plan_window(args.pop("window_start"), args.pop("window_end"), **args)


def equity_labels() -> pd.DataFrame:
    dates = pd.bdate_range("2018-01-01", "2021-06-30")
    return label_frame({"AAPL": ("equity", dates)}, seed=1, unknown_share=0.0)


def test_a_long_label_observed_before_the_window_is_purged():
    labels = equity_labels()
    window_start = date(2020, 7, 1)
    t0 = labels.index[labels["date"] == pd.Timestamp(window_start)][0]
    row = t0 - 200  # 200 sessions before the window: its 1y label ends 52 sessions inside it
    plans = {p.horizon: p for p in plan_window(window_start, date(2020, 8, 1), embargo_days=5)}
    assert labels.at[row, "end_1y"] > pd.Timestamp(window_start)
    assert not training_mask(labels, plans["1y"])[row]
    assert training_mask(labels, plans["1w"])[row]
    # The last 1w label admitted ends before 2020-06-26 (window start minus five days), the first refused does not.
    used = labels[training_mask(labels, plans["1w"])]
    assert used["end_1w"].max() == pd.Timestamp("2020-06-25")
    assert labels.loc[labels["end_1w"] >= pd.Timestamp("2020-06-26"), "date"].min() > used["date"].max()


def test_training_mask_reads_duckdb_and_python_dates_alike():
    labels = equity_labels()
    plan = plan_window(date(2020, 7, 1), date(2020, 8, 1))[1]
    as_us = labels.assign(date=labels["date"].astype("datetime64[us]"),
                          end_1m=labels["end_1m"].astype("datetime64[us]"))
    as_objects = labels.assign(date=labels["date"].dt.date,
                               end_1m=[None if pd.isna(e) else e.date() for e in labels["end_1m"]])
    expected = training_mask(labels, plan)
    assert expected.sum() > 0
    np.testing.assert_array_equal(training_mask(as_us, plan), expected)
    np.testing.assert_array_equal(training_mask(as_objects, plan), expected)


def test_training_mask_names_a_missing_column_and_a_backward_label():
    labels = equity_labels()
    plan = plan_window(date(2020, 7, 1), date(2020, 8, 1))[2]
    with pytest.raises(ValueError, match=r"labels lacks column\(s\) \['fwd_3m'\]"):
        training_mask(labels.drop(columns="fwd_3m"), plan)
    broken = labels.copy()
    broken.loc[10, "end_3m"] = broken.loc[10, "date"] - pd.Timedelta(days=3)
    with pytest.raises(ValueError, match="end_3m 2018-01-12 precedes the row's own date 2018-01-15 .symbol AAPL row 10"):
        training_mask(broken, plan)


def test_a_tampered_train_end_neither_leaks_nor_passes_the_audit():
    labels = equity_labels()
    honest = plan_window(date(2020, 7, 1), date(2020, 8, 1), embargo_days=5)[0]
    tampered = replace(honest, train_end=date(2020, 8, 1))
    np.testing.assert_array_equal(training_mask(labels, tampered), training_mask(labels, honest))
    problems = audit_training_rows(pd.DataFrame({"date": [], "end": []}), tampered)
    assert problems == [
        "plan for window 2020-07-01 horizon 1w: admits labels ending before 2020-08-01, later than window_start "
        "minus the 5-day embargo (2020-06-26)"
    ]
    # A plan whose stored embargo is shorter than the audit requires is judged by the longer one.
    judged = WindowPlan(**{**asdict(replace(honest, embargo_days=0, train_end=date(2020, 7, 1))), "embargo_days": 5})
    used = labels[training_mask(labels, replace(honest, embargo_days=0, train_end=date(2020, 7, 1)))]
    rows = used[["symbol", "date"]].assign(end=used["end_1w"])
    problems = audit_training_rows(rows, judged)
    assert problems[0].startswith("plan for window 2020-07-01 horizon 1w: admits labels ending before 2020-07-01")
    assert problems[1:] == [
        "AAPL 2020-06-19: label interval [2020-06-19, 2020-06-26] reaches into the embargo [2020-06-26, 2020-08-01) "
        "(window [2020-07-01, 2020-08-01) horizon 1w, embargo 5 days)",
        "AAPL 2020-06-22: label interval [2020-06-22, 2020-06-29] reaches into the embargo [2020-06-26, 2020-08-01) "
        "(window [2020-07-01, 2020-08-01) horizon 1w, embargo 5 days)",
        "AAPL 2020-06-23: label interval [2020-06-23, 2020-06-30] reaches into the embargo [2020-06-26, 2020-08-01) "
        "(window [2020-07-01, 2020-08-01) horizon 1w, embargo 5 days)",
    ]


def test_overlaps_describes_each_offender():
    plan = plan_window(date(2020, 7, 1), date(2020, 8, 1), embargo_days=5)[3]
    intervals = pd.DataFrame({
        "symbol": ["CLEAN", "EMB", "BOTH", "IN", "OPEN", "AFTER"],
        "date": pd.to_datetime(["2019-06-01", "2019-06-27", "2019-06-28", "2020-07-10", "2020-06-01", "2020-08-01"]),
        "end": pd.to_datetime(["2020-06-25", "2020-06-26", "2020-09-30", "2020-07-17", None, "2020-08-08"]),
    })
    found = overlaps(plan, intervals)
    assert found["symbol"].tolist() == ["EMB", "BOTH", "OPEN", "IN"]
    assert found["zone"].tolist() == ["embargo", "embargo+window", "embargo+window", "window"]
    days = found[["overlap_start", "overlap_last"]].apply(lambda c: c.dt.strftime("%Y-%m-%d"))
    assert days["overlap_start"].tolist() == ["2020-06-26", "2020-06-26", "2020-06-26", "2020-07-10"]
    assert days["overlap_last"].tolist() == ["2020-06-26", "2020-07-31", "2020-07-31", "2020-07-17"]
    problems = audit_training_rows(intervals, plan)
    assert len(problems) == 4
    assert problems[2] == ("OPEN 2020-06-01: trains with a label whose end date is unknown, so it may reach into "
                           "[2020-06-26, 2020-08-01) (window [2020-07-01, 2020-08-01) horizon 1y)")


def test_audit_reports_a_backward_interval_and_an_insane_plan():
    rows = pd.DataFrame({"date": [date(2020, 1, 10), None], "end": [date(2020, 1, 3), date(2020, 1, 5)]})
    plan = WindowPlan(window_start=pd.Timestamp("2020-07-01"), window_end=pd.Timestamp("2020-07-01"), embargo_days=-2,
                      train_start=pd.NaT, train_end=pd.Timestamp("2020-07-03"), horizon="2w", mode="sliding")
    assert plan.train_start is None and plan.window_start == date(2020, 7, 1)
    problems = audit_training_rows(rows, plan)
    assert [p.split(": ", 1)[1].split(" ")[0:2] for p in problems] == [
        ["window_end", "2020-07-01"], ["negative", "embargo"], ["unknown", "mode"], ["unknown", "horizon"],
        ["a", "training"], ["label", "interval"],
    ]
    assert problems[-1] == ("row dated 2020-01-10: label interval ends 2020-01-03, before its own date "
                            "(window [2020-07-01, 2020-07-01) horizon 2w)")
