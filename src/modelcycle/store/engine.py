"""Connect to the operational database: one URL, SQLite (WAL) by default or PostgreSQL (psycopg 3).

:func:`make_engine` is the only place an engine is created, so both backends get the same
treatment: SQLite in WAL mode with a busy timeout and foreign keys, its folder created;
PostgreSQL through psycopg 3 with a short connect timeout; pool pre-ping on both. Connection
problems become one :class:`StoreError` naming the (masked) URL and the fix.
"""

from __future__ import annotations

import json
import math
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event, exc
from sqlalchemy.engine import URL, Engine

from modelcycle.config.settings import mask
from modelcycle.errors import ModelcycleError

CONNECT_TIMEOUT_S = 3
"""Seconds to wait for a PostgreSQL server to answer before giving up."""
SQLITE_BUSY_TIMEOUT_MS = 5000
"""Milliseconds a SQLite writer waits for another writer's lock before failing."""
URL_HINT = (
    "set MODELCYCLE_DATABASE_URL to sqlite:///path/to/file.db or "
    "postgresql://user:password@host:5432/dbname"
)


class StoreError(ModelcycleError):
    """The operational database cannot be reached, or its URL or contents are wrong."""


def normalize_url(url: str | URL) -> URL:
    """Parse a database URL, sending every PostgreSQL URL through psycopg 3.

    ``postgres://``, ``postgresql://`` and ``postgresql+psycopg://`` all become
    ``postgresql+psycopg://``; SQLite URLs are kept.

    Raises:
        StoreError: The URL cannot be parsed or names a database modelcycle does not support.
    """
    shown = mask(str(url))
    try:
        parsed = sa.engine.make_url(url)
    except exc.ArgumentError:
        raise StoreError(f"invalid database URL {shown!r}", URL_HINT) from None
    backend, _, driver = parsed.drivername.partition("+")
    if backend in ("postgres", "postgresql"):
        if driver not in ("", "psycopg"):
            raise StoreError(
                f"database URL {shown} asks for the {driver} driver",
                "modelcycle talks to PostgreSQL through psycopg 3: use postgresql://...",
            )
        return parsed.set(drivername="postgresql+psycopg")
    if backend == "sqlite":
        return parsed
    raise StoreError(f"unsupported database {backend!r} in URL {shown}", URL_HINT)


def is_sqlite(target: Engine | URL | str) -> bool:
    """Whether an engine or URL points at SQLite."""
    url = target.url if isinstance(target, Engine) else sa.engine.make_url(target)
    return url.get_backend_name() == "sqlite"


def sqlite_path(target: Engine | URL | str) -> Path | None:
    """The file of a SQLite database, or ``None`` for PostgreSQL and in-memory SQLite."""
    url = target.url if isinstance(target, Engine) else sa.engine.make_url(target)
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        return None
    if str(url.database).startswith("file:"):  # URI filenames: leave them to SQLite
        return None
    return Path(str(url.database)).expanduser()


def make_engine(url: str | URL, *, check: bool = False, echo: bool = False) -> Engine:
    """Create the engine for the operational database.

    Args:
        url: A SQLAlchemy URL: ``sqlite:///file.db`` or ``postgresql://user@host/db``
            (``postgres://`` and ``postgresql+psycopg://`` are accepted too).
        check: Connect once now, so an unreachable server fails here rather than later.
        echo: Log every SQL statement (debugging).

    Returns:
        An engine with pool pre-ping; SQLite connections in WAL mode with a busy timeout and
        foreign keys on; PostgreSQL connections with a short connect timeout.

    Raises:
        StoreError: The URL is invalid or unsupported, the driver is missing, or (with
            ``check``) the database cannot be reached.
    """
    parsed = normalize_url(url)
    shown = mask(parsed.render_as_string(hide_password=False))
    kwargs: dict[str, Any] = {
        "pool_pre_ping": True,
        "echo": echo,
        "json_serializer": dumps_json,
        "json_deserializer": json.loads,
    }
    path = sqlite_path(parsed)
    if parsed.get_backend_name() == "postgresql":
        kwargs["connect_args"] = {
            "connect_timeout": CONNECT_TIMEOUT_S,
            "application_name": "modelcycle",
        }
    elif path is not None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise StoreError(
                f"cannot create the folder of SQLite database {path}: {err.strerror}",
                "check MODELCYCLE_DATABASE_URL and the folder's permissions",
            ) from None
    try:
        engine = sa.create_engine(parsed, **kwargs)
    except (exc.ArgumentError, exc.NoSuchModuleError, ImportError) as err:
        hint = (
            "install the PostgreSQL driver: pip install 'modelcycle[postgres]'"
            if parsed.get_backend_name() == "postgresql"
            else URL_HINT
        )
        raise StoreError(f"cannot use database URL {shown}: {err}", hint) from None
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_on_connect)
    if check:
        ping(engine)
    return engine


