"""The server's running state: the loaded model, the prediction log, batching, keys and metrics.

Protocol modules (native, MLflow, Open Inference Protocol) parse their own payloads into a
typed input frame and hand it to :meth:`Serving.predict`, which batches, predicts, logs one
record per row and counts it. Everything a request needs is read from memory.
"""

from __future__ import annotations

import asyncio
import functools
import random
import re
import time
import uuid
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

import orjson
import pandas as pd
from loguru import logger
from sqlalchemy import exc
from sqlalchemy.engine import Engine
from starlette.responses import Response

from modelcycle.config.settings import Settings
from modelcycle.data.records import Arm
from modelcycle.deployment.state import DeploymentState
from modelcycle.errors import ModelcycleError
from modelcycle.registry.store import parse_ref
from modelcycle.serving.auth import KeyRing, Scope
from modelcycle.serving.inputs import Columns, frame_columns
from modelcycle.serving.metrics import ServingMetrics, value_buckets
from modelcycle.serving.predictor import MicroBatcher, Outputs, Predictor
from modelcycle.serving.routing import Routed, RoutingTable, smoke_test
from modelcycle.store.engine import first_line
from modelcycle.store.predictions import split_outcome
from modelcycle.store.writer import LogStats, PredictionLog

_REQUEST_ID = re.compile(r"[A-Za-z0-9._:\-]{1,128}")


class JSONBytes(Response):
    """A JSON response serialised with orjson (NumPy values allowed; NaN becomes null)."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        """Serialise ``content``."""
        return orjson.dumps(content, option=orjson.OPT_SERIALIZE_NUMPY)


class ApiError(ModelcycleError):
    """A request the server refuses, with its HTTP status and details for the body."""

    def __init__(
        self,
        status: int,
        message: str,
        hint: str | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message, hint)
        self.status = status
        self.details = details or {}


def request_id(given: str | None) -> str:
    """The caller's ``X-Request-ID`` if it is a sane id, else a new one."""
    if given and _REQUEST_ID.fullmatch(given):
        return given
    return uuid.uuid4().hex


@dataclass
class Answer:
    """A prediction request's outcome, for the protocol to format.

    Attributes:
        predictor: The model version that answered.
        arm: The arm it answered for.
        outputs: Its predictions.
        request_id: The request id the records were logged under.
    """

    predictor: Predictor
    arm: Arm
    outputs: Outputs
    request_id: str


