"""Alerts in the operational store: open one, at most once per active deduplication key.

An alert stays active (``open`` or ``acknowledged``) until it is resolved; the partial unique
index on ``dedup_key`` among active alerts makes :func:`open_alert` idempotent: raising the same
problem again while its alert is active returns the existing alert instead of a duplicate.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from modelcycle.data.records import as_utc, utc_now
from modelcycle.store.schema import ACTIVE_ALERT, alerts


def open_alert(
    conn: Connection,
    rule: str,
    model_name: str,
    model_version: str | None,
    severity: str,
    message: str,
    details: dict[str, Any] | None,
    dedup_key: str,
    *,
    opened_at: datetime | None = None,
) -> tuple[int, bool]:
    """Open an alert unless one with the same ``dedup_key`` is still active.

    Args:
        conn: An open connection; the caller commits.
        rule: What raised it (``deployment_gate``, a monitoring rule name, ...).
        model_name: The registered model.
        model_version: The version concerned, if one.
        severity: ``info``, ``warning`` or ``critical``.
        message: One readable sentence.
        details: JSON-ready values behind the message.
        dedup_key: Identifies the problem: one active alert per key.
        opened_at: When it was raised (default: now, UTC).

    Returns:
        The alert's id, and whether this call opened it (``False``: an active alert with the
        same key already existed and was left as it is).
    """
    insert: postgresql.Insert | sqlite.Insert = (
        postgresql.insert(alerts) if conn.dialect.name == "postgresql" else sqlite.insert(alerts)
    )
    statement = (
        insert.values(
            rule=rule,
            model_name=model_name,
            model_version=model_version,
            severity=severity,
            status="open",
            opened_at=as_utc(opened_at) if opened_at else utc_now(),
            message=message,
            details=details,
            dedup_key=dedup_key,
        )
        .on_conflict_do_nothing(index_elements=[alerts.c.dedup_key], index_where=ACTIVE_ALERT)
        .returning(alerts.c.id)
    )
    created = conn.execute(statement).scalar()
    if created is not None:
        return int(created), True
    existing = conn.execute(
        sa.select(alerts.c.id).where(alerts.c.dedup_key == dedup_key).where(ACTIVE_ALERT)
    ).scalar_one()
    return int(existing), False
