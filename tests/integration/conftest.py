"""Shared fixtures for the serving tests: a trained rent project and real server processes."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from modelcycle.config.settings import Settings
from modelcycle.config.spec import load_project, parse_budget
from modelcycle.scaffold import init_project
from modelcycle.training.train import TrainOptions, train


@pytest.fixture(scope="session")
def served_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A rent project (1,500 rows) with one trained, registered LightGBM model: rent/1, champion.

    Tests that change the project (stores, aliases) should copy it with ``project_copy``.
    """
    root = init_project(tmp_path_factory.mktemp("served") / "rent", example="rent", rows=1500).root
    project = load_project(root)
    options = TrainOptions(budget=parse_budget("2 trials"), candidates=["lgbm"], track=False)
    outcome = train(project, Settings.load(root), options)
    assert outcome.registered is not None, "the fixture model was not registered"
    return root


@pytest.fixture
def project_copy(served_project: Path, tmp_path: Path) -> Path:
    """A private copy of the served project (its own stores, spool and logs)."""
    target = tmp_path / "rent"
    shutil.copytree(served_project, target)
    return target


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class ServerProcess:
    """``modelcycle serve`` running in its own process on 127.0.0.1 (see :func:`launch`).

    Attributes:
        project: The project folder it serves.
        port: Its port.
        process: The process.
        log: Where its stdout and stderr go.
        env: The ``MODELCYCLE_*`` settings it was given on top of a clean environment.
    """

    project: Path
    port: int
    process: subprocess.Popen[bytes]
    log: Path
    env: dict[str, str] = field(default_factory=dict)

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>``."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def tracking_uri(self) -> str:
        """Its MLflow store: ``MODELCYCLE_MLFLOW_TRACKING_URI`` if given, else the project's."""
        uri = self.env.get("MODELCYCLE_MLFLOW_TRACKING_URI")
        uri = uri or Settings.load(self.project).mlflow_tracking_uri
        assert uri is not None
        return uri

    @property
    def database_url(self) -> str:
        """Its operational store: ``MODELCYCLE_DATABASE_URL`` if given, else the project's."""
        url = self.env.get("MODELCYCLE_DATABASE_URL") or Settings.load(self.project).database_url
        assert url is not None
        return url

    def output(self) -> str:
        """What the server printed so far."""
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def wait_ready(self, timeout: float = 60) -> None:
        """Block until ``/health/ready`` answers 200."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"the server exited early:\n{self.output()}")
            try:
                if httpx.get(f"{self.url}/health/ready", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise AssertionError(f"the server was not ready in {timeout} s:\n{self.output()}")

    def stop(self, timeout: float = 20) -> int:
        """SIGTERM (a clean shutdown); returns the exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return int(self.process.returncode)

    def kill(self) -> None:
        """SIGKILL (``kill -9``): no shutdown code runs."""
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


def launch(
    project: Path, log_dir: Path, *args: str, env: dict[str, str] | None = None, wait: bool = True
) -> ServerProcess:
    """Start ``python -m modelcycle --project PROJECT serve --port FREE *args``.

    ``env`` is added to a clean environment (no ``MODELCYCLE_*`` variables of this process); the
    output goes to ``LOG_DIR/server-PORT.log``. With ``wait``, returns once the server is ready;
    stopping it is the caller's job.
    """
    port = free_port()
    base = {k: v for k, v in os.environ.items() if not k.startswith("MODELCYCLE_")}
    log = log_dir / f"server-{port}.log"
    with log.open("wb") as out:
        command = [sys.executable, "-m", "modelcycle", "--project", str(project), "serve"]
        process = subprocess.Popen(
            [*command, "--port", str(port), *args],
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**base, **(env or {})},
        )
    server = ServerProcess(project, port, process, log, env or {})
    if wait:
        try:
            server.wait_ready()
        except BaseException:
            server.stop()
            raise
    return server


ServerFactory = Callable[..., ServerProcess]


@pytest.fixture(scope="session")
def launch_server() -> ServerFactory:
    """:func:`launch`, for test modules (they cannot import this file)."""
    return launch


@pytest.fixture
def start_server(tmp_path: Path) -> Iterator[ServerFactory]:
    """``start_server(project, *args, env={...}, wait=True) -> ServerProcess``.

    Runs ``python -m modelcycle --project PROJECT serve --port FREE *args`` with
    ``MODELCYCLE_MODEL_POLL_SECONDS=1`` and ``env`` added to a clean environment; every server
    still running at the end of the test is stopped.
    """
    started: list[ServerProcess] = []

    def start(
        project: Path, *args: str, env: dict[str, str] | None = None, wait: bool = True
    ) -> ServerProcess:
        server = launch(
            project,
            tmp_path,
            *args,
            env={"MODELCYCLE_MODEL_POLL_SECONDS": "1", **(env or {})},
            wait=False,
        )
        started.append(server)
        if wait:
            server.wait_ready()
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture
def rent_rows() -> Callable[..., list[dict[str, Any]]]:
    """``rent_rows(n=5, seed=7)``: clean rent rows to send to a server (see :func:`sample_rows`)."""
    return sample_rows


