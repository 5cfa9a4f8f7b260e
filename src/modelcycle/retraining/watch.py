"""``modelcycle watch``: one process that keeps a project's model healthy on its own.

Every tick the leader runs what is due: the rollout controller (every
``deployment.evaluation_interval``), a monitoring run (every ``monitoring.every``, which
records alerts and rewrites ``reports/monitor.html``), and after each monitoring run the
retraining triggers; a retrain that should start runs on a background thread, so the controller
keeps driving rollouts meanwhile.

Only one watcher acts per model: a database lock elects the leader (a PostgreSQL session advisory
lock held on its own connection, or on SQLite — a single machine — an exclusive file lock beside
the database). The others wait on standby and take over when the leader stops or dies.

Stopping (SIGINT / SIGTERM sets the ``stop`` event) ends the loop after the step in progress (a
monitoring run finishes first); a running retrain is abandoned at its next tuning trial or step,
recording ``retrain_abandoned``: nothing is left half-written (the store changes are single
transactions, a model is registered whole or not).
"""

from __future__ import annotations

import hashlib
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from loguru import logger
from sqlalchemy.engine import Engine

from modelcycle.config.spec import parse_duration
from modelcycle.retraining.loop import RetrainResult, retrain, retrain_decision
from modelcycle.retraining.triggers import RetrainDecision

if TYPE_CHECKING:
    from modelcycle.config.settings import Settings
    from modelcycle.config.spec import Project
    from modelcycle.monitoring.run import RunResult

TICK_SECONDS = 1.0
"""How often the leader checks what is due (and a standby whether it can lead)."""
STANDBY_SECONDS = 5.0
"""How often a standby watcher tries to become the leader."""


class Leadership:
    """The lock that makes one watcher the leader of a model.

    Args:
        engine: The operational store (PostgreSQL: an advisory lock on its own connection).
        name: The model: one leader per model.
        lock_dir: Where SQLite's lock file lives (beside the database).
    """

    def __init__(self, engine: Engine, name: str, lock_dir: Path) -> None:
        self.engine = engine
        self.name = name
        self.lock_path = lock_dir / f"watch-{name}.lock"
        self.held = False
        self._connection: sa.Connection | None = None
        self._file: Any = None

    @property
    def key(self) -> int:
        """The advisory lock's 63-bit key, from the model name."""
        digest = hashlib.sha256(f"modelcycle.watch:{self.name}".encode()).digest()
        return int.from_bytes(digest[:8], "big") & 0x7FFF_FFFF_FFFF_FFFF

    def acquire(self) -> bool:
        """Try to become the leader without waiting; True when this watcher leads."""
        if self.held:
            return True
        if self.engine.dialect.name == "postgresql":
            connection = self.engine.connect()
            got = connection.execute(sa.text("SELECT pg_try_advisory_lock(:k)"), {"k": self.key})
            if got.scalar():
                connection.commit()
                self._connection, self.held = connection, True
            else:
                connection.close()
            return self.held
        import fcntl

        self.lock_path.parent.mkdir(parents=True, exist_ok=True)
        handle = self.lock_path.open("a+")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.close()
            return False
        self._file, self.held = handle, True
        return True

    def release(self) -> None:
        """Stop leading (the lock goes with the connection or file, also if the process dies)."""
        if self._connection is not None:
            try:
                self._connection.execute(sa.text("SELECT pg_advisory_unlock(:k)"), {"k": self.key})
                self._connection.commit()
            finally:
                self._connection.close()
                self._connection = None
        if self._file is not None:
            self._file.close()  # closing the file drops the flock
            self._file = None
        self.held = False


