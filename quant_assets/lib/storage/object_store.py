"""The distributed profile's shared storage: what a walk-forward worker reads and writes, as Parquet on an object
store (S3 API), so that a worker on any host needs neither the DuckDB warehouse file nor its lock.

A window's inputs are exported once from the warehouse (``walk_forward.remote``); a worker loads them into a private
scratch warehouse (``scratch_warehouse``) and fits there; the outputs go back to the object store, and the warehouse
imports them (``import_fold_outputs``), reading the Parquet with DuckDB through an fsspec filesystem registered on its
connection.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import date
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from quant_assets.lib.storage import refits
from quant_assets.lib.storage.warehouse import Warehouse, replace_in

# A fold's inputs and outputs, each a table of the warehouse's contract stored as ``<table>.parquet``.
INPUT_TABLES = ("forecasts.plans", "features.features", "labels.forward_returns")
OUTPUT_TABLES = ("forecasts.predictions", "forecasts.fits", "forecasts.scores")

Frames = Mapping[str, pa.Table]


def filesystem(endpoint_url: str | None = None):
    """An s3fs filesystem (credentials from the usual AWS variables); ``endpoint_url`` for a non-AWS store."""
    import s3fs

    return s3fs.S3FileSystem(client_kwargs={"endpoint_url": endpoint_url} if endpoint_url else {})


def write_frames(fs, folder: str, frames: Frames) -> None:
    """Write each table to ``<folder>/<table>.parquet``."""
    for table, frame in frames.items():
        with fs.open(f"{folder.rstrip('/')}/{table}.parquet", "wb") as out:
            pq.write_table(frame, out)


def read_frames(fs, folder: str) -> dict[str, pa.Table]:
    """The tables written to ``folder`` by ``write_frames``; an empty or missing folder is named."""
    paths = sorted(fs.glob(f"{folder.rstrip('/')}/*.parquet"))
    if not paths:
        raise FileNotFoundError(f"no Parquet tables in the object store at {folder}")
    frames = {}
    for path in paths:
        with fs.open(path, "rb") as source:
            frames[path.rsplit("/", 1)[-1].removesuffix(".parquet")] = pq.read_table(source)
    return frames


@contextmanager
def scratch_warehouse(frames: Frames) -> Iterator[Warehouse]:
    """A private warehouse in a temporary folder holding ``frames`` as its tables (types kept by Arrow)."""
    with tempfile.TemporaryDirectory(prefix="quant-fold-") as folder:
        warehouse = Warehouse(Path(folder) / "fold.duckdb")
        with warehouse.writer() as con:
            for table, frame in frames.items():
                con.execute(f"CREATE SCHEMA IF NOT EXISTS {table.split('.')[0]}")
                con.register("incoming_frame", frame)
                con.execute(f"CREATE TABLE {table} AS SELECT * FROM incoming_frame")
                con.unregister("incoming_frame")
        yield warehouse


def import_fold_outputs(warehouse: Warehouse, fs, folders: Mapping[str, str], window_start: date) -> dict[str, int]:
    """Replace each model's rows of the window in the warehouse by the Parquet in its object-store folder
    (``folders``: model -> folder URL), read by DuckDB through ``fs``, all in one transaction; rows per table."""
    counts = dict.fromkeys(OUTPUT_TABLES, 0)
    with warehouse.writer() as con:
        con.register_filesystem(fs)
        for model, folder in sorted(folders.items()):
            for table in OUTPUT_TABLES:
                frame = con.sql("SELECT * FROM read_parquet(?)", params=[f"{folder.rstrip('/')}/{table}.parquet"]).to_arrow_table()
                counts[table] += replace_in(con, table, frame, {"window_start": window_start, "model": model})
        refits.refresh(con, refits.FIT, window_start, sorted(folders))
    return counts
