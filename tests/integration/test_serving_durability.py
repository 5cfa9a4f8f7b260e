"""Acknowledged predictions survive: a server killed with SIGKILL, and a database outage.

Real ``modelcycle serve`` processes, real SQLite files and the real PostgreSQL server. The
client records every request the server answered with 200; afterwards each of those requests'
rows must be in the store exactly once.
"""

from __future__ import annotations

import signal
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import sqlalchemy as sa
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy.engine import Engine

from modelcycle.config.settings import Settings
from modelcycle.store import make_engine, window

pytestmark = pytest.mark.slow


# --- helpers --------------------------------------------------------------------------------


@dataclass
class Load:
    """Clients posting ``/predict`` from several threads, each request with its own id.

    Attributes:
        acked: Request id -> rows, for every request answered with 200.
        failures: What went wrong with the others.
    """

    url: str
    rows: list[dict[str, Any]]
    prefix: str
    acked: dict[str, int] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self, threads: int = 8) -> Load:
        for worker in range(threads):
            thread = threading.Thread(target=self._client, args=(worker,), daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=15)
        self._threads.clear()
        self._stop.clear()

    def send(self, rid: str, n: int, client: httpx.Client | None = None) -> bool:
        """One request of ``n`` rows (an object when ``n`` is 1, else a list); True on 200."""
        start = hash(rid) % (len(self.rows) - n)
        body: Any = self.rows[start] if n == 1 else self.rows[start : start + n]
        try:
            response = (client or httpx).post(
                f"{self.url}/predict", json=body, headers={"X-Request-ID": rid}, timeout=10
            )
        except httpx.HTTPError as err:
            with self._lock:
                self.failures.append(f"{rid}: {err!r}")
            return False
        if response.status_code != 200:
            with self._lock:
                self.failures.append(f"{rid}: {response.status_code} {response.text[:200]}")
            return False
        answer = response.json()
        assert answer["request_id"] == rid
        assert len(answer["predictions"]) == n
        with self._lock:
            self.acked[rid] = n
        return True

    def _client(self, worker: int) -> None:
        i = 0
        with httpx.Client() as client:  # keep-alive, like a real client
            while not self._stop.is_set():
                n = 1 if i % 2 == 0 else 2 + i % 4  # single rows and lists of 2..5
                if not self.send(f"{self.prefix}-{worker}-{i}-{uuid.uuid4().hex[:6]}", n, client):
                    time.sleep(0.02)  # the server is gone: do not spin
                i += 1


def _counts(engine: Engine) -> dict[tuple[str, int], int]:
    """How often each ``(request_id, row)`` is stored (read through ``window``)."""
    with engine.connect() as conn:
        frame = window(conn, "rent", with_features=False)
    sizes = frame.groupby(["request_id", "row"]).size()
    return {(str(rid), int(row)): int(n) for (rid, row), n in sizes.items()}


def _missing(engine: Engine, acked: dict[str, int]) -> list[tuple[str, int]]:
    counts = _counts(engine)
    return [(rid, row) for rid, n in acked.items() for row in range(n) if (rid, row) not in counts]


def _assert_exactly_once(engine: Engine, acked: dict[str, int], timeout: float = 20) -> None:
    """Every acknowledged row is stored (waiting up to ``timeout``), and nothing twice."""
    deadline = time.monotonic() + timeout
    while (missing := _missing(engine, acked)) and time.monotonic() < deadline:
        time.sleep(0.25)
    assert not missing, f"{len(missing)} acknowledged rows are not in the store: {missing[:5]}"
    counts = _counts(engine)
    twice = {key: n for key, n in counts.items() if n != 1}
    assert not twice, f"rows stored more than once: {list(twice.items())[:5]}"


def _metrics(server: Any) -> dict[str, float]:
    text = httpx.get(f"{server.url}/metrics", timeout=5).text
    return {
        sample.name: sample.value
        for family in text_string_to_metric_families(text)
        if family.name.startswith("modelcycle_log_")
        for sample in family.samples
    }


def _wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.1)


def _spooled_record_ids(files: list[Path]) -> set[str]:
    """The record ids in spool segments (a torn last line is ignored)."""
    ids: set[str] = set()
    for path in files:
        for line in path.read_bytes().splitlines():
            try:
                ids.update(row["record_id"] for row in orjson.loads(line))
            except orjson.JSONDecodeError:
                continue
    return ids


def _stored_record_ids(engine: Engine) -> set[str]:
    with engine.connect() as conn:
        return {str(r[0]) for r in conn.execute(sa.text("SELECT record_id FROM predictions"))}


# --- databases ------------------------------------------------------------------------------


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest, project_copy: Path) -> Iterator[str]:
    """The server's store: the project's SQLite file, or a fresh schema on PostgreSQL."""
    if request.param == "sqlite":
        url = Settings.load(project_copy).database_url
        assert url is not None
        assert url.startswith("sqlite")
        yield url
        return
    with request.getfixturevalue("pg_schema")() as url:
        yield url


@pytest.fixture
def outage_db(postgres_url: str) -> Iterator[tuple[str, Engine]]:
    """``(url, admin)``: a fresh PostgreSQL database, and a superuser engine on ``postgres``."""
    admin = sa.create_engine(
        sa.engine.make_url(postgres_url).set(database="postgres"), isolation_level="AUTOCOMMIT"
    )
    with admin.connect() as conn:
        superuser = conn.exec_driver_sql(
            "SELECT rolsuper FROM pg_roles WHERE rolname = current_user"
        ).scalar()
    if not superuser:
        admin.dispose()
        pytest.skip("the PostgreSQL test user is not a superuser (needed to cut connections)")
    name = f"mc_outage_{uuid.uuid4().hex[:10]}"
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    url = sa.engine.make_url(postgres_url).set(database=name)
    try:
        yield url.render_as_string(hide_password=False), admin
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


