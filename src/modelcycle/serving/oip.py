"""The Open Inference Protocol (KServe / Triton "v2"), so OIP clients and gateways can call us.

A tabular model takes one input tensor per feature, named after it, of shape ``[rows]`` (or
``[rows, 1]``): ``FP64``/``FP32``/``INT*`` for numbers, ``BOOL`` for booleans and ``BYTES`` for
strings and dates. Outputs are ``predict`` (values, or class names as ``BYTES``) and, for
classifiers, ``predict_proba`` of shape ``[rows, classes]``. Tensor data may come as JSON or
with the binary tensor data extension (``Inference-Header-Content-Length``), which Triton's
clients use by default.
"""

from __future__ import annotations

import struct
from typing import Any

import numpy as np
import pandas as pd
from fastapi import APIRouter, Request

from modelcycle import __version__
from modelcycle.serving.predictor import Predictor
from modelcycle.serving.runtime import (
    ApiError,
    JSONBytes,
    Serving,
    parse_json,
    read_body,
    request_id,
)

router = APIRouter(prefix="/v2", tags=["open inference protocol"])

_NUMPY = {
    "BOOL": "?",
    "UINT8": "<u1",
    "UINT16": "<u2",
    "UINT32": "<u4",
    "UINT64": "<u8",
    "INT8": "<i1",
    "INT16": "<i2",
    "INT32": "<i4",
    "INT64": "<i8",
    "FP16": "<f2",
    "FP32": "<f4",
    "FP64": "<f8",
}
_HEADER = "inference-header-content-length"


def _serving(request: Request) -> Serving:
    serving: Serving = request.app.state.serving
    return serving


def _datatype(kind: str) -> str:
    return {"numeric": "FP64", "boolean": "BOOL"}.get(kind, "BYTES")


@router.get("", summary="Server metadata.")
async def server_metadata() -> dict[str, Any]:
    """Name, version and supported extensions."""
    return {"name": "modelcycle", "version": __version__, "extensions": ["binary_tensor_data"]}


@router.get("/health/live", summary="The server is live.")
async def server_live() -> dict[str, bool]:
    """Always live while the process answers."""
    return {"live": True}


@router.get("/health/ready", summary="The server is ready (a model is loaded).")
async def server_ready(request: Request) -> JSONBytes:
    """200 when ready, else 503."""
    ready = _serving(request).ready
    return JSONBytes({"ready": ready}, status_code=200 if ready else 503)


@router.get("/models/{name}", summary="Model metadata.")
@router.get("/models/{name}/versions/{version}", summary="Model version metadata.")
async def model_metadata(request: Request, name: str, version: str | None = None) -> Any:
    """Inputs and outputs of the model (one input tensor per feature)."""
    predictor = _serving(request).route(None, name=name, version=version).predictor
    outputs = [{"name": "predict", "datatype": _output_type(predictor), "shape": [-1]}]
    if predictor.classes is not None:
        outputs.append(
            {"name": "predict_proba", "datatype": "FP64", "shape": [-1, len(predictor.classes)]}
        )
    return {
        "name": predictor.name,
        "versions": [predictor.version],
        "platform": "modelcycle_sklearn",
        "inputs": [
            {"name": r.name, "datatype": _datatype(r.kind), "shape": [-1]}
            for r in predictor.rules.features
        ],
        "outputs": outputs,
    }


@router.get("/models/{name}/ready", summary="The model is ready.")
@router.get("/models/{name}/versions/{version}/ready", summary="The model version is ready.")
async def model_ready(request: Request, name: str, version: str | None = None) -> Any:
    """200 when this model (version) is loaded."""
    predictor = _serving(request).route(None, name=name, version=version).predictor
    return {"name": predictor.name, "ready": True}


@router.post("/models/{name}/infer", summary="Predict with one input tensor per feature.")
@router.post(
    "/models/{name}/versions/{version}/infer", summary="Predict with a given model version."
)
async def infer(request: Request, name: str, version: str | None = None) -> JSONBytes:
    """Run inference on OIP tensors; outputs ``predict`` (and ``predict_proba``)."""
    serving = _serving(request)
    serving.require("predict", request.headers)
    key = serving.routing_key(request.headers, None)
    routed = serving.route(request.scope["state"], key, name=name, version=version)
    predictor = routed.predictor
    body = await read_body(request, serving.settings.max_body_bytes)
    payload, binary = _split_binary(body, request.headers.get(_HEADER))
    if not isinstance(payload, dict) or not isinstance(payload.get("inputs"), list):
        raise ApiError(400, "the request must be a JSON object with a list of 'inputs'")
    frame = _frame(payload["inputs"], binary)
    _check_datatypes(payload["inputs"], predictor)
    typed, problems = predictor.rules.check_frame(frame)
    if problems:
        raise ApiError(
            400,
            "invalid input: " + "; ".join(str(p) for p in problems[:10]),
            "send one tensor per feature with the type the model was trained on "
            f"(GET /v2/models/{predictor.name})",
            {"problems": [p.as_dict() for p in problems]},
        )
    state = request.scope["state"]
    given = payload.get("id")
    if isinstance(given, str) and request_id(given) == given:
        state["request_id"] = given
    rid = state["request_id"]
    answer = await serving.predict_frame(typed, rid, routed)
    outputs = answer.outputs
    result = [
        {
            "name": "predict",
            "datatype": _output_type(predictor),
            "shape": [len(outputs)],
            "data": outputs.predictions,
        }
    ]
    if outputs.probabilities is not None and predictor.classes is not None:
        classes = predictor.classes
        result.append(
            {
                "name": "predict_proba",
                "datatype": "FP64",
                "shape": [len(outputs), len(classes)],
                "data": [row[c] for row in outputs.probabilities for c in classes],
            }
        )
    wanted = {o.get("name") for o in payload.get("outputs") or [] if isinstance(o, dict)}
    if wanted:
        result = [o for o in result if o["name"] in wanted]
    body_out = {
        "model_name": predictor.name,
        "model_version": predictor.version,
        "id": rid,
        "outputs": result,
    }
    return JSONBytes(body_out)


