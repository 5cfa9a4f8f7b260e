"""The prediction log and its labels: bulk writes, idempotent label upserts, window queries.

Every function takes an open connection and leaves the transaction to the caller
(``with engine.begin() as conn: ...``), so a batch writer can group many calls in one commit.
Everything is bulk: one ``executemany`` per write, a few ``IN`` queries per label batch, one
query per window — never a round trip per row.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import orjson
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from modelcycle.data.records import LabelRecord, Outcome, PredictionRecord, as_utc
from modelcycle.store.engine import dumps_json
from modelcycle.store.schema import labels, predictions

LabelStatus = Literal["inserted", "updated", "duplicate", "unknown"]
"""What happened to one label: stored, replaced a different label, already stored, or refused
because no prediction has that request id and row."""

IN_CHUNK = 500
"""Request ids per ``IN (...)`` query (well under SQLite's bound-parameter limit)."""

WINDOW_COLUMNS = (
    "id",
    "request_id",
    "row",
    "created_at",
    "model_name",
    "model_version",
    "arm",
    "features",
    "prediction",
    "probabilities",
    "latency_ms",
    "ood",
    "error",
    "label",
    "label_at",
    "label_source",
    "has_label",
)
"""The columns of a :func:`window` frame (``features`` only when asked for)."""


@dataclass(frozen=True)
class LabelResult:
    """The outcome of one submitted label.

    Attributes:
        request_id: The label's request id.
        row: The label's row within the request.
        status: ``inserted``, ``updated`` (a different label was replaced), ``duplicate`` (the
            same label was already stored; nothing changed) or ``unknown`` (no prediction has
            this request id and row; the label was not stored).
    """

    request_id: str
    row: int
    status: LabelStatus


def split_outcome(value: Outcome | None) -> tuple[float | None, str | None]:
    """The ``(number, text)`` column values of a prediction or label.

    Numbers (and booleans) go to the first, class names to the second, so SQL can aggregate
    numeric predictions.
    """
    if value is None:
        return None, None
    if isinstance(value, str):
        return None, value
    return float(value), None


def insert_predictions(conn: Connection, records: Iterable[PredictionRecord]) -> int:
    """Append prediction records to the log in one ``executemany``.

    Records whose ``record_id`` is already stored are skipped, so writing the same records
    again (a spool replayed after a crash) stores each once.

    Args:
        conn: An open connection; the caller commits.
        records: The records to write.

    Returns:
        The number of records given.
    """
    return insert_prediction_rows(conn, [prediction_row(record) for record in records])


def insert_prediction_rows(conn: Connection, rows: list[dict[str, Any]]) -> int:
    """:func:`insert_predictions` for rows already in table form (see :func:`prediction_row`).

    The server's log writer builds these dicts directly. On SQLite and PostgreSQL the rows go
    to the driver as plain tuples (JSON pre-encoded with orjson), skipping SQLAlchemy's
    per-value processing, which otherwise costs more than the insert itself.
    """
    if not rows:
        return 0
    marker = {"qmark": "?", "format": "%s", "pyformat": "%s"}.get(conn.dialect.paramstyle)
    if marker is None or conn.dialect.name not in ("sqlite", "postgresql"):
        insert: postgresql.Insert | sqlite.Insert = (
            postgresql.insert(predictions)
            if conn.dialect.name == "postgresql"
            else sqlite.insert(predictions)
        )
        conn.execute(insert.on_conflict_do_nothing(index_elements=["record_id"]), rows)
        return len(rows)
    names = ", ".join(f'"{column}"' for column in _FAST_COLUMNS)
    markers = ", ".join([marker] * len(_FAST_COLUMNS))
    sql = f"INSERT INTO predictions ({names}) VALUES ({markers}) ON CONFLICT (record_id) DO NOTHING"
    naive = conn.dialect.name == "sqlite"
    conn.exec_driver_sql(sql, [_driver_values(row, naive) for row in rows])
    return len(rows)


_FAST_COLUMNS = (
    "request_id",
    "row",
    "created_at",
    "model_name",
    "model_version",
    "arm",
    "features",
    "prediction",
    "prediction_label",
    "probabilities",
    "latency_ms",
    "ood",
    "error",
    "record_id",
)


def _driver_values(row: dict[str, Any], naive: bool) -> tuple[Any, ...]:
    """One row as the driver takes it: UTC timestamps (naive text on SQLite), JSON as text."""
    created: datetime | str = as_utc(row["created_at"])
    if naive:  # as SQLAlchemy stores DATETIME on SQLite
        created = as_utc(row["created_at"]).replace(tzinfo=None)
        created = created.isoformat(sep=" ", timespec="microseconds")
    return (
        row["request_id"],
        row.get("row", 0),
        created,
        row["model_name"],
        row["model_version"],
        row.get("arm", "stable"),
        _json_text(row["features"]),
        row.get("prediction"),
        row.get("prediction_label"),
        _json_text(row.get("probabilities")),
        row.get("latency_ms", 0.0),
        _json_text(row.get("ood")),
        row.get("error"),
        row.get("record_id"),
    )


def _json_text(value: Any) -> str | None:
    if value is None:
        return None
    try:
        return orjson.dumps(value, option=orjson.OPT_SERIALIZE_NUMPY).decode()
    except TypeError:  # pandas timestamps and other stragglers
        return dumps_json(value)


def prediction_row(record: PredictionRecord) -> dict[str, Any]:
    """The table row of a prediction record."""
    number, text = split_outcome(record.prediction)
    return {
        "request_id": record.request_id,
        "row": record.row,
        "created_at": record.timestamp,
        "model_name": record.model_name,
        "model_version": record.model_version,
        "arm": record.arm,
        "features": record.features,
        "prediction": number,
        "prediction_label": text,
        "probabilities": record.probabilities,
        "latency_ms": record.latency_ms,
        "ood": record.ood,
        "error": record.error,
        "record_id": record.record_id,
    }


def insert_labels(conn: Connection, items: Iterable[LabelRecord]) -> list[LabelResult]:
    """Store true labels for logged predictions, reporting each item's outcome.

    A label joins its prediction by ``(request_id, row)``. Labels whose request id and row have
    no prediction are not stored (``unknown``). Sending the same label again changes nothing
    (``duplicate``); sending a different one replaces it (``updated``: the newest truth wins).
    Within one call, later items win over earlier ones for the same key.

    Args:
        conn: An open connection; the caller commits.
        items: The labels.

    Returns:
        One :class:`LabelResult` per item, in order.
    """
    batch = list(items)
    if not batch:
        return []
    known: set[tuple[str, int]] = set()
    stored: dict[tuple[str, int], tuple[float | None, str | None]] = {}
    ids = sorted({item.request_id for item in batch})
    for chunk in _chunks(ids, IN_CHUNK):
        found = sa.select(predictions.c.request_id, predictions.c.row).where(
            predictions.c.request_id.in_(chunk)
        )
        known.update((rid, row) for rid, row in conn.execute(found.distinct()))
        existing = sa.select(
            labels.c.request_id, labels.c.row, labels.c.label, labels.c.label_text
        ).where(labels.c.request_id.in_(chunk))
        stored.update(((rid, row), (num, text)) for rid, row, num, text in conn.execute(existing))

    results: list[LabelResult] = []
    writes: dict[tuple[str, int], dict[str, Any]] = {}
    for item in batch:
        key = (item.request_id, item.row)
        if key not in known:
            results.append(LabelResult(item.request_id, item.row, "unknown"))
            continue
        value = split_outcome(item.label)
        previous = stored.get(key)
        status: LabelStatus = (
            "inserted" if previous is None else "duplicate" if previous == value else "updated"
        )
        results.append(LabelResult(item.request_id, item.row, status))
        if status != "duplicate":
            stored[key] = value
            writes[key] = {
                "request_id": item.request_id,
                "row": item.row,
                "label": value[0],
                "label_text": value[1],
                "created_at": item.timestamp,
                "source": item.source,
            }
    if writes:
        conn.execute(_upsert_labels(conn), list(writes.values()))
    return results


def _upsert_labels(conn: Connection) -> sa.Executable:
    """``INSERT ... ON CONFLICT (request_id, row) DO UPDATE``: concurrent writers cannot clash."""
    insert: postgresql.Insert | sqlite.Insert = (
        postgresql.insert(labels) if conn.dialect.name == "postgresql" else sqlite.insert(labels)
    )
    return insert.on_conflict_do_update(
        index_elements=[labels.c.request_id, labels.c.row],
        set_={
            "label": insert.excluded.label,
            "label_text": insert.excluded.label_text,
            "created_at": insert.excluded.created_at,
            "source": insert.excluded.source,
        },
    )


def window(
    conn: Connection,
    model_name: str,
    version: str | Collection[str] | None = None,
    arm: str | Collection[str] | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    last: int | None = None,
    *,
    with_features: bool = True,
    labelled: bool = False,
) -> pd.DataFrame:
    """The logged predictions of a model in a time window, joined with their labels.

    Args:
        conn: An open connection.
        model_name: The registered model name.
        version: One version or several; all versions when ``None``.
        arm: One arm or several (``stable``, ``canary``, ``shadow``, ``blue``, ``green``).
        since: Earliest ``created_at``, inclusive (naive datetimes are UTC).
        until: Latest ``created_at``, exclusive.
        last: Only the newest ``last`` predictions that match.
        with_features: Include the ``features`` column (dicts; see :func:`expand_features`).
        labelled: Only the predictions that have a label (filtered in the database).

    Returns:
        One row per prediction, oldest first, with the columns in :data:`WINDOW_COLUMNS`:
        ``created_at`` and ``label_at`` are UTC timestamps; ``prediction`` and ``label`` are
        floats, or objects when some are class names; ``has_label`` shows label coverage
        (``frame["has_label"].mean()``).

    Raises:
        ValueError: ``last`` is not a positive number.
    """
    if last is not None and last < 1:
        raise ValueError(f"last must be a positive number of predictions, got {last}")
    query = _window_query(model_name, version, arm, since, until, with_features=with_features)
    if labelled:
        query = query.where(labels.c.id.is_not(None))
    p = predictions
    if last is not None:
        query = query.order_by(p.c.created_at.desc(), p.c.id.desc()).limit(last)
    else:
        query = query.order_by(p.c.created_at, p.c.id)
    result = conn.execute(query)
    names = list(result.keys())
    rows = list(result.all())
    if last is not None:
        rows.reverse()
    return _window_frame(pd.DataFrame.from_records(rows, columns=names))


def window_chunks(
    conn: Connection,
    model_name: str,
    version: str | Collection[str] | None = None,
    arm: str | Collection[str] | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    last: int | None = None,
    *,
    chunk_rows: int = 50_000,
) -> Iterator[pd.DataFrame]:
    """:func:`window` in chunks of at most ``chunk_rows`` rows, in log order, features included.

    Memory stays bounded by the chunk whatever the window's size: each chunk is one keyset
    query (``id > last id seen``). With ``last``, the window is the newest ``last`` rows.
    """
    if last is not None and last < 1:
        raise ValueError(f"last must be a positive number of predictions, got {last}")
    p = predictions
    base = _window_query(model_name, version, arm, since, until, json_as_text=True)
    after: int | None = None
    if last is not None:
        ids = _window_query(model_name, version, arm, since, until, columns=[p.c.id])
        cutoff = conn.execute(ids.order_by(p.c.id.desc()).offset(last - 1).limit(1)).scalar()
        after = int(cutoff) - 1 if cutoff is not None else None
    while True:
        query = base if after is None else base.where(p.c.id > after)
        result = conn.execute(query.order_by(p.c.id).limit(chunk_rows))
        names = list(result.keys())
        rows = [tuple(row) for row in result.all()]
        if not rows:
            return
        frame = pd.DataFrame(rows, columns=names)
        for name in ("features", "probabilities", "ood"):  # NULLs may come back as NaN
            frame[name] = [orjson.loads(t) if isinstance(t, str) else None for t in frame[name]]
        yield _window_frame(frame)
        if len(rows) < chunk_rows:
            return
        after = int(rows[-1][0])


def window_span(
    conn: Connection,
    model_name: str,
    version: str | Collection[str] | None = None,
    arm: str | Collection[str] | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    last: int | None = None,
) -> tuple[int, datetime | None, datetime | None]:
    """How many rows a :func:`window` holds, and its first and last ``created_at`` (UTC)."""
    p = predictions
    ids = _window_query(model_name, version, arm, since, until, columns=[p.c.id])
    if last is not None:
        ids = ids.order_by(p.c.id.desc()).limit(last)
    chosen = ids.subquery()
    query = sa.select(
        sa.func.count(), sa.func.min(p.c.created_at), sa.func.max(p.c.created_at)
    ).where(p.c.id.in_(sa.select(chosen.c.id)))
    count, first, latest = conn.execute(query).one()
    return int(count), _utc_or_none(first), _utc_or_none(latest)


def _utc_or_none(value: Any) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, str):  # aggregates skip SQLAlchemy's type processing on SQLite
        value = datetime.fromisoformat(value)
    return as_utc(value)


