"""MLflow plumbing for the registry: clients, the process-global URI, runs, retries, signatures.

MLflow is imported inside the functions, so importing modelcycle stays fast. MLflow's fluent API
(``mlflow.pyfunc.log_model``, the SQL registry store) reads a process-global tracking URI rather
than a client's, so :func:`store_client` points it at the requested store for the duration of a
block and puts the previous value back. Every MLflow, SQLAlchemy or HTTP failure inside that block
becomes one :class:`~modelcycle.registry.manifest.RegistryError`.
"""

from __future__ import annotations

import os
import random
import re
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import pandas as pd
from loguru import logger

from modelcycle.config.settings import mask
from modelcycle.data.schema import FeatureSchema
from modelcycle.registry.manifest import RegistryError

if TYPE_CHECKING:
    from mlflow import MlflowClient
    from mlflow.models.signature import ModelSignature

T = TypeVar("T")

MLFLOW_ENV_DEFAULTS = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "10",
    "MLFLOW_UV_AUTO_DETECT": "false",
    "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
}
"""Set while modelcycle talks to MLflow, unless the environment already sets them: fail fast on
an unreachable server, and do not let the current folder's uv project leak into a model."""


LOCK_RETRIES = 10
HINT_URI = (
    "check MODELCYCLE_MLFLOW_TRACKING_URI (unset it to use the project's own SQLite store), "
    "or start the tracking server"
)


@contextmanager
def store_client(tracking_uri: str, *, create: bool) -> Iterator[MlflowClient]:
    """An MLflow client for ``tracking_uri``, with MLflow's failures turned into RegistryError.

    Args:
        tracking_uri: The store.
        create: Whether a missing SQLite store may be created (writers) or is an error (readers).
    """
    check_local_store(tracking_uri, create=create)
    with _env(MLFLOW_ENV_DEFAULTS), _global_uri(tracking_uri):
        import requests
        import sqlalchemy.exc
        from mlflow import MlflowClient
        from mlflow.exceptions import MlflowException

        try:
            # the client opens the store at once; a new SQLite store is created (migrated)
            # then, so writers do that one at a time
            with _store_lock(tracking_uri) if create else nullcontext():
                client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
            yield client
        except (
            MlflowException,
            sqlalchemy.exc.SQLAlchemyError,
            requests.RequestException,
            OSError,
        ) as err:
            raise store_error(err, tracking_uri) from None


def store_error(err: BaseException, tracking_uri: str) -> RegistryError:
    text = str(getattr(err, "message", None) or err).strip()
    reasons = {
        "Connection refused": "connection refused",
        "Name or service not known": "unknown host",
        "nodename nor servname": "unknown host",
        "timed out": "timed out",
        "Max retries exceeded": "no answer",
        "unable to open database file": "cannot open the database file",
    }
    for needle, reason in reasons.items():
        if needle in text:
            return RegistryError(
                f"cannot reach the MLflow store at {mask(tracking_uri)} ({reason})", HINT_URI
            )
    first = text.splitlines()[0] if text else type(err).__name__
    if len(first) > 300:
        first = first[:300] + "…"
    return RegistryError(f"the MLflow store at {mask(tracking_uri)} failed: {first}", HINT_URI)


def sqlite_path(tracking_uri: str) -> Path | None:
    """The database file of a ``sqlite:`` tracking URI; ``None`` for other schemes.

    Raises:
        RegistryError: A malformed or in-memory SQLite URI.
    """
    if not tracking_uri.startswith("sqlite:"):
        return None
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        database = make_url(tracking_uri).database
    except ArgumentError:
        database = None
    if not database or database == ":memory:":
        raise RegistryError(
            f"the MLflow store {tracking_uri!r} is not a SQLite file",
            "use sqlite:///relative/path/mlflow.db or sqlite:////absolute/path/mlflow.db",
        )
    return Path(database).expanduser()


def check_local_store(tracking_uri: str, *, create: bool) -> None:
    """Fail fast (and clearly) on a SQLite store whose file or folder does not exist.

    Writers (``create``) may create the store's folder when its parent exists (the project's
    ``.modelcycle`` folder on a first ``train``); a deeper missing path is a typo, not a store.
    """
    path = sqlite_path(tracking_uri)
    if path is None:
        if not re.match(r"^[A-Za-z][A-Za-z0-9+.-]*:", tracking_uri):
            raise RegistryError(
                f"the MLflow tracking URI {tracking_uri!r} has no scheme",
                "use sqlite:///path/to/mlflow.db, http://host:port, or another MLflow URI",
            )
        return
    if path.is_file():
        return
    if not create:
        raise RegistryError(
            f"there is no MLflow store at {path} (from {mask(tracking_uri)})",
            "register a model first (`modelcycle train`), or point "
            "MODELCYCLE_MLFLOW_TRACKING_URI at your store",
        )
    folder = path.parent
    if not folder.is_dir():
        if not folder.parent.is_dir():
            raise RegistryError(
                f"the folder of the MLflow store {path} does not exist",
                "create it, or fix MODELCYCLE_MLFLOW_TRACKING_URI",
            )
        folder.mkdir(exist_ok=True)


_GLOBALS = threading.RLock()
"""Serialises the blocks that change MLflow's process-global URIs and environment: the server
reads the registry from several threads, and interleaved save/restore pairs would leave the
process pointing at the wrong store."""


@contextmanager
def _env(defaults: dict[str, str]) -> Iterator[None]:
    """Set environment variables that are not already set, for the duration of the block."""
    with _GLOBALS:
        added = [k for k in defaults if k not in os.environ]
        for key in added:
            os.environ[key] = defaults[key]
        try:
            yield
        finally:
            for key in added:
                os.environ.pop(key, None)