@dataclass
class Watcher:
    """The watch loop of one project (see the module docstring).

    Attributes:
        project: The project.
        settings: Its settings.
        engine: The operational store.
        budget: Tuning budget of automatic retrains (default: the spec's).
        on_run: Called with each monitoring :class:`RunResult`.
        on_decision: Called with each retraining decision.
        on_retrain: Called with each finished :class:`RetrainResult`.
    """

    project: Project
    settings: Settings
    engine: Engine
    budget: str | None = None
    on_run: Any = None
    on_decision: Any = None
    on_retrain: Any = None
    retrains: list[RetrainResult] = field(default_factory=list)
    runs: int = 0
    _due: dict[str, float] = field(default_factory=dict)
    _thread: threading.Thread | None = None
    _last_skip: tuple[str | None, str | None] | None = None

    def run(self, stop: threading.Event) -> None:
        """Lead (or stand by) until ``stop`` is set; then finish cleanly."""
        from modelcycle.monitoring.jobs import MonitorJob

        name = self.project.spec.name
        lock_dir = self.settings.state_dir
        leader = Leadership(self.engine, name, lock_dir)
        job = MonitorJob(self.engine, self.settings, self.project, name)
        waiting_logged = False
        try:
            while not stop.is_set():
                if not leader.acquire():
                    if not waiting_logged:
                        logger.info("{}: another watcher leads; standing by", name)
                        waiting_logged = True
                    stop.wait(STANDBY_SECONDS)
                    continue
                if waiting_logged or not self._due:
                    logger.info("{}: this watcher leads", name)
                    waiting_logged = False
                self._tick(job, stop)
                stop.wait(TICK_SECONDS)
        finally:
            stop.set()  # also on Ctrl+C: the retrain thread stops at its next step
            if self._thread is not None and self._thread.is_alive():
                logger.info("{}: waiting for the retrain to stop at its next step", name)
                self._thread.join()
            leader.release()

    def _is_due(self, what: str, every: float) -> bool:
        now = time.monotonic()
        if now < self._due.get(what, 0.0):
            return False
        self._due[what] = now + every
        return True

    def _tick(self, job: Any, stop: threading.Event) -> None:
        spec = self.project.spec
        if self._is_due("controller", parse_duration(spec.deployment.evaluation_interval)):
            self._guarded("rollout evaluation", self._control)
        if self._is_due("monitor", parse_duration(spec.monitoring.every)):
            result = self._guarded("monitoring run", lambda: self._monitor(job))
            if result is not None:
                self.runs += 1
                if self.on_run is not None:
                    self.on_run(result)
                self._guarded("retraining triggers", lambda: self._maybe_retrain(job, stop))

    def _guarded(self, what: str, step: Any) -> Any:
        from modelcycle.errors import ModelcycleError

        try:
            return step()
        except ModelcycleError as err:
            logger.error("{} failed: {}", what, err)
        except Exception:
            logger.exception("{} failed", what)
        return None

    def _control(self) -> None:
        from modelcycle.deployment import controller
        from modelcycle.deployment.rollout import GatePolicy

        policy = GatePolicy.from_spec(self.project.spec.deployment)
        uri = self.settings.mlflow_tracking_uri
        controller.evaluate(self.engine, self.project.spec.name, policy, tracking_uri=uri)

    def _monitor(self, job: Any) -> RunResult:
        from modelcycle.monitoring.jobs import run_job
        from modelcycle.monitoring.run import resolve_window

        window = resolve_window(self.project.spec.monitoring.window, None)
        return run_job(job, window, report_path=self.project.root / "reports" / "monitor.html")

    def decide(self, job: Any, now: datetime | None = None) -> RetrainDecision:
        """The retraining decision now (reads the store and the registry)."""
        running = self._thread is not None and self._thread.is_alive()
        spec = self.project.spec
        return retrain_decision(
            self.engine, spec.name, spec.retraining, job.tracking_uri, now=now, running=running
        )

    def _maybe_retrain(self, job: Any, stop: threading.Event) -> None:
        decision = self.decide(job)
        if self.on_decision is not None:
            self.on_decision(decision)
        if not decision.retrain:
            # recorded once per (trigger, block): the reason's ages change every round
            skip = (decision.trigger, decision.blocked_by)
            if decision.trigger is not None and skip != self._last_skip:
                self._last_skip = skip
                self._skipped(decision)
            return
        self._last_skip = None

        def work() -> None:
            result = self._guarded(
                "retrain",
                lambda: retrain(
                    self.project,
                    self.settings,
                    self.engine,
                    reason=decision.reason,
                    actor="watch",
                    budget=self.budget,
                    stop=stop,
                ),
            )
            if result is not None:
                self.retrains.append(result)
                if self.on_retrain is not None:
                    self.on_retrain(result)

        self._thread = threading.Thread(target=work, name="modelcycle-retrain", daemon=True)
        self._thread.start()

    def _skipped(self, decision: RetrainDecision) -> None:
        from modelcycle.deployment import state as st

        event = st.Event(
            model_name=self.project.spec.name,
            action="retrain_skipped",
            actor="watch",
            from_version=None,
            to_version=None,
            reason=decision.reason,
            details={"trigger": decision.trigger, "blocked_by": decision.blocked_by},
        )
        with self.engine.begin() as conn:
            st.record(conn, event)
        logger.info("{}: retrain skipped — {}", self.project.spec.name, decision.reason)
