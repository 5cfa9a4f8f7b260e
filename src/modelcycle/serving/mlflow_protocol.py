"""MLflow's scoring protocol, so a client written for ``mlflow models serve`` works unchanged.

``POST /invocations`` accepts what MLflow's scoring server accepts — JSON with exactly one of
``dataframe_split``, ``dataframe_records``, ``instances`` or ``inputs`` (and optional
``params``), ``text/csv`` and ``application/x-parquet`` — parsed by MLflow's own functions, and
answers ``{"predictions": [...]}`` with one record per row, as MLflow does for a model that
returns a DataFrame. ``GET /ping``, ``/health`` and ``/version`` answer as MLflow's do.
Rows are then checked and predicted like any other request, and logged.
"""

from __future__ import annotations

import io
import json
from typing import Any

import numpy as np
import orjson
import pandas as pd
from fastapi import APIRouter, Request
from fastapi.responses import PlainTextResponse

from modelcycle.serving.inputs import InputError
from modelcycle.serving.runtime import ApiError, JSONBytes, Serving, read_body

router = APIRouter(tags=["mlflow"])
_BAD_REQUEST = "BAD_REQUEST"
_PARQUET = ("application/vnd.apache.parquet", "application/x-parquet", "application/parquet")


def _serving(request: Request) -> Serving:
    serving: Serving = request.app.state.serving
    return serving


@router.get("/ping", summary="MLflow's health check: 200 once the model is loaded.")
async def ping(request: Request) -> PlainTextResponse:
    """200 with an empty body when ready, else 503."""
    ready = _serving(request).ready
    return PlainTextResponse("\n", status_code=200 if ready else 503)


router.add_api_route(
    "/health", ping, methods=["GET"], summary="The same as /ping (MLflow's alias)."
)


@router.get("/version", summary="The MLflow version this server is compatible with.")
async def version() -> PlainTextResponse:
    """The installed MLflow version, as ``mlflow models serve`` reports it."""
    from importlib.metadata import version as installed

    return PlainTextResponse(installed("mlflow"))


@router.post(
    "/invocations",
    summary="Predict with MLflow's scoring protocol (dataframe_split, dataframe_records, "
    "instances, inputs, CSV).",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {
                        "type": "object",
                        "properties": {
                            "dataframe_split": {"type": "object"},
                            "dataframe_records": {"type": "array", "items": {"type": "object"}},
                            "instances": {},
                            "inputs": {},
                            "params": {"type": "object"},
                        },
                    }
                },
                "text/csv": {"schema": {"type": "string"}},
            },
        }
    },
)
async def invocations(request: Request) -> JSONBytes:
    """Predict the rows of an MLflow scoring request."""
    serving = _serving(request)
    serving.require("predict", request.headers)
    body = await read_body(request, serving.settings.max_body_bytes)
    frame = _parse(body, request.headers.get("content-type", "application/json"))
    first = frame.iloc[0].to_dict() if len(frame) else None
    routed = serving.route(request.scope["state"], serving.routing_key(request.headers, first))
    predictor = routed.predictor
    try:
        typed, problems = predictor.rules.check_frame(frame)
    except InputError as err:  # required feature columns are absent: MLflow's error format too
        problems = err.problems
    if problems:
        shown = "; ".join(str(p) for p in problems[:10])
        raise ApiError(
            422,
            f"invalid input: {shown}",
            "send every required feature with the type the model was trained on",
            {
                "error_code": _BAD_REQUEST,
                "message": f"invalid input: {shown}",
                "problems": [p.as_dict() for p in problems],
            },
        )
    answer = await serving.predict_frame(typed, request.scope["state"]["request_id"], routed)
    outputs = answer.outputs
    records: list[dict[str, Any]] = [{"prediction": value} for value in outputs.predictions]
    if outputs.probabilities is not None:
        for record, proba in zip(records, outputs.probabilities, strict=True):
            record.update({f"proba_{name}": p for name, p in proba.items()})
    return JSONBytes({"predictions": records})


def _parse(body: bytes, content_type: str) -> pd.DataFrame:
    """The request's rows as a DataFrame, parsed as MLflow's scoring server parses them."""
    from mlflow.exceptions import MlflowException
    from mlflow.pyfunc import scoring_server

    mime = content_type.split(";", maxsplit=1)[0].strip().lower()
    try:
        if mime == "text/csv":
            frame = scoring_server.parse_csv_input(io.StringIO(body.decode("utf-8")))
        elif mime in _PARQUET:
            frame = pd.read_parquet(io.BytesIO(body))
        elif mime in ("application/json", ""):
            payload = _json(body)
            if not isinstance(payload, dict):
                raise ApiError(
                    400,
                    "the body must be a JSON object with one of dataframe_split, "
                    "dataframe_records, instances or inputs",
                    details={"error_code": _BAD_REQUEST},
                )
            data = {k: v for k, v in payload.items() if k != "params"}
            frame = _plain(scoring_server.infer_and_parse_data(data))
        else:
            raise ApiError(
                415,
                f"unsupported content type {content_type!r}",
                "send application/json, text/csv or application/vnd.apache.parquet",
            )
        if not isinstance(frame, pd.DataFrame):
            frame = pd.DataFrame(frame)
    except MlflowException as err:
        raise ApiError(
            400, err.message, details={"error_code": _BAD_REQUEST, "message": err.message}
        ) from None
    except (UnicodeDecodeError, ValueError, TypeError) as err:
        message = f"the input cannot be read as a table: {err}"
        raise ApiError(400, message, details={"error_code": _BAD_REQUEST}) from None
    if frame.empty:
        raise ApiError(400, "the input has no rows", details={"error_code": _BAD_REQUEST})
    return frame


def _json(body: bytes) -> Any:
    """A JSON body, read as MLflow's server reads it: ``NaN`` and ``Infinity`` are accepted.

    MLflow's own clients (``convert_input_example_to_serving_input``, ``json.dumps``) write
    ``NaN`` for a missing value; orjson refuses it, so the standard library reads those bodies.
    """
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as err:
        first = err
    try:
        return json.loads(body)
    except ValueError:
        raise ApiError(
            400,
            f"the request body is not valid JSON: {first}",
            "send a JSON document",
            {"error_code": _BAD_REQUEST},
        ) from None


def _plain(parsed: Any) -> Any:
    """MLflow's parsed ``instances``/``inputs`` with NumPy 0-d arrays unwrapped to plain values.

    For a list of records MLflow gives one 0-d array per value, for a column holding nulls an
    object array of 0-d arrays, and for one row of scalars 0-d arrays; pandas cannot use
    any of them as table cells.
    """
    if isinstance(parsed, list):
        return [
            {k: _item(v) for k, v in row.items()} if isinstance(row, dict) else row
            for row in parsed
        ]
    if isinstance(parsed, dict):
        return {k: _cells(v) for k, v in parsed.items()}
    return parsed


def _item(value: Any) -> Any:
    return value.item() if isinstance(value, np.ndarray) and value.ndim == 0 else value


def _cells(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        if value.ndim == 0:
            return [value.item()]
        if value.dtype == object and value.ndim == 1:
            return [_item(v) for v in value]
    return value
