"""Schema migrations of the operational store, driven from code (no ``alembic.ini`` needed).

The Alembic environment (``env.py``, ``script.py.mako``, ``versions/``) ships inside the package;
:func:`alembic_config` points Alembic at it. :func:`upgrade` is idempotent and safe when several
processes call it at once (a server's workers starting together): it migrates under a lock —
a PostgreSQL advisory lock, or SQLite's write lock taken with ``BEGIN IMMEDIATE`` — and whoever
gets the lock second finds the database already at head. Alembic keeps module-level state, so
calls within one process are serialised by a thread lock as well.
"""

from __future__ import annotations

import functools
import threading
from dataclasses import dataclass, field
from importlib.resources import files
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from modelcycle.store.engine import (
    SQLITE_BUSY_TIMEOUT_MS,
    StoreError,
    display_url,
    make_engine,
    sqlite_path,
    store_errors,
)
from modelcycle.store.schema import TABLES

if TYPE_CHECKING:
    from alembic.config import Config

ADVISORY_LOCK_KEY = 0x6D63_6D69_6772  # "mcmigr": one key for every modelcycle database
"""PostgreSQL advisory lock held while migrating."""
LOCK_TIMEOUT_S = 120
"""Seconds a migration waits for another process's migration to finish."""

_THREAD_LOCK = threading.Lock()


@dataclass(frozen=True)
class UpgradeResult:
    """What :func:`upgrade` did.

    Attributes:
        url: The database, password masked.
        before: The revision before (``None``: an empty database).
        after: The revision now.
    """

    url: str
    before: str | None
    after: str | None

    @property
    def changed(self) -> bool:
        """Whether this call applied any migration."""
        return self.before != self.after


@dataclass(frozen=True)
class StoreStatus:
    """Where the database stands: its revision against the code's, and its tables' sizes.

    Attributes:
        url: The database, password masked.
        current: The database's revision (``None``: not created or never migrated).
        head: The newest revision this version of modelcycle knows.
        counts: Rows per table; ``None`` for a table that does not exist yet.
    """

    url: str
    current: str | None
    head: str
    counts: dict[str, int | None] = field(default_factory=dict)

    @property
    def up_to_date(self) -> bool:
        """Whether the database is at the head revision."""
        return self.current == self.head

    @property
    def known(self) -> bool:
        """Whether this modelcycle knows the database's revision (else a newer one wrote it)."""
        return self.current is None or self.current in revisions()


def script_location() -> str:
    """The folder of the Alembic environment inside the installed package."""
    return str(files(__name__))


def alembic_config(url: str | None = None) -> Config:
    """An Alembic configuration for the packaged migrations.

    Args:
        url: Database URL for Alembic commands run without a connection (e.g.
            ``alembic.command.revision(alembic_config(url), autogenerate=True, message=...)``
            when writing a new migration).
    """
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", script_location())
    config.set_main_option("path_separator", "os")
    if url is not None:
        config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


@functools.cache
def head_revision() -> str:
    """The newest migration revision shipped with this version of modelcycle."""
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None, "the packaged migrations have no head revision"
    return head


@functools.cache
def revisions() -> frozenset[str]:
    """Every migration revision shipped with this version of modelcycle."""
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(alembic_config())
    return frozenset(rev.revision for rev in script.walk_revisions())


def current_revision(target: Engine | str) -> str | None:
    """The revision a database is at; ``None`` when it is empty or (SQLite) does not exist.

    Never creates a SQLite file.

    Raises:
        StoreError: The database cannot be reached.
    """
    if isinstance(target, str):
        path = sqlite_path(target)
        if path is not None and not path.is_file():
            return None
    engine, owned = _as_engine(target)
    try:
        with store_errors(engine, "reading the schema revision"), engine.connect() as conn:
            return _revision(conn)
    finally:
        if owned:
            engine.dispose()