def _window_query(
    model_name: str,
    version: str | Collection[str] | None,
    arm: str | Collection[str] | None,
    since: datetime | None,
    until: datetime | None,
    *,
    with_features: bool = True,
    columns: list[sa.ColumnElement[Any]] | None = None,
    json_as_text: bool = False,
) -> sa.Select[Any]:
    """The filtered select of :func:`window` (prediction columns joined with their labels).

    ``json_as_text`` selects the JSON columns as text, for decoding in bulk with orjson (the
    JSON type's per-value ``json.loads`` costs more than the query on large windows).
    """
    p, lab = predictions, labels

    def json(column: sa.ColumnElement[Any]) -> sa.ColumnElement[Any]:
        return sa.cast(column, sa.Text).label(column.key) if json_as_text else column

    if columns is None:
        columns = [p.c.id, p.c.request_id, p.c.row, p.c.created_at, p.c.model_name]
        columns += [p.c.model_version, p.c.arm]
        if with_features:
            columns.append(json(p.c.features))
        columns += [
            p.c.prediction,
            p.c.prediction_label,
            json(p.c.probabilities),
            p.c.latency_ms,
            json(p.c.ood),
            p.c.error,
            lab.c.label,
            lab.c.label_text,
            lab.c.created_at.label("label_at"),
            lab.c.source.label("label_source"),
        ]
    joined = p.outerjoin(lab, sa.and_(lab.c.request_id == p.c.request_id, lab.c.row == p.c.row))
    query = sa.select(*columns).select_from(joined).where(p.c.model_name == model_name)
    if version is not None:
        query = query.where(_matches(p.c.model_version, version))
    if arm is not None:
        query = query.where(_matches(p.c.arm, arm))
    if since is not None:
        query = query.where(p.c.created_at >= as_utc(since))
    if until is not None:
        query = query.where(p.c.created_at < as_utc(until))
    return query


