"""Charts for people, as PNG bytes (Dagster metadata shows them): the projection's fan chart and the decision
backtest's growth."""

from __future__ import annotations

import io
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import pandas as pd

from quant_assets.lib.projections.montecarlo import BAND_LEVELS, PORTFOLIO
from quant_assets.lib.vocabulary import HORIZON_LABELS


def fan_chart_png(band_frame: pd.DataFrame, symbol: str = PORTFOLIO) -> bytes:
    """A PNG fan chart of ``symbol``'s P10-P90 and P25-P75 bands (as simple returns, %) over the horizons."""
    rows = band_frame[band_frame["symbol"] == symbol]
    if rows.empty:
        raise ValueError(f"fan_chart_png: the bands frame has no rows for symbol {symbol!r}")
    order = {label: i for i, label in enumerate(HORIZON_LABELS)}
    rows = rows.assign(_h=rows["horizon"].map(order).fillna(len(order))).sort_values(["_h", "horizon"])
    pct = {c: np.concatenate([[0.0], np.expm1(rows[c].to_numpy(dtype="float64")) * 100.0]) for c in BAND_LEVELS}
    x = np.arange(len(rows) + 1)
    with _png() as (ax, png):
        ax.fill_between(x, pct["p10"], pct["p90"], alpha=0.25, color="tab:blue", label="P10-P90")
        ax.fill_between(x, pct["p25"], pct["p75"], alpha=0.45, color="tab:blue", label="P25-P75")
        ax.plot(x, pct["p50"], color="tab:blue", label="P50")
        ax.axhline(0.0, color="grey", linewidth=0.8)
        ax.set_xticks(x, ["now", *rows["horizon"].tolist()])
        ax.set_ylabel("return (%)")
        ax.set_title(f"{symbol}: projected return bands")
        ax.legend(loc="upper left", fontsize=8)
    return png.getvalue()


def growth_chart_png(periods: pd.DataFrame) -> bytes:
    """Cumulative log growth per strategy across the windows (``projections.backtest`` rows)."""
    with _png() as (ax, png):
        for strategy, rows in periods.groupby("strategy"):
            ax.plot([str(d) for d in rows["window_start"]], rows["cumulative_log_growth"], marker="o", label=strategy)
        ax.axhline(0.0, color="grey", linewidth=0.8)
        ax.set_ylabel("cumulative log growth")
        ax.set_title("Decision backtest (net of costs)")
        ax.legend(fontsize=8)
        ax.figure.autofmt_xdate()
    return png.getvalue()


@contextmanager
def _png() -> Iterator[tuple[object, io.BytesIO]]:
    """One figure's axes to draw on and the buffer its PNG is saved to on leaving; the figure is always closed."""
    # Imported here: matplotlib costs a second, and only the assets that draw need it.
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 3.6), dpi=100)
    buffer = io.BytesIO()
    try:
        yield ax, buffer
        fig.tight_layout()
        fig.savefig(buffer, format="png")
    finally:
        plt.close(fig)
