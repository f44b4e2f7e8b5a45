"""The FastAPI surface: one router per page, reading through ``quant_assets.lib`` (never Dagster, never torch)."""

from quant_assets.api.app import create_app

__all__ = ["create_app"]
