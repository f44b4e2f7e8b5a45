"""One typed settings object, read from the environment (prefix ``QUANT_``; API keys by their usual names)."""

from __future__ import annotations

from datetime import date, datetime, timezone
from functools import cache, cached_property
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, PrivateAttr, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict
from typing_extensions import Annotated

from quant_assets import paths
from quant_assets.lib.vocabulary import DEFAULT_UNIVERSE, SAMPLE_LAST_DATE, synthetic_symbols


class Settings(BaseSettings):
    """Where things live, what to trade, and which provider feeds the warehouse."""

    model_config = SettingsConfigDict(env_prefix="QUANT_", extra="ignore", populate_by_name=True)

    # QUANT_HOME and QUANT_CACHE_DIR are read by ``paths`` alone (the CLI and the API read them without settings).
    _home: Path = PrivateAttr(default_factory=paths.home)
    universe: Annotated[tuple[str, ...], NoDecode] = DEFAULT_UNIVERSE
    provider: Literal["sample", "file", "polygon", "network"] = "sample"
    prices_file: Path | None = None
    onchain_file: Path | None = None
    # The strptime format of the dates in QUANT_PRICES_FILE / QUANT_ONCHAIN_FILE (e.g. %m/%d/%Y); unset: ISO 8601.
    date_format: str | None = None
    # The first day loaded. Unset, what the walk-forward windows need: the first window's training years and one
    # more for the longest rolling feature (252 sessions), from the start of that year.
    history_start: date | None = None
    # The clock: the last calendar day the system treats as reached (replay tests, back-dated runs).
    # Unset, it follows the data: the sample's or a prices file's last date; today (UTC) for the network providers.
    today: date | None = None
    seed: int = 7
    # The sample widened to N symbols in all (the 23 of the default universe and N − 23 seeded synthetic equities):
    # a real universe's size, offline. Replaces QUANT_UNIVERSE, so the two are not set together.
    sample_symbols: int | None = Field(default=None, ge=len(DEFAULT_UNIVERSE))

    # Walk-forward: evaluation windows are Dagster partitions; the cadence is the re-training cadence.
    # Unset, the windows follow the data: they end with the month of its last date (see _default_windows_end)
    # and start three years earlier.
    wf_start: date | None = None
    wf_end: date | None = None
    wf_cadence: Literal["weekly", "monthly", "quarterly"] = "monthly"
    wf_train_years: int = Field(default=10, ge=1)
    wf_mode: Literal["rolling", "expanding"] = "rolling"
    wf_embargo_days: int = Field(default=5, ge=0)
    # Windows `make demo` backfills: the last N before wf_end.
    demo_windows: int = Field(default=6, ge=1)

    polygon_api_key: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("POLYGON_API_KEY", "QUANT_POLYGON_API_KEY")
    )
    mlflow_tracking_uri: str | None = Field(
        default=None, validation_alias=AliasChoices("MLFLOW_TRACKING_URI", "QUANT_MLFLOW_TRACKING_URI")
    )

    # The deployment profile: "single" (one host, one DuckDB file, the default) or "cluster" (deploy/: Dagster on
    # PostgreSQL, walk-forward steps on Celery workers, fit outputs as Parquet on an S3-API object store).
    profile: Literal["single", "cluster"] = "single"
    # Cluster profile only: where workers write (s3://bucket/prefix), the S3 endpoint (unset: AWS), the broker.
    object_store: str | None = None
    s3_endpoint_url: str | None = Field(
        default=None, validation_alias=AliasChoices("QUANT_S3_ENDPOINT_URL", "AWS_ENDPOINT_URL")
    )
    celery_broker: str = "redis://127.0.0.1:6379/0"
    # The walk_forward job's executor in the cluster profile: Celery workers, or a Kubernetes Job per step (deploy/k8s/).
    cluster_executor: Literal["celery", "k8s"] = "celery"

    @field_validator("universe", mode="before")
    @classmethod
    def _split_universe(cls, value: object) -> object:
        if isinstance(value, str):
            symbols = tuple(s.strip().upper() for s in value.split(",") if s.strip())
            if not symbols:
                raise ValueError("QUANT_UNIVERSE is empty; give comma-separated symbols such as AAPL,MSFT,BTC")
            return symbols
        return value

    @model_validator(mode="after")
    def _default_windows(self) -> Settings:
        if self.wf_end is None:
            self.wf_end = _default_windows_end(self)
        if self.wf_start is None:
            self.wf_start = date(self.wf_end.year - 3, self.wf_end.month, 1)
        if self.wf_start >= self.wf_end:
            raise ValueError(f"QUANT_WF_START ({self.wf_start}) must be before QUANT_WF_END ({self.wf_end})")
        if self.history_start is None:
            self.history_start = date(self.wf_start.year - self.wf_train_years - 1, 1, 1)
        return self

    @model_validator(mode="after")
    def _sample_symbols_widen_the_universe(self) -> Settings:
        if self.sample_symbols is None:
            return self
        if "universe" in self.model_fields_set:
            raise ValueError("QUANT_SAMPLE_SYMBOLS and QUANT_UNIVERSE are both set; QUANT_SAMPLE_SYMBOLS=N makes the "
                             "universe (the default 23 symbols and N − 23 synthetic equities): unset one of them")
        if self.provider != "sample" or self.prices_file is not None:
            raise ValueError("QUANT_SAMPLE_SYMBOLS widens the offline sample only; it needs QUANT_PROVIDER=sample "
                             "and no QUANT_PRICES_FILE")
        self.universe = (*DEFAULT_UNIVERSE, *synthetic_symbols(self.synthetic_equity_count))
        return self

    @model_validator(mode="after")
    def _cluster_needs_object_store(self) -> Settings:
        if self.profile == "cluster" and not self.object_store:
            raise ValueError("QUANT_PROFILE=cluster needs QUANT_OBJECT_STORE (e.g. s3://quant/warehouse), "
                             "where the workers write their outputs")
        return self

    @property
    def synthetic_equity_count(self) -> int:
        """How many synthetic equities the sample adds (QUANT_SAMPLE_SYMBOLS − 23; none when unset)."""
        return 0 if self.sample_symbols is None else self.sample_symbols - len(DEFAULT_UNIVERSE)

    @property
    def home(self) -> Path:
        """QUANT_HOME: holds the warehouse, MLflow and the Dagster home."""
        return self._home

    @cached_property
    def warehouse_path(self) -> Path:
        return paths.warehouse_path(self.home)

    @property
    def dagster_home(self) -> Path:
        return paths.dagster_home(self.home)

    @property
    def mlflow_uri(self) -> str:
        return self.mlflow_tracking_uri or paths.mlflow_uri(self.home)

    @property
    def mlflow_lock(self) -> Path:
        return paths.mlflow_lock(self.home)

    @property
    def mlflow_artifacts(self) -> Path:
        return paths.mlflow_artifacts(self.home)

    @property
    def tracking_store(self):
        """The MLflow store the walk-forward folds are tracked in, as ``lib`` takes it."""
        from quant_assets.lib.walk_forward.tracking import TrackingStore

        return TrackingStore(self.mlflow_uri, self.mlflow_lock, self.mlflow_artifacts)

    @property
    def window_rules(self):
        """The walk-forward windows' embargo, training span and mode, as ``lib`` takes them."""
        from quant_assets.lib.walk_forward.plan import WindowRules

        return WindowRules(self.wf_embargo_days, self.wf_train_years, self.wf_mode)

    @property
    def dbt_target_path(self) -> Path:
        """Where the features' dbt runs write their artifacts: one folder per warehouse, rewritten by each run (dbt
        runs on a warehouse take turns under its lock), not a new one per run in the project."""
        return paths.dbt_target(self.home)

    @property
    def ensemble_cache(self) -> Path:
        """What a window's ensemble learned from the earlier windows, read back by its daily runs."""
        return paths.cache_dir(self.home) / "ensemble"

    @property
    def compiled_features_cache(self) -> Path:
        """The dbt project's compiled SQL for the lookahead audit, one file per version of the project."""
        return paths.cache_dir(self.home) / "compiled_features"

    @property
    def models_home(self):
        """Where the fitted models live: QUANT_HOME on one machine; in the cluster profile the object store."""
        return paths.models_home(self.home, self.object_store if self.profile == "cluster" else None,
                                 self.s3_endpoint_url)

    @property
    def uses_files(self) -> bool:
        return self.provider == "file" or self.prices_file is not None

    @property
    def follows_wall_clock(self) -> bool:
        """True when new days keep arriving (network providers, no fixed QUANT_TODAY)."""
        return self.today is None and not self.uses_files and self.provider != "sample"

    @property
    def clock_today(self) -> date:
        """The last calendar day the data can reach: QUANT_TODAY, else the data's last date, else UTC today."""
        if self.today is not None:
            return self.today
        return _data_last_date(self) or datetime.now(timezone.utc).date()


