"""The operational database's tables: the prediction log, labels, deployments, alerts, monitoring.

Declared with SQLAlchemy 2's typed declarative mapping so the columns carry Python types. The
migrations in :mod:`modelcycle.store.migrations` create exactly these tables (a test compares
them); change both together. Types work on SQLite and PostgreSQL alike: JSON is JSONB on
PostgreSQL, timestamps are always stored and returned in UTC.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

JSONType = sa.JSON(none_as_null=True).with_variant(
    postgresql.JSONB(none_as_null=True), "postgresql"
)
"""JSON on SQLite, JSONB on PostgreSQL; Python ``None`` is SQL ``NULL`` (not JSON ``null``)."""
BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
"""A 64-bit key; plain INTEGER on SQLite so it aliases the rowid and autoincrements."""

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(sa.TypeDecorator[datetime]):
    """A timezone-aware timestamp stored in UTC on every backend.

    Naive datetimes are taken to be UTC. SQLite has no time zones, so values are stored there as
    naive UTC text (which sorts correctly); PostgreSQL uses ``timestamp with time zone``.
    Results are always aware datetimes in UTC.
    """

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Convert to UTC (naive on SQLite) before storing."""
        if value is None:
            return None
        value = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(
        self,
        value: datetime | None,
        dialect: Dialect,  # noqa: ARG002 - the signature SQLAlchemy calls
    ) -> datetime | None:
        """Return an aware datetime in UTC."""
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    """Declarative base of the store's tables (one metadata, constraint names by convention)."""

    metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {  # noqa: RUF012 - SQLAlchemy reads this class attribute
        datetime: UTCDateTime(),
        dict[str, Any]: JSONType,
    }


