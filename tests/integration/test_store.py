"""The operational store on real databases: SQLite files and the PostgreSQL server.

Every test runs on both backends. On PostgreSQL each test gets a fresh schema (selected through
the URL's ``search_path``, as a user could do), dropped afterwards, so reruns start clean.
"""

from __future__ import annotations

import multiprocessing
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from modelcycle.data.records import LabelRecord, PredictionRecord
from modelcycle.store import (
    StoreError,
    current_revision,
    expand_features,
    head_revision,
    insert_labels,
    insert_predictions,
    make_engine,
    status,
    table_counts,
    upgrade,
    window,
)
from modelcycle.store.schema import TABLES, Base, predictions

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    """A migrated database."""
    upgrade(db_url)
    made = make_engine(db_url)
    yield made
    made.dispose()


def _record(i: int, **changes: Any) -> PredictionRecord:
    values: dict[str, Any] = {
        "request_id": f"req-{i}",
        "timestamp": T0 + timedelta(minutes=i),
        "model_name": "rent",
        "model_version": "1",
        "arm": "stable",
        "features": {"area": 50 + i, "city": "Madrid"},
        "prediction": 1000.0 + i,
        "latency_ms": 1.5,
    }
    values.update(changes)
    return PredictionRecord(**values)


def _insert(engine: Engine, records: list[PredictionRecord]) -> None:
    with engine.begin() as conn:
        assert insert_predictions(conn, records) == len(records)


# --- migrations -----------------------------------------------------------------------------


def test_migrations_apply_from_empty_and_are_idempotent(db_url: str) -> None:
    assert current_revision(db_url) is None
    first = upgrade(db_url)
    assert (first.before, first.after, first.changed) == (None, head_revision(), True)
    second = upgrade(db_url)
    assert (second.before, second.after, second.changed) == (head_revision(),) * 2 + (False,)
    assert current_revision(db_url) == head_revision()
    assert table_counts(db_url) == dict.fromkeys(TABLES, 0)

    engine = make_engine(db_url)
    try:
        with engine.connect() as conn:
            from alembic.autogenerate import compare_metadata
            from alembic.runtime.migration import MigrationContext

            # the migration creates exactly what schema.py declares
            assert compare_metadata(MigrationContext.configure(conn), Base.metadata) == []
            inspector = sa.inspect(conn)
            indexes = {
                ix["name"]: ix["column_names"] for ix in inspector.get_indexes("predictions")
            }
    finally:
        engine.dispose()
    assert indexes["ix_predictions_model_window"] == [
        "model_name",
        "model_version",
        "arm",
        "created_at",
    ]
    assert indexes["ix_predictions_request"] == ["request_id", "row"]


def _upgrade_in_child(url: str, barrier: Any, results: Any) -> None:
    barrier.wait(timeout=30)
    try:
        results.put(("ok", upgrade(url).after))
    except Exception as err:  # reported to the parent
        results.put(("error", repr(err)))


def test_concurrent_upgrades_in_processes_all_succeed(db_url: str) -> None:
    if "fork" not in multiprocessing.get_all_start_methods():
        pytest.skip("needs the fork start method")
    ctx = multiprocessing.get_context("fork")
    barrier, results = ctx.Barrier(3), ctx.Queue()
    workers = [
        ctx.Process(target=_upgrade_in_child, args=(db_url, barrier, results)) for _ in range(3)
    ]
    for worker in workers:
        worker.start()
    outcomes = [results.get(timeout=60) for _ in workers]
    for worker in workers:
        worker.join(timeout=30)
    assert outcomes == [("ok", head_revision())] * 3
    assert current_revision(db_url) == head_revision()


def test_concurrent_upgrades_in_threads_all_succeed(db_url: str) -> None:
    barrier = threading.Barrier(2)
    outcomes: list[Any] = []

    def run() -> None:
        barrier.wait(timeout=30)
        try:
            outcomes.append(upgrade(db_url).after)
        except Exception as err:
            outcomes.append(err)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert outcomes == [head_revision()] * 2


