"""The LazyDatabase under concurrent writer and reader processes, and its replace semantics."""

import multiprocessing as mp
import time

import pandas as pd
import pytest

from quant_assets.lib.storage.warehouse import Warehouse, WarehouseBusyError

ROWS_PER_BATCH = 50
DURATION_SECONDS = 20.0


def _writer(path: str, writer_id: int, deadline: float, out: mp.Queue) -> None:
    warehouse = Warehouse(path)
    batches, errors = 0, []
    try:
        while time.time() < deadline:
            frame = pd.DataFrame({"writer": writer_id, "seq": batches, "item": range(ROWS_PER_BATCH)})
            # Writing the same batch twice must replace, never duplicate.
            for _ in range(2):
                warehouse.replace("soak.events", frame, where={"writer": writer_id, "seq": batches})
            batches += 1
    except Exception as error:  # reported to the parent, which fails the test
        errors.append(f"writer {writer_id}: {error!r}")
    out.put(("writer", writer_id, batches, errors))


def _reader(path: str, reader_id: int, deadline: float, out: mp.Queue) -> None:
    warehouse = Warehouse(path)
    reads, errors = 0, []
    try:
        while time.time() < deadline:
            counts = warehouse.query("SELECT writer, seq, count(*) AS n FROM soak.events GROUP BY ALL")
            torn = counts[counts["n"] != ROWS_PER_BATCH]
            if len(torn):
                errors.append(f"reader {reader_id} saw a partial or duplicated batch: {torn.head(3).to_dict('records')}")
            reads += 1
    except Exception as error:
        errors.append(f"reader {reader_id}: {error!r}")
    out.put(("reader", reader_id, reads, errors))


def test_four_writers_and_two_readers_lose_and_duplicate_nothing(tmp_path):
    path = str(tmp_path / "warehouse.duckdb")
    with Warehouse(path).writer() as con:
        con.execute("CREATE SCHEMA soak")
        con.execute("CREATE TABLE soak.events (writer INTEGER, seq INTEGER, item INTEGER, PRIMARY KEY (writer, seq, item))")
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    deadline = time.time() + DURATION_SECONDS
    procs = [ctx.Process(target=_writer, args=(path, i, deadline, out)) for i in range(4)]
    procs += [ctx.Process(target=_reader, args=(path, i, deadline, out)) for i in range(2)]
    for p in procs:
        p.start()
    results = [out.get(timeout=DURATION_SECONDS + 300) for _ in procs]
    for p in procs:
        p.join(timeout=60)
    errors = [e for *_, errs in results for e in errs]
    assert errors == []
    written = {wid: n for kind, wid, n, _ in results if kind == "writer"}
    reads = sum(n for kind, _, n, _ in results if kind == "reader")
    assert all(n > 0 for n in written.values()) and reads > 0
    stored = Warehouse(path).query("SELECT writer, count(DISTINCT seq) AS batches, count(*) AS n FROM soak.events GROUP BY writer")
    for row in stored.itertuples():
        assert row.batches == written[row.writer]
        assert row.n == written[row.writer] * ROWS_PER_BATCH


def test_failed_write_rolls_back_and_keeps_previous_rows(tmp_path):
    warehouse = Warehouse(tmp_path / "w.duckdb")
    warehouse.replace("soak.items", pd.DataFrame({"k": [1, 2]}))
    with pytest.raises(RuntimeError, match="boom"):
        with warehouse.writer() as con:
            con.execute("DELETE FROM soak.items")
            raise RuntimeError("boom")
    assert sorted(warehouse.query("SELECT k FROM soak.items")["k"]) == [1, 2]


def test_reader_on_missing_warehouse_says_what_to_do(tmp_path):
    with pytest.raises(FileNotFoundError, match="materialize the market assets first"):
        Warehouse(tmp_path / "none.duckdb").query("SELECT 1")


def test_replace_only_touches_matching_rows(tmp_path):
    warehouse = Warehouse(tmp_path / "w.duckdb")
    warehouse.replace("soak.parts", pd.DataFrame({"part": ["a", "a", "b"], "v": [1, 2, 3]}))
    warehouse.replace("soak.parts", pd.DataFrame({"part": ["a"], "v": [9]}), where={"part": "a"})
    assert warehouse.query("SELECT part, v FROM soak.parts ORDER BY part, v").values.tolist() == [["a", 9], ["b", 3]]


def _read_forever(path: str) -> None:
    warehouse = Warehouse(path)
    while True:
        warehouse.query("SELECT count(*) FROM soak.items")


def test_a_writer_gets_through_an_endless_stream_of_readers(tmp_path):
    path = str(tmp_path / "w.duckdb")
    Warehouse(path).replace("soak.items", pd.DataFrame({"k": range(1000)}))
    ctx = mp.get_context("spawn")
    readers = [ctx.Process(target=_read_forever, args=(path,), daemon=True) for _ in range(4)]
    for reader in readers:
        reader.start()
    try:
        time.sleep(3)  # let the readers overlap so the file is never free of them
        for k in range(5):
            # A short wait would run out if the writer had to find a gap between readers.
            Warehouse(path, wait_seconds=30).replace("soak.items", pd.DataFrame({"k": [k]}))
    finally:
        for reader in readers:
            reader.kill()
            reader.join()
    assert Warehouse(path).query("SELECT k FROM soak.items")["k"].tolist() == [4]


def _hold_the_writer_lock(path: str, ready) -> None:
    with Warehouse(path).writer() as con:
        con.execute("DELETE FROM soak.items")
        ready.set()
        time.sleep(600)


def test_a_writer_killed_while_holding_the_file_blocks_no_one(tmp_path):
    path = str(tmp_path / "w.duckdb")
    Warehouse(path).replace("soak.items", pd.DataFrame({"k": [1, 2]}))
    ctx = mp.get_context("spawn")
    ready = ctx.Event()
    holder = ctx.Process(target=_hold_the_writer_lock, args=(path, ready))
    holder.start()
    assert ready.wait(60)
    with pytest.raises(WarehouseBusyError, match="stayed locked"):
        Warehouse(path, wait_seconds=0.5).query("SELECT 1")
    holder.kill()
    holder.join()
    assert sorted(Warehouse(path, wait_seconds=10).query("SELECT k FROM soak.items")["k"]) == [1, 2]
    Warehouse(path, wait_seconds=10).replace("soak.items", pd.DataFrame({"k": [3]}))
    assert Warehouse(path).query("SELECT k FROM soak.items")["k"].tolist() == [3]
