"""Monitoring runs: one row per window a monitoring run judged, with its whole report.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27 06:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Frozen copies of the types in modelcycle.store.schema: a migration never imports the live schema.
JSON = sa.JSON(none_as_null=True).with_variant(postgresql.JSONB(none_as_null=True), "postgresql")
ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    """Create ``monitoring_runs``."""
    op.create_table(
        "monitoring_runs",
        sa.Column("id", ID, primary_key=True, autoincrement=True),
        sa.Column("created_at", TIME, nullable=False),
        sa.Column("model_name", sa.String(255), nullable=False),
        sa.Column("model_version", sa.String(64), nullable=True),
        sa.Column("window_start", TIME, nullable=True),
        sa.Column("window_end", TIME, nullable=True),
        sa.Column("n_rows", sa.Integer(), nullable=False),
        sa.Column("verdict", sa.String(16), nullable=False),
        sa.Column("dataset_drift_share", sa.Float(), nullable=True),
        sa.Column("ood_rate", sa.Float(), nullable=True),
        sa.Column("metric", sa.String(64), nullable=True),
        sa.Column("metric_value", sa.Float(), nullable=True),
        sa.Column("report", JSON, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_monitoring_runs"),
    )
    op.create_index(
        "ix_monitoring_runs_model_time", "monitoring_runs", ["model_name", "created_at"]
    )


def downgrade() -> None:
    """Drop ``monitoring_runs``."""
    op.drop_index("ix_monitoring_runs_model_time", table_name="monitoring_runs")
    op.drop_table("monitoring_runs")
