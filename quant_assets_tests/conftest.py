"""Shared fixtures: every test gets its own QUANT_HOME and a tiny universe."""

import os

os.environ.setdefault("DBT_SEND_ANONYMOUS_USAGE_STATS", "false")

import dagster as dg
import pytest

TINY_UNIVERSE = "AAPL,MSFT,JNJ,SP500,BTC"


@pytest.fixture
def quant_home(tmp_path, monkeypatch):
    """A private QUANT_HOME with the tiny sample universe; provider keys removed from the environment."""
    home = tmp_path / "quant"
    monkeypatch.setenv("QUANT_HOME", str(home))
    monkeypatch.setenv("QUANT_UNIVERSE", TINY_UNIVERSE)
    monkeypatch.setenv("QUANT_HISTORY_START", "2016-01-01")
    for name in ("QUANT_PRICES_FILE", "QUANT_ONCHAIN_FILE", "QUANT_PROVIDER", "POLYGON_API_KEY", "MLFLOW_TRACKING_URI"):
        monkeypatch.delenv(name, raising=False)
    return home


def materialize(selection, *, partition_key=None, raise_on_error=True, definitions=None):
    """Materialize ``selection`` (an asset selection string or list of keys) through the Definitions."""
    from quant_assets.definitions import build_definitions

    defs = definitions or build_definitions()
    return dg.materialize(
        [*defs.assets, *(defs.asset_checks or [])],
        selection=selection,
        resources=defs.resources,
        partition_key=partition_key,
        raise_on_error=raise_on_error,
    )


def failure_messages(result) -> str:
    """Every step failure's message and the messages of its causes, joined (what the UI shows a user)."""
    texts = []
    for event in result.all_events:
        if event.is_step_failure:
            error = event.event_specific_data.error
            while error is not None:
                texts.append(error.message.strip())
                error = error.cause
    return "\n".join(texts)
