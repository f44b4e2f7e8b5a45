"""Dagster resources around the one warehouse: dagster-duckdb's resource and polars IO manager, both under
the warehouse's cross-process lock (``lib/warehouse.py``), and the settings of the run.

DuckDB lets one process hold the file read-write and then nobody else may open it, so neither the resource
nor the IO manager keeps a connection: writers take the lock and one transaction, readers get read-only
handles that wait while a writer holds the file.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import dagster as dg
import duckdb
import polars as pl
from dagster._core.storage.db_io_manager import DbIOManager, DbTypeHandler, TableSlice
from dagster_duckdb import DuckDBResource
from dagster_duckdb.io_manager import DuckDbClient, _get_cleanup_statement
from dagster_duckdb_polars import DuckDBPolarsIOManager, DuckDBPolarsTypeHandler
from pydantic import Field

from quant_assets.lib.storage.warehouse import Warehouse, ensure_table, has_table
from quant_assets.settings import Settings


class WarehouseResource(DuckDBResource):
    """dagster-duckdb's resource on the warehouse file: ``get_connection()`` is a locked read-write transaction
    (rolled back and closed if the body raises), ``get_connection(read_only=True)`` a read-only handle;
    ``get()`` the LazyDatabase for lib functions. Holds a path, never a connection."""

    database: str = Field(description="Path of the DuckDB warehouse file.")

    def get(self) -> Warehouse:
        return Warehouse(self.database)

    @contextmanager
    def get_connection(self, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
        warehouse = self.get()
        with warehouse.reader() if read_only else warehouse.writer() as con:
            yield con


class _LockedDuckDbClient(DuckDbClient):
    """Writes inside one locked transaction of the warehouse (commit and checkpoint, or rollback); reads read-only."""

    @staticmethod
    @contextmanager
    def connect(context, table_slice: TableSlice):
        warehouse = Warehouse(context.resource_config["database"])
        with warehouse.writer() if isinstance(context, dg.OutputContext) else warehouse.reader() as con:
            yield con

    @staticmethod
    def ensure_schema_exists(context, table_slice: TableSlice, connection) -> None:
        # Contract tables get their DDL (types, primary key) before the first insert; others follow the frame.
        table = f"{table_slice.schema}.{table_slice.table}"
        connection.execute(f"CREATE SCHEMA IF NOT EXISTS {table_slice.schema}")
        ensure_table(connection, table)

    @staticmethod
    def delete_table_slice(context, table_slice: TableSlice, connection) -> None:
        # A failed statement aborts the whole transaction in DuckDB, so test for the table instead of catching.
        if has_table(connection, f"{table_slice.schema}.{table_slice.table}"):
            connection.execute(_get_cleanup_statement(table_slice))


class _SliceTypeHandler(DuckDBPolarsTypeHandler):
    """Inserts by column name (the DDL's column order may differ from the frame's); an empty slice stays empty."""

    def handle_output(self, context: dg.OutputContext, table_slice: TableSlice, obj: pl.DataFrame, connection):
        table = f"{table_slice.schema}.{table_slice.table}"
        connection.register("slice_frame", obj.to_arrow())
        try:
            ensure_table(connection, table, like="slice_frame")
            if obj.height:
                connection.execute(f"INSERT INTO {table} BY NAME SELECT * FROM slice_frame")
        finally:
            connection.unregister("slice_frame")
        return {"row_count": obj.height}

    def load_input(self, context: dg.InputContext, table_slice: TableSlice, connection) -> pl.DataFrame:
        # DuckDB 2 dropped ``.arrow()``, which the upstream handler calls; ``to_arrow_table()`` replaces it.
        if table_slice.partition_dimensions and len(context.asset_partition_keys) == 0:
            return pl.DataFrame()
        return pl.from_arrow(connection.execute(DuckDbClient.get_select_statement(table_slice)).to_arrow_table())


class WarehouseIOManager(DuckDBPolarsIOManager):
    """dagster-duckdb-polars on the warehouse: an asset's polars frame replaces exactly its partition's slice
    (``partition_expr`` metadata, e.g. ``date``) in one transaction under the warehouse lock. The table is the
    asset key (``["market", "prices"]`` is ``market.prices``)."""

    @staticmethod
    def type_handlers() -> Sequence[DbTypeHandler]:
        return [_SliceTypeHandler()]

    def create_io_manager(self, context) -> DbIOManager:
        return DbIOManager(db_client=_LockedDuckDbClient(), database=self.database, schema=self.schema_,
                           type_handlers=self.type_handlers(), default_load_type=pl.DataFrame,
                           io_manager_name="WarehouseIOManager")


class SettingsResource(dg.ConfigurableResource):
    """The environment's Settings, captured once per run so every asset of the run sees the same ones."""

    def get(self) -> Settings:
        return Settings()
