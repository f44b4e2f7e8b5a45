"""Shared fixtures: every test gets its own QUANT_HOME and a tiny universe."""

import os

os.environ.setdefault("DBT_SEND_ANONYMOUS_USAGE_STATS", "false")

import pytest

from quant_assets_tests.support.runs import use_home


@pytest.fixture(scope="session")
def shared_cache(tmp_path_factory):
    """One QUANT_CACHE_DIR for the session's homes: its entries are keyed by content, so a test reuses the dbt SQL
    another compiled (10 s per home that audits its features) without sharing anything else."""
    return tmp_path_factory.mktemp("shared-cache")


@pytest.fixture
def quant_home(tmp_path, monkeypatch, shared_cache):
    """A private QUANT_HOME with the tiny sample universe; provider keys removed from the environment."""
    return use_home(monkeypatch, tmp_path / "quant", QUANT_CACHE_DIR=str(shared_cache))


