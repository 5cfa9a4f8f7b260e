"""The prediction log's rows: one PredictionRecord per predicted row, LabelRecords arriving later.

These types live in ``data`` (below serving and monitoring) so the server writes them and
monitoring reads them without either importing the other. The operational store
(:mod:`modelcycle.store`) persists them; a label joins its prediction by ``(request_id, row)``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

Arm = Literal["stable", "canary", "shadow", "blue", "green"]
"""The deployment arm that produced a prediction."""

ARMS: tuple[Arm, ...] = ("stable", "canary", "shadow", "blue", "green")

Outcome = bool | int | float | str
"""A prediction or a true label: a number (regression, numeric classes) or a class name."""


def utc_now() -> datetime:
    """The current time, timezone-aware in UTC."""
    return datetime.now(UTC)


def as_utc(value: datetime) -> datetime:
    """``value`` in UTC; a naive datetime is taken to be UTC already."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


UTCDatetime = Annotated[datetime, AfterValidator(as_utc)]
RequestId = Annotated[str, Field(min_length=1, max_length=128)]
Name = Annotated[str, Field(min_length=1, max_length=255)]
Version = Annotated[str, Field(min_length=1, max_length=64)]


class PredictionRecord(BaseModel):
    """One predicted row, as the server (or a logged batch job) writes it to the store.

    A request that predicts several rows writes one record per row, sharing ``request_id`` and
    numbered by ``row``; a shadow deployment writes one record per arm for the same row.

    Attributes:
        request_id: The caller's ``X-Request-ID`` or a generated id.
        row: Position of the row within its request (0 for single-row requests).
        timestamp: When the prediction was made (UTC; a naive datetime is read as UTC).
        model_name: Registered model name.
        model_version: Registered model version (numbers are accepted and kept as text).
        arm: The deployment arm that answered.
        features: The model input by feature name.
        prediction: The predicted value or class; ``None`` only when ``error`` is set.
        probabilities: Class probabilities by class name (classification only).
        latency_ms: Time spent predicting, in milliseconds.
        ood: Out-of-distribution flags and score, e.g. ``{"score": 0.93, "flags": ["area"]}``.
        error: Why the row could not be predicted, if it could not.
        record_id: A unique id for this record (the server sets one, so replaying its
            write-ahead spool never stores a record twice).
    """

    model_config = ConfigDict(extra="forbid", coerce_numbers_to_str=True)

    request_id: RequestId
    row: int = Field(default=0, ge=0)
    timestamp: UTCDatetime = Field(default_factory=utc_now)
    model_name: Name
    model_version: Version
    arm: Arm = "stable"
    features: dict[str, Any]
    prediction: Outcome | None = None
    probabilities: dict[str, float] | None = None
    latency_ms: float = Field(default=0.0, ge=0)
    ood: dict[str, Any] | None = None
    error: str | None = None
    record_id: Annotated[str, Field(max_length=64)] | None = None


class LabelRecord(BaseModel):
    """The true outcome of a predicted row, arriving after the prediction.

    Attributes:
        request_id: The request the label belongs to.
        row: The row within that request (0 for single-row requests).
        label: The true value or class.
        timestamp: When the outcome was observed or reported (UTC).
        source: Who or what reported it (a system name, a user, a file).
    """

    model_config = ConfigDict(extra="forbid", coerce_numbers_to_str=True)

    request_id: RequestId
    row: int = Field(default=0, ge=0)
    label: Outcome
    timestamp: UTCDatetime = Field(default_factory=utc_now)
    source: Annotated[str, Field(max_length=255)] | None = None
