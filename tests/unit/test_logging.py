"""configure_logging: files under the project, JSON lines, stdlib records routed into loguru."""

from __future__ import annotations

import io
import json
import logging
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest
from loguru import logger

from modelcycle.config.logging import ERROR_FILE, INTERCEPTED, LOG_FILE, configure_logging
from modelcycle.config.settings import Settings


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    """Undo what configure_logging does to loguru and the stdlib logging tree."""
    root = logging.getLogger()
    saved_root = (list(root.handlers), root.level)
    saved = {
        name: (list(logging.getLogger(name).handlers), logging.getLogger(name).propagate)
        for name in INTERCEPTED
    }
    yield
    logger.remove()
    root.handlers[:] = saved_root[0]
    root.setLevel(saved_root[1])
    for name, (handlers, propagate) in saved.items():
        std = logging.getLogger(name)
        std.handlers = handlers
        std.propagate = propagate
    logging.captureWarnings(False)


def _read(path: Path) -> str:
    logger.complete()
    return path.read_text(encoding="utf-8")


def test_files_written_under_project_logs(tmp_path: Path) -> None:
    settings = Settings.load(tmp_path)
    log_file = configure_logging(settings, console=None)
    assert log_file == tmp_path.resolve() / "logs" / LOG_FILE

    logger.info("routine message 41")
    logger.error("broken message 42")

    main = _read(tmp_path / "logs" / LOG_FILE)
    errors = _read(tmp_path / "logs" / ERROR_FILE)
    assert "routine message 41" in main
    assert "broken message 42" in main
    assert "broken message 42" in errors
    assert "routine message 41" not in errors
    assert "| ERROR    |" in errors


def test_log_level_filters_the_main_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MODELCYCLE_LOG_LEVEL", "WARNING")
    configure_logging(Settings.load(tmp_path), console=None)
    logger.debug("debug line")
    logger.info("info line")
    logger.warning("warning line")
    main = _read(tmp_path / "logs" / LOG_FILE)
    assert "warning line" in main
    assert "info line" not in main
    assert "debug line" not in main


def test_log_dir_from_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MODELCYCLE_LOG_DIR", str(tmp_path / "elsewhere" / "logs"))
    log_file = configure_logging(Settings.load(tmp_path / "proj"), console=None)
    assert log_file == tmp_path / "elsewhere" / "logs" / LOG_FILE
    logger.info("placed")
    assert "placed" in _read(log_file)
    assert not (tmp_path / "proj" / "logs").exists()


def test_json_format_one_object_per_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MODELCYCLE_LOG_FORMAT", "json")
    console = io.StringIO()
    configure_logging(Settings.load(tmp_path), console=console)
    logger.bind(model_version="3").info("first json message")
    logger.error('second "quoted" message')

    lines = _read(tmp_path / "logs" / LOG_FILE).splitlines()
    assert len(lines) == 2
    records = [json.loads(line) for line in lines]
    assert [r["record"]["message"] for r in records] == [
        "first json message",
        'second "quoted" message',
    ]
    assert records[0]["record"]["level"]["name"] == "INFO"
    assert records[0]["record"]["extra"] == {"model_version": "3"}

    error_lines = _read(tmp_path / "logs" / ERROR_FILE).splitlines()
    assert [json.loads(line)["record"]["message"] for line in error_lines] == [
        'second "quoted" message'
    ]
    console_lines = console.getvalue().splitlines()
    assert [json.loads(line)["record"]["message"] for line in console_lines] == [
        "first json message",
        'second "quoted" message',
    ]


def test_text_console_and_console_level(tmp_path: Path) -> None:
    console = io.StringIO()
    configure_logging(Settings.load(tmp_path), console=console, console_level="WARNING")
    logger.info("only in the file")
    logger.warning("on the console")
    shown = console.getvalue()
    assert "on the console" in shown
    assert "WARNING" in shown
    assert "only in the file" not in shown
    assert "\x1b[" not in shown  # a StringIO is not a TTY: no colour codes
    assert "only in the file" in _read(tmp_path / "logs" / LOG_FILE)


def test_stdlib_logger_goes_to_loguru_file(tmp_path: Path) -> None:
    configure_logging(Settings.load(tmp_path), console=None)
    logging.getLogger("sqlalchemy").warning("pool exhausted %d", 7)
    logging.getLogger("some.library").error("library failure")
    main = _read(tmp_path / "logs" / LOG_FILE)
    assert "pool exhausted 7" in main
    assert "library failure" in main
    assert "library failure" in _read(tmp_path / "logs" / ERROR_FILE)
    warning_line = next(line for line in main.splitlines() if "pool exhausted 7" in line)
    assert "| WARNING  |" in warning_line
    # the origin is the caller, not the logging machinery
    assert "test_stdlib_logger_goes_to_loguru_file" in warning_line


def test_stdlib_exception_keeps_traceback(tmp_path: Path) -> None:
    configure_logging(Settings.load(tmp_path), console=None)
    try:
        raise RuntimeError("exploded here")
    except RuntimeError:
        logging.getLogger("uvicorn.error").exception("request failed")
    errors = _read(tmp_path / "logs" / ERROR_FILE)
    assert "request failed" in errors
    assert "RuntimeError: exploded here" in errors


def test_python_warnings_are_logged(tmp_path: Path) -> None:
    configure_logging(Settings.load(tmp_path), console=None)
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        warnings.warn("deprecated knob", UserWarning, stacklevel=1)
    assert "deprecated knob" in _read(tmp_path / "logs" / LOG_FILE)


def test_files_false_writes_nothing(tmp_path: Path) -> None:
    console = io.StringIO()
    result = configure_logging(Settings.load(tmp_path), console=console, files=False)
    logger.error("console only")
    logging.getLogger("sqlalchemy").error("stdlib console only")
    logger.complete()
    assert result is None
    assert not (tmp_path / "logs").exists()
    assert list(tmp_path.iterdir()) == []
    assert "console only" in console.getvalue()
    assert "stdlib console only" in console.getvalue()


def test_reconfiguring_replaces_sinks(tmp_path: Path) -> None:
    first = io.StringIO()
    second = io.StringIO()
    configure_logging(Settings.load(tmp_path), console=first, files=False)
    configure_logging(Settings.load(tmp_path), console=second, files=False)
    logger.info("after the second call")
    assert "after the second call" in second.getvalue()
    assert first.getvalue() == ""


def test_chatty_libraries_stay_off_the_console_below_error(tmp_path: Path) -> None:
    console = io.StringIO()
    configure_logging(Settings.load(tmp_path), console=console)
    logging.getLogger("mlflow.pyfunc").warning("mlflow hint nobody asked for")
    logging.getLogger("mlflow.store").error("mlflow store failure")
    logging.getLogger("uvicorn.error").info("Uvicorn running")
    shown = console.getvalue()
    assert "mlflow hint nobody asked for" not in shown
    assert "mlflow store failure" in shown
    assert "Uvicorn running" in shown
    assert "mlflow hint nobody asked for" in _read(tmp_path / "logs" / LOG_FILE)
