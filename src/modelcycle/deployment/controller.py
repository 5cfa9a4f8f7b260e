"""The ramp controller: evaluate running rollouts and apply the gates' decisions.

:func:`evaluate` reads a model's deployment state and the prediction-log window since its step
began, asks :func:`~modelcycle.deployment.rollout.decide`, and applies the decision with the
state's pure transitions: ``advance``, ``promote``, ``hold`` (recorded when a gate failed or a
run of failures ends; a quiet "keep waiting" is only logged, so the history is not one event per
evaluation) and ``auto_rollback`` — which also opens a critical ``deployment_gate`` alert in the
same transaction. :func:`run` repeats that for some models until it is stopped.

Several controllers may run against one store (two servers, a server and ``modelcycle rollout
watch``). The evaluation reads without locks; its write takes a lock — a PostgreSQL advisory
transaction lock (tried, not waited for), or SQLite's write lock (``BEGIN IMMEDIATE``) — and
re-reads the state's version counter: when another controller (or a person) changed the state
since it was read, this evaluation is dropped. So two controllers evaluating at once make one
transition, not two.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime

from loguru import logger
from sqlalchemy import text
from sqlalchemy.engine import Connection, Engine

from modelcycle.deployment import state as st
from modelcycle.deployment.rollout import Decision, GatePolicy, decide
from modelcycle.deployment.state import ConflictError, DeploymentState, Event
from modelcycle.deployment.stats import window_stats
from modelcycle.errors import ModelcycleError
from modelcycle.store.alerts import open_alert
from modelcycle.store.engine import store_errors

ACTOR = "controller"
ALERT_RULE = "deployment_gate"


def evaluate(
    engine: Engine,
    name: str,
    policy: GatePolicy,
    *,
    tracking_uri: str | None,
    now: datetime | None = None,
) -> Decision | None:
    """Evaluate ``name``'s running rollout once and apply the decision.

    The rollout's own plan (stored with the state when it started, command-line overrides
    included) sets the pace — step time, least requests, failure limit; ``policy`` sets the
    gates' thresholds.

    Args:
        engine: The operational store.
        name: The registered model.
        policy: The gates' thresholds.
        tracking_uri: The MLflow tracking URI whose aliases follow the state (``champion`` on a
            promotion); ``None`` leaves the aliases alone.
        now: The evaluation time (default: now); the window ends there.

    Returns:
        The decision, or ``None`` when no rollout is running, it is paused, or another
        controller or command changed the state while this one evaluated it.

    Raises:
        StoreError: The store cannot be read or written.
    """
    now = now or datetime.now(UTC)
    with store_errors(engine, "evaluating the rollout"), engine.connect() as conn:
        state = st.load(conn, name)
        if not state.active or state.paused or state.stable_version is None:
            return None
        assert state.candidate_version is not None  # active
        stats = window_stats(
            conn, name, state.stable_version, state.candidate_version, state.step_started_at, now
        )
    decision = decide(state, stats, policy.with_plan(state.plan), now)
    context = {"model": name, "model_version": state.candidate_version}
    if _quiet(state, decision):
        logger.bind(**context).debug("{}: {}", name, decision.reason)
        return decision
    try:
        with (
            store_errors(engine, "applying the rollout decision"),
            engine.connect() as conn,
            _controller_lock(conn, name) as locked,
        ):
            if not locked:
                logger.bind(**context).info("{}: another controller is evaluating; skipped", name)
                return None
            if st.counter(conn, name) != state.version_counter:
                logger.bind(**context).info(
                    "{}: the deployment changed meanwhile; evaluation dropped", name
                )
                return None
            new, event = _transition(state, decision, now)
            saved = st.commit(conn, state, new, event)
            if decision.kind == "rollback":
                _alert(conn, state, decision)
            conn.commit()
    except ConflictError:
        logger.bind(**context).info(
            "{}: the deployment changed meanwhile; evaluation dropped", name
        )
        return None
    level = "WARNING" if decision.kind == "rollback" or decision.failed else "INFO"
    logger.bind(**context).log(level, "{} {}: {}", name, event.action, decision.reason)
    if tracking_uri is not None:
        from modelcycle.deployment.commands import move_aliases

        move_aliases(state, saved, tracking_uri)
    return decision


def run(
    engine: Engine,
    names: Sequence[str],
    policy_for: Callable[[str], GatePolicy],
    *,
    tracking_uri: str | None,
    interval: float,
    stop: threading.Event,
) -> None:
    """Evaluate the rollouts of ``names`` every ``interval`` seconds until ``stop`` is set.

    An error while evaluating one model is logged and the loop goes on.

    Args:
        engine: The operational store.
        names: The registered models to watch.
        policy_for: The gate policy of a model.
        tracking_uri: Where the aliases live (``None``: leave them alone).
        interval: Seconds between rounds.
        stop: Set it to end the loop (it is checked while waiting, so it ends promptly).
    """
    logger.info("rollout controller watching {} every {:g} s", ", ".join(names), interval)
    while not stop.is_set():
        for name in names:
            if stop.is_set():
                break
            try:
                evaluate(engine, name, policy_for(name), tracking_uri=tracking_uri)
            except ModelcycleError as err:
                logger.bind(model=name).error("{}: rollout evaluation failed: {}", name, err)
            except Exception:
                logger.bind(model=name).exception("{}: rollout evaluation failed", name)
        stop.wait(interval)
    logger.info("rollout controller stopped")


# ----------------------------------------------------------------------------------- helpers


def _quiet(state: DeploymentState, decision: Decision) -> bool:
    """A hold that changes nothing in the state: log it, do not record it."""
    return decision.kind == "hold" and not decision.failed and decision.failures == state.failures


def _transition(
    state: DeploymentState, decision: Decision, now: datetime
) -> tuple[DeploymentState, Event]:
    gates = decision.gate_values()
    reason = decision.reason
    if decision.kind == "advance":
        return st.advance(state, actor=ACTOR, now=now, reason=reason, gates=gates)
    if decision.kind == "promote":
        return st.promote(state, actor=ACTOR, now=now, reason=reason, gates=gates)
    if decision.kind == "rollback":
        return st.rollback(
            state, actor=ACTOR, now=now, reason=reason, action="auto_rollback", gates=gates
        )
    new, event = st.hold(state, actor=ACTOR, reason=reason, failed=decision.failed, gates=gates)
    counted = decision.requests if decision.failed else state.failed_requests
    return replace(new, failures=decision.failures, failed_requests=counted), event


def _alert(conn: Connection, state: DeploymentState, decision: Decision) -> None:
    name, version = state.model_name, state.candidate_version
    open_alert(
        conn,
        rule=ALERT_RULE,
        model_name=name,
        model_version=version,
        severity="critical",
        message=decision.reason,
        details={"gates": decision.gate_values(), "stable_version": state.stable_version},
        dedup_key=f"deployment:{name}:{version}",
    )


def lock_key(name: str) -> int:
    """The PostgreSQL advisory lock key of ``name``'s controller (a signed 64-bit hash)."""
    digest = hashlib.blake2b(f"modelcycle-controller:{name}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


@contextmanager
def _controller_lock(conn: Connection, name: str) -> Iterator[bool]:
    """Hold the controller lock for ``conn``'s transaction; yields whether it was taken.

    PostgreSQL: ``pg_try_advisory_xact_lock`` (a busy lock means another controller is acting:
    skip). SQLite: ``BEGIN IMMEDIATE`` takes the database's write lock, waiting for other
    writers up to the busy timeout. Whatever was not committed is rolled back on the way out.
    """
    try:
        if conn.dialect.name == "sqlite":
            conn.exec_driver_sql("BEGIN IMMEDIATE")
            yield True
        else:
            taken = conn.execute(
                text("SELECT pg_try_advisory_xact_lock(:key)"), {"key": lock_key(name)}
            ).scalar()
            yield bool(taken)
    finally:
        conn.rollback()
