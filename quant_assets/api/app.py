"""The application: routers, the guard (hosts, origins, the token), readable errors, and the built web app at ``/``."""

from __future__ import annotations

import logging
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles

from quant_assets.api.config import ApiConfig
from quant_assets.api.guard import Guard, scrub_paths
from quant_assets.api.routers import backtest, compare, health, plays, projector, rebalance, why
from quant_assets.api.state import ApiState, WarehouseUnavailable
from quant_assets.api import pages
from quant_assets.lib.market.providers.http import scrub
from quant_assets.lib.storage.warehouse import WarehouseBusyError

log = logging.getLogger(__name__)


def _readable(error: RequestValidationError) -> str:
    """One sentence per bad parameter: where it was and what was wrong."""
    parts = []
    for item in error.errors():
        where = ".".join(str(p) for p in item.get("loc", ()) if p not in ("query", "body")) or "request"
        parts.append(f"{where}: {item.get('msg', 'invalid value')}")
    return "; ".join(parts)


def create_app(config: ApiConfig | None = None) -> FastAPI:
    """The API over ``config`` (from the environment when None), with the web app mounted when it is built."""
    config = config or ApiConfig.from_env()
    guard = Guard(config)
    state = ApiState(config)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        yield
        state.close()

    app = FastAPI(title="quant_assets", version="0.1.0", lifespan=lifespan,
                  description="The Projector, the decision backtest, my plays and ticker comparison, with live prices.")
    app.state.api = state
    secrets = [s for s in (config.polygon_key, config.token) if s]

    def detail(text: str) -> dict[str, str]:
        return {"detail": scrub(scrub_paths(text, config.warehouse_path.parent), secrets)}

    @app.middleware("http")
    async def guarded(request: Request, call_next):
        refused = guard.refusal(request.method, request.url.path, request.headers)
        if refused:
            return JSONResponse(detail(refused[1]), status_code=refused[0])
        return await call_next(request)

    @app.exception_handler(RequestValidationError)
    async def bad_parameters(request: Request, error: RequestValidationError):
        return JSONResponse(detail(_readable(error)), status_code=422)

    @app.exception_handler(pages.BadInput)
    async def bad_input(request: Request, error: pages.BadInput):
        return JSONResponse(detail(str(error)), status_code=422)

    @app.exception_handler(pages.NotFound)
    async def not_found(request: Request, error: pages.NotFound):
        return JSONResponse(detail(str(error)), status_code=404)

    @app.exception_handler(WarehouseUnavailable)
    @app.exception_handler(WarehouseBusyError)
    async def busy(request: Request, error: Exception):
        return JSONResponse(detail(str(error)), status_code=503, headers={"Retry-After": "2"})

    for module in (projector, backtest, plays, rebalance, why, compare, health):
        app.include_router(module.router, prefix="/api")

    if config.web_root is not None:
        app.mount("/", StaticFiles(directory=config.web_root, html=True), name="web")
    else:
        @app.get("/", include_in_schema=False)
        async def not_built() -> HTMLResponse:
            return HTMLResponse("<h1>quant_assets</h1><p>The web app is not built: run <code>make web</code>. "
                                "The API is at <a href='/docs'>/docs</a>.</p>")
    return app
