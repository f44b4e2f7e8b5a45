"""The rebalance's light half: the trading terms, the cash a person asks for, and the refusals, importable without
numpy, pandas or cvxpy (the ``quant`` command loads the solver only when it rebalances)."""

from __future__ import annotations

import math
from dataclasses import dataclass

MAX_CASH = 1e12


class RebalanceError(ValueError):
    """A rebalance that cannot be done as asked; the message is one sentence saying why."""


class NoAdvice(LookupError):
    """No warehouse yet, or no sizing scenarios stored for the day asked (or for any day yet)."""


@dataclass(frozen=True)
class TradingTerms:
    """What trading costs and what the person allows (the defaults live in ``quant_assets.settings``).

    ``cost_bp``: proportional cost per trade in basis points of its dollars; ``min_fee``: the smallest fee a trade
    pays; ``min_trade``: the smallest order in dollars; ``tolerance``: the no-trade band, in weight (0.02 = two
    percentage points of the book); ``turnover_cap``: the largest sum of |weight changes| (2 = sell all, buy anew);
    ``fractional_shares``: equities may be bought in fractions (crypto always is).
    """

    cost_bp: float
    min_fee: float
    min_trade: float
    tolerance: float
    turnover_cap: float
    fractional_shares: bool

    def __post_init__(self) -> None:
        checks = {"cost_bp": 0 <= self.cost_bp <= 10_000, "min_fee": self.min_fee >= 0, "min_trade": self.min_trade >= 0,
                  "tolerance": 0 <= self.tolerance < 1, "turnover_cap": 0 <= self.turnover_cap <= 2}
        for name, ok in checks.items():
            value = getattr(self, name)
            if not ok or not math.isfinite(value):
                ranges = {"cost_bp": "0 to 10,000", "min_fee": "0 or more dollars", "min_trade": "0 or more dollars",
                          "tolerance": "0 to below 1", "turnover_cap": "0 to 2"}
                raise RebalanceError(f"the rebalance setting {name} must be {ranges[name]}, got {value}")

    @property
    def cost_rate(self) -> float:
        return self.cost_bp / 10_000

    def fee(self, dollars: float) -> float:
        """The cost of one order of ``dollars`` (0 for no order)."""
        return 0.0 if dollars <= 0 else max(self.min_fee, self.cost_rate * dollars)


def parse_cash(value: float | str) -> float:
    """The cash added (negative: withdrawn), from a number or the text a person typed (``$1,000``), or
    ``RebalanceError`` saying why it is refused."""
    if isinstance(value, str):
        text = value.strip().replace(",", "").replace("_", "").replace("$", "")
        try:
            value = float(text)
        except ValueError:
            raise RebalanceError(f"cash {value!r} is not a number; give dollars such as 1000 (negative to withdraw)") from None
    if value is None or not math.isfinite(value) or abs(value) > MAX_CASH:
        raise RebalanceError(f"cash must be a finite number of dollars within ±{MAX_CASH:.0e}, got {value}")
    return float(value)
