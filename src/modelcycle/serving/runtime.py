"""The server's running state: the loaded model, the prediction log, batching, keys and metrics.

Protocol modules (native, MLflow, Open Inference Protocol) parse their own payloads into a
typed input frame and hand it to :meth:`Serving.predict`, which batches, predicts, logs one
record per row and counts it. Everything a request needs is read from memory.
"""

from __future__ import annotations

import asyncio
import functools
import re
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson
import pandas as pd
from loguru import logger
from sqlalchemy.engine import Engine
from starlette.responses import Response

from modelcycle.config.settings import Settings
from modelcycle.errors import ModelcycleError
from modelcycle.serving.auth import KeyRing, Scope
from modelcycle.serving.inputs import Columns, frame_columns
from modelcycle.serving.metrics import ServingMetrics, value_buckets
from modelcycle.serving.predictor import MicroBatcher, Outputs, Predictor
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
        predictor: The model version (and arm) that answered.
        outputs: Its predictions.
        request_id: The request id the records were logged under.
    """

    predictor: Predictor
    outputs: Outputs
    request_id: str


@dataclass
class Serving:
    """Everything the routes share.

    Attributes:
        settings: The server's settings.
        ref: The model reference it serves (``NAME@ALIAS`` or ``NAME/VERSION``).
        keys: API key digests.
        engine: The operational store.
        log: The durable prediction log (``None`` until started).
        stable: The loaded model (``None`` until loaded).
        failure: Why the model could not be loaded, if it could not.
    """

    settings: Settings
    ref: str
    keys: KeyRing
    engine: Engine | None = None
    log: PredictionLog | None = None
    stable: Predictor | None = None
    failure: str | None = None
    batcher: MicroBatcher = field(default_factory=MicroBatcher)
    metrics: ServingMetrics = field(init=False)
    started: float = field(default_factory=time.time)

    def __post_init__(self) -> None:
        self.metrics = ServingMetrics(self.log_stats)

    def log_stats(self) -> LogStats | None:
        """The prediction log's counters, once it runs."""
        return None if self.log is None else self.log.stats()

    @property
    def ready(self) -> bool:
        """Whether a model is loaded and predictions can be served."""
        return self.stable is not None

    def require(self, scope: Scope, headers: Any) -> None:
        """Refuse the request unless its API key allows ``scope``.

        Raises:
            ApiError: 401 (no or unknown key) or 403 (key without the scope, admin disabled).
        """
        denied = self.keys.check(scope, headers)
        if denied is not None:
            raise ApiError(denied.status, denied.message)

    def predictor(
        self,
        name: str | None = None,
        version: str | None = None,
        state: dict[str, Any] | None = None,
    ) -> Predictor:
        """The predictor that answers a request (optionally for a named model and version).

        Args:
            name: The model the request names (OIP), if any.
            version: The version the request names, if any.
            state: The request's ASGI state: the model, version and arm are recorded there, so
                the request's metrics (errors included) are attributed to them.

        Raises:
            ApiError: 503 while no model is loaded; 404 for another model or version.
        """
        current = self.stable
        if current is None:
            reason = self.failure or "the model is still loading"
            raise ApiError(503, f"not ready: {reason}", "retry shortly; see GET /health/ready")
        if name is not None and name != current.name:
            raise ApiError(404, f"unknown model {name!r}: this server serves {current.name!r}")
        if version is not None and version != current.version:
            raise ApiError(
                404,
                f"model {current.name!r} version {version!r} is not loaded "
                f"(this server has version {current.version})",
            )
        if state is not None:
            state["model"], state["version"], state["arm"] = (
                current.name,
                current.version,
                current.arm,
            )
        return current

    async def predict(
        self,
        columns: Columns,
        rows: list[dict[str, Any]],
        request_id: str,
        predictor: Predictor | None = None,
    ) -> Answer:
        """Predict input columns, log one record per row, and count them.

        Args:
            columns: Model inputs (from :class:`~modelcycle.serving.inputs.InputRules`).
            rows: The same rows as JSON-ready dicts, for the log.
            request_id: The id the records are logged under (rows numbered from 0).
            predictor: The model to use (default: the one routing picks).

        Raises:
            ApiError: The row limit is exceeded, or no model is loaded.
        """
        if len(rows) > self.settings.max_batch_rows:
            raise ApiError(
                413,
                f"the request has {len(rows):,} rows; the limit is "
                f"{self.settings.max_batch_rows:,}",
                "split it into smaller requests, or use `modelcycle predict` for files "
                "(or raise MODELCYCLE_MAX_BATCH_ROWS)",
            )
        chosen = predictor or self.predictor()
        records = None
        if self.log is not None:
            records = functools.partial(self._records, chosen, rows, request_id)
        outputs = await self.batcher.predict(chosen, columns, records)
        self._count(chosen, outputs)
        return Answer(chosen, outputs, request_id)

    async def predict_frame(
        self, frame: pd.DataFrame, request_id: str, predictor: Predictor
    ) -> Answer:
        """:meth:`predict` for a typed frame (MLflow, Open Inference Protocol)."""
        columns = frame_columns(frame, predictor.rules.names)
        return await self.predict(columns, _json_rows(frame), request_id, predictor)

    def _count(self, predictor: Predictor, outputs: Outputs) -> None:
        """Count the predicted rows and their values (classifiers: positive-class probability)."""
        values = outputs.predictions
        numeric = [float(v) for v in values if isinstance(v, int | float)]
        if predictor.model.task == "classification" and outputs.probabilities:
            last = (predictor.classes or [""])[-1]
            numeric = [p.get(last, 0.0) for p in outputs.probabilities]
        self.metrics.predicted(numeric, predictor.name, predictor.version, predictor.arm)

    def _records(
        self,
        predictor: Predictor,
        rows: list[dict[str, Any]],
        request_id: str,
        outputs: Outputs,
        latency_ms: float,
    ) -> list[dict[str, Any]]:
        """The log records of one request (table form, one per row)."""
        assert self.log is not None
        values = outputs.predictions
        now = datetime.now(UTC)
        records = []
        probabilities: list[dict[str, float] | None] = (
            list(outputs.probabilities) if outputs.probabilities else [None] * len(values)
        )
        for index, (features, value, proba) in enumerate(
            zip(rows, values, probabilities, strict=True)
        ):
            number, text = split_outcome(value)
            records.append(
                {
                    "request_id": request_id,
                    "row": index,
                    "created_at": now,
                    "model_name": predictor.name,
                    "model_version": predictor.version,
                    "arm": predictor.arm,
                    "features": features,
                    "prediction": number,
                    "prediction_label": text,
                    "probabilities": proba,
                    "latency_ms": latency_ms,
                    "ood": None,
                    "error": None,
                    "record_id": self.log.record_id(),
                }
            )
        return records

    async def watch_alias(self) -> None:
        """Reload the model when its alias moves (every ``model_poll_seconds``)."""
        from modelcycle.registry.store import load_model, resolve_version

        interval = self.settings.model_poll_seconds
        uri = self._tracking_uri()
        if interval <= 0 or "@" not in self.ref:
            return
        while True:
            await asyncio.sleep(interval)
            try:
                version = await asyncio.to_thread(resolve_version, self.ref, tracking_uri=uri)
                current = self.stable
                if current is not None and version == current.model.version:
                    continue
                ref = f"{self.ref.split('@')[0]}/{version}"
                logger.info("{} now points to version {}; loading it", self.ref, version)
                model = await asyncio.to_thread(load_model, ref, tracking_uri=uri)
                fresh = Predictor(model)
                await asyncio.to_thread(fresh.warm)
                self.switch(fresh)
            except ModelcycleError as err:
                logger.warning("could not check or load {}: {}", self.ref, err)

    async def load(self) -> None:
        """Load, verify and warm the model in a worker thread; record a failure instead."""
        from modelcycle.registry.store import load_model

        try:
            model = await asyncio.to_thread(load_model, self.ref, tracking_uri=self._tracking_uri())
            predictor = Predictor(model)
            took = await asyncio.to_thread(predictor.warm)
        except ModelcycleError as err:
            self.failure = str(err)
            logger.error("could not load {}: {}", self.ref, err)
            return
        except Exception as err:
            self.failure = f"loading {self.ref} failed: {err}"
            logger.exception("could not load {}", self.ref)
            return
        self.switch(predictor)
        path = "NumPy fast path" if predictor.compiled else "scikit-learn pipeline"
        logger.info("serving {} with the {} ({:.2f} ms per sample row)", model.ref, path, took)

    def switch(self, predictor: Predictor) -> None:
        """Make ``predictor`` answer from now on; requests in flight finish on the old one."""
        old, self.stable, self.failure = self.stable, predictor, None
        if old is not None:
            self.metrics.model_info.labels(old.name, old.version, old.arm).set(0)
            logger.info(
                "switched {} from version {} to {}", old.name, old.version, predictor.version
            )
        self.metrics.model_info.labels(predictor.name, predictor.version, predictor.arm).set(1)
        schema = predictor.model.schema
        if predictor.model.task == "regression" and schema.target is not None:
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
