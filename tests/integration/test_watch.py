"""``modelcycle watch``: one leader per model (SQLite file lock, PostgreSQL advisory lock), two
watchers on one project, and a clean stop of the real command on SIGTERM.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from modelcycle.config.settings import Settings
from modelcycle.config.spec import load_project
from modelcycle.data.examples import rent_apartments
from modelcycle.registry.store import load_model
from modelcycle.retraining.watch import Leadership, Watcher
from modelcycle.store import make_engine, upgrade
from modelcycle.store.monitoring import recent_runs

# ------------------------------------------------------------------------------- leadership


@pytest.fixture
def two_engines(db_url: str) -> Iterator[tuple[sa.Engine, sa.Engine]]:
    """Two engines on the same database (as two watcher processes would have)."""
    first, second = make_engine(db_url), make_engine(db_url)
    yield first, second
    first.dispose()
    second.dispose()


def unique_model() -> str:
    """A model name of this test alone: advisory locks are shared by the whole database."""
    return f"rent_{uuid.uuid4().hex[:10]}"


def test_one_leader_per_model(two_engines: tuple[sa.Engine, sa.Engine], tmp_path: Path) -> None:
    one, two = two_engines
    name, locks = unique_model(), tmp_path / "locks"
    first, second = Leadership(one, name, locks), Leadership(two, name, locks)
    other_model = Leadership(two, unique_model(), locks)
    try:
        assert first.acquire()
        assert first.held
        assert first.acquire()  # already leading: still true, nothing changes
        assert not second.acquire()
        assert not second.held
        assert other_model.acquire()  # another model has its own leader

        first.release()
        assert not first.held
        assert second.acquire()
        assert not first.acquire()  # now the roles are swapped

        second.release()
        assert first.acquire()
    finally:
        for lead in (first, second, other_model):
            lead.release()


HOLD_LOCK = """
import sys
from pathlib import Path
from modelcycle.retraining.watch import Leadership
from modelcycle.store import make_engine
lead = Leadership(make_engine(sys.argv[1]), sys.argv[2], Path(sys.argv[3]))
print("held" if lead.acquire() else "refused", flush=True)
sys.stdin.read()
"""


def test_a_dead_leaders_lock_is_free_again(
    two_engines: tuple[sa.Engine, sa.Engine], db_url: str, tmp_path: Path
) -> None:
    """Another process leads; killed with SIGKILL (no cleanup at all), its lock goes with it."""
    name, locks = unique_model(), tmp_path / "locks"
    process = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, db_url, name, str(locks)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    mine = Leadership(two_engines[0], name, locks)
    try:
        assert process.stdout is not None
        line = process.stdout.readline().strip()
        if line != "held":
            process.kill()
            _, errors = process.communicate()
            raise AssertionError(f"the other process did not lead ({line!r}):\n{errors}")
        assert not mine.acquire()
        process.kill()
        process.wait(10)
        deadline = time.monotonic() + 10  # PostgreSQL notices the closed connection at once
        while not mine.acquire() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert mine.held
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        mine.release()


# ---------------------------------------------------------------------- watchers on a project


def edit_spec(root: Path) -> None:
    """Monitor every second over the last hour, evaluate rollouts every second, no retraining."""
    path = root / "modelcycle.toml"
    text = path.read_text(encoding="utf-8")
    for old, new in (
        ('evaluation_interval = "15s"', 'evaluation_interval = "1s"'),
        ('every = "5m"', 'every = "1s"'),
        ("auto = true", "auto = false"),
    ):
        assert old in text, f"{old!r} is not in the spec template any more"
        text = text.replace(old, new, 1)
    path.write_text(text, encoding="utf-8")


@pytest.fixture
def watched(project_copy: Path, logs_traffic: Any) -> tuple[Path, str]:
    """The project copy with a fast watch spec, a migrated store and 400 rows of recent traffic.

    Returns the project folder and its database URL.
    """
    edit_spec(project_copy)
    settings = Settings.load(project_copy)
    assert settings.database_url is not None
    assert settings.mlflow_tracking_uri is not None
    upgrade(settings.database_url)
    engine = make_engine(settings.database_url)
    model = load_model("rent/1", tracking_uri=settings.mlflow_tracking_uri)
    frame = rent_apartments(400, seed=21, messy=False)
    start = datetime.now(UTC) - timedelta(minutes=50)
    logs_traffic(engine, model, frame, start=start, seconds=2400, labelled=0.5, seed=21)
    engine.dispose()
    return project_copy, settings.database_url


def stored_runs(url: str) -> int:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return len(recent_runs(conn, "rent", limit=100_000))
    finally:
        engine.dispose()


def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout} s")
        time.sleep(0.2)


@pytest.mark.slow
def test_two_watchers_one_leads_and_the_other_takes_over(watched: tuple[Path, str]) -> None:
    root, url = watched
    project, settings = load_project(root), Settings.load(root)
    engines = [make_engine(url), make_engine(url)]
    watchers = [Watcher(project, settings, engine) for engine in engines]
    stops = [threading.Event(), threading.Event()]
    threads = [
        threading.Thread(target=w.run, args=(s,), name=f"watcher-{i}", daemon=True)
        for i, (w, s) in enumerate(zip(watchers, stops, strict=True))
    ]
    try:
        for thread in threads:
            thread.start()
        started = time.monotonic()
        # a few runs, and longer than a standby waits between its tries to lead (5 s)
        wait_for(
            lambda: max(w.runs for w in watchers) >= 3 and time.monotonic() - started > 6,
            60,
            "three monitoring runs",
        )
        runs = sorted(w.runs for w in watchers)
        assert runs[0] == 0, f"both watchers ran: {runs}"
        assert runs[1] >= 3
        lead = 0 if watchers[0].runs else 1
        leader, standby = watchers[lead], watchers[1 - lead]

        # the leader stops at once, releasing the lock; the standby takes over
        stopped_at = time.monotonic()
        stops[lead].set()
        threads[lead].join(10)
        assert not threads[lead].is_alive(), "the leader did not stop"
        assert time.monotonic() - stopped_at < 10
        assert stored_runs(url) == leader.runs  # every run the leader counted is stored
        wait_for(lambda: standby.runs >= 1, 30, "the standby taking over")

        stopped_at = time.monotonic()
        stops[1 - lead].set()
        threads[1 - lead].join(10)
        assert not threads[1 - lead].is_alive(), "the new leader did not stop"
        assert time.monotonic() - stopped_at < 10
        assert stored_runs(url) == leader.runs + standby.runs
        assert (root / "reports" / "monitor.html").is_file()
    finally:
        for stop in stops:
            stop.set()
        for thread in threads:
            thread.join(30)
        for engine in engines:
            engine.dispose()


# ------------------------------------------------------------------------------ the real CLI


def start_watch(root: Path, log: Path) -> subprocess.Popen[bytes]:
    """``python -m modelcycle -p ROOT watch`` in a clean environment (no ``MODELCYCLE_*``)."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("MODELCYCLE_")}
    with log.open("wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "modelcycle", "-p", str(root), "watch"],
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**base, "COLUMNS": "200"},
        )


