"""The API (with the built web app) served by uvicorn in a thread on a free 127.0.0.1 port, for tests."""

from __future__ import annotations

import threading
import time

import httpx
import uvicorn

from quant_assets.api import create_app
from quant_assets.api.config import ApiConfig


class ApiServer:
    """``with ApiServer(config) as server: server.url``, on ``port`` or, by default, a free one."""

    def __init__(self, config: ApiConfig, port: int = 0) -> None:
        self.app = create_app(config)
        self._server = uvicorn.Server(uvicorn.Config(self.app, host="127.0.0.1", port=port, log_level="warning"))
        self._thread = threading.Thread(target=self._server.run, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.servers[0].sockets[0].getsockname()[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> ApiServer:
        self._thread.start()
        deadline = time.monotonic() + 30
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("the API server did not start within 30 s")
            time.sleep(0.02)
        token = self.app.state.api.config.token
        httpx.get(f"{self.url}/api/health", headers={"X-API-Token": token} if token else None, timeout=10).raise_for_status()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)