def sample_rows(n: int = 5, seed: int = 7) -> list[dict[str, Any]]:
    """``n`` clean rent rows (no planted problems) with the model's input features, JSON-ready.

    Optional features may be null (``None``), as in the training data.
    """
    from modelcycle.data.examples import rent_apartments

    frame = rent_apartments(n, seed=seed, messy=False).drop(
        columns=["rent", "address", "zip"], errors="ignore"
    )
    rows: list[dict[str, Any]] = json.loads(frame.to_json(orient="records"))
    return rows


def register_pipeline(project: Path, pipeline: Any = None) -> int:
    """Register ``pipeline`` (default: rent/1's own) with rent/1's metadata as a new version.

    Seconds, not a training run: for tests that need more versions of the served model.
    """
    import pandas as pd

    from modelcycle.registry.store import load_model, register_copy

    settings = Settings.load(project)
    uri, artifacts = settings.mlflow_tracking_uri, settings.artifact_dir
    assert uri is not None
    assert artifacts is not None
    current = load_model("rent/1", tracking_uri=uri)
    example = pd.DataFrame(sample_rows(2))
    chosen = current.pipeline if pipeline is None else pipeline
    return register_copy(current, chosen, example, tracking_uri=uri, artifact_dir=artifacts).version


@pytest.fixture(scope="session")
def registers() -> Callable[..., int]:
    """``registers(project, pipeline=None) -> version``: see :func:`register_pipeline`."""
    return register_pipeline


def log_traffic(
    engine: Any,
    model: Any,
    frame: Any,
    *,
    start: Any,
    seconds: float = 3600.0,
    labelled: float = 0.0,
    arm: str = "stable",
    seed: int = 0,
) -> list[str]:
    """Log ``model``'s predictions on ``frame`` as served traffic spread over ``seconds``.

    Predictions and OOD flags are the model's own (as the server logs them); a share
    ``labelled`` of the rows also gets its true ``rent`` as a label. Returns the request ids.
    """
    from datetime import timedelta

    import numpy as np

    from modelcycle.data.records import LabelRecord
    from modelcycle.store.predictions import insert_labels, insert_prediction_rows

    features = frame.drop(columns=["rent", "address", "zip"], errors="ignore")
    predicted = model.predict(features)["prediction"].to_numpy(dtype=float)
    ood = model.ood.score(features[model.feature_names]).records()
    records = json.loads(features.to_json(orient="records"))
    rng = np.random.default_rng(seed)
    offsets = np.sort(rng.uniform(0, seconds, len(frame)))
    ids = [f"{arm}-{seed}-{i}" for i in range(len(frame))]
    rows = [
        {
            "request_id": ids[i],
            "row": 0,
            "created_at": start + timedelta(seconds=float(offsets[i])),
            "model_name": model.name,
            "model_version": str(model.version),
            "arm": arm,
            "features": records[i],
            "prediction": float(predicted[i]),
            "latency_ms": float(rng.gamma(2.0, 1.5)),
            "ood": ood[i],
            "record_id": f"{ids[i]}-r",
        }
        for i in range(len(frame))
    ]
    chosen = rng.random(len(frame)) < labelled
    truth = frame["rent"].to_numpy(dtype=float) if "rent" in frame else predicted
    with engine.begin() as conn:
        insert_prediction_rows(conn, rows)
        insert_labels(
            conn,
            [LabelRecord(request_id=ids[i], label=float(truth[i])) for i in np.flatnonzero(chosen)],
        )
    return ids


@pytest.fixture(scope="session")
def logs_traffic() -> Callable[..., list[str]]:
    """``logs_traffic(engine, model, frame, start=...)``: see :func:`log_traffic`."""
    return log_traffic


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database: a SQLite file in a folder that does not exist yet, or a fresh
    PostgreSQL schema dropped afterwards (required in CI, skipped with a reason elsewhere)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'state' / 'modelcycle.db'}"
        return
    with request.getfixturevalue("pg_schema")() as url:
        yield url


@dataclass
class ProjectStore:
    """A project copy's settings, its migrated operational store and its registry URI."""

    root: Path
    settings: Settings
    engine: Any
    uri: str


@pytest.fixture
def project_store(project_copy: Path) -> Iterator[ProjectStore]:
    """The private project copy with its store migrated and an engine open (disposed after)."""
    from modelcycle.store import make_engine, upgrade

    settings = Settings.load(project_copy)
    assert settings.database_url is not None
    assert settings.mlflow_tracking_uri is not None
    upgrade(settings.database_url)
    engine = make_engine(settings.database_url)
    yield ProjectStore(project_copy, settings, engine, settings.mlflow_tracking_uri)
    engine.dispose()
