"""Predictions get a unique record id, so replaying a write-ahead spool never duplicates a row.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27 00:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Add ``predictions.record_id`` with a unique index (NULLs allowed for old rows)."""
    with op.batch_alter_table("predictions") as batch:
        batch.add_column(sa.Column("record_id", sa.String(64), nullable=True))
    op.create_index("ux_predictions_record_id", "predictions", ["record_id"], unique=True)


def downgrade() -> None:
    """Drop the record id."""
    op.drop_index("ux_predictions_record_id", table_name="predictions")
    with op.batch_alter_table("predictions") as batch:
        batch.drop_column("record_id")