def _sqlite_on_connect(dbapi_connection: Any, _record: Any) -> None:
    """Per-connection SQLite settings: wait for locks, WAL, durable-on-crash, foreign keys."""
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        _use_wal(cursor)
        cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.execute("PRAGMA foreign_keys = ON")
    finally:
        cursor.close()


def _use_wal(cursor: Any) -> None:
    """Switch the database file to WAL (once; the mode is stored in the file).

    Changing the journal mode fails at once with "database is locked" when another connection
    is opening the same new file (SQLite does not call the busy handler for it), so several
    workers starting together retry here for up to the busy timeout.
    """
    deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT_MS / 1000
    delay = 0.002
    while True:
        try:
            if str(cursor.execute("PRAGMA journal_mode").fetchone()[0]).lower() == "wal":
                return
            cursor.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as err:
            if "locked" not in str(err) or time.monotonic() > deadline:
                raise
            time.sleep(delay)
            delay = min(delay * 2, 0.05)


def ping(engine: Engine) -> None:
    """Connect once and run ``SELECT 1``.

    Raises:
        StoreError: The database cannot be reached.
    """
    with store_errors(engine), engine.connect() as conn:
        conn.execute(sa.text("SELECT 1"))


@contextmanager
def store_errors(
    target: Engine | URL | str, doing: str | None = None, hint: str | None = None
) -> Iterator[None]:
    """Turn database errors raised inside the block into one :class:`StoreError`.

    Args:
        target: The engine or URL in use (shown masked in the message).
        doing: What was being done, for the message (e.g. ``"applying migrations"``).
        hint: The fix for an error the database reports (connection errors have their own).

    Raises:
        StoreError: Instead of SQLAlchemy's connection and database errors.
    """
    try:
        yield
    except exc.DBAPIError as err:
        shown = display_url(target)
        what = f" while {doing}" if doing else ""
        reason = first_line(err.orig or err)
        if _is_sqlite_error(err):
            if any(word in reason.lower() for word in _SQLITE_ACCESS_PROBLEMS):
                raise StoreError(
                    f"cannot use the SQLite database {shown}{what}: {reason}",
                    "check the file's path and permissions in MODELCYCLE_DATABASE_URL, and that "
                    "no other process keeps it locked",
                ) from None
        elif isinstance(err, exc.OperationalError | exc.InterfaceError):
            raise StoreError(
                f"cannot use the database {shown}{what}: {reason}",
                "check that the database server is running and MODELCYCLE_DATABASE_URL is right",
            ) from None
        raise StoreError(
            f"database error on {shown}{what}: {reason}",
            hint or "check the database user's permissions, or run `modelcycle db upgrade`",
        ) from None


_SQLITE_ACCESS_PROBLEMS = ("unable to open", "locked", "busy", "disk", "readonly", "not a database")


def _is_sqlite_error(err: exc.DBAPIError) -> bool:
    return type(err.orig).__module__.startswith("sqlite3")


def display_url(target: Engine | URL | str) -> str:
    """A database URL with its password masked, for messages and the CLI."""
    if isinstance(target, Engine):
        target = target.url
    if isinstance(target, URL):
        target = target.render_as_string(hide_password=False)
    return mask(target)


def first_line(err: BaseException | None) -> str:
    """The first line of an error's message (drivers append SQL and background links)."""
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


def dumps_json(value: Any) -> str:
    """Serialise a JSON column value; NumPy scalars become numbers and NaN/inf become null.

    PostgreSQL rejects ``NaN`` in JSON, and pandas hands over NumPy types, so the store cleans
    both instead of failing a log write. Plain values take the fast path.
    """
    try:
        return _ENCODER.encode(value)
    except ValueError:
        return _ENCODER.encode(_finite(value))


def _finite(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(item) for item in value]
    if hasattr(value, "item") and hasattr(value, "dtype"):  # a NumPy scalar or array
        return _finite(value.tolist())
    return value


def _json_default(value: Any) -> Any:
    kind = type(value).__name__
    if kind in ("NAType", "NaTType"):
        return None
    if hasattr(value, "tolist") and hasattr(value, "dtype"):  # NumPy scalars and arrays
        return _finite(value.tolist())
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, set | frozenset):
        return sorted(value, key=str)
    return str(value)


_ENCODER = json.JSONEncoder(allow_nan=False, separators=(",", ":"), default=_json_default)
