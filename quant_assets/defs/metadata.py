"""Turn lib's plain metadata dicts into Dagster metadata values (markdown tables and PNG charts render in the UI)."""

from __future__ import annotations

import base64

import dagster as dg

MARKDOWN_KEYS = ("per_symbol", "table_summary", "skill", "projector", "coverage", "weights")


def as_dagster_metadata(values: dict[str, object]) -> dict[str, object]:
    out: dict[str, object] = {}
    for key, value in values.items():
        if isinstance(value, bytes):
            encoded = base64.b64encode(value).decode()
            out[key] = dg.MetadataValue.md(f"![{key}](data:image/png;base64,{encoded})")
        elif key in MARKDOWN_KEYS and isinstance(value, str):
            out[key] = dg.MetadataValue.md(value)
        elif isinstance(value, (dict, list)):
            out[key] = dg.MetadataValue.json(value)
        else:
            out[key] = value
    return out