def test_status_reports_revisions_and_counts(engine: Engine, db_url: str) -> None:
    _insert(engine, [_record(i) for i in range(3)])
    info = status(db_url)
    assert info.up_to_date
    assert info.known
    assert info.counts["predictions"] == 3
    assert info.counts["labels"] == 0
    assert "********" not in info.url or "@" in info.url


def test_sqlite_status_does_not_create_the_file(tmp_path: Path) -> None:
    path = tmp_path / "nothing" / "here.db"
    info = status(f"sqlite:///{path}")
    assert info.current is None
    assert not info.up_to_date
    assert info.counts == dict.fromkeys(TABLES)
    assert not path.parent.exists()


def test_sqlite_connections_use_wal_busy_timeout_and_foreign_keys(tmp_path: Path) -> None:
    path = tmp_path / "new" / "folder" / "store.db"
    engine = make_engine(f"sqlite:///{path}", check=True)
    try:
        assert path.parent.is_dir()
        with engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 5000
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    finally:
        engine.dispose()


def test_unknown_revision_in_database_is_a_clear_error(engine: Engine, db_url: str) -> None:
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE alembic_version SET version_num = 'ffff'"))
    assert not status(db_url).known
    with pytest.raises(StoreError, match=r"revision ffff.*does not know"):
        upgrade(db_url)


# --- predictions and windows ----------------------------------------------------------------


def test_insert_and_window_filters(engine: Engine) -> None:
    records = [_record(i) for i in range(6)]  # version 1, stable, minutes 0..5
    records += [_record(i, model_version="2", arm="canary") for i in range(6, 10)]
    records += [_record(i, model_version="2", arm="shadow") for i in range(10, 12)]
    records += [_record(i, model_name="other") for i in range(12, 14)]
    _insert(engine, records)
    with engine.connect() as conn:
        everything = window(conn, "rent")
        assert everything["request_id"].tolist() == [f"req-{i}" for i in range(12)]
        assert everything["created_at"].is_monotonic_increasing
        assert str(everything["created_at"].dt.tz) == "UTC"
        assert everything["prediction"].dtype == float
        assert everything["prediction"].iloc[3] == 1003.0

        assert len(window(conn, "rent", version="1")) == 6
        assert set(window(conn, "rent", arm="canary")["request_id"]) == {
            f"req-{i}" for i in range(6, 10)
        }
        both = window(conn, "rent", version="2", arm=["canary", "shadow"])
        assert len(both) == 6

        timed = window(
            conn, "rent", since=T0 + timedelta(minutes=2), until=T0 + timedelta(minutes=5)
        )
        assert timed["request_id"].tolist() == ["req-2", "req-3", "req-4"]  # until is exclusive
        naive = window(conn, "rent", since=datetime(2025, 3, 1, 12, 10))  # naive means UTC
        assert naive["request_id"].tolist() == ["req-10", "req-11"]

        newest = window(conn, "rent", version="1", last=2)
        assert newest["request_id"].tolist() == ["req-4", "req-5"]  # newest two, oldest first

        empty = window(conn, "nobody")
        assert empty.empty
        assert "has_label" in empty.columns
        lean = window(conn, "rent", last=1, with_features=False)
        assert "features" not in lean.columns

        features = expand_features(window(conn, "rent", version="1"))
        assert features.columns.tolist() == ["area", "city"]
        assert features["area"].tolist() == [50, 51, 52, 53, 54, 55]
    with engine.connect() as conn, pytest.raises(ValueError, match="positive"):
        window(conn, "rent", last=0)


