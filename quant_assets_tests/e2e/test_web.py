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
