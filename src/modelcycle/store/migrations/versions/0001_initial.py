"""The operational store: predictions, labels, deployments, deployment events, alerts.

Revision ID: 0001
Revises:
Create Date: 2025-01-01 00:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Frozen copies of the types in modelcycle.store.schema: a migration never imports the live schema.
JSON = sa.JSON(none_as_null=True).with_variant(postgresql.JSONB(none_as_null=True), "postgresql")
ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TIME = sa.DateTime(timezone=True)
ACTIVE_ALERT = sa.text("status != 'resolved'")


def upgrade() -> None:
    """Create every table and index."""
    op.create_table(
        "predictions",
        sa.Column("id", ID, primary_key=True, autoincrement=True),
        sa.Column("request_id", sa.String(128), nullable=False),
        sa.Column("row", sa.Integer, nullable=False, server_default=sa.text("0")),
        sa.Column("created_at", TIME, nullable=False),
        sa.Column("model_name", sa.String(255), nullable=False),
        sa.Column("model_version", sa.String(64), nullable=False),
        sa.Column("arm", sa.String(16), nullable=False),
        sa.Column("features", JSON, nullable=False),
        sa.Column("prediction", sa.Float, nullable=True),
        sa.Column("prediction_label", sa.String(255), nullable=True),
        sa.Column("probabilities", JSON, nullable=True),
        sa.Column("latency_ms", sa.Float, nullable=False, server_default=sa.text("0")),
        sa.Column("ood", JSON, nullable=True),
        sa.Column("error", sa.Text, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_predictions"),
    )
    op.create_index(
        "ix_predictions_model_window",
        "predictions",
        ["model_name", "model_version", "arm", "created_at"],
    )
    op.create_index("ix_predictions_model_time", "predictions", ["model_name", "created_at"])
    op.create_index("ix_predictions_request", "predictions", ["request_id", "row"])

    op.create_table(
        "labels",
        sa.Column("id", ID, primary_key=True, autoincrement=True),
        sa.Column("request_id", sa.String(128), nullable=False),
        sa.Column("row", sa.Integer, nullable=False, server_default=sa.text("0")),
        sa.Column("label", sa.Float, nullable=True),
        sa.Column("label_text", sa.String(255), nullable=True),
        sa.Column("created_at", TIME, nullable=False),
        sa.Column("source", sa.String(255), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_labels"),
        sa.UniqueConstraint("request_id", "row", name="uq_labels_request_id_row"),
    )

    op.create_table(
        "deployments",
        sa.Column("model_name", sa.String(255), nullable=False),
        sa.Column("stable_version", sa.String(64), nullable=True),
        sa.Column("candidate_version", sa.String(64), nullable=True),
        sa.Column("strategy", sa.String(32), nullable=True),
        sa.Column("weight", sa.Float, nullable=False, server_default=sa.text("0")),
        sa.Column("step", sa.Integer, nullable=False, server_default=sa.text("0")),
        sa.Column("status", sa.String(32), nullable=False, server_default=sa.text("'idle'")),
        sa.Column("version_counter", sa.Integer, nullable=False, server_default=sa.text("0")),
        sa.Column("updated_at", TIME, nullable=False),
        sa.Column("state", JSON, nullable=True),
        sa.PrimaryKeyConstraint("model_name", name="pk_deployments"),
    )

    op.create_table(
        "deployment_events",
        sa.Column("id", ID, primary_key=True, autoincrement=True),
        sa.Column("model_name", sa.String(255), nullable=False),
        sa.Column("created_at", TIME, nullable=False),
        sa.Column("actor", sa.String(255), nullable=False),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("from_version", sa.String(64), nullable=True),
        sa.Column("to_version", sa.String(64), nullable=True),
        sa.Column("reason", sa.Text, nullable=True),
        sa.Column("details", JSON, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_deployment_events"),
        sa.ForeignKeyConstraint(
            ["model_name"],
            ["deployments.model_name"],
            name="fk_deployment_events_model_name_deployments",
            ondelete="CASCADE",
        ),
    )
    op.create_index(
        "ix_deployment_events_model_time", "deployment_events", ["model_name", "created_at"]
    )

    op.create_table(
        "alerts",
        sa.Column("id", ID, primary_key=True, autoincrement=True),
        sa.Column("rule", sa.String(128), nullable=False),
        sa.Column("model_name", sa.String(255), nullable=False),
        sa.Column("model_version", sa.String(64), nullable=True),
        sa.Column("severity", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=False, server_default=sa.text("'open'")),
        sa.Column("opened_at", TIME, nullable=False),
        sa.Column("resolved_at", TIME, nullable=True),
        sa.Column("message", sa.Text, nullable=False),
        sa.Column("details", JSON, nullable=True),
        sa.Column("dedup_key", sa.String(255), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_alerts"),
    )
    op.create_index("ix_alerts_model_status", "alerts", ["model_name", "status", "opened_at"])
    op.create_index(
        "uq_alerts_active_dedup_key",
        "alerts",
        ["dedup_key"],
        unique=True,
        sqlite_where=ACTIVE_ALERT,
        postgresql_where=ACTIVE_ALERT,
    )


def downgrade() -> None:
    """Drop every table (their indexes go with them)."""
    for table in ("alerts", "deployment_events", "deployments", "labels", "predictions"):
        op.drop_table(table)
