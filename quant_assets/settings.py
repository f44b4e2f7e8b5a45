"""One typed settings object, read from the environment (prefix ``QUANT_``; API keys by their usual names)."""

from __future__ import annotations

from datetime import date
from functools import cached_property
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict
from typing_extensions import Annotated

SAMPLE_EQUITIES = ("AAPL", "AMD", "BAC", "BBY", "CVX", "GE", "HD", "JNJ", "JPM", "KO",
                   "LLY", "MRK", "MSFT", "PEP", "PFE", "PG", "RRC", "UNH", "WMT", "XOM")
INDEX_SYMBOL = "SP500"
SAMPLE_CRYPTO = ("BTC", "ETH")
DEFAULT_UNIVERSE = (*SAMPLE_EQUITIES, INDEX_SYMBOL, *SAMPLE_CRYPTO)


class Settings(BaseSettings):
    """Where things live, what to trade, and which provider feeds the warehouse."""

    model_config = SettingsConfigDict(env_prefix="QUANT_", extra="ignore", populate_by_name=True)

    home: Path = Field(default=Path("~/.quant"), description="Holds the warehouse, MLflow and Dagster home.")
    universe: Annotated[tuple[str, ...], NoDecode] = DEFAULT_UNIVERSE
    provider: Literal["sample", "file", "polygon", "network"] = "sample"
    prices_file: Path | None = None
    onchain_file: Path | None = None
    history_start: date = date(2005, 1, 1)
    seed: int = 7

    # Walk-forward: evaluation windows are Dagster partitions; the cadence is the re-training cadence.
    wf_start: date = date(2020, 1, 1)
    wf_end: date = date(2023, 1, 1)
    wf_cadence: Literal["weekly", "monthly", "quarterly"] = "monthly"
    wf_train_years: int = Field(default=10, ge=1)
    wf_mode: Literal["rolling", "expanding"] = "rolling"
    wf_embargo_days: int = Field(default=5, ge=0)
    # Windows `make demo` backfills: the last N before wf_end.
    demo_windows: int = Field(default=3, ge=1)

    polygon_api_key: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("POLYGON_API_KEY", "QUANT_POLYGON_API_KEY")
    )
    mlflow_tracking_uri: str | None = Field(
        default=None, validation_alias=AliasChoices("MLFLOW_TRACKING_URI", "QUANT_MLFLOW_TRACKING_URI")
    )

    @field_validator("universe", mode="before")
    @classmethod
    def _split_universe(cls, value: object) -> object:
        if isinstance(value, str):
            symbols = tuple(s.strip().upper() for s in value.split(",") if s.strip())
            if not symbols:
                raise ValueError("QUANT_UNIVERSE is empty; give comma-separated symbols such as AAPL,MSFT,BTC")
            return symbols
        return value

    @field_validator("home", mode="after")
    @classmethod
    def _expand_home(cls, value: Path) -> Path:
        return value.expanduser().resolve()

    @cached_property
    def warehouse_path(self) -> Path:
        return self.home / "warehouse.duckdb"

    @property
    def dagster_home(self) -> Path:
        return self.home / "dagster"

    @property
    def mlflow_uri(self) -> str:
        return self.mlflow_tracking_uri or f"sqlite:///{self.home / 'mlflow.db'}"

    @property
    def mlflow_artifacts(self) -> Path:
        return self.home / "mlflow-artifacts"

    @property
    def uses_files(self) -> bool:
        return self.provider == "file" or self.prices_file is not None


def get_settings() -> Settings:
    """Settings read fresh from the environment (tests change it between calls)."""
    return Settings()