def test_many_rows_and_classification_predictions(engine: Engine) -> None:
    records = [
        _record(
            i,
            model_name="default",
            request_id="batch-1",
            row=i,
            prediction="late" if i % 3 == 0 else "on_time",
            probabilities={"late": 0.4, "on_time": 0.6},
        )
        for i in range(2000)
    ]
    started = time.perf_counter()
    _insert(engine, records)
    with engine.connect() as conn:
        frame = window(conn, "default")
    assert time.perf_counter() - started < 30  # bulk, not a round trip per row
    assert len(frame) == 2000
    assert frame["row"].tolist() == list(range(2000))
    assert frame["prediction"].iloc[0] == "late"
    assert frame["prediction"].iloc[1] == "on_time"
    assert frame["probabilities"].iloc[5] == {"late": 0.4, "on_time": 0.6}


def test_timestamps_are_stored_and_returned_in_utc(engine: Engine) -> None:
    madrid = timezone(timedelta(hours=2))
    _insert(engine, [_record(0, timestamp=datetime(2025, 6, 1, 14, 0, tzinfo=madrid))])
    with engine.connect() as conn:
        frame = window(conn, "rent")
        assert frame["created_at"].iloc[0] == datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
        later = window(conn, "rent", since=datetime(2025, 6, 1, 13, 30, tzinfo=madrid))
        assert len(later) == 1  # 11:30 UTC <= 12:00 UTC


def test_json_columns_round_trip_nested_values(engine: Engine) -> None:
    features = {
        "area": 72.5,
        "rooms": 3,
        "city": "Málaga",
        "amenities": ["lift", "terrace"],
        "nested": {"a": {"b": [1, 2, {"c": None}]}, "flag": True},
        "missing": None,
    }
    numpy_features = {"area": np.float64(50.5), "rooms": np.int64(2), "gap": float("nan")}
    ood = {"score": 0.97, "flags": ["area"], "detail": {"area": {"z": 4.2}}}
    _insert(
        engine,
        [
            _record(0, features=features, ood=ood, error=None),
            _record(1, features=numpy_features, prediction=None, error="model failed: boom"),
        ],
    )
    with engine.connect() as conn:
        frame = window(conn, "rent")
    assert frame["features"].iloc[0] == features
    assert frame["ood"].iloc[0] == ood
    assert frame["features"].iloc[1] == {"area": 50.5, "rooms": 2, "gap": None}
    assert frame["error"].iloc[1] == "model failed: boom"
    assert np.isnan(frame["prediction"].iloc[1])
    with engine.connect() as conn:  # None is SQL NULL, not the JSON text 'null'
        missing = sa.select(sa.func.count()).where(predictions.c.probabilities.is_(None))
        assert conn.execute(missing).scalar() == 2


# --- labels ---------------------------------------------------------------------------------


def test_labels_report_each_item_and_repeats_are_idempotent(engine: Engine) -> None:
    _insert(engine, [_record(i) for i in range(4)])
    _insert(engine, [_record(9, request_id="batch", row=r) for r in range(3)])
    with engine.begin() as conn:
        first = insert_labels(
            conn,
            [
                LabelRecord(request_id="req-0", label=1010, source="contracts"),
                LabelRecord(request_id="nope", label=1),
                LabelRecord(request_id="req-1", label=999.5),
                LabelRecord(request_id="batch", row=2, label=1200),
                LabelRecord(request_id="batch", row=7, label=1200),  # no such row
            ],
        )
    assert [r.status for r in first] == ["inserted", "unknown", "inserted", "inserted", "unknown"]
    assert (first[1].request_id, first[4].row) == ("nope", 7)

    with engine.begin() as conn:
        again = insert_labels(
            conn,
            [
                LabelRecord(request_id="req-0", label=1010),  # same: nothing changes
                LabelRecord(request_id="req-1", label=1001),  # corrected
                LabelRecord(request_id="req-2", label=5),
                LabelRecord(request_id="req-2", label=5),  # repeated within the batch
            ],
        )
    assert [r.status for r in again] == ["duplicate", "updated", "inserted", "duplicate"]
    assert table_counts(engine)["labels"] == 4
    with engine.begin() as conn:
        assert insert_labels(conn, []) == []

    with engine.connect() as conn:
        frame = window(conn, "rent").set_index(["request_id", "row"])
    assert frame.loc[("req-0", 0), "label"] == 1010
    assert frame.loc[("req-0", 0), "label_source"] == "contracts"
    assert frame.loc[("req-1", 0), "label"] == 1001
    assert frame.loc[("batch", 2), "label"] == 1200
    assert not frame.loc[("batch", 1), "has_label"]
    assert frame["has_label"].tolist().count(True) == 4
    assert frame["has_label"].mean() == pytest.approx(4 / 7)  # label coverage


