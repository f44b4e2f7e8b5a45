"""Run the ``dbt_features`` project's feature models on in-memory market frames, without a warehouse.

``DbtFeatureBuilder`` compiles the project once with the ``dbt`` executable and then runs the compiled SQL of
the feature models, in dependency order, in a throwaway in-memory DuckDB for each (truncated) history: what the
lookahead audit rebuilds. Compiling takes longer than the three rebuilds of a daily audit, so the compiled models
can be kept in a cache directory, keyed by the project's files and the dbt version: a daily run compiles only
after the project changed.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Collection, Mapping
from dataclasses import asdict, dataclass
from importlib.metadata import version
from pathlib import Path

import duckdb
import pandas as pd

from quant_assets.lib.storage.memo import write_atomically

# The compiled SQL names relations "<catalog>"."<schema>"."<name>"; the catalog is the stem of the
# warehouse path dbt was compiled against, so the builder compiles against a file with this stem.
_CATALOG = "lookahead_audit"
# Folders of a dbt project that dbt writes, not the user: not part of what the compiled SQL depends on.
_DBT_OUTPUT_DIRS = frozenset({"target", "logs", "dbt_packages"})


def as_pandas(frame: object, name: str) -> pd.DataFrame:
    if isinstance(frame, pd.DataFrame):
        return frame
    to_pandas = getattr(frame, "to_pandas", None)
    if to_pandas is None:
        raise TypeError(f"{name} must be a pandas or polars DataFrame, got {type(frame).__name__}.")
    return to_pandas()


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
        prices = as_pandas(market_prices, "market_prices")
        onchain = as_pandas(market_onchain, "market_onchain")
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


