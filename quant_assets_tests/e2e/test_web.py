"""The four pages in a real browser (Debian's Chromium driven by Playwright), on a small real warehouse."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from playwright.sync_api import expect, sync_playwright

from quant_assets.api.config import ApiConfig
from quant_assets_tests.support.browser import CHROMIUM, FLAGS, fill_play
from quant_assets_tests.support.surface_server import ApiServer
from quant_assets.demo.surface import build_surface_warehouse

WEB_ROOT = Path(__file__).resolve().parents[2] / "web" / "out"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    assert (WEB_ROOT / "index.html").exists(), f"the web app is not built at {WEB_ROOT}: run `make web`"
    assert Path(CHROMIUM).exists(), f"{CHROMIUM} is missing: `make test` installs Debian's chromium"
    home = tmp_path_factory.mktemp("web")
    build_surface_warehouse(home / "warehouse.duckdb")
    with ApiServer(ApiConfig(warehouse_path=home / "warehouse.duckdb", web_root=WEB_ROOT)) as running:
        yield running


@pytest.fixture(scope="module")
def browser():
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser, tmp_path):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    yield page
    page.screenshot(path=str(tmp_path / "page.png"), full_page=True)
    assert (tmp_path / "page.png").stat().st_size > 10_000
    context.close()


def test_projector_ranks_trades_that_add_up_with_ordered_bands(server, page):
    page.goto(server.url + "/")
    page.get_by_test_id("amount").fill("10000")
    page.get_by_test_id("project").click()
    expect(page.locator("[data-testid=trade-row][data-symbol=TOTAL]")).to_be_visible()
    rows = page.locator("[data-testid=trade-row]")
    symbols = rows.evaluate_all("rows => rows.map(r => r.dataset.symbol)")
    assert symbols[-2:] == ["CASH", "TOTAL"] and len(symbols) >= 3
    dollars = [float(v) for v in page.locator("[data-testid=dollars]").evaluate_all("cells => cells.map(c => c.dataset.value)")]
    assert dollars[-1] == 10000 and round(sum(dollars[:-1]), 2) == 10000
    for h in ("1m", "1y"):
        bands = page.locator(f"[data-testid=band-{h}]").evaluate_all(
            "cells => cells.map(c => [+c.dataset.p10, +c.dataset.p50, +c.dataset.p90])")
        assert all(p10 <= p50 <= p90 for p10, p50, p90 in bands)
    # The confidence is the probability of a gain, and says where it comes from.
    expect(page.locator("thead")).to_contain_text("Chance of a gain")
    expect(page.locator("[data-testid=confidence][data-source=base_rate]").first).to_contain_text(
        "base rate — no measured skill")
    expect(page.locator("[data-testid=confidence][data-source=calibrated]").first).to_contain_text("calibrated out of fold")
    expect(page.get_by_test_id("live-badge").first).to_contain_text("Last close")
    expect(page.get_by_test_id("synthetic-notice")).to_contain_text("BTC")
    expect(page.locator("[data-testid=fan-total] svg.recharts-surface")).to_be_visible()


@pytest.mark.parametrize(("amount", "as_of", "says"), [
    ("-5", "", "greater than zero"), ("5e13", "", "above the $1,000,000,000,000 limit"),
    ("ten", "", "is not a number"), ("10000", "2999-01-01", "is in the future"),
])
def test_projector_refuses_bad_input_inline(server, page, amount, as_of, says):
    page.goto(server.url + "/")
    expect(page.locator("[data-testid=trade-row]").first).to_be_visible()
    page.get_by_test_id("amount").fill(amount)
    page.get_by_test_id("as-of").fill(as_of)
    page.get_by_test_id("project").click()
    expect(page.get_by_test_id("error")).to_contain_text(says)
    expect(page.locator("[data-testid=trade-row]")).to_have_count(0)


def test_add_a_play_and_see_its_pnl_then_refuse_bad_ones(server, page):
    page.goto(server.url + "/plays/")
    fill_play(page, symbol="AAPL", shares="0", price="120", date="2022-10-03")
    page.get_by_test_id("play-save").click()
    expect(page.get_by_test_id("error")).to_contain_text("Shares must be")
    page.get_by_test_id("play-shares").fill("10")
    page.get_by_test_id("play-symbol").fill("NOPE")
    page.get_by_test_id("play-save").click()
    expect(page.get_by_test_id("error")).to_contain_text("Unknown symbol")
    expect(page.locator("[data-testid=play-row]")).to_have_count(0)
    page.get_by_test_id("play-symbol").fill("AAPL")
    page.get_by_test_id("play-save").click()
    row = page.locator("[data-testid=play-row][data-symbol=AAPL]")
    expect(row).to_be_visible()
    expect(row.get_by_test_id("play-pnl")).to_contain_text("$")
    expect(row).to_contain_text("P10-P90")
    expect(page.get_by_test_id("total-pnl")).to_be_visible()


def test_compare_two_symbols(server, page):
    page.goto(server.url + "/compare/")
    page.get_by_test_id("chip-AAPL").click()
    page.get_by_test_id("chip-BTC").click()
    expect(page.locator("[data-testid=compare-row]")).to_have_count(2)
    expect(page.locator("[data-testid=history-chart] .recharts-line")).to_have_count(2)
    expect(page.locator("[data-testid=bands-chart] .recharts-bar-rectangle").first).to_be_visible()
    expect(page.get_by_test_id("synthetic-notice")).to_contain_text("BTC")


def test_backtest_chart_renders(server, page):
    page.goto(server.url + "/backtest/")
    strategies = len(httpx.get(server.url + "/api/backtest").json()["series"])
    assert strategies >= 3
    expect(page.locator("[data-testid=growth-chart] .recharts-line")).to_have_count(strategies)
    expect(page.locator("[data-testid=drawdown-chart] .recharts-line")).to_have_count(strategies)
    expect(page.locator("[data-testid=summary] tbody tr")).to_have_count(strategies)
    expect(page.get_by_test_id("summary")).to_contain_text("Fractional Kelly (½)")
    # The statistics table: one row per strategy, equal weight's chance of beating itself is one half.
    statistics = page.get_by_test_id("statistics")
    expect(statistics.locator("tbody tr")).to_have_count(strategies)
    expect(statistics.locator("tbody tr", has_text="Equal weight")).to_contain_text("50.0%")
    expect(statistics).to_contain_text("Inverse volatility")
    trials = httpx.get(server.url + "/api/backtest").json()["summary"][0]["trials"]
    expect(page.get_by_test_id("statistics-note")).to_contain_text(f"the {trials} strategies and settings tried")


def _rebalance_rows(page) -> dict[str, dict]:
    rows = page.locator("[data-testid=rebalance-row]").evaluate_all("rows => rows.map(r => ({...r.dataset}))")
    return {row["symbol"]: row for row in rows}


def test_rebalance_three_plays_with_1000_added(server, page, monkeypatch):
    # The server runs in this process: the trading terms it reads at each request are these.
    terms = {"COST_BP": "7", "MIN_FEE": "1.5", "MIN_TRADE": "20", "TOLERANCE": "0.05", "TURNOVER_CAP": "1.5"}
    for name, value in terms.items():
        monkeypatch.setenv(f"QUANT_REBALANCE_{name}", value)
    for play in httpx.get(server.url + "/api/plays").json()["plays"]:
        httpx.delete(f"{server.url}/api/plays/{play['play_id']}").raise_for_status()
    page.goto(server.url + "/plays/")
    for symbol, shares in (("AAPL", "40"), ("JNJ", "20")):
        fill_play(page, symbol=symbol, shares=shares, price="100", date="2022-10-03")
        page.get_by_test_id("play-save").click()
        expect(page.locator(f"[data-testid=play-row][data-symbol={symbol}]")).to_be_visible()
    # The third play sits at the day's advised weight of the symbol the advice holds most of, inside the band.
    probe = httpx.get(server.url + "/api/rebalance", params={"cash": 1000}).json()
    top = max((line for line in probe["lines"] if line["shares_held"] == 0 and line["asset_class"] == "equity"),
              key=lambda line: line["advised_weight"])
    weight, price = top["advised_weight"], top["last_price"]
    shares = round(weight * probe["summary"]["total"] / (price * (1 - weight)))
    fill_play(page, symbol=top["symbol"], shares=str(shares), price="100", date="2022-10-03")
    page.get_by_test_id("play-save").click()
    expect(page.locator("[data-testid=play-row]")).to_have_count(3)
    # Nothing is held of the advice's other symbols, so the book drifts: the alerts name the advice's day and the band.
    drift = page.locator("[data-testid=alert][data-kind=drift]")
    expect(drift.first).to_be_visible()
    for text in drift.all_inner_texts():
        assert f"advised on {probe['summary']['as_of']}" in text and "±5.0% tolerance" in text

    page.get_by_test_id("rebalance-cash").fill("1,000")
    page.get_by_test_id("rebalance-run").click()
    expect(page.locator("[data-testid=rebalance-row]").first).to_be_visible()
    shown = page.get_by_test_id("rebalance-terms")
    assert [float(shown.get_attribute(f"data-{name.lower().replace('_', '-')}")) for name in terms] == \
        [float(v) for v in terms.values()]
    expect(shown).to_contain_text("Costs 7 bp per trade, minimum fee $1.50, minimum trade $20.00")
    total, binds = float(shown.get_attribute("data-total")), shown.get_attribute("data-turnover-binds") == "true"
    rows = _rebalance_rows(page)
    held = rows[top["symbol"]]
    assert abs(float(held["current"]) - float(held["target"])) <= 0.05
    assert held["side"] == "HOLD" and float(held["sharesAfter"]) == shares
    traded = [row for row in rows.values() if row["side"] != "HOLD"]
    assert traded
    for row in rows.values():
        if row["covered"] == "true" and abs(float(row["current"]) - float(row["target"])) <= 0.05:
            assert row["side"] == "HOLD", row
    for row in traded:
        assert float(row["cost"]) == pytest.approx(max(1.5, 7e-4 * float(row["dollars"])), abs=1e-9)
        if not binds:
            wanted = float(row["target"]) * total / float(row["price"])
            assert abs(float(row["sharesAfter"]) - wanted) <= 1.0, row
    paid = sum(float(row["cost"]) for row in traded)
    expect(page.get_by_test_id("rebalance-cost")).to_have_attribute("data-value", str(round(paid, 2)).rstrip("0").rstrip("."))
    flows = sum(float(r["dollars"]) * (1 if r["side"] == "BUY" else -1) for r in traded) + paid
    assert float(page.get_by_test_id("rebalance-cash-left").get_attribute("data-value")) == pytest.approx(1000 - flows, abs=0.01)
    expect(page.get_by_test_id("rebalance-gain")).to_contain_text("$")


def test_rebalance_refuses_a_withdrawal_beyond_the_book(server, page):
    page.goto(server.url + "/plays/")
    page.get_by_test_id("rebalance-cash").fill("-10000000")
    page.get_by_test_id("rebalance-run").click()
    expect(page.get_by_test_id("error")).to_contain_text("is beyond the")
    expect(page.locator("[data-testid=rebalance-row]")).to_have_count(0)
