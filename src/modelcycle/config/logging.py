"""Logging set-up with loguru; called only by entry points (the CLI, the server lifespan).

Sinks: the console (human text, coloured on a TTY, or JSON lines), a rotating file with every
record at the configured level, and a separate error file, both under the log folder. Records
from stdlib loggers (uvicorn, mlflow, sqlalchemy, alembic, ...) are routed into loguru.
"""

from __future__ import annotations

import inspect
import logging
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from loguru import logger

from modelcycle.config.settings import Settings

if TYPE_CHECKING:
    from loguru import Record

FILE_ONLY = "file_only"
"""Bind ``logger.bind(file_only=True)`` for records (tracebacks) that the console must not show."""
QUIET_ON_CONSOLE = frozenset({"mlflow", "sqlalchemy", "alembic", "py", "httpx", "httpcore"})
"""Libraries whose records below ERROR go to the log files only (``py`` is ``py.warnings``)."""
LOG_FILE = "modelcycle.log"
ERROR_FILE = "errors.log"
INTERCEPTED = (
    "uvicorn",
    "uvicorn.error",
    "uvicorn.access",
    "mlflow",
    "sqlalchemy",
    "alembic",
    "httpx",
    "py.warnings",
)
_CONSOLE_FORMAT = "<level>{level: <8}</level> <level>{message}</level>"
_FILE_FORMAT = (
    "{time:YYYY-MM-DD HH:mm:ss.SSS} | {level: <8} | {process} | {name}:{function}:{line} | "
    "{message} | {extra}"
)


def _for_console(record: Record) -> bool:
    """Console: everything but file-only records and chatty libraries' notes below ERROR.

    MLflow, SQLAlchemy, Alembic and Python warnings explain themselves at length; their records
    still reach the log files in full.
    """
    if record["extra"].get(FILE_ONLY):
        return False
    source = str(record["extra"].get("stdlib", ""))
    chatty = source.split(".", maxsplit=1)[0] in QUIET_ON_CONSOLE
    return not chatty or record["level"].no >= logger.level("ERROR").no


class InterceptHandler(logging.Handler):
    """Send stdlib logging records to loguru, keeping their level and origin."""

    def emit(self, record: logging.LogRecord) -> None:
        """Forward one record."""
        try:
            level: str | int = logger.level(record.levelname).name
        except ValueError:
            level = record.levelno
        frame, depth = inspect.currentframe(), 0
        while frame and (depth == 0 or frame.f_code.co_filename == logging.__file__):
            frame = frame.f_back
            depth += 1
        logger.bind(stdlib=record.name).opt(depth=depth, exception=record.exc_info).log(
            level, record.getMessage()
        )


def configure_logging(
    settings: Settings,
    *,
    console: TextIO | bool | None = True,
    console_level: str | None = None,
    files: bool = True,
) -> Path | None:
    """Install modelcycle's sinks, replacing any earlier ones.

    Args:
        settings: Log folder, level, format, rotation, retention and compression.
        console: Stream for the console sink; ``True`` for the current ``sys.stderr``;
            ``None`` or ``False`` for no console output.
        console_level: Level for the console (default: the settings' level).
        files: Whether to write log files (off for commands that must not touch the disk).

    Returns:
        The main log file, or ``None`` when files are off.
    """
    logger.remove()
    json = settings.log_format == "json"
    if console is True:
        console = sys.stderr
    if console:
        logger.add(
            console,
            level=console_level or settings.log_level,
            format=_CONSOLE_FORMAT,
            colorize=None if not json else False,
            serialize=json,
            backtrace=False,
            diagnose=False,
            filter=_for_console,
        )
    log_file = None
    if files:
        log_dir = settings.logs
        log_dir.mkdir(parents=True, exist_ok=True)
        log_file = log_dir / LOG_FILE
        for path, level in ((log_file, settings.log_level), (log_dir / ERROR_FILE, "ERROR")):
            logger.add(
                path,
                level=level,
                rotation=settings.log_rotation,
                retention=settings.log_retention,
                compression=settings.log_compression,
                serialize=json,
                format=_FILE_FORMAT,
                backtrace=True,
                diagnose=False,
                encoding="utf-8",
            )
    # MLflow installs its own stderr handler on import unless told not to
    os.environ.setdefault("MLFLOW_CONFIGURE_LOGGING", "false")
    logging.basicConfig(handlers=[InterceptHandler()], level=0, force=True)
    for name in INTERCEPTED:
        std = logging.getLogger(name)
        std.handlers = [InterceptHandler()]
        std.propagate = False
        std.setLevel(logging.NOTSET)  # loguru's sinks filter; a level left by a library would not
    logging.captureWarnings(True)
    return log_file
