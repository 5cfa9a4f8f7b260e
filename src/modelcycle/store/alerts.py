"""Alerts in the operational store: open one, at most once per active deduplication key.

An alert stays active (``open`` or ``acknowledged``) until it is resolved; the partial unique
index on ``dedup_key`` among active alerts makes :func:`open_alert` idempotent: raising the same
problem again while its alert is active returns the existing alert instead of a duplicate.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from typing import Any, Literal

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


AlertStatus = Literal["open", "acknowledged", "resolved"]


def list_alerts(
    conn: Connection,
    model_name: str | None = None,
    *,
    status: AlertStatus | Literal["active", "all"] = "active",
    limit: int | None = None,
) -> list[dict[str, Any]]:
    """Alerts, newest first, as dicts of the table's columns.

    Args:
        conn: An open connection.
        model_name: Only this model's alerts; every model's when None.
        status: ``active`` (open or acknowledged: the default), one status, or ``all``.
        limit: At most this many.
    """
    query = sa.select(alerts).order_by(alerts.c.opened_at.desc(), alerts.c.id.desc())
    if model_name is not None:
        query = query.where(alerts.c.model_name == model_name)
    if status == "active":
        query = query.where(ACTIVE_ALERT)
    elif status != "all":
        query = query.where(alerts.c.status == status)
    if limit is not None:
        query = query.limit(limit)
    return [dict(row._mapping) for row in conn.execute(query)]


def acknowledge_alert(conn: Connection, alert_id: int) -> dict[str, Any] | None:
    """Mark an open alert acknowledged (a person is on it); it stays active until resolved.

    Returns:
        The alert after the change, or None when no alert has that id. Acknowledging an
        acknowledged or resolved alert changes nothing.
    """
    conn.execute(
        sa.update(alerts)
        .where(alerts.c.id == alert_id)
        .where(alerts.c.status == "open")
        .values(status="acknowledged")
    )
    row = conn.execute(sa.select(alerts).where(alerts.c.id == alert_id)).first()
    return dict(row._mapping) if row is not None else None


def resolve_alerts(
    conn: Connection, dedup_keys: Collection[str], *, resolved_at: datetime | None = None
) -> list[dict[str, Any]]:
    """Resolve the active alerts with these deduplication keys.

    Returns:
        The alerts resolved by this call (as they are now).
    """
    if not dedup_keys:
        return []
    active = sa.and_(alerts.c.dedup_key.in_(sorted(dedup_keys)), ACTIVE_ALERT)
    ids = [int(i) for i in conn.execute(sa.select(alerts.c.id).where(active)).scalars()]
    if not ids:
        return []
    when = as_utc(resolved_at) if resolved_at else utc_now()
    conn.execute(
        sa.update(alerts).where(alerts.c.id.in_(ids)).values(status="resolved", resolved_at=when)
    )
    rows = conn.execute(sa.select(alerts).where(alerts.c.id.in_(ids)).order_by(alerts.c.id))
    return [dict(row._mapping) for row in rows]
