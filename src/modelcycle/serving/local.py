"""A model server on a background thread of this process, on a free port of 127.0.0.1.

For the demo, and for tools and tests that need a real HTTP server without a separate process.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from types import TracebackType

from modelcycle.config.settings import Settings
from modelcycle.errors import ModelcycleError


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that is free on ``host`` right now."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


UVICORN_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access", "uvicorn.asgi")


class LocalServer:
    """``with LocalServer(settings) as server: httpx.get(server.url + "/models")``.

    Runs :func:`~modelcycle.serving.app.create_app` under uvicorn on a free port of 127.0.0.1
    and waits until the model is loaded; leaving the block shuts it down cleanly (the
    prediction log is flushed to the store).

    Args:
        settings: The project's settings.
        model: ``NAME@ALIAS`` or ``NAME/VERSION`` (default: the settings' or the champion).
        timeout: Seconds to wait for the server to be ready.
    """

    def __init__(self, settings: Settings, model: str | None = None, timeout: float = 60) -> None:
        import uvicorn

        from modelcycle.serving.app import create_app

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.app = create_app(settings, model)
        self._levels = {name: logging.getLogger(name).level for name in UVICORN_LOGGERS}
        config = uvicorn.Config(
            self.app,
            host="127.0.0.1",
            port=self.port,
            log_config=None,
            log_level="warning",  # no start/stop lines in the middle of a narrated run
            access_log=False,
        )
        self.server = uvicorn.Server(config)
        self.timeout = timeout
        self._thread = threading.Thread(target=self.server.run, name="modelcycle-server")

    def __enter__(self) -> LocalServer:
        self._thread.start()
        deadline = time.monotonic() + self.timeout
        serving = self.app.state.serving
        while not (self.server.started and serving.ready):
            if not self._thread.is_alive() or serving.failure:
                self.__exit__(None, None, None)
                raise ModelcycleError(
                    f"the model server did not start: {serving.failure or 'see the log'}"
                )
            if time.monotonic() > deadline:
                self.__exit__(None, None, None)
                raise ModelcycleError(f"the model server was not ready in {self.timeout:.0f} s")
            time.sleep(0.05)
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.server.should_exit = True
        self._thread.join(30)
        for name, level in self._levels.items():  # uvicorn set them for the whole process
            logging.getLogger(name).setLevel(level)
