"""The durable prediction log on a real SQLite file: exactly-once writes, replays, outages.

Every scenario uses real files, real ``flock`` locks and a real database; a dead owner is a
child process killed with SIGKILL, and an unavailable database is a SQLite file whose folder
is missing until the test creates it.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
import sqlalchemy as sa
from loguru import logger
from sqlalchemy.engine import Engine

from modelcycle.store import make_engine, upgrade
from modelcycle.store.writer import PredictionLog

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


# --- helpers --------------------------------------------------------------------------------


def _rows(log: PredictionLog, request_id: str, n: int = 1) -> list[dict[str, Any]]:
    """``n`` table-form prediction rows of one request, with the log's record ids."""
    return [
        {
            "request_id": request_id,
            "row": row,
            "created_at": T0,
            "model_name": "rent",
            "model_version": "1",
            "arm": "stable",
            "features": {"area": 50 + row, "city": "Madrid"},
            "prediction": 1000.0 + row,
            "prediction_label": None,
            "probabilities": None,
            "latency_ms": 1.5,
            "ood": None,
            "error": None,
            "record_id": log.record_id(),
        }
        for row in range(n)
    ]


def _stored(engine: Engine) -> list[tuple[str, int, str]]:
    """Every stored ``(request_id, row, record_id)``, duplicates included."""
    with engine.connect() as conn:
        result = conn.execute(sa.text("SELECT request_id, row, record_id FROM predictions"))
        return sorted((str(r[0]), int(r[1]), str(r[2])) for r in result)


def _keys(rows: list[dict[str, Any]]) -> list[tuple[str, int, str]]:
    return sorted((r["request_id"], r["row"], r["record_id"]) for r in rows)


def _wait_for(condition: Callable[[], bool], timeout: float = 15, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.02)


def _spool_files(spool: Path) -> list[str]:
    return sorted(p.name for p in spool.iterdir()) if spool.exists() else []


@pytest.fixture
def db(tmp_path: Path) -> Iterator[tuple[str, Engine]]:
    """A migrated SQLite store: ``(url, engine)``."""
    url = f"sqlite:///{tmp_path / 'store' / 'modelcycle.db'}"
    upgrade(url)
    engine = make_engine(url)
    yield url, engine
    engine.dispose()


@pytest.fixture
def down_db(tmp_path: Path) -> Iterator[tuple[str, Engine]]:
    """``(url, engine)`` of a store that cannot be opened: its folder does not exist.

    ``upgrade(url)`` brings it up (creates the folder, the file and the tables).
    """
    folder = tmp_path / "later"
    url = f"sqlite:///{folder / 'modelcycle.db'}"
    engine = make_engine(url)  # creates the folder; no connection is made yet
    folder.rmdir()
    yield url, engine
    engine.dispose()


@pytest.fixture
def warnings_logged() -> Iterator[list[str]]:
    """The messages the code under test logs at WARNING and above."""
    messages: list[str] = []
    sink = logger.add(lambda m: messages.append(str(m)), level="WARNING", format="{message}")
    yield messages
    logger.remove(sink)


# --- the normal path ------------------------------------------------------------------------


