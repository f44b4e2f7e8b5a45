"""Why this trade in a real browser (Debian's Chromium driven by Playwright): a Projector position's and a Rebalance
line's Why show the members, the skill and the weight's limit the API serves from the surface warehouse."""

from __future__ import annotations

import httpx
from playwright.sync_api import expect

from quant_assets_tests.e2e import test_web

# The page tests' server on the surface warehouse, their browser and page, shared rather than written twice.
server, browser, page = test_web.server, test_web.browser, test_web.page


def assert_why_shows(why, served: dict) -> None:
    why.locator("summary").click()
    body = why.get_by_test_id("why-body")
    expect(body).to_be_visible()
    members = why.get_by_test_id("why-member").evaluate_all("rows => rows.map(r => [r.dataset.model, +r.dataset.mean])")
    assert members == [[m["model"], m["mean"]] for m in served["members"]] and len(members) == 3
    assert float(body.get_attribute("data-skill")) == served["skill"]
    expect(why.get_by_test_id("why-skill")).to_contain_text(f"Skill at 1m: +{served['skill'] * 100:.1f}%")
    expect(body).to_have_attribute("data-limit", served["weight_limit"])
    expect(why.get_by_test_id("why-limit")).to_contain_text(f"limited by {served['weight_limit']}: "
                                                             f"{served['weight_limit_reason']}")


def test_a_projector_position_shows_why(server, page):
    served = httpx.get(server.url + "/api/why", params={"symbol": "AAPL"}).json()["lines"][0]
    page.goto(server.url + "/")
    why = page.locator("[data-testid=why][data-symbol=AAPL]")
    expect(why).to_be_visible()
    assert_why_shows(why, served)
    assert served["weight_limit"] == "cap"


def test_a_rebalance_line_shows_why(server, page):
    for play in httpx.get(server.url + "/api/plays").json()["plays"]:
        httpx.delete(f"{server.url}/api/plays/{play['play_id']}").raise_for_status()
    httpx.post(server.url + "/api/plays", json={"symbol": "JNJ", "shares": 10, "entry_price": 100,
                                                "entry_date": "2022-10-03"}).raise_for_status()
    served = httpx.get(server.url + "/api/why", params={"symbol": "JNJ"}).json()["lines"][0]
    page.goto(server.url + "/plays/")
    page.get_by_test_id("rebalance-cash").fill("1000")
    page.get_by_test_id("rebalance-run").click()
    why = page.locator("[data-testid=rebalance-row][data-symbol=JNJ] [data-testid=why]")
    expect(why).to_be_visible()
    assert_why_shows(why, served)
    assert served["weight_limit"] == "not eligible"
