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


def format_table(columns: list[str], rows: list[tuple]) -> str:
    """A plain aligned text table, for the terminal."""
    cells = [columns] + [[_text(v) for v in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(columns))]
    lines = ["  ".join(c.rjust(w) for c, w in zip(row, widths)) for row in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _text(value) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:,.4f}" if abs(value) < 10 else f"{value:,.2f}"
    return str(value)
