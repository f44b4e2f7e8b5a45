"""Lookahead (truncation) audit for point-in-time features.

A feature is point-in-time when its value at date d is the same whether or not the future exists. The
audit rebuilds the features from history truncated at a few cut dates (price rows dated <= cut, on-chain
rows public by the end of the cut day) and compares every value dated <= cut with the full build. Any
difference means a feature peeked past its own date.

``DbtFeatureBuilder`` is the concrete builder for the ``dbt_features`` project: it compiles the project
once with the ``dbt`` executable and then runs the compiled SQL of the feature models, in dependency
order, in a throwaway in-memory DuckDB for each (truncated) history. Compiling takes longer than the
three rebuilds of a daily audit, so the compiled models can be kept in a cache directory, keyed by the
project's files and the dbt version: a daily run compiles only after the project changed.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import date, datetime, time, timedelta, timezone
from importlib.metadata import version
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

from quant_assets.lib.storage.memo import write_atomically

KEY_COLUMNS: tuple[str, str] = ("symbol", "date")
# Pseudo-column naming a row that exists in the full build but not in the truncated one (or vice versa).
ROW_PRESENCE = "<row>"
# The compiled SQL names relations "<catalog>"."<schema>"."<name>"; the catalog is the stem of the
# warehouse path dbt was compiled against, so the builder compiles against a file with this stem.
_CATALOG = "lookahead_audit"
# Folders of a dbt project that dbt writes, not the user: not part of what the compiled SQL depends on.
_DBT_OUTPUT_DIRS = frozenset({"target", "logs", "dbt_packages"})

FeatureBuilder = Callable[[pd.DataFrame, pd.DataFrame], Mapping[str, pd.DataFrame]]


@dataclass(frozen=True)
class Violation:
    """One feature value that changed when history was truncated at ``cut``."""

    cut: date
    table: str
    column: str
    symbol: str
    date: date
    full_value: object
    truncated_value: object

    def __str__(self) -> str:
        return (
            f"{self.table}.{self.column} for {self.symbol} on {self.date} is {self.full_value!r} in the full "
            f"build but {self.truncated_value!r} with history cut at {self.cut}"
        )


def default_cut_dates(dates: Sequence[date] | pd.Series | pd.Index, n: int = 3) -> list[date]:
    """Return ``n`` distinct cut dates spread evenly over the interior of ``dates`` (at the i/(n+1) quantiles).

    Interior cuts leave history before them (so long windows are filled) and future after them (so a
    feature that peeks forward has something to peek at).
    """
    if n < 1:
        raise ValueError(f"default_cut_dates needs n >= 1, got {n}.")
    unique = list(np.unique(pd.to_datetime(pd.Index(dates)).date))
    if len(unique) < n + 2:
        raise ValueError(f"default_cut_dates needs at least {n + 2} distinct dates to place {n} interior cuts, got {len(unique)}.")
    positions = sorted({int(round(i * (len(unique) - 1) / (n + 1))) for i in range(1, n + 1)})
    return [unique[p] for p in positions]


def truncate_history(
    market_prices: pd.DataFrame, market_onchain: pd.DataFrame, cut: date
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Return what was known at the end of ``cut``: price rows dated <= cut, on-chain rows with known_at <= end of cut.

    A naive ``known_at`` is read as UTC; the end of the day is the instant before the next UTC midnight.
    """
    prices = _as_pandas(market_prices, "market_prices")
    onchain = _as_pandas(market_onchain, "market_onchain")
    _require_columns(prices, ("symbol", "date", "asset_class", "close"), "market_prices")
    _require_columns(onchain, ("asset", "metric", "date", "value", "known_at"), "market_onchain")
    kept_prices = prices[pd.to_datetime(prices["date"]).dt.date <= cut]
    known_at = pd.to_datetime(onchain["known_at"])
    if known_at.dt.tz is None:
        known_at = known_at.dt.tz_localize("UTC")
    next_midnight = pd.Timestamp(datetime.combine(cut + timedelta(days=1), time(0), tzinfo=timezone.utc))
    kept_onchain = onchain[known_at < next_midnight]
    return kept_prices.reset_index(drop=True), kept_onchain.reset_index(drop=True)


