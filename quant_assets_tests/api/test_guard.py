"""Only its owner's browser, over HTTP: the Host allowlist, changes refused cross-origin (token or not), the token
for every request beyond loopback, error details without the machine's paths, and the answer cache's bounds."""

from __future__ import annotations

import httpx
import pytest
from fastapi.testclient import TestClient

from quant_assets.api import create_app
from quant_assets.api.config import ApiConfig
from quant_assets.api.guard import scrub_paths
from quant_assets.demo.surface import build_surface_warehouse
from quant_assets_tests.support.surface_server import ApiServer

LOCAL = "http://127.0.0.1"
TOKEN = "s3cret-token"
PLAY = {"symbol": "AAPL", "shares": 10, "entry_price": 120.0, "entry_date": "2022-12-05"}


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    home = tmp_path_factory.mktemp("guard") / ".quant"
    build_surface_warehouse(home / "warehouse.duckdb")
    return home


def serve(home, **options) -> TestClient:
    return TestClient(create_app(ApiConfig(warehouse_path=home / "warehouse.duckdb", **options)), base_url=LOCAL)


def play_ids(client: TestClient, headers: dict[str, str] | None = None) -> list[int]:
    return [p["play_id"] for p in client.get("/api/plays", headers=headers).json()["plays"]]


@pytest.mark.parametrize("host", ["localhost", "localhost:8000", "127.0.0.1:51234", "[::1]:8000", "LOCALHOST"])
def test_loopback_names_with_any_port_are_answered(home, host):
    with serve(home) as client:
        assert client.get("/api/health", headers={"Host": host}).status_code == 200


@pytest.mark.parametrize("host", ["evil.example", "evil.test:8000", "127.0.0.1.evil.test", "localhost.", ""])
def test_other_host_names_are_answered_400(home, host):
    with serve(home) as client:
        for path in ("/api/health", "/api/projector?amount=100", "/"):
            refused = client.get(path, headers={"Host": host})
            assert refused.status_code == 400 and "QUANT_API_HOSTS" in refused.json()["detail"]


def test_the_configured_host_and_listed_names_are_answered(home):
    with serve(home, host="box.lan", token=TOKEN, extra_hosts=("quant.example",)) as client:
        for host in ("box.lan:8000", "quant.example", "127.0.0.1"):
            assert client.get("/api/health", headers={"Host": host, "X-API-Token": TOKEN}).status_code == 200
        assert client.get("/api/health", headers={"Host": "other.lan", "X-API-Token": TOKEN}).status_code == 400


def test_the_real_server_refuses_a_rebound_host_name(home):
    with ApiServer(ApiConfig(warehouse_path=home / "warehouse.duckdb")) as server:
        assert httpx.get(f"{server.url}/api/health", headers={"Host": "evil.example"}).status_code == 400
        assert httpx.get(f"{server.url}/api/health").status_code == 200


CROSS_SITE = [{"Origin": "http://evil.example"}, {"Origin": "http://127.0.0.1:9999"}, {"Origin": "null"},
              {"Sec-Fetch-Site": "cross-site"}, {"Sec-Fetch-Site": "same-site"},
              {"Origin": LOCAL, "Sec-Fetch-Site": "cross-site"}]


@pytest.mark.parametrize("token", [None, TOKEN])
@pytest.mark.parametrize("headers", CROSS_SITE)
def test_changes_from_another_origin_are_refused_token_or_not(home, headers, token):
    with serve(home, token=token) as client:
        auth = {"X-API-Token": TOKEN} if token else {}
        before = play_ids(client)
        sent = {**headers, **auth}
        for response in (client.post("/api/plays", json=PLAY, headers=sent),
                         client.put("/api/plays/1", json=PLAY, headers=sent),
                         client.patch("/api/plays/1", json={"shares": 2}, headers=sent),
                         client.delete("/api/plays/1", headers=sent)):
            assert response.status_code == 403 and "another site" in response.json()["detail"]
        assert play_ids(client) == before


@pytest.mark.parametrize("headers", [{}, {"Origin": LOCAL}, {"Origin": LOCAL, "Sec-Fetch-Site": "same-origin"},
                                     {"Sec-Fetch-Site": "none"}])
def test_changes_from_the_own_pages_and_from_clients_without_origin_work(home, headers):
    with serve(home) as client:
        made = client.post("/api/plays", json=PLAY, headers=headers)
        assert made.status_code == 201
        assert client.delete(f"/api/plays/{made.json()['play_id']}", headers=headers).status_code == 204


def test_beyond_loopback_every_request_needs_the_token(home):
    with serve(home, host="0.0.0.0", token=TOKEN) as client:
        for path in ("/api/health", "/api/projector?amount=100", "/api/plays", "/api/backtest"):
            refused = client.get(path)
            assert refused.status_code == 401 and "QUANT_API_TOKEN for every request" in refused.json()["detail"]
            assert client.get(path, headers={"X-API-Token": "wrong"}).status_code == 401
            assert client.get(path, headers={"X-API-Token": TOKEN}).status_code == 200
            assert client.get(path, headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200
        assert client.get("/").status_code == 200  # the page itself, which then asks for the token
        assert client.post("/api/plays", json=PLAY).status_code == 401


def test_on_loopback_reads_stay_open_and_without_a_token_there_is_no_serving_beyond_it(home):
    with serve(home, token=TOKEN) as client:
        assert client.get("/api/plays").status_code == 200 and client.post("/api/plays", json=PLAY).status_code == 401
    with pytest.raises(ValueError, match="QUANT_API_TOKEN"):
        create_app(ApiConfig(warehouse_path=home / "warehouse.duckdb", host="0.0.0.0"))


def test_errors_name_no_path_of_the_machine(tmp_path):
    with serve(tmp_path / "nowhere") as client:
        health, missing = client.get("/api/health").json(), client.get("/api/projector", params={"amount": 100})
    assert missing.status_code == 404 and "make demo" in missing.json()["detail"] and "make demo" in health["status"]
    assert str(tmp_path) not in missing.text + str(health)
    home = tmp_path / ".quant"
    said = f"warehouse {home}/warehouse.duckdb stayed locked; see /usr/lib/python3/x.py or https://h.io/v2/a/b, N/A"
    assert scrub_paths(said, home) == ("warehouse $QUANT_HOME/warehouse.duckdb stayed locked; see x.py or "
                                       "https://h.io/v2/a/b, N/A")


def test_the_answer_cache_is_bounded_in_size_and_age(home):
    pairs = ["AAPL,MSFT", "AAPL,JNJ", "AAPL,BTC", "MSFT,JNJ", "MSFT,BTC", "JNJ,BTC", "SP500,BTC"]
    with serve(home, answers_kept=3) as client:
        for symbols in pairs:
            assert client.get("/api/compare", params={"symbols": symbols}).status_code == 200
        assert len(client.app.state.api.answers) == 3
    with serve(home) as client:
        reads = [client.get("/api/backtest").json()["freshness"]["read_at"] for _ in range(2)]
        assert reads[0] == reads[1]  # the warehouse has not changed: the kept answer
    with serve(home, answers_max_age_seconds=0.0) as client:
        reads = [client.get("/api/backtest").json()["freshness"]["read_at"] for _ in range(2)]
        assert reads[0] != reads[1]  # too old to keep: read again