def _cut(admin: Engine, name: str) -> None:
    """Refuse new connections to database ``name`` and end the open ones."""
    with admin.connect() as conn:
        conn.exec_driver_sql(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
        conn.exec_driver_sql(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = %(name)s AND pid <> pg_backend_pid()",
            {"name": name},
        )


def _restore(admin: Engine, name: str) -> None:
    with admin.connect() as conn:
        conn.exec_driver_sql(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')


# --- kill -9 --------------------------------------------------------------------------------


def test_acknowledged_predictions_survive_kill_9(
    store_url: str,
    project_copy: Path,
    start_server: Callable[..., Any],
    rent_rows: Callable[..., list[dict[str, Any]]],
) -> None:
    env = {"MODELCYCLE_DATABASE_URL": store_url}
    server = start_server(project_copy, env=env)
    spool = Settings.load(project_copy).spool_dir
    engine = make_engine(store_url)
    blocker = engine.connect()
    try:
        load = Load(server.url, rent_rows(60, seed=3), "kill").start(threads=8)
        time.sleep(0.8)
        # For the last stretch another transaction holds the table, so the server's writer
        # is stuck mid-commit and the newest acknowledged predictions exist only in the spool.
        if engine.dialect.name == "sqlite":
            blocker.exec_driver_sql("BEGIN IMMEDIATE")
        else:
            blocker.exec_driver_sql("LOCK TABLE predictions IN EXCLUSIVE MODE")
        time.sleep(0.7)
        dead_files = sorted(spool.iterdir())
        server.kill()  # SIGKILL, mid-load
        load.stop()
        blocker.rollback()
        assert len(load.acked) > 50, f"too few requests answered: {load.failures[:3]}"
        assert any(f.name.endswith(".jsonl") for f in dead_files)
        assert any(f.name.endswith(".lock") for f in dead_files)
        only_spooled = _spooled_record_ids(dead_files) - _stored_record_ids(engine)
        assert only_spooled, "the test did not catch records that were only in the spool"

        successor = start_server(project_copy, env=env)  # its start replays the dead spool
        _assert_exactly_once(engine, load.acked)
        assert only_spooled <= _stored_record_ids(engine)  # unacknowledged but spooled too
        _wait_for(
            lambda: not any(f.exists() for f in dead_files), 10, "the dead spool to be deleted"
        )
        assert "replayed" in successor.output()
        # uvicorn re-raises SIGTERM after its graceful shutdown
        assert successor.stop() in (0, -signal.SIGTERM)
        assert "Application shutdown complete" in successor.output()
        assert sorted(spool.iterdir()) == []  # a clean stop leaves no spool behind
    finally:
        blocker.close()
        engine.dispose()


# --- database outage ------------------------------------------------------------------------


@pytest.mark.postgres
def test_predictions_go_on_through_a_database_outage_and_all_land_once(
    outage_db: tuple[str, Engine],
    project_copy: Path,
    start_server: Callable[..., Any],
    rent_rows: Callable[..., list[dict[str, Any]]],
) -> None:
    url, admin = outage_db
    name = str(sa.engine.make_url(url).database)
    server = start_server(project_copy, env={"MODELCYCLE_DATABASE_URL": url})
    engine = make_engine(url)
    load = Load(server.url, rent_rows(60, seed=5), "outage")
    try:
        for i in range(30):
            assert load.send(f"before-{i}", 1 + i % 3), load.failures
        _wait_for(lambda: _metrics(server)["modelcycle_log_spooled_records"] == 0, 10, "commit")
        assert _metrics(server)["modelcycle_log_database_up"] == 1

        engine.dispose()
        _cut(admin, name)
        load.start(threads=4)
        _wait_for(
            lambda: _metrics(server)["modelcycle_log_database_up"] == 0,
            10,
            "the server to notice the outage",
        )
        time.sleep(1.0)
        load.stop()
        assert not load.failures, load.failures[:5]  # predictions never waited for the database
        during = _metrics(server)
        assert during["modelcycle_log_database_up"] == 0
        assert during["modelcycle_log_spooled_records"] > 0
        assert during["modelcycle_log_dropped_records_total"] == 0
        ready = httpx.get(f"{server.url}/health/ready", timeout=5)
        assert ready.status_code == 200
        log = ready.json()["log"]
        assert log["database_ok"] is False
        assert log["spooled"] > 0
        assert log["last_error"]
        said = server.output()
        assert f"the database {name} is unavailable" in said or f"/{name} is unavailable" in said
        assert "not currently accepting connections" in said
        assert "predictions are spooled" in said

        _restore(admin, name)
        for i in range(20):
            assert load.send(f"after-{i}", 1 + i % 4), load.failures
        _assert_exactly_once(engine, load.acked, timeout=25)
        _wait_for(
            lambda: _metrics(server)["modelcycle_log_spooled_records"] == 0,
            10,
            "the spool to drain",
        )
        after = _metrics(server)
        assert after["modelcycle_log_database_up"] == 1
        assert after["modelcycle_log_queue_depth"] == 0
        assert after["modelcycle_log_written_records_total"] >= sum(load.acked.values())
        assert "the database is back" in server.output()
        phases = {rid.split("-")[0] for rid in load.acked}
        assert phases == {"before", "outage", "after"}
    finally:
        engine.dispose()
        server.stop()