@contextmanager
def _global_uri(tracking_uri: str) -> Iterator[None]:
    """Point MLflow's process-global tracking and registry URIs at ``tracking_uri``, then back.

    ``mlflow.pyfunc.log_model`` and the SQL registry store read the global URI, not a client's.
    """
    import mlflow
    from mlflow.tracking._model_registry import utils as registry_utils
    from mlflow.tracking._tracking_service import utils as tracking_utils

    with _GLOBALS:
        saved_env = {k: os.environ.get(k) for k in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")}
        saved_tracking = tracking_utils._tracking_uri
        saved_registry = registry_utils._registry_uri
        mlflow.set_tracking_uri(tracking_uri)
        mlflow.set_registry_uri(tracking_uri)
        try:
            yield
        finally:
            if saved_tracking is None:
                tracking_utils._tracking_uri = None
            elif saved_tracking != tracking_uri:
                mlflow.set_tracking_uri(saved_tracking)
            registry_utils._registry_uri = saved_registry
            for key, value in saved_env.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value


@contextmanager
def _store_lock(tracking_uri: str) -> Iterator[None]:
    """Serialise first contact with a SQLite store across processes (its creation migrates)."""
    if not tracking_uri.startswith("sqlite:"):
        yield
        return
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows: no advisory locks; MLflow retries
        yield
        return
    database = sqlite_path(tracking_uri)
    assert database is not None
    lock_path = database.with_name(database.name + ".lock")
    with open(lock_path, "a+b") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def ensure_experiment_id(
    client: MlflowClient, name: str, tracking_uri: str, artifact_dir: Path
) -> str:
    """The id of experiment ``name``; created with its artifacts in ``<artifact_dir>/mlflow``.

    An existing experiment keeps its artifact location; a deleted one is restored.
    """
    from mlflow.entities import LifecycleStage
    from mlflow.exceptions import MlflowException

    location = (artifact_dir.expanduser().resolve() / "mlflow").as_uri()
    with _store_lock(tracking_uri):
        experiment = client.get_experiment_by_name(name)
        if experiment is None:
            try:
                return client.create_experiment(name, artifact_location=location)
            except MlflowException as err:
                if "already exists" not in str(err).lower():
                    raise
                experiment = client.get_experiment_by_name(name)
                if experiment is None:  # pragma: no cover - deleted again in between
                    raise
        if experiment.lifecycle_stage == LifecycleStage.DELETED:
            client.restore_experiment(experiment.experiment_id)
        return str(experiment.experiment_id)


@contextmanager
def logging_run(
    client: MlflowClient,
    experiment_id: Callable[[], str],
    run_id: str | None,
    model_name: str,
) -> Iterator[str]:
    """The run to log into: the active one, else ``run_id`` (resumed), else a new one.

    Args:
        client: The store's client.
        experiment_id: Gives the experiment of a new run (called only when one is needed).
        run_id: A run to resume when none is active; its status is put back afterwards.
        model_name: Names a new run ``register-<model_name>``.
    """
    import mlflow

    active = mlflow.active_run()
    if active is not None:
        yield active.info.run_id
        return
    if run_id is not None:
        status = client.get_run(run_id).info.status
        mlflow.start_run(run_id=run_id)
        try:
            yield run_id
        finally:
            mlflow.end_run()
            if status != "RUNNING":
                client.update_run(run_id, status=status)
        return
    run = mlflow.start_run(experiment_id=experiment_id(), run_name=f"register-{model_name}")
    ok = False
    try:
        yield run.info.run_id
        ok = True
    finally:
        mlflow.end_run("FINISHED" if ok else "FAILED")


def retry_busy(operation: Callable[[], T]) -> T:
    """Run ``operation``, retrying with jittered backoff while SQLite reports contention."""
    delay = 0.05
    for attempt in range(LOCK_RETRIES):
        try:
            return operation()
        except Exception as err:
            text = str(err)
            contended = any(
                s in text for s in ("database is locked", "Giving up after", "UNIQUE constraint")
            )
            if not contended or attempt == LOCK_RETRIES - 1:
                raise
            logger.debug("MLflow store busy ({}); retrying", text.splitlines()[0][:120])
            time.sleep(delay * (1 + random.random()))
            delay = min(delay * 2, 2.0)
    raise AssertionError("unreachable")  # pragma: no cover


def pyfunc_signature(
    example: pd.DataFrame, output: pd.DataFrame, schema: FeatureSchema
) -> ModelSignature:
    """Signature from the input example and its predictions, with numeric inputs typed ``any``.

    MLflow refuses int64 input for a ``double`` column and float input for a ``long`` one, so a
    strict numeric type would make the pyfunc reject rows (an integer column with a missing
    value, a float column sent as whole numbers) that the pipeline and modelcycle's own loader
    accept. The FeatureSchema (``schema.json``) keeps the exact kinds and ranges.
    """
    import warnings

    from mlflow.models import infer_signature
    from mlflow.types import ColSpec, Schema, TensorSpec
    from mlflow.types.schema import AnyType

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # the integer-column hint handled below
        inferred = infer_signature(example, output)
    numeric = {c.name for c in schema.features if c.kind == "numeric"}
    columns: list[ColSpec | TensorSpec] = []
    assert inferred.inputs is not None
    for spec in inferred.inputs.inputs:
        if isinstance(spec, ColSpec) and spec.name in numeric:
            any_type = AnyType()  # type: ignore[no-untyped-call]
            columns.append(ColSpec(any_type, spec.name, required=spec.required))
        else:
            columns.append(spec)
    inferred.inputs = Schema(columns)
    signature: ModelSignature = inferred
    return signature
