"""The operational database: the prediction log, labels, deployments and alerts.

One SQLAlchemy URL chooses the backend: SQLite (WAL mode) by default, PostgreSQL through
psycopg 3 by changing ``MODELCYCLE_DATABASE_URL``. The schema is created and evolved by the
packaged Alembic migrations (:func:`upgrade`, also ``modelcycle db upgrade``).
"""

from __future__ import annotations

from modelcycle.store.engine import StoreError, make_engine, ping, store_errors
from modelcycle.store.migrations import (
    StoreStatus,
    UpgradeResult,
    current_revision,
    head_revision,
    status,
    table_counts,
    upgrade,
)
from modelcycle.store.predictions import (
    LabelResult,
    expand_features,
    insert_labels,
    insert_predictions,
    window,
)

__all__ = [
    "LabelResult",
    "StoreError",
    "StoreStatus",
    "UpgradeResult",
    "current_revision",
    "expand_features",
    "head_revision",
    "insert_labels",
    "insert_predictions",
    "make_engine",
    "ping",
    "status",
    "store_errors",
    "table_counts",
    "upgrade",
    "window",
]
