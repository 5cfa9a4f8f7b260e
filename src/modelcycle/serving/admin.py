"""The admin API: the deployment commands over HTTP, for remote use (admin API key required).

The same operations as ``modelcycle deploy / rollout / rollback / deployments history``, through
:mod:`modelcycle.deployment.commands`. With no admin key configured every endpoint answers 403
saying how to set one: the admin API is never open by default. After a change, the worker that
took it applies the new routing at once; the others within ``deployment_poll_seconds``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, Literal

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.engine import Engine

from modelcycle.deployment import commands
from modelcycle.deployment.state import (
    ConflictError,
    DeploymentError,
    DeploymentState,
    Event,
    Strategy,
)
from modelcycle.errors import ModelcycleError
from modelcycle.serving.runtime import ApiError, Serving


def _admin_only(request: Request) -> None:
    """Check the admin key before anything else (a bad body from a stranger is a 401, not 422)."""
    serving: Serving = request.app.state.serving
    serving.require("admin", request.headers)


router = APIRouter(prefix="/admin/deployments", tags=["admin"], dependencies=[Depends(_admin_only)])


class DeployRequest(BaseModel):
    """Start a rollout; omitted options come from the spec's ``[deployment]``."""

    model_config = ConfigDict(extra="forbid")

    version: str = Field(min_length=1, max_length=64)
    strategy: Strategy | None = None
    weight: float | None = Field(default=None, gt=0, lt=100, description="Canary percent.")
    steps: list[float] | None = Field(default=None, description="Ramp percentages.")
    step_duration: str | None = Field(default=None, description="'30s', '10m'.")
    min_requests: int | None = Field(default=None, ge=1)
    failure_limit: int | None = Field(default=None, ge=1)
    routing_key: str | None = None
    reason: str | None = Field(default=None, max_length=1000)


class RollbackRequest(BaseModel):
    """Roll back: stop the candidate, or restore ``to`` (default: the previous version)."""

    model_config = ConfigDict(extra="forbid")

    to: str | None = Field(default=None, max_length=64)
    reason: str | None = Field(default=None, max_length=1000)


def _serving(request: Request, name: str) -> Serving:
    serving: Serving = request.app.state.serving
    if name != serving.model_name:
        raise ApiError(404, f"unknown model {name!r}: this server serves {serving.model_name!r}")
    if serving.engine is None:
        raise ApiError(503, "the server is still starting", "retry shortly")
    return serving


async def _run(serving: Serving, work: Callable[[], Any]) -> Any:
    """Run a deployment command off the event loop; user errors become 4xx answers."""
    try:
        result = await asyncio.to_thread(work)
    except ConflictError as err:
        raise ApiError(409, err.message, err.hint) from None
    except DeploymentError as err:
        raise ApiError(409, err.message, err.hint) from None
    except ModelcycleError as err:
        raise ApiError(400, err.message, err.hint) from None
    await serving.refresh(force=True)  # this worker routes the new way at once
    return result


def _stores(serving: Serving) -> tuple[Engine, str]:
    """The operational store and the MLflow store of a started server."""
    engine, uri = serving.engine, serving.settings.mlflow_tracking_uri
    assert engine is not None
    assert uri is not None
    return engine, uri


def _actor(request: Request) -> str:
    client = request.client.host if request.client else "unknown"
    return f"admin-api@{client}"


@router.get("/{name}", summary="The deployment state of a model.")
async def status(request: Request, name: str) -> dict[str, Any]:
    """Stable and candidate versions, strategy, weight, step, status."""
    serving = _serving(request, name)
    assert serving.engine is not None
    state = await asyncio.to_thread(commands.status, serving.engine, name)
    return state.as_dict()


@router.get("/{name}/history", summary="The deployment history of a model.")
async def history(request: Request, name: str, limit: int = 100) -> dict[str, Any]:
    """Every event, oldest first (the newest ``limit``)."""
    serving = _serving(request, name)
    assert serving.engine is not None
    events = await asyncio.to_thread(commands.history, serving.engine, name, max(1, limit))
    return {"model": name, "events": [e.as_dict() for e in events]}


