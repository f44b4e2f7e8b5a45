"""Turn lib's plain metadata dicts into Dagster metadata values: frames become markdown tables and PNG bytes charts,
which render in the UI."""

from __future__ import annotations

import base64

import dagster as dg
import numpy as np
import pandas as pd
import polars as pl

from quant_assets.render.report import markdown_table

MARKDOWN_KEYS = ("per_symbol", "table_summary", "skill", "projector", "coverage", "weights")


def as_dagster_metadata(values: dict[str, object]) -> dict[str, object]:
    out: dict[str, object] = {}
    for key, value in values.items():
        if isinstance(value, bytes):
            encoded = base64.b64encode(value).decode()
            out[key] = dg.MetadataValue.md(f"![{key}](data:image/png;base64,{encoded})")
        elif isinstance(value, (pd.DataFrame, pl.DataFrame)):
            out[key] = dg.MetadataValue.md(markdown_table(value))
        elif key in MARKDOWN_KEYS and isinstance(value, str):
            out[key] = dg.MetadataValue.md(value)
        elif isinstance(value, (dict, list, tuple)):
            out[key] = dg.MetadataValue.json(_plain(value))
        else:
            out[key] = _plain(value)
    return out


def _plain(value: object) -> object:
    """Numpy scalars and tuples as the plain Python values Dagster's serializer accepts."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value
