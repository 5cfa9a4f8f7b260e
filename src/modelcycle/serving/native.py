"""modelcycle's own JSON API: ``POST /predict`` and ``POST /labels`` (also ``/feedback``).

``/predict`` takes one object of features by name, or a list of them, validated by the request
model generated from the FeatureSchema. ``/labels`` takes the true outcomes of logged
predictions by request id; each item's outcome is reported (inserted, updated, duplicate,
unknown) and sending a label again changes nothing.
"""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Request
from pydantic import TypeAdapter
from pydantic import ValidationError as PydanticValidationError

from modelcycle.data.records import LabelRecord
from modelcycle.serving.predictor import Predictor
from modelcycle.serving.runtime import ApiError, JSONBytes, Serving, parse_json, read_body

router = APIRouter(tags=["predict"])
_LABELS = TypeAdapter(list[LabelRecord])


def body_schemas(predictor: Predictor) -> dict[str, Any]:
    """OpenAPI component schemas of the request bodies, from the model's FeatureSchema."""
    row = predictor.rules.json_schema()
    title = row.get("title", "Features")
    ref = {"$ref": f"#/components/schemas/{title}"}
    return {
        title: row,
        "PredictRequest": {
            "title": "PredictRequest",
            "description": "One object of features by name, or a list of them.",
            "anyOf": [ref, {"type": "array", "items": ref, "minItems": 1}],
        },
        "LabelRecord": LabelRecord.model_json_schema(ref_template="#/components/schemas/{model}"),
        "PredictResponse": {
            "title": "PredictResponse",
            "type": "object",
            "required": ["request_id", "model", "version", "arm", "predictions"],
            "properties": {
                "request_id": {"type": "string", "description": "Labels refer to it."},
                "model": {"type": "string"},
                "version": {"type": "string"},
                "arm": {"type": "string", "enum": ["stable", "canary", "shadow", "blue", "green"]},
                "predictions": {
                    "type": "array",
                    "description": "One per row, in order (a class for classifiers).",
                },
                "probabilities": {
                    "type": "array",
                    "items": {"type": "object", "additionalProperties": {"type": "number"}},
                    "description": "Classifiers: class probabilities per row.",
                },
                "classes": {"type": "array", "description": "Classifiers: the class names."},
                "ood": {
                    "type": "array",
                    "description": "Per row, whether it looks unlike the training data: flag, "
                    "isolation score (higher is more unusual) and the checks that fired. "
                    "Absent when the model has no OOD detector.",
                    "items": {
                        "type": "object",
                        "properties": {
                            "flag": {"type": "boolean"},
                            "score": {"type": ["number", "null"]},
                            "reasons": {"type": "array", "items": {"type": "string"}},
                        },
                    },
                },
            },
        },
    }


def _serving(request: Request) -> Serving:
    serving: Serving = request.app.state.serving
    return serving


@router.post(
    "/predict",
    summary="Predict one row or a list of rows.",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": {"$ref": "#/components/schemas/PredictRequest"}}
            },
        }
    },
    responses={
        200: {
            "description": "The predictions, and which model version and arm answered.",
            "content": {
                "application/json": {"schema": {"$ref": "#/components/schemas/PredictResponse"}}
            },
        },
        422: {"description": "A feature is missing, of the wrong type, NaN or infinite."},
        413: {"description": "The body or the number of rows is over the limit."},
    },
)
async def predict(request: Request) -> JSONBytes:
    """Predict rows of features; every row is logged under the request id."""
    serving = _serving(request)
    serving.require("predict", request.headers)
    payload = parse_json(await read_body(request, serving.settings.max_body_bytes))
    first = payload[0] if isinstance(payload, list) and payload else payload
    key = serving.routing_key(request.headers, first)
    routed = serving.route(request.scope["state"], key)
    rows = routed.predictor.rules.validate_rows(payload)
    columns = routed.predictor.rules.columns_from_rows(rows)
    answer = await serving.predict(routed, columns, rows, request.scope["state"]["request_id"])
    body: dict[str, Any] = {
        "request_id": answer.request_id,
        "model": answer.predictor.name,
        "version": answer.predictor.version,
        "arm": answer.arm,
        "predictions": answer.outputs.predictions,
    }
    if answer.outputs.probabilities is not None:
        body["probabilities"] = answer.outputs.probabilities
        body["classes"] = answer.predictor.classes
    if answer.outputs.ood is not None:
        body["ood"] = answer.outputs.ood
    return JSONBytes(body)


_LABELS_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "anyOf": [
                        {"$ref": "#/components/schemas/LabelRecord"},
                        {"type": "array", "items": {"$ref": "#/components/schemas/LabelRecord"}},
                    ]
                }
            }
        },
    }
}


@router.post(
    "/labels",
    tags=["labels"],
    summary="Report true outcomes of logged predictions by request id.",
    openapi_extra=_LABELS_BODY,
)
async def labels(request: Request) -> JSONBytes:
    """Store labels; each item says whether it was inserted, updated, a duplicate or unknown."""
    serving = _serving(request)
    serving.require("predict", request.headers)
    payload = parse_json(await read_body(request, serving.settings.max_body_bytes))
    if isinstance(payload, dict) and "labels" in payload:
        payload = payload["labels"]
    if isinstance(payload, dict):
        payload = [payload]
    try:
        items = _LABELS.validate_python(payload)
    except PydanticValidationError as err:
        problems = [
            {
                "item": e["loc"][0] if e["loc"] and isinstance(e["loc"][0], int) else None,
                "field": ".".join(str(p) for p in e["loc"][1:]) or None,
                "reason": e["msg"],
            }
            for e in err.errors()
        ]
        shown = "; ".join(f"item {p['item']}, {p['field']}: {p['reason']}" for p in problems[:10])
        raise ApiError(
            422,
            f"invalid labels: {shown}",
            "send {'request_id': ..., 'row': 0, 'label': ...} per label",
            {"problems": problems},
        ) from None
    if not items:
        raise ApiError(422, "no labels given", "send at least one label")
    results = await asyncio.to_thread(_store_labels, serving, items)
    counts: dict[str, int] = {}
    for result in results:
        counts[result.status] = counts.get(result.status, 0) + 1
    return JSONBytes(
        {
            "counts": counts,
            "results": [
                {"request_id": r.request_id, "row": r.row, "status": r.status} for r in results
            ],
        }
    )


router.add_api_route(
    "/feedback",
    labels,
    methods=["POST"],
    tags=["labels"],
    summary="The same as POST /labels.",
    openapi_extra=_LABELS_BODY,
)


def _store_labels(serving: Serving, items: list[LabelRecord]) -> list[Any]:
    from modelcycle.store import insert_labels
    from modelcycle.store.engine import StoreError, store_errors

    if serving.engine is None:
        raise ApiError(503, "the server is still starting", "retry shortly")
    if serving.log is not None:  # predictions just served must be stored before their labels
        serving.log.flush(timeout=5)
    try:
        with store_errors(serving.engine, "storing labels"), serving.engine.begin() as conn:
            return insert_labels(conn, items)
    except StoreError as err:
        raise ApiError(
            503,
            f"labels cannot be stored now: {err.message}",
            "retry later; predictions are still being served",
        ) from None