@dataclass
class Serving:
    """Everything the routes share.

    Attributes:
        settings: The server's settings.
        ref: The model reference it serves: ``NAME@ALIAS`` follows the deployment state (and,
            before any deployment, the alias); ``NAME/VERSION`` pins one version.
        keys: API key digests.
        engine: The operational store.
        log: The durable prediction log (``None`` until started, or when logging is off).
        table: What answers requests (``None`` until a model is loaded).
        failure: Why the model could not be loaded, if it could not.
    """

    settings: Settings
    ref: str
    keys: KeyRing
    engine: Engine | None = None
    log: PredictionLog | None = None
    table: RoutingTable | None = None
    failure: str | None = None
    batcher: MicroBatcher = field(default_factory=MicroBatcher)
    metrics: ServingMetrics = field(init=False)
    _loaded: dict[str, Predictor] = field(default_factory=dict, repr=False)
    _smoked: set[str] = field(default_factory=set, repr=False)
    _counter: int = field(default=-1, repr=False)
    _alias_checked: float = field(default=0.0, repr=False)
    _background: set[asyncio.Task[None]] = field(default_factory=set, repr=False)
    _refreshing: asyncio.Lock = field(default_factory=asyncio.Lock, repr=False)

    def __post_init__(self) -> None:
        self.metrics = ServingMetrics(self.log_stats, monitoring=self.monitoring_snapshot)

    def monitoring_snapshot(self) -> dict[str, Any] | None:
        """Open alerts and the latest monitoring run of the served model (for ``/metrics``)."""
        if self.engine is None:
            return None
        from modelcycle.serving.metrics import monitoring_snapshot

        return monitoring_snapshot(self.engine, self.model_name)

    def log_stats(self) -> LogStats | None:
        """The prediction log's counters, once it runs."""
        return None if self.log is None else self.log.stats()

    @property
    def ready(self) -> bool:
        """Whether a model is loaded and predictions can be served."""
        return self.table is not None

    @property
    def stable(self) -> Predictor | None:
        """The stable version's predictor, once loaded."""
        return None if self.table is None else self.table.stable

    @property
    def model_name(self) -> str:
        """The registered model this server serves."""
        return parse_ref(self.ref).name

    @property
    def pinned(self) -> bool:
        """Whether the server serves one fixed version (``NAME/VERSION``)."""
        return parse_ref(self.ref).version is not None

    def require(self, scope: Scope, headers: Any) -> None:
        """Refuse the request unless its API key allows ``scope``.

        Raises:
            ApiError: 401 (no or unknown key) or 403 (key without the scope, admin disabled).
        """
        denied = self.keys.check(scope, headers)
        if denied is not None:
            raise ApiError(denied.status, denied.message)

    def route(
        self,
        state: dict[str, Any] | None,
        key: str | None = None,
        name: str | None = None,
        version: str | None = None,
    ) -> Routed:
        """The version (and arm) that answers a request.

        Args:
            state: The request's ASGI state: the model, version and arm are recorded there, so
                the request's metrics (errors included) are attributed to them.
            key: The routing key (sticky routing), if any.
            name: The model the request names (OIP), if any.
            version: The version the request names, if any (no routing then).

        Raises:
            ApiError: 503 while no model is loaded; 404 for another model or an unloaded
                version.
        """
        table = self.table
        if table is None:
            reason = self.failure or "the model is still loading"
            raise ApiError(503, f"not ready: {reason}", "retry shortly; see GET /health/ready")
        if name is not None and name != table.stable.name:
            raise ApiError(404, f"unknown model {name!r}: this server serves {table.stable.name!r}")
        if version is not None:
            arms = {p.version: arm for p, arm in table.loaded()}
            chosen = table.version(version)
            if chosen is None:
                loaded = ", ".join(sorted(arms))
                raise ApiError(
                    404,
                    f"model {table.stable.name!r} version {version!r} is not loaded "
                    f"(this server has version {loaded})",
                )
            routed = Routed(chosen, arms[version])
        else:
            routed = table.pick(key, random.random())
        routed = replace(routed, state=state)
        routed.record(routed.predictor, routed.arm)
        return routed

    def routing_key(self, headers: Any, first_row: Any) -> str | None:
        """The request's routing key: ``X-Routing-Key``, else the spec's routing feature."""
        given = headers.get("x-routing-key")
        if given:
            return str(given)
        feature = None if self.table is None else self.table.routing_key
        if feature and isinstance(first_row, dict) and first_row.get(feature) is not None:
            return str(first_row[feature])
        return None

    async def predict(
        self,
        routed: Routed,
        columns: Columns,
        rows: list[dict[str, Any]],
        request_id: str,
    ) -> Answer:
        """Predict input columns, log one record per row, and count them.

        A candidate that fails is logged with its error and the stable version answers, so a
        broken candidate never fails a request; a shadow predicts after the answer is ready.

        Args:
            routed: Who answers (from :meth:`route`).
            columns: Model inputs (from :class:`~modelcycle.serving.inputs.InputRules`).
            rows: The same rows as JSON-ready dicts, for the log.
            request_id: The id the records are logged under (rows numbered from 0).

        Raises:
            ApiError: The row limit is exceeded.
        """
        if len(rows) > self.settings.max_batch_rows:
            raise ApiError(
                413,
                f"the request has {len(rows):,} rows; the limit is "
                f"{self.settings.max_batch_rows:,}",
                "split it into smaller requests, or use `modelcycle predict` for files "
                "(or raise MODELCYCLE_MAX_BATCH_ROWS)",
            )
        predictor, arm = routed.predictor, routed.arm
        try:
            outputs = await self._predict(predictor, arm, columns, rows, request_id)
        except Exception as err:
            table = self.table
            if arm not in ("canary", "green") or table is None:
                raise
            self._log_failure(predictor, arm, rows, request_id, err)
            predictor, arm = table.stable, "blue" if arm == "green" else "stable"
            routed.record(predictor, arm)
            outputs = await self._predict(predictor, arm, columns, rows, request_id)
        if routed.shadow is not None:
            task = asyncio.create_task(self._shadow(routed.shadow, rows, request_id))
            self._background.add(task)
            task.add_done_callback(self._background.discard)
        return Answer(predictor, arm, outputs, request_id)

    async def predict_frame(self, frame: pd.DataFrame, request_id: str, routed: Routed) -> Answer:
        """:meth:`predict` for a typed frame (MLflow, Open Inference Protocol)."""
        columns = frame_columns(frame, routed.predictor.rules.names)
        return await self.predict(routed, columns, _json_rows(frame), request_id)

    async def _predict(
        self,
        predictor: Predictor,
        arm: Arm,
        columns: Columns,
        rows: list[dict[str, Any]],
        request_id: str,
    ) -> Outputs:
        records = None
        if self.log is not None:
            records = functools.partial(self._records, predictor, arm, rows, request_id)
        outputs = await self.batcher.predict(predictor, columns, records)
        self._count(predictor, arm, outputs)
        return outputs

    async def _shadow(
        self, candidate: Predictor, rows: list[dict[str, Any]], request_id: str
    ) -> None:
        """Predict the same rows with the shadow candidate; its answer is only logged."""
        columns = candidate.rules.columns_from_rows(rows)
        try:
            await self._predict(candidate, "shadow", columns, rows, request_id)
        except Exception as err:
            self._log_failure(candidate, "shadow", rows, request_id, err)

    def _count(self, predictor: Predictor, arm: Arm, outputs: Outputs) -> None:
        """Count the predicted rows and their values (classifiers: positive-class probability)."""
        values = outputs.predictions
        numeric = [float(v) for v in values if isinstance(v, int | float)]
        if predictor.model.task == "classification" and outputs.probabilities:
            last = (predictor.classes or [""])[-1]
            numeric = [p.get(last, 0.0) for p in outputs.probabilities]
        self.metrics.predicted(numeric, predictor.name, predictor.version, arm)

    def _records(
        self,
        predictor: Predictor,
        arm: Arm,
        rows: list[dict[str, Any]],
        request_id: str,
        outputs: Outputs | None,
        latency_ms: float,
        error: str | None = None,
    ) -> list[dict[str, Any]]:
        """The log records of one request (table form, one per row)."""
        assert self.log is not None
        values = outputs.predictions if outputs is not None else [None] * len(rows)
        probabilities: list[dict[str, float] | None] = (
            list(outputs.probabilities)
            if outputs is not None and outputs.probabilities
            else [None] * len(values)
        )
        oods: list[dict[str, Any] | None] = (
            list(outputs.ood) if outputs is not None and outputs.ood else [None] * len(values)
        )
        now = datetime.now(UTC)
        records = []
        for index, (features, value, proba, ood) in enumerate(
            zip(rows, values, probabilities, oods, strict=True)
        ):
            number, text = split_outcome(value)
            records.append(
                {
                    "request_id": request_id,
                    "row": index,
                    "created_at": now,
                    "model_name": predictor.name,
                    "model_version": predictor.version,
                    "arm": arm,
                    "features": features,
                    "prediction": number,
                    "prediction_label": text,
                    "probabilities": proba,
                    "latency_ms": latency_ms,
                    "ood": ood,
                    "error": error,
                    "record_id": self.log.record_id(),
                }
            )
        return records

    def _log_failure(
        self,
        predictor: Predictor,
        arm: Arm,
        rows: list[dict[str, Any]],
        request_id: str,
        err: BaseException,
    ) -> None:
        """Log a failed prediction (one error record per row) so the gates see it."""
        reason = f"{type(err).__name__}: {err}"[:1000]
        logger.warning(
            "v{} ({}) failed on request {}: {}", predictor.version, arm, request_id, reason
        )
        self.metrics.failed(predictor.name, predictor.version, arm)
        if self.log is not None:
            self.log.append(self._records(predictor, arm, rows, request_id, None, 0.0, reason))

    # ------------------------------------------------------------------ loading and switching

    async def load(self) -> None:
        """Load, verify and warm what the server starts with; record a failure instead."""
        await self.refresh(force=True)

    async def watch(self) -> None:
        """Follow the deployment state (and, before any deployment, the alias).

        The state's version counter is read every ``deployment_poll_seconds``; when it changes,
        the versions it names are loaded (in the background) and the routing table is swapped.
        """
        if self.pinned:
            return
        interval = max(self.settings.deployment_poll_seconds, 0.1)
        while True:
            await asyncio.sleep(interval)
            await self.refresh()

    async def refresh(self, force: bool = False) -> None:
        """Rebuild the routing table if the deployment state or the alias changed.

        One refresh at a time (the watch loop and admin commands may overlap): otherwise a
        slower build from an older state could be installed after a newer one, and stay.
        """
        async with self._refreshing:
            await self._refresh(force)

    async def _refresh(self, force: bool) -> None:
        try:
            wanted = await asyncio.to_thread(self._wanted, force)
            if wanted is None:
                return
            table = await self._build(*wanted)
        except ModelcycleError as err:
            if self.table is None:
                self.failure = str(err)
                logger.error("could not load {}: {}", self.ref, err)
            else:
                logger.warning("could not follow {}: {}", self.ref, err)
            return
        except Exception as err:
            if self.table is None:
                self.failure = f"loading {self.ref} failed: {err}"
            logger.exception("could not load {}", self.ref)
            return
        self._install(table)

    def _wanted(self, force: bool) -> tuple[str, DeploymentState | None] | None:
        """The stable version and deployment state to serve, or ``None`` if nothing changed."""
        from modelcycle.registry.store import resolve_version

        ref = parse_ref(self.ref)
        if ref.version is not None:
            return (str(ref.version), None) if self.table is None else None
        state, changed = self._deployment(ref.name, force)
        if state is not None and state.stable_version is not None:
            return (state.stable_version, state) if changed or self.table is None else None
        poll = self.settings.model_poll_seconds  # no deployment yet: follow the alias
        recent = poll <= 0 or time.monotonic() - self._alias_checked < poll
        if not force and self.table is not None and recent:
            return None
        self._alias_checked = time.monotonic()
        version = str(resolve_version(self.ref, tracking_uri=self._tracking_uri()))
        table = self.table
        unchanged = table is not None and table.state is None and table.stable.version == version
        return None if unchanged and not force else (version, None)

    def _deployment(self, name: str, force: bool) -> tuple[DeploymentState | None, bool]:
        """The stored deployment state (``None`` if never deployed) and whether it changed."""
        from modelcycle.deployment.state import counter, load

        known = None if self.table is None else self.table.state
        if self.engine is None:
            return known, False
        try:
            with self.engine.connect() as conn:
                now = counter(conn, name)
                if now == 0 or (now == self._counter and not force):
                    self._counter = now
                    return (known if now else None), False
                state = load(conn, name)
        except exc.SQLAlchemyError as err:  # keep serving what we have while it is away
            logger.warning("deployment state of {} unavailable: {}", name, first_line(err))
            return known, False
        self._counter = now
        return state, True

    async def _build(self, stable_version: str, state: DeploymentState | None) -> RoutingTable:
        stable = await self._version(stable_version)
        candidate = None
        if state is not None and state.active and state.candidate_version is not None:
            candidate = await self._candidate(state, stable)
        keep = {stable.version} | ({candidate.version} if candidate else set())
        for version in list(self._loaded):
            if version not in keep:
                del self._loaded[version]
        return RoutingTable(stable, state, candidate)

    async def _version(self, version: str) -> Predictor:
        """The loaded, warmed predictor of ``version`` (loaded once, then reused)."""
        from modelcycle.registry.store import load_model

        predictor = self._loaded.get(version)
        if predictor is None:
            ref = f"{self.model_name}/{version}"
            model = await asyncio.to_thread(load_model, ref, tracking_uri=self._tracking_uri())
            predictor = Predictor(model)
            took = await asyncio.to_thread(predictor.warm)
            path = "NumPy fast path" if predictor.compiled else "scikit-learn pipeline"
            logger.info("loaded {} with the {} ({:.2f} ms per sample row)", ref, path, took)
            self._loaded[version] = predictor
        return predictor

    async def _candidate(self, state: DeploymentState, stable: Predictor) -> Predictor | None:
        """The candidate's predictor once it passed its smoke test; ``None`` if it failed."""
        version = state.candidate_version
        assert version is not None
        try:
            candidate = await self._version(version)
        except ModelcycleError as err:
            await self._fail(state, f"v{version} could not be loaded: {err}")
            return None
        except Exception as err:  # warming it failed (e.g. non-finite predictions)
            await self._fail(state, f"v{version} could not be warmed: {type(err).__name__}: {err}")
            return None
        if version not in self._smoked:
            problem = await asyncio.to_thread(smoke_test, candidate, stable)
            if problem is not None:
                await self._fail(state, f"smoke test failed: {problem}")
                return None
            self._smoked.add(version)
        return candidate

    async def _fail(self, state: DeploymentState, reason: str) -> None:
        """Mark the rollout failed (stable keeps serving); another worker may have done it."""
        from modelcycle.deployment.commands import apply
        from modelcycle.deployment.state import ConflictError, DeploymentError, fail

        logger.error("{}: {}", state.model_name, reason)
        if self.engine is None:
            return
        try:
            await asyncio.to_thread(
                apply,
                self.engine,
                state.model_name,
                lambda current: fail(
                    current, actor="server", reason=reason, version=state.candidate_version
                ),
            )
        except (ConflictError, DeploymentError) as err:
            logger.info("not marking the rollout failed: {}", err)

    def _install(self, table: RoutingTable) -> None:
        """Swap in a new routing table; requests in flight finish on the old one."""
        old, self.table, self.failure = self.table, table, None
        now = {(p.version, arm) for p, arm in table.loaded()}
        before = set() if old is None else {(p.version, arm) for p, arm in old.loaded()}
        for version, arm in before - now:
            self.metrics.model_info.labels(table.stable.name, version, arm).set(0)
        for version, arm in now:
            self.metrics.model_info.labels(table.stable.name, version, arm).set(1)
        if old is None or before != now:
            shown = ", ".join(f"v{v} ({arm})" for v, arm in sorted(now))
            logger.info("{} now answers with {}", table.stable.name, shown)
        schema = table.stable.model.schema
        if table.stable.model.task == "regression" and schema.target is not None:
            self.metrics.use_value_buckets(value_buckets(schema.column(schema.target).quantiles))

    def _tracking_uri(self) -> str:
        uri = self.settings.mlflow_tracking_uri
        assert uri is not None
        return uri


async def read_body(request: Any, limit: int) -> bytes:
    """The request body, refusing more than ``limit`` bytes (413) without reading it all.

    Raises:
        ApiError: 413 when the body is too large; 400 when it is empty.
    """
    declared = request.headers.get("content-length")
    too_large = ApiError(
        413,
        f"the request body is larger than the limit of {limit:,} bytes",
        "send fewer rows per request (or raise MODELCYCLE_MAX_BODY_BYTES)",
    )
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise too_large
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_large
        chunks.append(chunk)
    body = b"".join(chunks)
    if not body.strip():
        raise ApiError(400, "the request body is empty", "send the rows to predict as JSON")
    return body


def parse_json(body: bytes) -> Any:
    """Decode a JSON body.

    Raises:
        ApiError: 400 naming where the JSON is malformed.
    """
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as err:
        raise ApiError(
            400, f"the request body is not valid JSON: {err}", "send a JSON document"
        ) from None


def _json_rows(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows of a typed frame as dicts for the log (missing values as ``None``)."""
    clean = frame.astype(object).where(frame.notna(), None)
    return clean.to_dict(orient="records")  # type: ignore[return-value]
