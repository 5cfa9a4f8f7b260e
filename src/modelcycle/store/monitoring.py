"""Monitoring runs in the operational store: save one, list a model's recent runs.

A run's whole JSON report is kept in ``report``; the columns beside it (verdict, drift share,
OOD rate, metric) are copies for listing and charting without decoding every report.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from modelcycle.data.records import as_utc
from modelcycle.store.schema import monitoring_runs

SUMMARY_COLUMNS = (
    "id",
    "created_at",
    "model_name",
    "model_version",
    "window_start",
    "window_end",
    "n_rows",
    "verdict",
    "dataset_drift_share",
    "ood_rate",
    "metric",
    "metric_value",
)
"""The columns of a run without its report."""


def save_run(conn: Connection, row: dict[str, Any]) -> int:
    """Insert one monitoring run (the table's columns; ``report`` is the JSON report).

    Returns:
        The new run's id.
    """
    statement = sa.insert(monitoring_runs).values(**row).returning(monitoring_runs.c.id)
    return int(conn.execute(statement).scalar_one())


def recent_runs(
    conn: Connection,
    model_name: str,
    *,
    since: datetime | None = None,
    limit: int = 100,
    with_report: bool = False,
) -> list[dict[str, Any]]:
    """A model's most recent runs, oldest first.

    Args:
        conn: An open connection.
        model_name: The registered model.
        since: Only runs created at or after this.
        limit: The newest ``limit`` runs.
        with_report: Include each run's whole ``report`` (larger).
    """
    names = SUMMARY_COLUMNS + (("report",) if with_report else ())
    query = (
        sa.select(*(monitoring_runs.c[name] for name in names))
        .where(monitoring_runs.c.model_name == model_name)
        .order_by(monitoring_runs.c.created_at.desc(), monitoring_runs.c.id.desc())
        .limit(limit)
    )
    if since is not None:
        query = query.where(monitoring_runs.c.created_at >= as_utc(since))
    rows = [dict(row._mapping) for row in conn.execute(query)]
    rows.reverse()
    return rows


def latest_run(conn: Connection, model_name: str) -> dict[str, Any] | None:
    """A model's newest run with its report, or None before the first."""
    runs = recent_runs(conn, model_name, limit=1, with_report=True)
    return runs[0] if runs else None