def audit_lookahead(
    build_features: FeatureBuilder,
    market_prices: pd.DataFrame,
    market_onchain: pd.DataFrame,
    cut_dates: Sequence[date],
    feature_tables: Mapping[str, pd.DataFrame] | None = None,
    *,
    tolerance: float = 1e-9,
    max_per_column: int = 3,
) -> list[Violation]:
    """Rebuild the features on history truncated at each cut date and list the values that differ.

    ``build_features(prices, onchain)`` returns feature tables by name, each keyed by ``symbol, date``.
    ``feature_tables`` is the full build to compare against (built from the full history when omitted).
    Every column of every table is compared on the rows dated <= cut: numbers within ``tolerance``
    (relative to max(1, |value|)), nulls must match, other types must be equal. At most
    ``max_per_column`` violations are kept per cut, table and column (the earliest dates first).
    An empty list means no feature value depends on data after its own date, at these cuts.
    """
    full = feature_tables if feature_tables is not None else build_features(market_prices, market_onchain)
    violations: list[Violation] = []
    for cut in sorted(cut_dates):
        cut = pd.Timestamp(cut).date()
        truncated = build_features(*truncate_history(market_prices, market_onchain, cut))
        for table in sorted(full):
            if table not in truncated:
                raise ValueError(f"The truncated build at {cut} did not produce feature table {table!r}.")
            violations.extend(_compare(full[table], truncated[table], table, cut, tolerance, max_per_column))
    return violations


def _compare(
    full: pd.DataFrame, truncated: pd.DataFrame, table: str, cut: date, tolerance: float, limit: int
) -> list[Violation]:
    for name, frame in (("full", full), ("truncated", truncated)):
        _require_columns(frame, KEY_COLUMNS, f"the {name} build of {table}")
    full = _with_plain_dates(full)
    truncated = _with_plain_dates(truncated)
    full = full[full["date"] <= cut]
    merged = full.merge(truncated, on=list(KEY_COLUMNS), how="outer", suffixes=("", "__cut"), indicator="presence__")
    merged = merged.sort_values(["date", "symbol"], kind="stable")
    found: list[Violation] = []

    lonely = merged[merged["presence__"] != "both"].head(limit)
    for symbol, day, presence in zip(lonely["symbol"], lonely["date"], lonely["presence__"]):
        in_full = presence == "left_only"
        found.append(Violation(cut, table, ROW_PRESENCE, symbol, day, in_full, not in_full))

    both = merged[merged["presence__"] == "both"]
    for column in (c for c in full.columns if c not in KEY_COLUMNS):
        left = both[column]
        right = both[f"{column}__cut"] if f"{column}__cut" in both else pd.Series(np.nan, index=both.index)
        differs = _differs(left, right, tolerance)
        for idx in differs[differs].index[:limit]:
            found.append(
                Violation(cut, table, column, both.at[idx, "symbol"], both.at[idx, "date"], _plain(left[idx]), _plain(right[idx]))
            )
    return found


def _differs(left: pd.Series, right: pd.Series, tolerance: float) -> pd.Series:
    left_null, right_null = left.isna(), right.isna()
    if pd.api.types.is_numeric_dtype(left) and pd.api.types.is_numeric_dtype(right):
        a = left.to_numpy(dtype=float, na_value=np.nan)
        b = right.to_numpy(dtype=float, na_value=np.nan)
        with np.errstate(invalid="ignore"):
            far = np.abs(a - b) > tolerance * np.maximum(1.0, np.abs(a))
        values_differ = pd.Series(far, index=left.index) & ~left_null & ~right_null
    else:
        values_differ = (left.astype(object) != right.astype(object)) & ~left_null & ~right_null
    return values_differ | (left_null != right_null)


def _plain(value: object) -> object:
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA:
        return None
    return value.item() if isinstance(value, np.generic) else value


def _with_plain_dates(frame: pd.DataFrame) -> pd.DataFrame:
    frame = frame.copy()
    frame["date"] = pd.to_datetime(frame["date"]).dt.date
    return frame


def _as_pandas(frame: object, name: str) -> pd.DataFrame:
    if isinstance(frame, pd.DataFrame):
        return frame
    to_pandas = getattr(frame, "to_pandas", None)
    if to_pandas is None:
        raise TypeError(f"{name} must be a pandas or polars DataFrame, got {type(frame).__name__}.")
    return to_pandas()