def upgrade(target: Engine | str, revision: str = "head") -> UpgradeResult:
    """Apply the migrations up to ``revision``; a database already there is left untouched.

    Safe to call from several processes and threads at once: one migrates, the others wait for
    it (up to :data:`LOCK_TIMEOUT_S`) and then find nothing to do.

    Args:
        target: An engine from :func:`~modelcycle.store.engine.make_engine`, or a URL.
        revision: Target revision; the newest by default.

    Returns:
        The revisions before and after; ``changed`` says whether this call migrated.

    Raises:
        StoreError: The database cannot be reached, is locked for too long, or a migration fails.
    """
    from alembic import command
    from alembic.util import CommandError

    engine, owned = _as_engine(target)
    shown = display_url(engine)
    hint = (
        "modelcycle needs an empty database or one it created, and a user allowed to create "
        "tables and indexes"
    )
    try:
        with store_errors(engine, "applying migrations", hint):
            with engine.connect() as conn:
                current = _revision(conn)
            if revision == "head" and current == head_revision():
                return UpgradeResult(shown, current, current)
            if current is not None and current not in revisions():
                raise StoreError(
                    f"the database {shown} is at revision {current}, which this version of "
                    "modelcycle does not know (a newer modelcycle migrated it)",
                    "upgrade modelcycle, or point MODELCYCLE_DATABASE_URL at another database",
                )
            with _THREAD_LOCK, engine.connect() as conn:
                _lock(conn)
                try:
                    before = _revision(conn)
                    config = alembic_config()
                    config.attributes["connection"] = conn
                    try:
                        command.upgrade(config, revision)
                    except CommandError as err:
                        raise StoreError(
                            f"cannot migrate {shown} to revision {revision}: {err}",
                            f"use a revision this modelcycle knows (head is {head_revision()})",
                        ) from None
                    after = _revision(conn)
                    conn.commit()
                finally:
                    _unlock(conn)
        return UpgradeResult(shown, before, after)
    finally:
        if owned:
            engine.dispose()


def table_counts(target: Engine | str) -> dict[str, int | None]:
    """Rows in each store table (one query); ``None`` for tables not created yet.

    Raises:
        StoreError: The database cannot be reached.
    """
    engine, owned = _as_engine(target)
    try:
        with store_errors(engine, "counting rows"), engine.connect() as conn:
            present = set(sa.inspect(conn).get_table_names())
            existing = [name for name in TABLES if name in present]
            counts: dict[str, int | None] = dict.fromkeys(TABLES)
            if existing:
                query = sa.select(
                    *(
                        sa.select(sa.func.count())
                        .select_from(sa.table(name))
                        .scalar_subquery()
                        .label(name)
                        for name in existing
                    )
                )
                row = conn.execute(query).one()
                counts.update({name: int(row._mapping[name]) for name in existing})
            return counts
    finally:
        if owned:
            engine.dispose()


def status(url: str) -> StoreStatus:
    """The database's revision, the code's head revision, and the tables' row counts.

    A SQLite file that does not exist is reported as empty and is not created.

    Raises:
        StoreError: The database cannot be reached.
    """
    shown = display_url(url)
    path = sqlite_path(url)
    if path is not None and not path.is_file():
        return StoreStatus(shown, None, head_revision(), dict.fromkeys(TABLES))
    engine = make_engine(url)
    try:
        return StoreStatus(shown, current_revision(engine), head_revision(), table_counts(engine))
    finally:
        engine.dispose()


def _as_engine(target: Engine | str) -> tuple[Engine, bool]:
    if isinstance(target, Engine):
        return target, False
    return make_engine(target), True


def _revision(conn: Connection) -> str | None:
    from alembic.runtime.migration import MigrationContext

    return MigrationContext.configure(conn).get_current_revision()


def _lock(conn: Connection) -> None:
    """Take the migration lock for this connection's transaction."""
    if conn.dialect.name == "sqlite":
        conn.exec_driver_sql(f"PRAGMA busy_timeout = {LOCK_TIMEOUT_S * 1000}")
        conn.exec_driver_sql("BEGIN IMMEDIATE")
    else:
        conn.execute(sa.text(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT_S}s'"))
        conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": ADVISORY_LOCK_KEY})


def _unlock(conn: Connection) -> None:
    """Roll back what was not committed (the lock goes with the transaction)."""
    conn.rollback()
    if conn.dialect.name == "sqlite":
        conn.exec_driver_sql(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        conn.commit()
