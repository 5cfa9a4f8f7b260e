"""The ``modelcycle`` command line: one command group per lifecycle stage.

Commands are thin: they parse options, build settings, call a stage and print its result. User
mistakes end in one clean message (exit code 2); anything unexpected is logged with its
traceback and reported in one line (exit code 1).
"""

from __future__ import annotations

import sys

from modelcycle.cli._shared import STATE, print_error, report_crash
from modelcycle.cli.app import app
from modelcycle.errors import ModelcycleError

__all__ = ["app", "main"]


def main(argv: list[str] | None = None) -> None:
    """Run the CLI and exit with its code."""
    try:
        app(args=argv, prog_name="modelcycle")
    except ModelcycleError as err:
        from loguru import logger

        if STATE.log_file is not None:
            logger.bind(file_only=True).opt(exception=err).debug("user error: {}", err)
        print_error(err)
        sys.exit(err.exit_code)
    except KeyboardInterrupt:
        sys.exit(130)
    except Exception as exc:
        sys.exit(report_crash(exc))