def _first_of_next_month(day: date) -> date:
    return date(day.year + day.month // 12, day.month % 12 + 1, 1)


@cache
def _last_file_date(path: Path, modified_ns: int, date_format: str | None = None) -> date | None:
    from quant_assets.lib.market.providers.files import read_price_file
    from quant_assets.lib.market.providers.schema import InputError

    try:
        dates = read_price_file(path, date_format)["date"].drop_nulls()
    except InputError:
        return None  # the prices asset reports what is wrong with the file when it is materialized
    past = dates.filter(dates <= date.today())
    return past.max() if len(past) else None


def _data_last_date(settings: Settings) -> date | None:
    """The sample's last date, a prices file's last date, or None when the data follows the wall clock."""
    if settings.prices_file is not None and settings.prices_file.exists():
        stat = settings.prices_file.stat()
        return _last_file_date(settings.prices_file.resolve(), stat.st_mtime_ns, settings.date_format)
    if settings.provider == "sample" and settings.prices_file is None:
        return SAMPLE_LAST_DATE
    return None


def _default_windows_end(settings: Settings) -> date:
    """The month after the clock's day, so that the latest window holds it: the sample ends in December
    2022; a prices file is read for its last date; the network providers run up to today."""
    return _first_of_next_month(settings.clock_today)


class RebalanceSettings(BaseSettings):
    """The person's trading terms for ``quant rebalance`` and /api/rebalance (``QUANT_REBALANCE_*``); a broker's
    usual costs by default. The CLI's options and the API's query parameters override them one by one."""

    model_config = SettingsConfigDict(env_prefix="QUANT_REBALANCE_", extra="ignore")

    cost_bp: float = Field(default=5.0, description="proportional cost per trade, basis points of its dollars")
    min_fee: float = Field(default=1.0, description="the smallest fee one order pays, dollars")
    min_trade: float = Field(default=25.0, description="the smallest order, dollars")
    tolerance: float = Field(default=0.02, description="no-trade band: a weight within ± this of its target stays")
    turnover_cap: float = Field(default=1.0, description="the largest sum of |weight changes| (2 = sell all, buy anew)")
    fractional_shares: bool = Field(default=False, description="equities in fractions of a share (crypto always is)")

    def terms(self, **overrides: object):
        """The lib's ``TradingTerms``, with ``overrides`` (names of these settings) in place of the values read;
        ``RebalanceError`` naming an unknown setting."""
        from quant_assets.lib.projections.rebalance_terms import RebalanceError, TradingTerms

        unknown = sorted(set(overrides) - set(type(self).model_fields))
        if unknown:
            raise RebalanceError(f"unknown rebalance setting {', '.join(unknown)}; the settings are "
                                 f"{', '.join(type(self).model_fields)}")
        return TradingTerms(**(self.model_dump() | {k: v for k, v in overrides.items() if v is not None}))


def get_settings() -> Settings:
    """Settings read fresh from the environment (tests change it between calls)."""
    return Settings()
