"""What every CLI command shares: consoles, the project/settings context, and error output."""

from __future__ import annotations

import sys
import tempfile
import traceback
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.console import Console

from modelcycle.config.settings import Settings
from modelcycle.config.spec import Project, find_project_root, load_project
from modelcycle.errors import ModelcycleError

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

console = Console()
err_console = Console(stderr=True)


@dataclass
class CliState:
    """Options given before the command (``modelcycle --project DIR -v data validate``)."""

    project_dir: Path | None = None
    log_level: str | None = None
    log_file: Path | None = None
    _settings: Settings | None = field(default=None, repr=False)
    _project: Project | None = field(default=None, repr=False)

    def reset(self, project_dir: Path | None, log_level: str | None) -> None:
        """Start a new invocation (the CLI can run several times in one process, e.g. tests)."""
        self.project_dir, self.log_level, self.log_file = project_dir, log_level, None
        self._settings = self._project = None

    def root(self) -> Path:
        """The project folder: ``--project``, else the nearest ``modelcycle.toml``, else cwd."""
        if self.project_dir is not None:
            return self.project_dir.expanduser().resolve()
        return find_project_root(Path.cwd()) or Path.cwd()

    def settings(self) -> Settings:
        """Settings for the project folder, built once."""
        if self._settings is None:
            overrides = {"log_level": self.log_level} if self.log_level else {}
            self._settings = Settings.load(self.root(), **overrides)
        return self._settings

    def project(self) -> Project:
        """The loaded project spec, built once."""
        if self._project is None:
            self._project = load_project(self.project_dir)
        return self._project


STATE = CliState()


@contextmanager
def migrated_store(status: str | None = None) -> Iterator[Engine]:
    """An engine on the project's operational store, migrated to the newest revision first.

    Args:
        status: A spinner message shown while migrating.
    """
    from modelcycle.store import make_engine, upgrade

    url = STATE.settings().database_url
    assert url is not None  # derived from the project folder when unset
    with console.status(status) if status else nullcontext():
        upgrade(url)
    engine = make_engine(url)
    try:
        yield engine
    finally:
        engine.dispose()


def print_error(err: ModelcycleError) -> None:
    """One clean line for a user error, and one for its fix."""
    err_console.print(f"[bold red]error:[/] {err.message}", highlight=False, soft_wrap=True)
    if err.hint:
        err_console.print(f"[yellow]hint:[/] {err.hint}", highlight=False, soft_wrap=True)


def report_crash(exc: BaseException) -> int:
    """Log an unexpected error's traceback to the log file and print one line saying where."""
    from loguru import logger

    where = STATE.log_file
    if where is not None:
        logger.bind(file_only=True).opt(exception=exc).error("unexpected error: {}", exc)
    else:
        handle, name = tempfile.mkstemp(prefix="modelcycle-crash-", suffix=".log")
        with open(handle, "w", encoding="utf-8") as out:
            traceback.print_exception(exc, file=out)
        where = Path(name)
    err_console.print(
        f"[bold red]unexpected error:[/] {type(exc).__name__}: {exc}",
        highlight=False,
        soft_wrap=True,
    )
    err_console.print(f"the full traceback is in {where}; please report it", highlight=False)
    return 1


def exit_with(code: int) -> None:
    """Leave the command with ``code``."""
    raise typer.Exit(code)


def is_tty() -> bool:
    """Whether stdout is a terminal."""
    return sys.stdout.isatty()
