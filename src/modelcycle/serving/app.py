"""The model server: ``create_app(settings)`` builds the FastAPI app every command and test uses.

On start it applies the store's migrations, starts the durable prediction log (replaying any
spool a crashed server left), loads and warms the model in the background (``/health/ready``
says when), and watches the model's alias. Routes come from the protocol modules: native
(``/predict``, ``/labels``), MLflow (``/invocations``) and the Open Inference Protocol (``/v2``).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import time
from collections.abc import AsyncIterator
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import Response
from loguru import logger
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from modelcycle import __version__
from modelcycle.config.settings import Settings
from modelcycle.errors import ModelcycleError
from modelcycle.serving import admin, dashboard, mlflow_protocol, native, oip
from modelcycle.serving.auth import KeyRing
from modelcycle.serving.inputs import InputError
from modelcycle.serving.metrics import CONTENT_TYPE
from modelcycle.serving.predictor import Predictor
from modelcycle.serving.routing import RoutingTable
from modelcycle.serving.runtime import ApiError, JSONBytes, Serving, request_id

REQUEST_ID_HEADER = "x-request-id"


def create_app(settings: Settings, model: str | None = None) -> FastAPI:
    """The model server for a project.

    Args:
        settings: Where the stores are and how the server runs.
        model: ``NAME@ALIAS`` or ``NAME/VERSION``; default ``settings.model``, else the
            project's champion.

    Returns:
        A FastAPI app; run it with uvicorn (``modelcycle serve`` does).
    """
    ref = model or settings.model or f"{_project_name(settings)}@champion"
    serving = Serving(
        settings=settings,
        ref=ref,
        keys=KeyRing.from_settings(settings.predict_api_keys, settings.admin_api_keys),
    )

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        tasks = await _start(serving)
        app.openapi_schema = None
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
            await serving.batcher.close()
            if serving.log is not None:
                await asyncio.to_thread(serving.log.close)
            if serving.engine is not None:
                serving.engine.dispose()

    app = FastAPI(
        title="modelcycle model server",
        version=__version__,
        summary=f"Serves {ref}: native JSON, MLflow /invocations and Open Inference Protocol v2.",
        default_response_class=JSONBytes,
        lifespan=lifespan,
    )
    app.state.serving = serving
    app.add_middleware(_RequestMiddleware, serving=serving)
    _add_error_handlers(app)
    _add_health_routes(app, serving)
    app.include_router(native.router)
    app.include_router(mlflow_protocol.router)
    app.include_router(oip.router)
    app.include_router(admin.router)
    app.include_router(dashboard.router)
    app.openapi = lambda: _openapi(app, serving)  # type: ignore[method-assign]
    return app


def _project_name(settings: Settings) -> str:
    from modelcycle.config.spec import load_project

    return load_project(settings.project_dir).spec.name


async def _start(serving: Serving) -> list[asyncio.Task[None]]:
    """Migrate the store, start the log, load the model; returns the background tasks."""
    from modelcycle.store import make_engine, upgrade
    from modelcycle.store.writer import PredictionLog

    settings = serving.settings
    url = settings.database_url
    assert url is not None
    tasks: list[asyncio.Task[None]] = []
    try:
        await asyncio.to_thread(upgrade, url)
    except ModelcycleError as err:
        logger.warning(
            "the operational database is unavailable ({}); predictions will be spooled", err
        )
        tasks.append(asyncio.create_task(_retry_upgrade(url)))
    serving.engine = make_engine(url)
    if settings.log_predictions:
        serving.log = PredictionLog(serving.engine, settings.spool_dir, fsync=settings.spool_fsync)
        serving.log.start()
        serving.batcher.sink = serving.log.append
    else:
        logger.warning("prediction logging is off (MODELCYCLE_LOG_PREDICTIONS=false)")
    await serving.load()
    # Everything loaded so far (libraries, the model) lives as long as the server: keep it out
    # of the garbage collector's full passes, which otherwise stall requests for 100+ ms.
    gc.collect()
    gc.freeze()
    tasks.append(asyncio.create_task(serving.watch()))
    if settings.controller and not serving.pinned:
        tasks.append(asyncio.create_task(_control(serving)))
    return tasks


async def _control(serving: Serving) -> None:
    """The rollout controller, inside the server: evaluate the running rollout periodically.

    Every server may run it: the controller's database lock lets one act on each evaluation.
    """
    from modelcycle.config.spec import DeploymentSpec, load_project, parse_duration
    from modelcycle.deployment.controller import evaluate
    from modelcycle.deployment.rollout import GatePolicy

    try:
        spec = load_project(serving.settings.project_dir).spec.deployment
    except ModelcycleError:
        spec = DeploymentSpec()
    policy = GatePolicy.from_spec(spec)
    interval = parse_duration(spec.evaluation_interval)
    while True:
        await asyncio.sleep(interval)
        engine = serving.engine
        table = serving.table
        if engine is None or table is None or table.state is None or not table.state.active:
            continue
        try:
            decision = await asyncio.to_thread(
                evaluate,
                engine,
                serving.model_name,
                policy,
                tracking_uri=serving.settings.mlflow_tracking_uri,
            )
        except Exception:
            logger.exception("the rollout controller failed; it will try again")
            continue
        if decision is not None and decision.kind != "hold":
            await serving.refresh(force=True)


async def _retry_upgrade(url: str) -> None:
    from modelcycle.store import upgrade

    while True:
        await asyncio.sleep(5)
        try:
            await asyncio.to_thread(upgrade, url)
        except ModelcycleError:
            continue
        logger.info("the operational database is reachable again; migrations applied")
        return


# ---------------------------------------------------------------------------- health & info


def _add_health_routes(app: FastAPI, serving: Serving) -> None:
    @app.get("/health/live", tags=["health"], summary="The process is up.")
    async def live() -> dict[str, str]:
        return {"status": "live"}

    @app.get("/health/ready", tags=["health"], summary="A model is loaded and answering.")
    async def ready() -> JSONBytes:
        return _readiness(serving)

    @app.get("/models", tags=["info"], summary="The model versions this server has loaded.")
    async def models() -> dict[str, Any]:
        table = serving.table
        loaded = [] if table is None else [_model_info(p, arm) for p, arm in table.loaded()]
        state = None if table is None or table.state is None else _state_info(table)
        return {"ref": serving.ref, "ready": serving.ready, "models": loaded, "deployment": state}

    @app.get("/metrics", tags=["info"], summary="Prometheus metrics.")
    async def metrics() -> Response:
        # rendering may read the monitoring state from the store: keep it off the event loop
        body = await asyncio.to_thread(serving.metrics.render)
        return Response(body, media_type=CONTENT_TYPE)


def _readiness(serving: Serving) -> JSONBytes:
    stats = serving.log_stats()
    log = (
        None
        if stats is None
        else {
            "database_ok": stats.database_ok,
            "spooled": stats.spooled,
            "last_error": stats.last_error,
        }
    )
    if serving.stable is None:
        status = "failed" if serving.failure else "loading"
        body = {"status": status, "reason": serving.failure or "loading the model", "log": log}
        return JSONBytes(body, status_code=503)
    current = serving.stable
    body = {"status": "ready", "model": current.name, "version": current.version, "log": log}
    return JSONBytes(body)


def _state_info(table: RoutingTable) -> dict[str, Any]:
    state = table.state
    assert state is not None
    return {
        "status": state.status,
        "strategy": state.strategy,
        "stable_version": state.stable_version,
        "candidate_version": state.candidate_version,
        "candidate_loaded": table.candidate is not None,
        "weight": state.weight,
        "step": state.step,
        "paused": state.paused,
        "version_counter": state.version_counter,
    }


def _model_info(predictor: Predictor, arm: str) -> dict[str, Any]:
    model = predictor.model
    return {
        "name": model.name,
        "version": predictor.version,
        "arm": arm,
        "aliases": model.aliases,
        "task": model.task,
        "metric": model.metric,
        "candidate": model.candidate,
        "classes": predictor.classes,
        "threshold": model.threshold,
        "features": [
            {"name": rule.name, "kind": rule.kind, "required": rule.required}
            for rule in predictor.rules.features
        ],
    }


# ---------------------------------------------------------------------------- errors


def error_body(message: str, hint: str | None = None, /, **details: Any) -> dict[str, Any]:
    """The JSON body of every error the server returns."""
    body: dict[str, Any] = {"error": message}
    if hint:
        body["hint"] = hint
    body.update(details)
    return body


def _add_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def api_error(_request: Request, err: ApiError) -> JSONBytes:
        return JSONBytes(error_body(err.message, err.hint, **err.details), err.status)

    @app.exception_handler(InputError)
    async def input_error(_request: Request, err: InputError) -> JSONBytes:
        problems = [p.as_dict() for p in err.problems]
        return JSONBytes(error_body(err.message, err.hint, problems=problems), 422)

    @app.exception_handler(ModelcycleError)
    async def user_error(_request: Request, err: ModelcycleError) -> JSONBytes:
        return JSONBytes(error_body(err.message, err.hint), 400)

    @app.exception_handler(RequestValidationError)
    async def validation_error(_request: Request, err: RequestValidationError) -> JSONBytes:
        problems = [
            {"field": ".".join(str(p) for p in e.get("loc", ())), "reason": e.get("msg", "")}
            for e in err.errors()
        ]
        shown = "; ".join(f"{p['field']}: {p['reason']}" for p in problems[:5])
        return JSONBytes(error_body(f"invalid request: {shown}", problems=problems), 422)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_request: Request, err: StarletteHTTPException) -> JSONBytes:
        message = str(err.detail)
        if err.status_code == 404:
            message = "no such endpoint; see /docs for the API"
        elif err.status_code == 405:
            message = "method not allowed on this endpoint; see /docs for the API"
        return JSONBytes(error_body(message), err.status_code, headers=err.headers)

    @app.exception_handler(Exception)
    async def internal_error(request: Request, err: Exception) -> JSONBytes:
        logger.opt(exception=err).error("internal error on {} {}", request.method, request.url.path)
        return JSONBytes(
            error_body("internal server error", "see the server log; this is a bug"), 500
        )


# ---------------------------------------------------------------------------- middleware


class _RequestMiddleware:
    """Request ids, version and arm headers, and request metrics, as plain ASGI.

    ``X-Request-ID`` comes in and goes out; ``X-Model-Version`` and ``X-Model-Arm`` say which
    version answered, whatever the protocol.

    The chosen id is put in ``scope["state"]["request_id"]``; prediction routes add the model,
    version and arm there, so metrics carry them.
    """

    def __init__(self, app: ASGIApp, serving: Serving) -> None:
        self.app = app
        self.serving = serving

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        given = None
        for key, value in scope["headers"]:
            if key == b"x-request-id":
                given = value.decode("latin-1")
                break
        rid = request_id(given)
        state = scope.setdefault("state", {})
        state["request_id"] = rid
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = [(b"x-request-id", state["request_id"].encode())]
                if state.get("version"):  # which version and arm answered, on every protocol
                    headers.append((b"x-model-version", str(state["version"]).encode()))
                    headers.append((b"x-model-arm", str(state["arm"]).encode()))
                message["headers"] = [*message.get("headers", []), *headers]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            route = scope.get("route")
            path = getattr(route, "path", None) or "unmatched"
            self.serving.metrics.observe(
                path,
                status,
                time.perf_counter() - start,
                state.get("model", ""),
                state.get("version", ""),
                state.get("arm", ""),
            )


# ---------------------------------------------------------------------------- OpenAPI


def _openapi(app: FastAPI, serving: Serving) -> dict[str, Any]:
    """The OpenAPI document, with the request body schemas generated from the FeatureSchema."""
    if app.openapi_schema is not None:
        return app.openapi_schema
    schema = get_openapi(
        title=app.title, version=app.version, summary=app.summary, routes=app.routes
    )
    if serving.stable is not None:
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        for name, generated in native.body_schemas(serving.stable).items():
            body = orjson.loads(orjson.dumps(generated))
            components.update(body.pop("$defs", {}))
            components[name] = body
        app.openapi_schema = schema
    return schema


def app_from_env() -> FastAPI:
    """The app for one worker process of ``modelcycle serve --workers N``.

    Settings come from the environment (``MODELCYCLE_PROJECT_DIR``, ``MODELCYCLE_MODEL``, ...)
    and the project's ``.env``; logging is configured here because each worker is a new process.
    """
    from modelcycle.config.logging import configure_logging

    settings = Settings.load()
    configure_logging(settings, files=True)
    return create_app(settings)