def _require_columns(frame: pd.DataFrame, columns: Sequence[str], name: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"{name} lacks the column(s) {', '.join(missing)}.")


@dataclass(frozen=True)
class _CompiledModel:
    relation: str
    schema: str
    name: str
    materialized: str
    sql: str


class DbtFeatureBuilder:
    """Build the ``dbt_features`` feature models from in-memory market frames.

    The project is compiled once (``dbt compile``, on first use) with ``select`` restricted to models;
    each call then loads the given frames as ``market.prices`` / ``market.onchain`` into a fresh
    in-memory DuckDB, creates every compiled model in dependency order (views and tables as configured)
    and returns the models of ``feature_schema`` (or only those named in ``tables``) as pandas frames
    keyed by model name. With ``cache_dir``, the compiled models are read from there when the project's
    files and dbt are those they were compiled from, and written there after a compile.
    """

    def __init__(
        self,
        project_dir: str | os.PathLike[str],
        *,
        profiles_dir: str | os.PathLike[str] | None = None,
        select: str = "+features",
        feature_schema: str = "features",
        dbt_executable: str | os.PathLike[str] | None = None,
        threads: int = 1,
        tables: Collection[str] | None = None,
        cache_dir: str | os.PathLike[str] | None = None,
    ) -> None:
        self.project_dir = Path(project_dir).resolve()
        self.profiles_dir = Path(profiles_dir).resolve() if profiles_dir else self.project_dir
        self.select = select
        self.feature_schema = feature_schema
        self.dbt_executable = Path(dbt_executable) if dbt_executable else Path(sys.executable).parent / "dbt"
        self.threads = threads
        self.tables = frozenset(tables) if tables is not None else None
        self.cache_dir = Path(cache_dir) if cache_dir else None
        self._models: list[_CompiledModel] | None = None
        if not (self.project_dir / "dbt_project.yml").is_file():
            raise ValueError(f"{self.project_dir} is not a dbt project (no dbt_project.yml).")

    def compile(self) -> list[_CompiledModel]:
        """Compile the selected models once and return them in dependency order."""
        if self._models is None:
            self._models = self._cached_compile() if self.cache_dir else self._compile()
            names = {model.name for model in self._models if model.schema == self.feature_schema}
            unknown = sorted((self.tables or set()) - names)
            if unknown:
                raise ValueError(f"{self.project_dir} has no model(s) {', '.join(unknown)} in schema {self.feature_schema}.")
        return self._models

    def __call__(self, market_prices: pd.DataFrame, market_onchain: pd.DataFrame) -> dict[str, pd.DataFrame]:
        """Build the feature tables from these market frames; returns ``{model name: frame}``."""
        models = self.compile()
        prices = _as_pandas(market_prices, "market_prices")
        onchain = _as_pandas(market_onchain, "market_onchain")
        con = duckdb.connect(config={"threads": self.threads})
        try:
            # The dbt profile pins TimeZone to UTC (known_at casts depend on it); ICU settings can only
            # be changed after connecting.
            con.execute("SET TimeZone = 'UTC'")
            con.execute(f"ATTACH ':memory:' AS {_CATALOG}")
            con.execute(f"USE {_CATALOG}")
            con.execute("CREATE SCHEMA market")
            con.register("prices_frame", prices)
            con.register("onchain_frame", onchain)
            con.execute("CREATE TABLE market.prices AS SELECT * FROM prices_frame")
            con.execute("CREATE TABLE market.onchain AS SELECT * FROM onchain_frame")
            for model in models:
                con.execute(f'CREATE SCHEMA IF NOT EXISTS "{model.schema}"')
                kind = "VIEW" if model.materialized == "view" else "TABLE"
                try:
                    con.execute(f"CREATE {kind} {model.relation} AS {model.sql}")
                except duckdb.Error as error:
                    raise RuntimeError(f"Building dbt model {model.name} for the lookahead audit failed: {error}") from error
            return {
                model.name: con.execute(f"SELECT * FROM {model.relation}").df()
                for model in models
                if model.schema == self.feature_schema and (self.tables is None or model.name in self.tables)
            }
        finally:
            con.close()

    def _cached_compile(self) -> list[_CompiledModel]:
        cached = self.cache_dir / f"{self._fingerprint()}.json"
        if cached.is_file():
            return [_CompiledModel(**model) for model in json.loads(cached.read_text())]
        models = self._compile()
        write_atomically(cached, json.dumps([asdict(model) for model in models]).encode())
        return models

    def _fingerprint(self) -> str:
        """What the compiled SQL depends on: every file of the project (but dbt's outputs), the selection and
        the versions of dbt and its DuckDB adapter."""
        digest = hashlib.sha256(f"{self.select}|{version('dbt-core')}|{version('dbt-duckdb')}".encode())
        tops = [path for path in self.project_dir.iterdir() if path.name not in _DBT_OUTPUT_DIRS]
        files = sorted(file for top in tops for file in ([top] if top.is_file() else top.rglob("*")) if file.is_file())
        for path in files:
            digest.update(f"\0{path.relative_to(self.project_dir).as_posix()}\0".encode())
            digest.update(path.read_bytes())
        return digest.hexdigest()[:32]

    def _compile(self) -> list[_CompiledModel]:
        with tempfile.TemporaryDirectory(prefix="dbt_lookahead_") as scratch:
            scratch_path = Path(scratch)
            env = {
                **os.environ,
                "QUANT_WAREHOUSE": str(scratch_path / f"{_CATALOG}.duckdb"),
                "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
            }
            command = [
                str(self.dbt_executable), "--quiet", "--no-version-check", "compile",
                "--select", f"{self.select},resource_type:model",
                "--project-dir", str(self.project_dir),
                "--profiles-dir", str(self.profiles_dir),
                "--target-path", str(scratch_path / "target"),
                "--log-path", str(scratch_path / "logs"),
                "--no-populate-cache",
            ]
            result = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
            if result.returncode != 0:
                output = (result.stdout + result.stderr).strip().splitlines()[-15:]
                raise RuntimeError(f"dbt compile of {self.project_dir} failed:\n" + "\n".join(output))
            manifest = json.loads((scratch_path / "target" / "manifest.json").read_text())
        return _models_in_order(manifest)