class Prediction(Base):
    """One predicted row (see :class:`modelcycle.data.records.PredictionRecord`).

    The prediction is split in two columns so SQL can aggregate numbers: ``prediction`` holds a
    numeric prediction (or numeric class), ``prediction_label`` a class name.
    """

    __tablename__ = "predictions"
    __table_args__ = (
        sa.Index("ix_predictions_model_window", "model_name", "model_version", "arm", "created_at"),
        sa.Index("ix_predictions_model_time", "model_name", "created_at"),
        sa.Index("ix_predictions_request", "request_id", "row"),
        sa.Index("ux_predictions_record_id", "record_id", unique=True),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    request_id: Mapped[str] = mapped_column(sa.String(128))
    row: Mapped[int] = mapped_column(sa.Integer, default=0, server_default=sa.text("0"))
    created_at: Mapped[datetime]
    model_name: Mapped[str] = mapped_column(sa.String(255))
    model_version: Mapped[str] = mapped_column(sa.String(64))
    arm: Mapped[str] = mapped_column(sa.String(16))
    features: Mapped[dict[str, Any]]
    prediction: Mapped[float | None] = mapped_column(sa.Float)
    prediction_label: Mapped[str | None] = mapped_column(sa.String(255))
    probabilities: Mapped[dict[str, Any] | None]
    latency_ms: Mapped[float] = mapped_column(sa.Float, default=0.0, server_default=sa.text("0"))
    ood: Mapped[dict[str, Any] | None]
    error: Mapped[str | None] = mapped_column(sa.Text)
    record_id: Mapped[str | None] = mapped_column(sa.String(64))
    """Unique per record when set: replaying a spool skips records already written."""


class Label(Base):
    """The true outcome of one predicted row, keyed by ``(request_id, row)``.

    Like predictions, a numeric label goes to ``label`` and a class name to ``label_text``.
    """

    __tablename__ = "labels"
    __table_args__ = (sa.UniqueConstraint("request_id", "row"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    request_id: Mapped[str] = mapped_column(sa.String(128))
    row: Mapped[int] = mapped_column(sa.Integer, default=0, server_default=sa.text("0"))
    label: Mapped[float | None] = mapped_column(sa.Float)
    label_text: Mapped[str | None] = mapped_column(sa.String(255))
    created_at: Mapped[datetime]
    source: Mapped[str | None] = mapped_column(sa.String(255))


class Deployment(Base):
    """The deployment state of one model name; ``version_counter`` guards concurrent updates."""

    __tablename__ = "deployments"

    model_name: Mapped[str] = mapped_column(sa.String(255), primary_key=True)
    stable_version: Mapped[str | None] = mapped_column(sa.String(64))
    candidate_version: Mapped[str | None] = mapped_column(sa.String(64))
    strategy: Mapped[str | None] = mapped_column(sa.String(32))
    weight: Mapped[float] = mapped_column(sa.Float, default=0.0, server_default=sa.text("0"))
    step: Mapped[int] = mapped_column(sa.Integer, default=0, server_default=sa.text("0"))
    status: Mapped[str] = mapped_column(
        sa.String(32), default="idle", server_default=sa.text("'idle'")
    )
    version_counter: Mapped[int] = mapped_column(sa.Integer, default=0, server_default=sa.text("0"))
    updated_at: Mapped[datetime]
    state: Mapped[dict[str, Any] | None]


class DeploymentEvent(Base):
    """One entry of a deployment's append-only history: who did what, why and when."""

    __tablename__ = "deployment_events"
    __table_args__ = (sa.Index("ix_deployment_events_model_time", "model_name", "created_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    model_name: Mapped[str] = mapped_column(
        sa.String(255), sa.ForeignKey("deployments.model_name", ondelete="CASCADE")
    )
    created_at: Mapped[datetime]
    actor: Mapped[str] = mapped_column(sa.String(255))
    action: Mapped[str] = mapped_column(sa.String(64))
    from_version: Mapped[str | None] = mapped_column(sa.String(64))
    to_version: Mapped[str | None] = mapped_column(sa.String(64))
    reason: Mapped[str | None] = mapped_column(sa.Text)
    details: Mapped[dict[str, Any] | None]


ACTIVE_ALERT = sa.text("status != 'resolved'")


class Alert(Base):
    """A monitoring alert; at most one unresolved alert per ``dedup_key`` (a partial index)."""

    __tablename__ = "alerts"
    __table_args__ = (
        sa.Index("ix_alerts_model_status", "model_name", "status", "opened_at"),
        sa.Index(
            "uq_alerts_active_dedup_key",
            "dedup_key",
            unique=True,
            sqlite_where=ACTIVE_ALERT,
            postgresql_where=ACTIVE_ALERT,
        ),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    rule: Mapped[str] = mapped_column(sa.String(128))
    model_name: Mapped[str] = mapped_column(sa.String(255))
    model_version: Mapped[str | None] = mapped_column(sa.String(64))
    severity: Mapped[str] = mapped_column(sa.String(16))
    status: Mapped[str] = mapped_column(
        sa.String(16), default="open", server_default=sa.text("'open'")
    )
    opened_at: Mapped[datetime]
    resolved_at: Mapped[datetime | None]
    message: Mapped[str] = mapped_column(sa.Text)
    details: Mapped[dict[str, Any] | None]
    dedup_key: Mapped[str] = mapped_column(sa.String(255))


class MonitoringRun(Base):
    """One monitoring run: a window of one model version's predictions against its reference.

    ``report`` holds the whole JSON report (per-feature drift, OOD, operations, performance,
    timeline, histograms); the columns beside it are what lists and charts filter and sort on.
    """

    __tablename__ = "monitoring_runs"
    __table_args__ = (sa.Index("ix_monitoring_runs_model_time", "model_name", "created_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    created_at: Mapped[datetime]
    model_name: Mapped[str] = mapped_column(sa.String(255))
    model_version: Mapped[str | None] = mapped_column(sa.String(64))
    window_start: Mapped[datetime | None]
    window_end: Mapped[datetime | None]
    n_rows: Mapped[int] = mapped_column(sa.Integer)
    verdict: Mapped[str] = mapped_column(sa.String(16))
    dataset_drift_share: Mapped[float | None] = mapped_column(sa.Float)
    ood_rate: Mapped[float | None] = mapped_column(sa.Float)
    metric: Mapped[str | None] = mapped_column(sa.String(64))
    metric_value: Mapped[float | None] = mapped_column(sa.Float)
    report: Mapped[dict[str, Any]]


predictions = cast(sa.Table, Prediction.__table__)
labels = cast(sa.Table, Label.__table__)
deployments = cast(sa.Table, Deployment.__table__)
deployment_events = cast(sa.Table, DeploymentEvent.__table__)
alerts = cast(sa.Table, Alert.__table__)
monitoring_runs = cast(sa.Table, MonitoringRun.__table__)
TABLES = ("predictions", "labels", "deployments", "deployment_events", "alerts", "monitoring_runs")
"""Every table the migrations create, in creation order."""
