"""Shared fixtures: temporary projects, and the real services (PostgreSQL, Chromium).

A test that needs a service skips with a clear reason when the service is absent, unless the
service is listed in ``MODELCYCLE_TEST_REQUIRE`` (comma-separated: ``postgres``, ``browser``);
then its absence is a failure. ``.ci/run`` sets ``MODELCYCLE_TEST_REQUIRE=postgres,browser``.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

POSTGRES_URL = os.environ.get(
    "MODELCYCLE_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
CHROMIUM = os.environ.get("MODELCYCLE_TEST_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def _required(service: str) -> bool:
    wanted = os.environ.get("MODELCYCLE_TEST_REQUIRE", "")
    return service in {s.strip() for s in wanted.split(",")}


def _unavailable(service: str, reason: str) -> None:
    if _required(service):
        pytest.fail(f"{service} is required (MODELCYCLE_TEST_REQUIRE) but {reason}")
    pytest.skip(f"{service} not available: {reason}")


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test sees the developer's MODELCYCLE_* settings."""
    for key in list(os.environ):
        if key.startswith("MODELCYCLE_") and not key.startswith("MODELCYCLE_TEST_"):
            monkeypatch.delenv(key)


@pytest.fixture(scope="session")
def postgres_url() -> str:
    """A reachable PostgreSQL URL (the CI server on 127.0.0.1:5432 by default)."""
    try:
        from sqlalchemy import create_engine, text
    except ImportError:  # pragma: no cover
        _unavailable("postgres", "sqlalchemy is missing")
    try:
        engine = create_engine(POSTGRES_URL, connect_args={"connect_timeout": 3})
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        engine.dispose()
    except Exception as err:
        _unavailable("postgres", f"cannot connect to {POSTGRES_URL}: {err}".splitlines()[0])
    return POSTGRES_URL


@contextlib.contextmanager
def fresh_pg_schema(base: str, prefix: str = "mc_test") -> Iterator[str]:
    """A URL whose connections use a fresh schema (through ``search_path``), dropped afterwards."""
    import sqlalchemy as sa

    schema = f"{prefix}_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
    url = sa.engine.make_url(base).update_query_dict({"options": f"-csearch_path={schema}"})
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        admin.dispose()


PgSchemaFactory = Callable[..., contextlib.AbstractContextManager[str]]


@pytest.fixture(scope="session")
def pg_schema(postgres_url: str) -> PgSchemaFactory:
    """``with pg_schema(prefix="mc_test") as url:`` a fresh PostgreSQL schema, dropped afterwards.

    Connections through ``url`` use the schema (the URL's ``search_path``, as a user could set
    it), so reruns start clean. Skips (or fails) like ``postgres_url`` without PostgreSQL.
    """

    def fresh(prefix: str = "mc_test") -> contextlib.AbstractContextManager[str]:
        return fresh_pg_schema(postgres_url, prefix)

    return fresh


@pytest.fixture
def pg_table(postgres_url: str) -> Iterator[str]:
    """A unique table name in the test database, dropped afterwards."""
    from sqlalchemy import create_engine, text

    name = f"mc_test_{uuid.uuid4().hex[:10]}"
    yield name
    engine = create_engine(postgres_url)
    with engine.begin() as conn:
        conn.execute(text(f'DROP TABLE IF EXISTS "{name}"'))
    engine.dispose()


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """A real headless Chromium driven by Playwright (Debian's /usr/bin/chromium, no download)."""
    if not (Path(CHROMIUM).exists() or shutil.which(CHROMIUM)):
        _unavailable("browser", f"{CHROMIUM} not found (apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("browser", "playwright is not installed")
    with sync_playwright() as pw:
        instance = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield instance
        instance.close()


@pytest.fixture
def open_page(browser: Any) -> Iterator[Any]:
    """``open_page(url) -> (page, console_errors)``: a new Chromium page that records errors."""
    pages: list[Any] = []

    def _open(url: str) -> tuple[Any, list[str]]:
        page = browser.new_page()
        pages.append(page)
        errors: list[str] = []
        page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto(url, wait_until="load")
        return page, errors

    yield _open
    for page in pages:
        page.close()


@pytest.fixture
def drawn_charts() -> Any:
    """``drawn_charts(page, also=None) -> int``: wait for plotly, count charts drawn as SVG.

    ``also`` is a CSS selector a chart must contain too (e.g. its markers), to tell a chart that
    has data from an empty frame.
    """

    def _count(page: Any, also: str | None = None) -> int:
        page.wait_for_function(
            "() => [...document.querySelectorAll('.js-plotly-plot')]"
            ".every(p => p.querySelector('.main-svg'))",
            timeout=15_000,
        )
        extra = f" && p.querySelector({also!r})" if also else ""
        return int(
            page.evaluate(
                "() => [...document.querySelectorAll('.js-plotly-plot')]"
                f".filter(p => p.querySelector('.main-svg'){extra}).length"
            )
        )

    return _count