def _check_datatypes(inputs: list[Any], predictor: Predictor) -> None:
    """Refuse a numeric or BOOL tensor for a feature the model only knows as strings.

    Its values would all be unseen categories: a silently wrong prediction, not an error.

    Raises:
        ApiError: 400 naming the input and the datatype to send.
    """
    rules = {rule.name: rule for rule in predictor.rules.features}
    for tensor in inputs:
        rule = rules.get(tensor["name"])
        datatype = str(tensor.get("datatype", "")).upper()
        if rule is None or rule.numeric_codes or datatype == "BYTES":
            continue
        if _datatype(rule.kind) == "BYTES":
            raise ApiError(
                400,
                f"input {rule.name!r} is a {rule.kind} feature: send it as BYTES, not {datatype}",
                f"see each input's datatype with GET /v2/models/{predictor.name}",
            )


def _output_type(predictor: Predictor) -> str:
    if predictor.model.task == "regression":
        return "FP64"
    classes = predictor.model.classes or []
    return "BYTES" if any(isinstance(c, str) for c in classes) else "FP64"


def _split_binary(body: bytes, header: str | None) -> tuple[Any, bytes]:
    """The JSON part of a request and the binary tensor data that follows it."""
    if header is None:
        return parse_json(body), b""
    if not header.isdigit() or int(header) > len(body):
        raise ApiError(400, f"bad Inference-Header-Content-Length {header!r}")
    size = int(header)
    return parse_json(body[:size]), body[size:]


def _frame(inputs: list[Any], binary: bytes) -> pd.DataFrame:
    """One column per input tensor (tensors must have the same number of rows)."""
    columns: dict[str, Any] = {}
    offset = 0
    rows: int | None = None
    for tensor in inputs:
        if not isinstance(tensor, dict) or not isinstance(tensor.get("name"), str):
            raise ApiError(400, "each input must be an object with a name, shape and datatype")
        name, datatype = tensor["name"], str(tensor.get("datatype", "")).upper()
        if datatype != "BYTES" and datatype not in _NUMPY:
            raise ApiError(400, f"input {name!r}: unsupported datatype {datatype!r}")
        size = (tensor.get("parameters") or {}).get("binary_data_size")
        if size is not None:
            if not isinstance(size, int) or size < 0 or offset + size > len(binary):
                raise ApiError(400, f"input {name!r}: binary_data_size does not fit the body")
            values = _decode(binary[offset : offset + size], datatype, name)
            offset += size
        else:
            values = _flatten(tensor.get("data"), name)
        shape = tensor.get("shape")
        count = len(values)
        if _bad_shape(shape, count):
            raise ApiError(
                400,
                f"input {name!r}: shape {shape} does not match {count} values "
                "(use [rows] or [rows, 1])",
            )
        if rows is not None and count != rows:
            raise ApiError(400, f"input {name!r} has {count} rows; the others have {rows}")
        rows = count
        columns[name] = values
    if not rows:
        raise ApiError(400, "the request has no rows")
    return pd.DataFrame(columns)


def _bad_shape(shape: Any, count: int) -> bool:
    """Whether a declared tensor shape disagrees with the values (or is not one column)."""
    if not isinstance(shape, list) or not shape or not all(isinstance(s, int) for s in shape):
        return False
    return int(np.prod(shape)) != count or (len(shape) > 1 and int(np.prod(shape[1:])) != 1)


def _flatten(data: Any, name: str) -> list[Any]:
    if not isinstance(data, list):
        raise ApiError(400, f"input {name!r}: 'data' must be a list")
    flat: list[Any] = []
    stack = [data]
    while stack:  # nested lists (row-major) are flattened
        item = stack.pop()
        if isinstance(item, list):
            stack.extend(reversed(item))
        else:
            flat.append(item)
    return flat


def _decode(raw: bytes, datatype: str, name: str) -> list[Any]:
    if datatype != "BYTES":
        dtype = np.dtype(_NUMPY[datatype])
        if len(raw) % dtype.itemsize:
            raise ApiError(400, f"input {name!r}: {len(raw)} bytes is not a whole {datatype} array")
        decoded: list[Any] = np.frombuffer(raw, dtype=dtype).tolist()
        return decoded
    values: list[Any] = []
    position = 0
    while position < len(raw):
        if position + 4 > len(raw):
            raise ApiError(400, f"input {name!r}: truncated BYTES element")
        (length,) = struct.unpack_from("<I", raw, position)
        position += 4
        chunk = raw[position : position + length]
        if len(chunk) != length:
            raise ApiError(400, f"input {name!r}: truncated BYTES element")
        values.append(chunk.decode("utf-8", errors="replace"))
        position += length
    return values