def wait_for_run(process: subprocess.Popen[bytes], url: str, runs: int, log: Path) -> None:
    """Until at least ``runs`` monitoring runs are stored; fails early if the watch exits."""
    deadline = time.monotonic() + 90
    while stored_runs(url) < runs:
        if process.poll() is not None:
            raise AssertionError(f"the watch exited early:\n{log.read_text(errors='replace')}")
        if time.monotonic() > deadline:
            raise AssertionError(f"no monitoring run in 90 s:\n{log.read_text(errors='replace')}")
        time.sleep(0.3)


def stop_watch(process: subprocess.Popen[bytes], log: Path) -> tuple[int, float, str]:
    """SIGTERM; the exit code, the seconds it took and the output."""
    stopped_at = time.monotonic()
    process.send_signal(signal.SIGTERM)
    try:
        code = process.wait(15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        raise AssertionError(
            f"the watch did not stop within 15 s of SIGTERM:\n{log.read_text(errors='replace')}"
        ) from None
    return code, time.monotonic() - stopped_at, log.read_text(errors="replace")


@pytest.mark.slow
def test_watch_command_stops_cleanly_on_sigterm_and_releases_the_lock(
    watched: tuple[Path, str], tmp_path: Path
) -> None:
    root, url = watched
    first_log, second_log = tmp_path / "watch-1.log", tmp_path / "watch-2.log"
    first = start_watch(root, first_log)
    second: subprocess.Popen[bytes] | None = None
    try:
        wait_for_run(first, url, 1, first_log)
        code, seconds, output = stop_watch(first, first_log)
        assert code == 0, output
        assert seconds < 15
        assert "Watching rent" in output
        assert "Watch stopped after" in output
        assert "Traceback" not in output
        made = stored_runs(url)
        assert f"Watch stopped after {made} monitoring runs." in output

        # the lock went with it: a new watch leads and monitors at once
        second = start_watch(root, second_log)
        wait_for_run(second, url, made + 1, second_log)
        code, _, output = stop_watch(second, second_log)
        assert code == 0, output
        assert "this watcher leads" in output
        assert "standing by" not in output
        assert "Watch stopped after" in output
    finally:
        for process in (first, second):
            if process is not None and process.poll() is None:
                process.kill()
                process.wait()
