"""Experiment tracking with MLflow: one parent run per ``train``, nested runs below it.

The tree is: parent run (the spec, its hash, the dataset as an input, the git commit, reports)
→ one nested run per baseline and candidate (params, valid and test metrics) → one nested run per
tuning trial. A disabled tracker does nothing, so the same training code runs with and without
tracking (the benchmark measures the difference).
"""

from __future__ import annotations

import contextlib
import math
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd

from modelcycle.training.tune import TrialRecord

_MLFLOW_ENV = ("MLFLOW_TRACKING_URI", "MLFLOW_EXPERIMENT_ID")


class Tracker:
    """Log a training run to MLflow, or do nothing when ``enabled`` is False.

    Args:
        tracking_uri: The MLflow tracking URI (settings).
        experiment: The experiment name (the project's name).
        artifact_root: Where the experiment stores artifacts when it is created.
        enabled: False turns every method into a no-op.
    """

    def __init__(
        self, tracking_uri: str, experiment: str, artifact_root: Path, *, enabled: bool = True
    ) -> None:
        self.tracking_uri = tracking_uri
        self.experiment = experiment
        self.artifact_root = artifact_root
        self.enabled = enabled
        self.run_id: str | None = None
        self._previous_uri: str | None = None
        self._saved_env: dict[str, str | None] = {}

    def connect(self) -> None:
        """Open the store and the experiment (artifacts under ``<artifact_root>/mlflow``).

        Raises:
            RegistryError: The store cannot be reached or created (one clear message).
        """
        if not self.enabled:
            return
        import mlflow

        from modelcycle.registry.store import ensure_experiment

        experiment_id = ensure_experiment(
            self.experiment, tracking_uri=self.tracking_uri, artifact_dir=self.artifact_root
        )
        self._previous_uri = mlflow.get_tracking_uri()
        self._saved_env = {k: os.environ.get(k) for k in _MLFLOW_ENV}
        mlflow.set_tracking_uri(self.tracking_uri)
        mlflow.set_experiment(experiment_id=experiment_id)

    @contextlib.contextmanager
    def parent(self, run_name: str, tags: dict[str, str]) -> Iterator[Tracker]:
        """The run of one ``train``; marked FAILED when the block raises."""
        if not self.enabled:
            yield self
            return
        import mlflow

        try:
            with mlflow.start_run(run_name=run_name, tags=tags) as run:
                self.run_id = run.info.run_id
                yield self
        finally:  # leave MLflow's process-wide state as it was (tests, notebooks, the demo)
            if self._previous_uri is not None:
                mlflow.set_tracking_uri(self._previous_uri)
            for key, value in self._saved_env.items():  # set_tracking_uri writes them too
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value

    @contextlib.contextmanager
    def child(self, name: str, tags: dict[str, str] | None = None) -> Iterator[None]:
        """A nested run (a baseline, a candidate, or a trial inside a candidate)."""
        if not self.enabled:
            yield
            return
        import mlflow

        with mlflow.start_run(run_name=name, nested=True, tags=tags or {}):
            yield

    def log_params(self, params: dict[str, Any]) -> None:
        """Log parameters of the active run (values are stringified by MLflow)."""
        if self.enabled and params:
            import mlflow

            mlflow.log_params({k: "None" if v is None else v for k, v in params.items()})

    def log_metrics(self, metrics: dict[str, float], prefix: str = "") -> None:
        """Log metrics of the active run; NaN values are left out."""
        if not self.enabled:
            return
        import mlflow

        clean = {f"{prefix}{k}": float(v) for k, v in metrics.items() if not math.isnan(v)}
        if clean:
            mlflow.log_metrics(clean)

    def log_trial(self, record: TrialRecord, metric: str) -> None:
        """One tuning trial as a nested run of the active candidate run."""
        if not self.enabled:
            return
        with self.child(f"{record.candidate}-trial-{record.number}", {"state": record.state}):
            self.log_params(record.params)
            if record.value is not None:
                self.log_metrics({metric: record.value, "seconds": record.seconds}, "valid_")

    def log_dataset(
        self, frame: pd.DataFrame, *, source: str, name: str, digest: str, target: str
    ) -> None:
        """The training data as an MLflow dataset input, with modelcycle's digest as a tag."""
        if not self.enabled:
            return
        import mlflow
        from mlflow.data.pandas_dataset import from_pandas

        from modelcycle.registry._mlflow import retry_busy

        dataset = from_pandas(frame, source=source, name=name, targets=target)
        # two runs logging the same dataset at once race in MLflow's get-or-create: retry
        retry_busy(
            lambda: mlflow.log_input(
                dataset, context="training", tags={"modelcycle_digest": digest}
            )
        )

    def log_text(self, text: str, path: str) -> None:
        """A text artifact of the parent run (the spec, the model card)."""
        if self.enabled:
            import mlflow

            mlflow.log_text(text, path)

    def log_artifact(self, path: Path, folder: str | None = None) -> None:
        """A file artifact of the active run (reports)."""
        if self.enabled and path.is_file():
            import mlflow

            mlflow.log_artifact(str(path), artifact_path=folder)

    def set_tags(self, tags: dict[str, str]) -> None:
        """Tags of the active run."""
        if self.enabled and tags:
            import mlflow

            mlflow.set_tags(tags)


def git_commit(folder: Path) -> str | None:
    """The current commit of the git repository holding ``folder`` (with ``+dirty``), if any."""

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", "-C", str(folder), *args],
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout.strip()

    try:
        head, dirty = git("rev-parse", "HEAD"), git("status", "--porcelain")
    except (OSError, subprocess.SubprocessError):
        return None
    return f"{head}+dirty" if dirty else head
