"""Deployment commands: read the state, apply one transition, commit it, move the aliases.

The CLI, the server's admin API and the ramp controller all act through these functions, so a
change means the same thing wherever it comes from. Aliases follow the state: a candidate holds
``challenger``; a promotion moves ``champion`` to it and ``previous`` to the old stable version;
a rollback to an earlier version moves ``champion`` back.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from loguru import logger
from sqlalchemy.engine import Engine

from modelcycle.config.spec import DeploymentSpec, parse_duration
from modelcycle.deployment import state as st
from modelcycle.deployment.state import DeploymentState, Event, RolloutPlan, Strategy
from modelcycle.registry.store import CHALLENGER, CHAMPION, PREVIOUS, resolve_version, set_alias
from modelcycle.store.engine import store_errors

Transition = Callable[[DeploymentState], tuple[DeploymentState, Event]]


def plan_from_spec(spec: DeploymentSpec, **overrides: Any) -> RolloutPlan:
    """The rollout plan of the spec's ``[deployment]``, with command-line overrides applied."""
    values: dict[str, Any] = {
        "canary_weight": spec.canary_weight,
        "steps": tuple(spec.steps),
        "step_seconds": parse_duration(spec.step_duration),
        "min_requests": spec.min_requests,
        "failure_limit": spec.failure_limit,
        "routing_key": spec.routing_key,
    }
    values.update({k: v for k, v in overrides.items() if v is not None})
    values["steps"] = tuple(values["steps"])
    return RolloutPlan(**values)


def status(engine: Engine, name: str) -> DeploymentState:
    """The current state of ``name``'s deployment."""
    with store_errors(engine, "reading the deployment state"), engine.connect() as conn:
        return st.load(conn, name)


def history(engine: Engine, name: str, limit: int | None = None) -> list[Event]:
    """``name``'s deployment events, oldest first."""
    with store_errors(engine, "reading the deployment history"), engine.connect() as conn:
        return st.history(conn, name, limit)


def apply(
    engine: Engine, name: str, change: Transition, *, tracking_uri: str | None = None
) -> tuple[DeploymentState, Event]:
    """Apply one transition atomically, then move the aliases to match the new state.

    Raises:
        DeploymentError: The transition does not fit the state.
        ConflictError: Another command changed the state meanwhile.
    """
    with store_errors(engine, "changing the deployment"), engine.begin() as conn:
        old = st.load(conn, name)
        new, event = change(old)
        saved = st.commit(conn, old, new, event)
    logger.bind(model=name).info("{} {}: {}", name, event.action, event.reason)
    if tracking_uri is not None:
        move_aliases(old, saved, tracking_uri)
    return saved, event


def move_aliases(old: DeploymentState, new: DeploymentState, tracking_uri: str) -> None:
    """Point ``champion``, ``challenger`` and ``previous`` at what the state says."""
    name = new.model_name
    if new.candidate_version is not None and new.candidate_version != old.candidate_version:
        set_alias(name, int(new.candidate_version), CHALLENGER, tracking_uri=tracking_uri)
    if new.stable_version is not None and new.stable_version != old.stable_version:
        set_alias(name, int(new.stable_version), CHAMPION, tracking_uri=tracking_uri)
        before = new.previous_version  # also right for a first deploy seeded from the champion
        if before is not None and before != new.stable_version:
            set_alias(name, int(before), PREVIOUS, tracking_uri=tracking_uri)


def deploy(
    engine: Engine,
    name: str,
    version: str,
    strategy: Strategy,
    plan: RolloutPlan,
    *,
    tracking_uri: str,
    actor: str,
    reason: str | None = None,
) -> tuple[DeploymentState, Event]:
    """Start rolling out ``version`` (checked to exist in the registry first).

    A model never deployed before starts from its current champion as the stable version.
    """
    resolve_version(f"{name}/{version}", tracking_uri=tracking_uri)  # unknown → clear error
    now = datetime.now(UTC)

    def change(state: DeploymentState) -> tuple[DeploymentState, Event]:
        if state.stable_version is None:
            champion = _champion(name, tracking_uri)
            if champion is not None and champion != version:
                state = DeploymentState(
                    name, stable_version=champion, version_counter=state.version_counter
                )
        return st.start(state, version, strategy, plan, actor=actor, now=now, reason=reason)

    return apply(engine, name, change, tracking_uri=tracking_uri)


def _champion(name: str, tracking_uri: str) -> str | None:
    from modelcycle.registry.manifest import RegistryError

    try:
        return str(resolve_version(f"{name}@{CHAMPION}", tracking_uri=tracking_uri))
    except RegistryError:
        return None


def promote(
    engine: Engine, name: str, *, tracking_uri: str, actor: str, reason: str | None = None
) -> tuple[DeploymentState, Event]:
    """Make the running candidate the stable version (``champion``) now."""
    now = datetime.now(UTC)
    return apply(
        engine,
        name,
        lambda state: st.promote(state, actor=actor, now=now, reason=reason),
        tracking_uri=tracking_uri,
    )


def rollback(
    engine: Engine,
    name: str,
    *,
    tracking_uri: str,
    actor: str,
    to: str | None = None,
    reason: str | None = None,
    action: str = "rollback",
) -> tuple[DeploymentState, Event]:
    """Stop the candidate at once, or restore the previous (or ``to``) stable version."""
    if to is not None:
        resolve_version(f"{name}/{to}", tracking_uri=tracking_uri)
    now = datetime.now(UTC)
    return apply(
        engine,
        name,
        lambda state: st.rollback(state, actor=actor, now=now, reason=reason, to=to, action=action),
        tracking_uri=tracking_uri,
    )


def abort(engine: Engine, name: str, *, actor: str) -> tuple[DeploymentState, Event]:
    """Stop the running rollout; the stable version answers everything again."""
    now = datetime.now(UTC)
    return apply(
        engine,
        name,
        lambda state: st.rollback(state, actor=actor, now=now, reason="aborted", action="abort"),
    )


def pause(engine: Engine, name: str, *, actor: str) -> tuple[DeploymentState, Event]:
    """Freeze the rollout at its current weight."""
    return apply(engine, name, lambda state: st.pause(state, actor=actor))


def resume(engine: Engine, name: str, *, actor: str) -> tuple[DeploymentState, Event]:
    """Let the controller move a paused rollout again."""
    now = datetime.now(UTC)
    return apply(engine, name, lambda state: st.resume(state, actor=actor, now=now))