def _matches(
    column: sa.ColumnElement[str], wanted: str | Collection[str]
) -> sa.ColumnElement[bool]:
    if isinstance(wanted, str):
        return column == wanted
    return column.in_(sorted(wanted))


def _window_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """Typed columns: UTC timestamps, one prediction and one label column, label coverage."""
    frame["created_at"] = pd.to_datetime(frame["created_at"], utc=True)
    frame["label_at"] = pd.to_datetime(frame["label_at"], utc=True)
    frame["has_label"] = (frame["label"].notna() | frame["label_text"].notna()).astype(bool)
    frame["prediction"] = _merge(frame.pop("prediction"), frame.pop("prediction_label"))
    frame["label"] = _merge(frame.pop("label"), frame.pop("label_text"))
    frame["row"] = frame["row"].astype("int64")
    frame["id"] = frame["id"].astype("int64")
    frame["latency_ms"] = frame["latency_ms"].astype(float)
    order = [name for name in WINDOW_COLUMNS if name in frame.columns]
    return frame[order]


def _merge(number: pd.Series[Any], text: pd.Series[Any]) -> pd.Series[Any]:
    """One column from the number and text halves; floats unless some values are classes."""
    numeric = pd.to_numeric(number, errors="coerce").astype(float)
    if not text.notna().any():
        return numeric
    return text.where(text.notna(), numeric.astype(object).where(numeric.notna(), None))


def expand_features(frame: pd.DataFrame) -> pd.DataFrame:
    """The ``features`` column of a :func:`window` frame as one column per feature.

    Args:
        frame: A window frame fetched with ``with_features=True``.

    Returns:
        A frame with the same index and one column per feature name.
    """
    return pd.DataFrame.from_records(frame["features"].tolist(), index=frame.index)


def _chunks(values: Sequence[str], size: int) -> Iterator[Sequence[str]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]