def _models_in_order(manifest: Mapping[str, object]) -> list[_CompiledModel]:
    nodes = manifest["nodes"]
    compiled = {
        key: node for key, node in nodes.items() if node["resource_type"] == "model" and node.get("compiled_code")
    }
    ordered: list[_CompiledModel] = []
    done: set[str] = set()

    def visit(key: str) -> None:
        if key in done:
            return
        done.add(key)
        for parent in compiled[key]["depends_on"]["nodes"]:
            if parent in compiled:
                visit(parent)
        node = compiled[key]
        # An ephemeral model has no relation of its own (dbt inlines it); the audit builds it under its schema and
        # name so that it is compared like the others.
        relation = node["relation_name"] or f'"{node["schema"]}"."{node["name"]}"'
        ordered.append(
            _CompiledModel(relation, node["schema"], node["name"], node["config"]["materialized"], node["compiled_code"])
        )

    for key in sorted(compiled):
        visit(key)
    return ordered


def lookahead_audit(warehouse, project_dir: Path, n_cuts: int = 3, cache_dir: Path | None = None) -> dict[str, object]:
    """Audit the stored ``features.features`` of ``warehouse`` against rebuilds on truncated market history
    (the project compiled once per version of its files when ``cache_dir`` is given).

    Returns the cut dates, the number of values compared and the violations as sentences (empty = passed).
    """
    with warehouse.reader() as con:
        prices = con.execute("SELECT * FROM market.prices").df()
        onchain = con.execute("SELECT * FROM market.onchain").df()
        stored = con.execute("SELECT * FROM features.features").df()
    cuts = default_cut_dates(prices["date"], n=n_cuts)
    builder = DbtFeatureBuilder(project_dir, tables=["features"], cache_dir=cache_dir, threads=os.cpu_count() or 1)
    violations = audit_lookahead(builder, prices, onchain, cuts, {"features": stored})
    return {"cut_dates": [str(c) for c in cuts], "violations": [str(v) for v in violations[:20]],
            "violation_count": len(violations), "feature_columns": len(stored.columns) - 3}