def test_appended_rows_land_exactly_once_and_close_removes_the_spool(
    tmp_path: Path, db: tuple[str, Engine]
) -> None:
    _, engine = db
    spool = tmp_path / "spool"
    log = PredictionLog(engine, spool, batch_size=25, interval=0.05)
    log.start()
    sent: list[dict[str, Any]] = []
    sent_lock = threading.Lock()

    def client(worker: int) -> None:
        for i in range(60):
            rows = _rows(log, f"w{worker}-{i}", n=1 + i % 3)
            log.append(rows)
            with sent_lock:
                sent.extend(rows)

    threads = [threading.Thread(target=client, args=(w,)) for w in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert _spool_files(spool)  # a segment and the owner's lock while running
    assert log.flush(timeout=15)
    assert len(sent) == 6 * (20 * (1 + 2 + 3))
    assert _stored(engine) == _keys(sent)  # every row, each once

    stats = log.stats()
    assert (stats.queue_depth, stats.spooled, stats.dropped) == (0, 0, 0)
    assert stats.written == len(sent)
    assert stats.database_ok
    assert stats.last_error is None
    log.close()
    assert _spool_files(spool) == []


def test_rows_queued_at_close_are_committed_by_close(
    tmp_path: Path, db: tuple[str, Engine]
) -> None:
    _, engine = db
    spool = tmp_path / "spool"
    log = PredictionLog(engine, spool, batch_size=10_000, interval=30)  # never on its own
    log.start()
    sent = [row for i in range(40) for row in _rows(log, f"r{i}", n=2)]
    for i in range(0, len(sent), 2):
        log.append(sent[i : i + 2])
    assert log.stats().queue_depth == 80
    log.close()
    assert _stored(engine) == _keys(sent)
    assert _spool_files(spool) == []


def test_records_overflow_into_a_new_segment_when_one_is_full(
    tmp_path: Path, db: tuple[str, Engine], monkeypatch: pytest.MonkeyPatch
) -> None:
    from modelcycle.store import writer

    monkeypatch.setattr(writer, "SEGMENT_RECORDS", 10)
    _, engine = db
    spool = tmp_path / "spool"
    log = PredictionLog(engine, spool, batch_size=7, interval=0.05)
    log.start()
    sent = [row for i in range(35) for row in _rows(log, f"r{i}", n=1)]
    for row in sent:
        log.append([row])
    assert log.flush(timeout=15)
    assert _stored(engine) == _keys(sent)
    # committed full segments are deleted as soon as they are written; only the current is left
    _wait_for(lambda: len([n for n in _spool_files(spool) if n.endswith(".jsonl")]) == 1)
    log.close()
    assert _spool_files(spool) == []


# --- replays --------------------------------------------------------------------------------


def _write_spool(spool: Path, token: str, lines: list[bytes]) -> Path:
    spool.mkdir(parents=True, exist_ok=True)
    (spool / f"{token}.lock").touch()  # its owner is gone: nobody holds the flock
    path = spool / f"{token}.000000.jsonl"
    path.write_bytes(b"".join(lines))
    return path


def test_a_torn_last_line_is_skipped_and_the_rest_replayed(
    tmp_path: Path, db: tuple[str, Engine], warnings_logged: list[str]
) -> None:
    _, engine = db
    spool = tmp_path / "spool"
    donor = PredictionLog(engine, tmp_path / "unused")  # only for its record ids
    good = [_rows(donor, "a", n=3), _rows(donor, "b", n=1), _rows(donor, "c", n=2)]
    lines = [orjson.dumps(rows) + b"\n" for rows in good]
    torn = orjson.dumps(_rows(donor, "torn", n=2))[:-17]  # the writer died mid-write
    _write_spool(spool, "1234-dead", [*lines, torn])

    log = PredictionLog(engine, spool, interval=0.05)
    log.start()
    try:
        _wait_for(lambda: not any(n.startswith("1234-dead") for n in _spool_files(spool)))
        assert _stored(engine) == _keys([row for rows in good for row in rows])
        assert any("torn line" in message for message in warnings_logged)
    finally:
        log.close()
    assert _spool_files(spool) == []


_CHILD = """
import sys, time
from datetime import UTC, datetime
from pathlib import Path
from modelcycle.store import make_engine
from modelcycle.store.writer import PredictionLog

url, spool = sys.argv[1], Path(sys.argv[2])
log = PredictionLog(make_engine(url), spool, interval=0.05)
log.start()

def append(i):
    log.append([{
        "request_id": f"child-{i}", "row": 0, "created_at": datetime.now(UTC),
        "model_name": "rent", "model_version": "1", "arm": "stable",
        "features": {"area": i}, "prediction": float(i), "prediction_label": None,
        "probabilities": None, "latency_ms": 1.0, "ood": None, "error": None,
        "record_id": log.record_id(),
    }])

for i in range(15):
    append(i)
assert log.flush(10)
print(log.stats().written, flush=True)
sys.stdin.readline()  # the parent now holds the database's write lock
for i in range(15, 25):
    append(i)
time.sleep(0.3)
print(log.stats().written, log.stats().spooled, log.token, flush=True)
time.sleep(600)
"""


def test_the_spool_of_a_killed_process_is_replayed_once_however_often_it_is_replayed(
    tmp_path: Path, db: tuple[str, Engine]
) -> None:
    url, engine = db
    spool = tmp_path / "spool"
    child = subprocess.Popen(
        [sys.executable, "-c", _CHILD, url, str(spool)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    blocker = sa.create_engine(url).connect()
    try:
        assert child.stdin is not None
        assert child.stdout is not None
        first = child.stdout.readline()
        assert first, f"the child failed:\n{child.stderr.read() if child.stderr else ''}"
        assert int(first) == 15  # committed, and still in the spool's current segment
        blocker.exec_driver_sql("BEGIN IMMEDIATE")  # the child's next commit has to wait
        child.stdin.write("go\n")
        child.stdin.flush()
        second = child.stdout.readline().split()
        assert second, f"the child failed:\n{child.stderr.read() if child.stderr else ''}"
        written, spooled, token = int(second[0]), int(second[1]), second[2]
    finally:
        child.kill()  # SIGKILL: no close(), the flock dies with the process
        child.wait()
        blocker.rollback()
        blocker.close()
    assert (written, spooled) == (15, 10)  # ten acknowledged records never reached the database
    assert len(_stored(engine)) == written
    orphans = [n for n in _spool_files(spool) if n.startswith(token)]
    assert f"{token}.lock" in orphans
    assert any(n.endswith(".jsonl") for n in orphans)
    backup = tmp_path / "backup"
    shutil.copytree(spool, backup)

    expected = [(f"child-{i}", 0) for i in range(25)]

    def replay_once() -> None:
        log = PredictionLog(engine, spool, interval=0.05)
        log.start()
        try:
            _wait_for(
                lambda: not any(n.startswith(token) for n in _spool_files(spool)),
                what="the orphaned spool to be replayed and deleted",
            )
            stored = _stored(engine)
            assert [(rid, row) for rid, row, _ in stored] == sorted(expected)
            assert len({record for *_, record in stored}) == 25
        finally:
            log.close()

    replay_once()
    shutil.rmtree(spool)
    shutil.copytree(backup, spool)  # the same spool again: nothing may be stored twice
    replay_once()
    assert _spool_files(spool) == []


def test_the_spool_of_a_live_owner_is_left_alone(
    tmp_path: Path, db: tuple[str, Engine], down_db: tuple[str, Engine]
) -> None:
    _, engine = db
    spool = tmp_path / "spool"
    owner = PredictionLog(down_db[1], spool, interval=0.05)  # alive, its database down
    owner.start()
    sent = _rows(owner, "owned", n=5)
    owner.append(sent)
    other = PredictionLog(engine, spool, interval=0.05)
    other.start()
    try:
        time.sleep(0.5)  # the other's start-up scan has run
        assert _stored(engine) == []
        assert any(n.startswith(owner.token) and n.endswith(".jsonl") for n in _spool_files(spool))
    finally:
        other.close()
        owner.close(timeout=1)  # cannot commit: keeps its spool, releases its lock
    assert any(n.startswith(owner.token) for n in _spool_files(spool))
    successor = PredictionLog(engine, spool, interval=0.05)
    successor.start()
    try:
        _wait_for(lambda: _stored(engine) == _keys(sent), what="the replay")
    finally:
        successor.close()
    assert _spool_files(spool) == []


# --- outages --------------------------------------------------------------------------------


def test_appends_go_on_while_the_database_is_down_and_land_when_it_is_back(
    tmp_path: Path, down_db: tuple[str, Engine], warnings_logged: list[str]
) -> None:
    url, engine = down_db
    spool = tmp_path / "spool"
    log = PredictionLog(engine, spool, batch_size=20, interval=0.05)
    log.start()
    sent: list[dict[str, Any]] = []
    try:
        slowest = 0.0
        for i in range(100):
            rows = _rows(log, f"r{i}", n=1 + i % 2)
            started = time.perf_counter()
            log.append(rows)
            slowest = max(slowest, time.perf_counter() - started)
            sent.extend(rows)
            if i == 10:
                _wait_for(lambda: not log.stats().database_ok, what="the first failed write")
        assert slowest < 0.1  # a spool write and a queue put, never a database wait
        stats = log.stats()
        assert not stats.database_ok
        assert stats.last_error
        assert "unable to open database file" in stats.last_error
        assert stats.spooled == len(sent) == 150
        assert stats.queue_depth == len(sent)
        assert (stats.written, stats.dropped) == (0, 0)
        assert not log.flush(timeout=0.3)
        assert any("unavailable" in m and str(spool) in m for m in warnings_logged)

        upgrade(url)  # the database is back
        assert log.flush(timeout=15)
        assert _stored(engine) == _keys(sent)
        stats = log.stats()
        assert stats.database_ok
        assert stats.last_error is None
        assert (stats.spooled, stats.queue_depth, stats.written) == (0, 0, 150)
    finally:
        log.close()
    assert _spool_files(spool) == []


def test_a_locked_database_does_not_slow_appends(tmp_path: Path, db: tuple[str, Engine]) -> None:
    url, engine = db
    spool = tmp_path / "spool"
    log = PredictionLog(engine, spool, batch_size=5, interval=0.05)
    log.start()
    blocker = sa.create_engine(url).connect()  # another writer holds SQLite's write lock
    blocker.exec_driver_sql("BEGIN IMMEDIATE")
    sent: list[dict[str, Any]] = []
    try:
        started = time.perf_counter()
        for i in range(50):
            rows = _rows(log, f"r{i}")
            log.append(rows)
            sent.extend(rows)
        assert time.perf_counter() - started < 0.5
        assert log.stats().spooled == 50
    finally:
        blocker.rollback()
        blocker.close()
    try:
        assert log.flush(timeout=20)
        assert _stored(engine) == _keys(sent)
    finally:
        log.close()


def test_a_close_that_times_out_during_a_write_keeps_the_spool(
    tmp_path: Path, db: tuple[str, Engine]
) -> None:
    url, engine = db
    spool = tmp_path / "spool"
    log = PredictionLog(engine, spool, batch_size=5, interval=0.05)
    log.start()
    blocker = sa.create_engine(url).connect()
    blocker.exec_driver_sql("BEGIN IMMEDIATE")  # the writer's commit waits for this lock
    try:
        sent = _rows(log, "stuck", n=5)
        log.append(sent)
        # the writer has taken the batch and waits for the lock (in flight, no longer queued)
        _wait_for(lambda: log._inflight == 5, what="the write to start")
        log.close(timeout=0.3)  # gives up while the write is still in flight
        # the records are not in the database yet, so their spool must stay for a replay
        assert any(n.endswith(".jsonl") for n in _spool_files(spool))
    finally:
        blocker.rollback()
        blocker.close()
    successor = PredictionLog(engine, spool, interval=0.05)
    successor.start()
    try:
        _wait_for(lambda: _stored(engine) == _keys(sent), what="the records")
        _wait_for(lambda: len(_spool_files(spool)) == 2, what="the old spool to be replayed")
    finally:
        successor.close()
    assert _spool_files(spool) == []


def test_records_beyond_max_pending_wait_on_disk_and_are_all_written_later(
    tmp_path: Path, down_db: tuple[str, Engine]
) -> None:
    url, engine = down_db
    spool = tmp_path / "spool"
    log = PredictionLog(engine, spool, batch_size=4, interval=0.05, max_pending=10)
    log.start()
    sent: list[dict[str, Any]] = []
    try:
        for i in range(40):
            rows = _rows(log, f"r{i}", n=1 + i % 3)
            log.append(rows)
            sent.extend(rows)
        _wait_for(lambda: not log.stats().database_ok, what="the first failed write")
        stats = log.stats()
        assert stats.queue_depth <= 10  # memory is bounded ...
        assert stats.spooled == len(sent) == 79  # ... and every record is on disk
        assert stats.dropped == 0
        on_disk = [
            row
            for path in sorted(spool.glob("*.jsonl"))
            for line in path.read_bytes().splitlines()
            for row in orjson.loads(line)
        ]
        assert sorted(r["record_id"] for r in on_disk) == sorted(r["record_id"] for r in sent)

        upgrade(url)  # the database is back
        assert log.flush(timeout=20)
        assert _stored(engine) == _keys(sent)
        stats = log.stats()
        assert (stats.spooled, stats.queue_depth, stats.dropped) == (0, 0, 0)
        assert stats.database_ok

        more = _rows(log, "after", n=3)  # and the log goes on normally
        log.append(more)
        assert log.flush(timeout=10)
        assert _stored(engine) == _keys(sent + more)
    finally:
        log.close()
    assert _spool_files(spool) == []