def test_a_label_joins_every_arm_of_a_shadowed_request(engine: Engine) -> None:
    _insert(
        engine,
        [
            _record(0, request_id="r", arm="stable", prediction="yes"),
            _record(0, request_id="r", arm="shadow", model_version="2", prediction="no"),
        ],
    )
    with engine.begin() as conn:
        assert insert_labels(conn, [LabelRecord(request_id="r", label="yes")])[0].status == (
            "inserted"
        )
    with engine.connect() as conn:
        frame = window(conn, "rent")
    assert frame["arm"].tolist() == ["stable", "shadow"]
    assert frame["label"].tolist() == ["yes", "yes"]
    assert frame["has_label"].all()


def test_many_labels_in_one_call(engine: Engine) -> None:
    _insert(engine, [_record(i) for i in range(1500)])
    labels = [LabelRecord(request_id=f"req-{i}", label=i) for i in range(0, 1600)]
    with engine.begin() as conn:
        results = insert_labels(conn, labels)
    assert sum(r.status == "inserted" for r in results) == 1500
    assert sum(r.status == "unknown" for r in results) == 100


# --- errors ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("not a url", "invalid database URL"),
        ("mysql://u:secret@host/db", "unsupported database 'mysql'"),
        ("postgresql+psycopg2://u:secret@host/db", "psycopg2 driver"),
    ],
)
def test_bad_urls_are_store_errors(url: str, message: str) -> None:
    with pytest.raises(StoreError, match=message) as caught:
        make_engine(url)
    assert "secret" not in str(caught.value)
    assert caught.value.hint


@pytest.mark.parametrize("scheme", ["postgres", "postgresql", "postgresql+psycopg"])
def test_unreachable_server_is_a_quick_store_error(scheme: str) -> None:
    url = f"{scheme}://mc:secret@127.0.0.1:1/nothing"  # nothing listens on port 1
    started = time.perf_counter()
    with pytest.raises(StoreError, match="cannot use the database") as caught:
        make_engine(url, check=True)
    assert time.perf_counter() - started < 5
    assert "secret" not in str(caught.value)
    assert "mc:********@127.0.0.1:1" in str(caught.value)
    with pytest.raises(StoreError):
        upgrade(url)
    with pytest.raises(StoreError):
        status(url)


def test_tables_modelcycle_did_not_create_are_a_clear_error(db_url: str) -> None:
    engine = make_engine(db_url)
    try:
        with engine.begin() as conn:
            conn.execute(sa.text("CREATE TABLE predictions (x integer)"))
    finally:
        engine.dispose()
    with pytest.raises(StoreError, match="predictions") as caught:
        upgrade(db_url)
    assert "empty database or one it created" in str(caught.value.hint)


def test_a_file_that_is_not_sqlite_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "notes.db"
    path.write_text("just some text, not a database\n" * 200, encoding="utf-8")
    with pytest.raises(StoreError, match="not a database") as caught:
        status(f"sqlite:///{path}")
    assert "path and permissions" in str(caught.value.hint)


@pytest.mark.postgres
def test_postgres_urls_are_accepted_in_every_spelling(postgres_url: str) -> None:
    plain = sa.engine.make_url(postgres_url).set(drivername="postgres")
    engine = make_engine(plain.render_as_string(hide_password=False), check=True)
    try:
        assert engine.url.drivername == "postgresql+psycopg"
    finally:
        engine.dispose()