@router.post("/{name}/deploy", summary="Start rolling out a version.")
async def deploy(request: Request, name: str, body: DeployRequest) -> dict[str, Any]:
    """Deploy ``version`` with a strategy (canary, ramp, blue-green, shadow or direct)."""
    from modelcycle.config.spec import DeploymentSpec, load_project

    serving = _serving(request, name)
    try:
        spec = load_project(serving.settings.project_dir).spec.deployment
    except ModelcycleError:
        spec = DeploymentSpec()
    try:
        plan = commands.plan_from_spec(
            spec,
            canary_weight=body.weight,
            steps=body.steps,
            step_seconds=_seconds(body.step_duration),
            min_requests=body.min_requests,
            failure_limit=body.failure_limit,
            routing_key=body.routing_key,
        )
    except (TypeError, ValueError) as err:
        raise ApiError(422, f"invalid rollout options: {err}") from None
    engine, uri = _stores(serving)
    state, event = await _run(
        serving,
        lambda: commands.deploy(
            engine,
            name,
            body.version,
            body.strategy or spec.strategy,
            plan,
            tracking_uri=uri,
            actor=_actor(request),
            reason=body.reason,
        ),
    )
    return {"state": state.as_dict(), "event": event.as_dict()}


Action = Literal["promote", "pause", "resume", "abort"]


async def _simple(request: Request, name: str, action: Action) -> dict[str, Any]:
    serving = _serving(request, name)
    (engine, uri), actor = _stores(serving), _actor(request)
    work: dict[Action, Callable[[], tuple[DeploymentState, Event]]] = {
        "promote": lambda: commands.promote(engine, name, tracking_uri=uri, actor=actor),
        "pause": lambda: commands.pause(engine, name, actor=actor),
        "resume": lambda: commands.resume(engine, name, actor=actor),
        "abort": lambda: commands.abort(engine, name, actor=actor),
    }
    state, event = await _run(serving, work[action])
    return {"state": state.as_dict(), "event": event.as_dict()}


@router.post("/{name}/promote", summary="Make the candidate the stable version now.")
async def promote(request: Request, name: str) -> dict[str, Any]:
    """Promote the running candidate (``champion`` moves, the old one becomes ``previous``)."""
    return await _simple(request, name, "promote")


@router.post("/{name}/pause", summary="Freeze the rollout at its current weight.")
async def pause(request: Request, name: str) -> dict[str, Any]:
    """Pause the controller for this rollout."""
    return await _simple(request, name, "pause")


@router.post("/{name}/resume", summary="Let the controller move the rollout again.")
async def resume(request: Request, name: str) -> dict[str, Any]:
    """Resume a paused rollout."""
    return await _simple(request, name, "resume")


@router.post("/{name}/abort", summary="Stop the rollout; stable answers everything.")
async def abort(request: Request, name: str) -> dict[str, Any]:
    """Abort the running rollout."""
    return await _simple(request, name, "abort")


@router.post("/{name}/rollback", summary="Roll back at once.")
async def rollback(request: Request, name: str, body: RollbackRequest | None = None) -> Any:
    """Stop the candidate, or restore the previous (or a named) stable version."""
    serving = _serving(request, name)
    engine, uri = _stores(serving)
    wanted = body or RollbackRequest()
    state, event = await _run(
        serving,
        lambda: commands.rollback(
            engine,
            name,
            tracking_uri=uri,
            actor=_actor(request),
            to=wanted.to,
            reason=wanted.reason,
        ),
    )
    return {"state": state.as_dict(), "event": event.as_dict()}


def _seconds(duration: str | None) -> float | None:
    from modelcycle.config.spec import parse_duration

    return None if duration is None else parse_duration(duration)
