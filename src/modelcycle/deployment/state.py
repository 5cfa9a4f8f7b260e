"""Deployment state per registered model: pure transitions, persisted with optimistic concurrency.

A :class:`DeploymentState` says which version is stable, which (if any) is the candidate, the
strategy, the candidate's traffic weight and ramp step, and the status. Every change is a pure
function (:func:`start`, :func:`advance`, :func:`hold`, :func:`promote`, :func:`rollback`,
:func:`pause`, :func:`resume`) returning the new state and the :class:`Event` that records it;
:func:`commit` writes both in one transaction, and only if nobody changed the state since it was
read (``version_counter``) — of two conflicting commands, one wins and the other gets a
:class:`ConflictError`. Servers poll :func:`counter` (one indexed read) to notice changes.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from modelcycle.errors import ModelcycleError
from modelcycle.store.schema import deployment_events, deployments

Status = Literal[
    "idle", "canary", "ramping", "shadow", "blue_green", "promoted", "rolled_back", "failed"
]
Strategy = Literal["direct", "canary", "ramp", "blue-green", "shadow"]
ACTIVE: frozenset[str] = frozenset({"canary", "ramping", "shadow", "blue_green"})
"""Statuses with a candidate receiving (or shadowing) traffic."""


class DeploymentError(ModelcycleError):
    """A deployment command that cannot be applied to the current state."""


class ConflictError(DeploymentError):
    """The state changed between reading it and writing the change (another command won)."""


@dataclass(frozen=True)
class RolloutPlan:
    """How a candidate is rolled out (from the spec's ``[deployment]``, or command options).

    Attributes:
        canary_weight: Percent of traffic for a canary.
        steps: Ramp-up percentages, in order.
        step_seconds: Least time per ramp step.
        min_requests: Least candidate requests per step.
        failure_limit: Failed evaluations in a row before an automatic rollback.
        routing_key: Feature whose hash picks the arm (sticky routing); ``None``: random.
    """

    canary_weight: float = 10.0
    steps: tuple[float, ...] = (5.0, 25.0, 50.0, 100.0)
    step_seconds: float = 600.0
    min_requests: int = 200
    failure_limit: int = 2
    routing_key: str | None = None


@dataclass(frozen=True)
class DeploymentState:
    """Where one model's deployment stands.

    Attributes:
        model_name: The registered model.
        stable_version: The version answering by default (``None`` before the first deploy).
        candidate_version: The version being rolled out, if any.
        strategy: How it is rolled out.
        weight: Percent of traffic the candidate answers (0 for shadow: it never answers).
        step: Index of the current ramp step.
        status: See :data:`Status`.
        version_counter: Incremented by every change; guards concurrent writers.
        updated_at: When the state last changed.
        plan: The rollout plan in force.
        paused: A paused rollout keeps its weight but the controller does not move it.
        failures: Failed gate evaluations in a row.
        failed_requests: Candidate requests in the step when the last failure was counted: the
            next failure counts only on ``min_requests`` fresh requests beyond it.
        step_started_at: When the current step began.
        previous_version: The stable version before the last promotion (for rollback).
    """

    model_name: str
    stable_version: str | None = None
    candidate_version: str | None = None
    strategy: Strategy | None = None
    weight: float = 0.0
    step: int = 0
    status: Status = "idle"
    version_counter: int = 0
    updated_at: datetime | None = None
    plan: RolloutPlan = field(default_factory=RolloutPlan)
    paused: bool = False
    failures: int = 0
    failed_requests: int = 0
    step_started_at: datetime | None = None
    previous_version: str | None = None

    @property
    def active(self) -> bool:
        """Whether a candidate is being rolled out."""
        return self.status in ACTIVE and self.candidate_version is not None

    def seconds_in_step(self, now: datetime | None = None) -> float | None:
        """Time since the current step (or state) began."""
        if self.step_started_at is None:
            return None
        return max(0.0, ((now or datetime.now(UTC)) - self.step_started_at).total_seconds())

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready values (the CLI's ``--json`` and the admin API)."""
        return {
            "model": self.model_name,
            "status": self.status,
            "stable_version": self.stable_version,
            "candidate_version": self.candidate_version,
            "strategy": self.strategy,
            "weight": self.weight,
            "step": self.step,
            "steps": list(self.plan.steps),
            "paused": self.paused,
            "failures": self.failures,
            "failure_limit": self.plan.failure_limit,
            "step_started_at": _iso(self.step_started_at),
            "seconds_in_step": self.seconds_in_step(),
            "previous_version": self.previous_version,
            "version_counter": self.version_counter,
            "updated_at": _iso(self.updated_at),
            "plan": {**self.plan.__dict__, "steps": list(self.plan.steps)},
        }


@dataclass(frozen=True)
class Event:
    """One entry of the append-only history."""

    model_name: str
    action: str
    actor: str
    from_version: str | None
    to_version: str | None
    reason: str | None = None
    details: dict[str, Any] | None = None
    created_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready values."""
        return {
            "time": _iso(self.created_at),
            "actor": self.actor,
            "action": self.action,
            "from_version": self.from_version,
            "to_version": self.to_version,
            "reason": self.reason,
            "details": self.details,
        }


# ---------------------------------------------------------------------------- transitions


def start(
    state: DeploymentState,
    version: str,
    strategy: Strategy,
    plan: RolloutPlan,
    *,
    actor: str,
    now: datetime,
    reason: str | None = None,
) -> tuple[DeploymentState, Event]:
    """Begin deploying ``version`` with ``strategy``.

    ``direct`` (and the first deployment of a model, whatever the strategy) makes it stable at
    once; the others make it the candidate.

    Raises:
        DeploymentError: A rollout is already running, or ``version`` is already stable.
    """
    if state.active:
        raise DeploymentError(
            f"{state.model_name}: version {state.candidate_version} is being rolled out "
            f"({state.status})",
            f"finish it first: `modelcycle rollout promote|abort {state.model_name}`",
        )
    if version == state.stable_version:
        raise DeploymentError(
            f"{state.model_name}: version {version} is already the stable version",
            "deploy another version",
        )
    if strategy == "direct" or state.stable_version is None:
        new = replace(
            state,
            stable_version=version,
            candidate_version=None,
            strategy="direct",
            weight=0.0,
            step=0,
            status="promoted",
            plan=plan,
            paused=False,
            failures=0,
            failed_requests=0,
            step_started_at=now,
            previous_version=state.stable_version,
        )
        return new, _event(state, new, "deploy", actor, reason or f"direct deploy of v{version}")
    weight = {
        "canary": plan.canary_weight,
        "ramp": plan.steps[0],
        "blue-green": 100.0,
        "shadow": 0.0,
    }[strategy]
    status: Status = {
        "canary": "canary",
        "ramp": "ramping",
        "blue-green": "blue_green",
        "shadow": "shadow",
    }[strategy]  # type: ignore[assignment]
    new = replace(
        state,
        candidate_version=version,
        strategy=strategy,
        weight=weight,
        step=0,
        status=status,
        plan=plan,
        paused=False,
        failures=0,
        failed_requests=0,
        step_started_at=now,
    )
    why = reason or f"{strategy} of v{version} at {weight:g}%"
    return new, _event(state, new, "deploy", actor, why, {"strategy": strategy, "weight": weight})


def advance(
    state: DeploymentState, *, actor: str, now: datetime, reason: str, gates: dict[str, Any]
) -> tuple[DeploymentState, Event]:
    """Move a ramp to its next step (the caller promotes after the last one)."""
    _require_active(state, "advance")
    step = min(state.step + 1, len(state.plan.steps) - 1)
    new = replace(
        state,
        step=step,
        weight=state.plan.steps[step],
        failures=0,
        failed_requests=0,
        step_started_at=now,
    )
    return new, _event(state, new, "advance", actor, reason, {"gates": gates, "weight": new.weight})


def hold(
    state: DeploymentState, *, actor: str, reason: str, failed: bool, gates: dict[str, Any]
) -> tuple[DeploymentState, Event]:
    """Stay at this step; a failed evaluation counts towards the failure limit."""
    _require_active(state, "hold")
    new = replace(state, failures=state.failures + 1 if failed else state.failures)
    action = "gate_failed" if failed else "hold"
    return new, _event(state, new, action, actor, reason, {"gates": gates})


def promote(
    state: DeploymentState,
    *,
    actor: str,
    now: datetime,
    reason: str | None = None,
    gates: dict[str, Any] | None = None,
) -> tuple[DeploymentState, Event]:
    """Make the candidate the stable version; the old stable becomes the previous version."""
    _require_active(state, "promote")
    new = replace(
        state,
        stable_version=state.candidate_version,
        candidate_version=None,
        weight=0.0,
        status="promoted",
        paused=False,
        failures=0,
        failed_requests=0,
        step_started_at=now,
        previous_version=state.stable_version,
    )
    why = reason or f"v{state.candidate_version} promoted"
    return new, _event(state, new, "promote", actor, why, {"gates": gates} if gates else None)


def rollback(
    state: DeploymentState,
    *,
    actor: str,
    now: datetime,
    reason: str | None = None,
    to: str | None = None,
    action: str = "rollback",
    gates: dict[str, Any] | None = None,
) -> tuple[DeploymentState, Event]:
    """Stop the candidate at once, or (with no candidate) restore a previous stable version.

    Args:
        state: The current state.
        actor: Who asks (a user, ``controller``).
        now: The time of the change.
        reason: Why.
        to: The version to make stable (default: the previous stable version). Only without a
            running candidate.
        action: The event's action (``rollback``, ``abort``, ``auto_rollback``).
        gates: The gate values that caused it, for the history.

    Raises:
        DeploymentError: Nothing to roll back to.
    """
    if state.active and to is None:
        new = replace(
            state,
            candidate_version=None,
            weight=0.0,
            status="rolled_back",
            paused=False,
            failures=0,
            failed_requests=0,
            step_started_at=now,
        )
        why = reason or f"v{state.candidate_version} rolled back; v{state.stable_version} stays"
        details = {"candidate": state.candidate_version, **({"gates": gates} if gates else {})}
        return new, _event(state, new, action, actor, why, details)
    target = to or state.previous_version
    if target is None or target == state.stable_version:
        raise DeploymentError(
            f"{state.model_name}: there is no previous version to roll back to",
            f"name one: `modelcycle rollback {state.model_name} --to VERSION`",
        )
    new = replace(
        state,
        stable_version=target,
        candidate_version=None,
        weight=0.0,
        status="rolled_back",
        paused=False,
        failures=0,
        failed_requests=0,
        step_started_at=now,
        previous_version=state.stable_version,
    )
    why = reason or f"v{target} restored as the stable version"
    return new, _event(state, new, action, actor, why)


def pause(state: DeploymentState, *, actor: str) -> tuple[DeploymentState, Event]:
    """Freeze a rollout at its current weight (the controller will not move it)."""
    _require_active(state, "pause")
    new = replace(state, paused=True)
    return new, _event(state, new, "pause", actor, "paused at the current weight")


def resume(state: DeploymentState, *, actor: str, now: datetime) -> tuple[DeploymentState, Event]:
    """Let the controller move a paused rollout again (the step's clock restarts)."""
    _require_active(state, "resume")
    new = replace(state, paused=False, failures=0, failed_requests=0, step_started_at=now)
    return new, _event(state, new, "resume", actor, "resumed")


def fail(
    state: DeploymentState, *, actor: str, reason: str, version: str | None = None
) -> tuple[DeploymentState, Event]:
    """The candidate could not be deployed (e.g. its smoke test failed): stable keeps serving.

    Args:
        state: The current state.
        actor: Who found out.
        reason: What went wrong.
        version: The candidate that failed; when the state has moved on to another candidate
            meanwhile, nothing is changed (a newer rollout is not cancelled by an older failure).

    Raises:
        DeploymentError: ``version`` is no longer the candidate.
    """
    if version is not None and state.candidate_version != version:
        raise DeploymentError(
            f"{state.model_name}: v{version} is no longer the candidate "
            f"(now {state.candidate_version or 'none'})"
        )
    new = replace(state, candidate_version=None, weight=0.0, status="failed", paused=False)
    details = {"candidate": state.candidate_version}
    return new, _event(state, new, "failed", actor, reason, details)


def _require_active(state: DeploymentState, verb: str) -> None:
    if not state.active:
        raise DeploymentError(
            f"{state.model_name}: nothing to {verb}: no rollout is running (status {state.status})",
            f"start one with `modelcycle deploy {state.model_name} --version V`",
        )


def _event(
    old: DeploymentState,
    new: DeploymentState,
    action: str,
    actor: str,
    reason: str | None,
    details: dict[str, Any] | None = None,
) -> Event:
    before = old.candidate_version or old.stable_version
    after = new.candidate_version or new.stable_version
    if action in ("rollback", "abort", "auto_rollback", "failed"):
        before, after = old.candidate_version or old.stable_version, new.stable_version
    elif action == "promote":  # the stable version changes hands
        before, after = old.stable_version, new.stable_version
    return Event(old.model_name, action, actor, before, after, reason, details)


# ---------------------------------------------------------------------------- persistence


def load(conn: Connection, model_name: str) -> DeploymentState:
    """The stored state of ``model_name`` (an idle state if it was never deployed)."""
    row = (
        conn.execute(sa.select(deployments).where(deployments.c.model_name == model_name))
        .mappings()
        .first()
    )
    if row is None:
        return DeploymentState(model_name)
    extra = dict(row["state"] or {})
    plan = extra.get("plan") or {}
    return DeploymentState(
        model_name=model_name,
        stable_version=row["stable_version"],
        candidate_version=row["candidate_version"],
        strategy=row["strategy"],
        weight=float(row["weight"]),
        step=int(row["step"]),
        status=row["status"],
        version_counter=int(row["version_counter"]),
        updated_at=row["updated_at"],
        plan=RolloutPlan(**{**plan, "steps": tuple(plan.get("steps", RolloutPlan.steps))}),
        paused=bool(extra.get("paused", False)),
        failures=int(extra.get("failures", 0)),
        failed_requests=int(extra.get("failed_requests", 0)),
        step_started_at=_time(extra.get("step_started_at")),
        previous_version=extra.get("previous_version"),
    )


def counter(conn: Connection, model_name: str) -> int:
    """The state's version counter (0 when never deployed): what servers poll."""
    value = conn.execute(
        sa.select(deployments.c.version_counter).where(deployments.c.model_name == model_name)
    ).scalar()
    return int(value or 0)


def commit(
    conn: Connection, old: DeploymentState, new: DeploymentState, event: Event
) -> DeploymentState:
    """Write ``new`` and its event, if the stored state is still ``old``.

    Raises:
        ConflictError: Another command changed the state since ``old`` was read.
    """
    now = datetime.now(UTC)
    values = {
        "stable_version": new.stable_version,
        "candidate_version": new.candidate_version,
        "strategy": new.strategy,
        "weight": new.weight,
        "step": new.step,
        "status": new.status,
        "version_counter": old.version_counter + 1,
        "updated_at": now,
        "state": {
            "plan": {**new.plan.__dict__, "steps": list(new.plan.steps)},
            "paused": new.paused,
            "failures": new.failures,
            "failed_requests": new.failed_requests,
            "step_started_at": _iso(new.step_started_at),
            "previous_version": new.previous_version,
        },
    }
    changed = 0
    if old.version_counter == 0:  # never deployed: create the row (or find an idle one)
        insert = _insert_if_absent(conn).values(model_name=new.model_name, **values)
        # without preserve_rowcount, psycopg reports -1 rows for an INSERT
        inserted = conn.execute(insert.execution_options(preserve_rowcount=True))
        changed = inserted.rowcount
    if changed != 1:
        updated = conn.execute(
            sa.update(deployments)
            .where(deployments.c.model_name == new.model_name)
            .where(deployments.c.version_counter == old.version_counter)
            .values(**values)
        )
        changed = updated.rowcount
    if changed != 1:
        raise ConflictError(
            f"the deployment of {new.model_name} changed while this command ran "
            "(another command won)",
            f"check `modelcycle rollout status {new.model_name}` and try again if still needed",
        )
    _append(conn, event)
    return replace(new, version_counter=old.version_counter + 1, updated_at=now)


def record(conn: Connection, event: Event) -> None:
    """Append an event that does not change the state (e.g. a retrain decision).

    The model's deployment row is created (idle) if it does not exist, since events refer to it.
    """
    conn.execute(
        _insert_if_absent(conn).values(
            model_name=event.model_name,
            status="idle",
            version_counter=0,
            updated_at=event.created_at,
        )
    )
    _append(conn, event)


def _append(conn: Connection, event: Event) -> None:
    """Insert one history event."""
    conn.execute(
        sa.insert(deployment_events).values(
            model_name=event.model_name,
            created_at=event.created_at,
            actor=event.actor,
            action=event.action,
            from_version=event.from_version,
            to_version=event.to_version,
            reason=event.reason,
            details=event.details,
        )
    )


def history(conn: Connection, model_name: str, limit: int | None = None) -> list[Event]:
    """The model's events, oldest first (the newest ``limit`` when given)."""
    query = sa.select(deployment_events).where(deployment_events.c.model_name == model_name)
    query = query.order_by(deployment_events.c.created_at.desc(), deployment_events.c.id.desc())
    if limit is not None:
        query = query.limit(limit)
    rows = list(conn.execute(query).mappings())
    rows.reverse()
    return [
        Event(
            model_name=row["model_name"],
            action=row["action"],
            actor=row["actor"],
            from_version=row["from_version"],
            to_version=row["to_version"],
            reason=row["reason"],
            details=row["details"],
            created_at=row["created_at"],
        )
        for row in rows
    ]


def _insert_if_absent(conn: Connection) -> Any:
    from sqlalchemy.dialects import postgresql, sqlite

    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    return dialect.insert(deployments).on_conflict_do_nothing(index_elements=["model_name"])


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _time(value: Any) -> datetime | None:
    if value is None:
        return None
    parsed = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
