"""Small renderings for people: markdown tables for Dagster metadata and terminal summaries."""

from __future__ import annotations


def markdown_table(frame) -> str:
    """A pandas or polars frame as a markdown table (floats to 4 significant decimals)."""
    if hasattr(frame, "to_pandas"):
        frame = frame.to_pandas()
    columns = [str(c) for c in frame.columns]
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for row in frame.itertuples(index=False):
        lines.append("| " + " | ".join(_cell(v) for v in row) + " |")
    return "\n".join(lines)


def _cell(value) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)
