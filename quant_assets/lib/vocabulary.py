"""The words the whole system shares, named once: horizons, asset classes, the index, the sample's universe and
the providers' endpoints. Every stage, the API, the CLI and the dbt project's vars read them from here."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date


@dataclass(frozen=True)
class Horizon:
    """A forecast horizon: its label and its length in steps of the symbol's own calendar."""

    label: str
    equity_sessions: int
    crypto_days: int


HORIZONS: tuple[Horizon, ...] = (
    Horizon("1w", 5, 7),
    Horizon("1m", 21, 30),
    Horizon("3m", 63, 91),
    Horizon("1y", 252, 365),
)
HORIZON_BY_LABEL = {h.label: h for h in HORIZONS}
HORIZON_LABELS: tuple[str, ...] = tuple(h.label for h in HORIZONS)
# The horizon the weights are sized at unless the run's sizing config sets another.
DEFAULT_SIZING_HORIZON = "1m"

EQUITY, CRYPTO = "equity", "crypto"
ASSET_CLASSES: tuple[str, ...] = (EQUITY, CRYPTO)

# Where a shown confidence (the probability of a gain) comes from, and what a person reads beside it.
CALIBRATED, BASE_RATE = "calibrated", "base_rate"
CONFIDENCE_LABELS: dict[str, str] = {CALIBRATED: "calibrated out of fold", BASE_RATE: "base rate — no measured skill"}

# The index whose returns are the market factor (beta_63) and whose buy-and-hold is the backtest's benchmark.
INDEX_SYMBOL = "SP500"

# The offline sample: skfolio's 20 stocks and index, and two simulated coins.
SAMPLE_EQUITIES = ("AAPL", "AMD", "BAC", "BBY", "CVX", "GE", "HD", "JNJ", "JPM", "KO",
                   "LLY", "MRK", "MSFT", "PEP", "PFE", "PG", "RRC", "UNH", "WMT", "XOM")
SAMPLE_CRYPTO = ("BTC", "ETH")
DEFAULT_UNIVERSE = (*SAMPLE_EQUITIES, INDEX_SYMBOL, *SAMPLE_CRYPTO)
# QUANT_SAMPLE_SYMBOLS=N widens the sample with N − 23 seeded synthetic equities, named SYN0001, SYN0002, …
SYNTHETIC_PREFIX = "SYN"


def synthetic_symbols(count: int) -> tuple[str, ...]:
    """The names of the sample's first ``count`` synthetic equities."""
    return tuple(f"{SYNTHETIC_PREFIX}{i:04d}" for i in range(1, count + 1))


# skfolio's bundled closes end on 2022-12-28; the simulated crypto follows the same calendar.
SAMPLE_LAST_DATE = date(2022, 12, 28)

POLYGON_URL = "https://api.polygon.io"
COINBASE_URL = "https://api.exchange.coinbase.com"
COINMETRICS_URL = "https://community-api.coinmetrics.io/v4"
