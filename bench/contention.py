"""Warehouse contention: N writer and N reader processes hammer one DuckDB file through ``Warehouse``.

Each writer replaces small batches (each written twice, which must replace, never duplicate) and records
how long it waited for the lock; each reader runs a grouped count and records its latency and any torn
batch it saw. At the end the stored rows are compared with what the writers were told was committed.

    nice -n 10 .venv/bin/python bench/contention.py            # 8 + 8 processes, 5 minutes
    nice -n 10 .venv/bin/python bench/contention.py --seconds 30

Reference: the design's goal that no writer starves behind readers; lost rows must be 0.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from quant_assets.lib.storage.warehouse import Warehouse

ROWS_PER_BATCH = 200


def _writer(path: str, writer_id: int, deadline: float, out: mp.Queue) -> None:
    warehouse = Warehouse(path)
    batches, waits, errors = 0, [], []
    while time.time() < deadline:
        frame = pd.DataFrame({"writer": writer_id, "seq": batches, "item": range(ROWS_PER_BATCH)})
        try:
            for _ in range(2):
                asked = time.perf_counter()
                with warehouse.writer() as con:
                    waits.append(time.perf_counter() - asked)
                    con.execute("DELETE FROM bench.events WHERE writer = ? AND seq = ?", [writer_id, batches])
                    con.register("batch", frame)
                    con.execute("INSERT INTO bench.events SELECT * FROM batch")
            batches += 1
        except Exception as error:  # counted and reported, the bench goes on
            errors.append(f"writer {writer_id}: {error!r}"[:300])
    out.put(("writer", writer_id, batches, waits, errors))


def _reader(path: str, reader_id: int, deadline: float, out: mp.Queue) -> None:
    warehouse = Warehouse(path)
    latencies, errors = [], []
    while time.time() < deadline:
        started = time.perf_counter()
        try:
            counts = warehouse.query("SELECT writer, seq, count(*) AS n FROM bench.events GROUP BY ALL")
            latencies.append(time.perf_counter() - started)
            torn = counts[counts["n"] != ROWS_PER_BATCH]
            if len(torn):
                errors.append(f"reader {reader_id} saw a torn batch: {torn.head(2).to_dict('records')}")
        except Exception as error:
            errors.append(f"reader {reader_id}: {error!r}"[:300])
    out.put(("reader", reader_id, 0, latencies, errors))


def run(seconds: float, writers: int, readers: int, folder: Path) -> dict[str, object]:
    path = str(folder / "contention.duckdb")
    with Warehouse(path).writer() as con:
        con.execute("CREATE SCHEMA bench")
        con.execute("CREATE TABLE bench.events (writer INTEGER, seq INTEGER, item INTEGER, PRIMARY KEY (writer, seq, item))")
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    deadline = time.time() + seconds + 5  # the spawned interpreters take a few seconds to start
    procs = [ctx.Process(target=_writer, args=(path, i, deadline, out)) for i in range(writers)]
    procs += [ctx.Process(target=_reader, args=(path, i, deadline, out)) for i in range(readers)]
    for proc in procs:
        proc.start()
    results = [out.get(timeout=seconds + 900) for _ in procs]
    for proc in procs:
        proc.join(timeout=60)
    committed = {wid: n for kind, wid, n, _, _ in results if kind == "writer"}
    waits = np.array([w for kind, _, _, ws, _ in results if kind == "writer" for w in ws])
    latencies = np.array([x for kind, _, _, xs, _ in results if kind == "reader" for x in xs])
    errors = [e for *_, errs in results for e in errs]
    stored = Warehouse(path).query("SELECT writer, count(DISTINCT seq) AS batches, count(*) AS n FROM bench.events GROUP BY writer")
    stored_rows = dict(zip(stored["writer"], stored["n"]))
    lost = sum(max(0, committed[w] * ROWS_PER_BATCH - int(stored_rows.get(w, 0))) for w in committed)
    extra = sum(max(0, int(stored_rows.get(w, 0)) - committed[w] * ROWS_PER_BATCH) for w in committed)
    return {
        "seconds": seconds, "writers": writers, "readers": readers,
        "write_transactions": int(waits.size), "reads": int(latencies.size), "errors": len(errors),
        "error_examples": errors[:3], "lost_rows": lost, "duplicated_rows": extra,
        "writer_wait_p50_s": float(np.percentile(waits, 50)) if waits.size else None,
        "writer_wait_p99_s": float(np.percentile(waits, 99)) if waits.size else None,
        "writer_wait_max_s": float(waits.max()) if waits.size else None,
        "reader_p50_s": float(np.percentile(latencies, 50)) if latencies.size else None,
        "reader_p99_s": float(np.percentile(latencies, 99)) if latencies.size else None,
        "reader_max_s": float(latencies.max()) if latencies.size else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=300.0)
    parser.add_argument("--writers", type=int, default=8)
    parser.add_argument("--readers", type=int, default=8)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        figures = run(args.seconds, args.writers, args.readers, Path(folder))
    for name, value in figures.items():
        print(f"{name:>20}: {round(value, 4) if isinstance(value, float) else value}")


if __name__ == "__main__":
    main()
