"""Only its owner's browser, in a real browser (Debian's Chromium driven by Playwright): a page on another host name
that resolves to 127.0.0.1 (DNS rebinding, mapped offline by Chromium's resolver rules) and a page on another port of
127.0.0.1 can neither read the Projector nor add a play; the app's own pages served beyond loopback work once given
the token."""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from playwright.sync_api import expect, sync_playwright

from quant_assets.api.config import ApiConfig
from quant_assets.demo.surface import build_surface_warehouse
from quant_assets_tests.support.browser import CHROMIUM, FLAGS, fill_play
from quant_assets_tests.support.loopback import LoopbackServer, Reply
from quant_assets_tests.support.surface_server import ApiServer

WEB_ROOT = Path(__file__).resolve().parents[2] / "web" / "out"
TOKEN = "owner-only-token"
PLAY = {"symbol": "AAPL", "shares": 1000, "entry_price": 1.0, "entry_date": "2022-12-05", "note": "planted"}
# What an attacker's page tries: read the Projector, add a play as JSON (preflighted) and as a "simple" request.
ATTACK = """<!doctype html><title>not yours</title><script>
const API = %s, PLAY = %s;
async function attempt(url, init) {
  try {
    const r = await fetch(url, init);
    return {status: r.status, type: r.type, body: r.type === "opaque" ? "" : await r.text()};
  } catch (e) { return {error: String(e)}; }
}
window.attack = async () => ({
  projector: await attempt(API + "/api/projector?amount=10000"),
  json: await attempt(API + "/api/plays", {method: "POST", headers: {"Content-Type": "application/json"}, body: PLAY}),
  simple: await attempt(API + "/api/plays", {method: "POST", mode: "no-cors", headers: {"Content-Type": "text/plain"},
                                             body: PLAY}),
});
</script>"""


def attack_page(api: str) -> str:
    return ATTACK % (json.dumps(api), json.dumps(json.dumps(PLAY)))


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory):
    assert Path(CHROMIUM).exists(), f"{CHROMIUM} is missing: `make test` installs Debian's chromium"
    path = tmp_path_factory.mktemp("foreign") / "warehouse.duckdb"
    build_surface_warehouse(path)
    return path


@pytest.fixture(scope="module")
def server(warehouse):
    with ApiServer(ApiConfig(warehouse_path=warehouse)) as running:
        yield running


@pytest.fixture(scope="module")
def browser():
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, headless=True,
                                              args=[*FLAGS, "--host-resolver-rules=MAP evil.test 127.0.0.1"])
        yield chromium
        chromium.close()


@pytest.fixture
def context(browser):
    context = browser.new_context()
    yield context
    context.close()


def stored_plays(server: ApiServer) -> list[dict]:
    return httpx.get(f"{server.url}/api/plays", timeout=10).json()["plays"]


def test_a_page_on_another_port_can_neither_read_the_projector_nor_add_a_play(server, context):
    before = stored_plays(server)
    assert before == []
    with LoopbackServer(lambda request: Reply(200, attack_page(server.url).encode(), {"Content-Type": "text/html"})) \
            as attacker:
        page = context.new_page()
        answered = []
        page.on("response", lambda response: answered.append((response.request.method, response.url, response.status)))
        page.goto(attacker.url + "/")
        results = page.evaluate("attack()")
    # No CORS header: the browser keeps the Projector's answer from the script, and refuses the JSON preflight.
    assert "Failed to fetch" in results["projector"]["error"] and "Failed to fetch" in results["json"]["error"]
    # The request a browser does send cross-origin without asking (an opaque one) is refused by the server itself.
    assert results["simple"]["type"] == "opaque"
    assert ("POST", f"{server.url}/api/plays", 403) in answered
    assert stored_plays(server) == before


def test_a_rebound_host_name_reads_only_a_refusal(warehouse, context):
    # evil.test first points at the attacker's server, which serves the page; then the name is rebound and the port
    # is this server's, so the page's own same-origin requests reach the API, addressed to evil.test.
    attacker = LoopbackServer(lambda request: Reply(200, attack_page("").encode(), {"Content-Type": "text/html"})).start()
    port = urlsplit(attacker.url).port
    page = context.new_page()
    page.goto(f"http://evil.test:{port}/")
    attacker.stop()
    with ApiServer(ApiConfig(warehouse_path=warehouse), port=port) as server:
        before = stored_plays(server)
        results = page.evaluate("attack()")
        for attempt in ("projector", "json"):
            assert results[attempt]["status"] == 400 and "QUANT_API_HOSTS" in results[attempt]["body"]
        assert stored_plays(server) == before
        assert page.goto(f"http://evil.test:{port}/api/projector?amount=100").status == 400  # nor by opening it


def test_beyond_loopback_the_pages_ask_for_the_token_once_then_work(warehouse, context):
    assert (WEB_ROOT / "index.html").exists(), f"the web app is not built at {WEB_ROOT}: run `make web`"
    with ApiServer(ApiConfig(warehouse_path=warehouse, web_root=WEB_ROOT, host="0.0.0.0", token=TOKEN)) as server:
        page = context.new_page()
        page.goto(server.url + "/")
        expect(page.get_by_test_id("error")).to_contain_text("QUANT_API_TOKEN for every request")
        page.get_by_test_id("api-token").fill(TOKEN)
        page.get_by_test_id("use-token").click()
        expect(page.locator("[data-testid=trade-row][data-symbol=TOTAL]")).to_be_visible()
        page.goto(server.url + "/plays/")
        fill_play(page, symbol="MSFT", shares="3", price="250", date="2022-11-01")
        page.get_by_test_id("play-save").click()
        expect(page.locator("[data-testid=play-row][data-symbol=MSFT]")).to_be_visible()
        removed = page.locator("[data-testid=play-row][data-symbol=MSFT] [data-testid=play-remove]")
        removed.click()
        expect(page.locator("[data-testid=play-row]")).to_have_count(0)
