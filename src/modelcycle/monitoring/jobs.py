"""Monitoring jobs for a project: pick the version, run, record, report — once or on a schedule.

:func:`run_job` is what ``modelcycle monitor run``, ``monitor watch``, ``modelcycle watch`` and the
demo call: it picks the version to judge (the deployment's stable version, else the champion),
loads it (cached across rounds of a watch), monitors the window, records the run with its
alerts, and writes the HTML report when asked. :func:`watch` repeats it until stopped.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from loguru import logger
from sqlalchemy.engine import Engine

from modelcycle.monitoring.alerts import Notifier
from modelcycle.monitoring.run import RunResult, Window, monitor, record
from modelcycle.store.monitoring import recent_runs
from modelcycle.store.schema import deployments

if TYPE_CHECKING:
    from modelcycle.config.settings import Settings
    from modelcycle.config.spec import Project
    from modelcycle.registry.store import LoadedModel

HISTORY_RUNS = 50
"""Earlier runs drawn in a report's across-runs charts."""


@dataclass
class MonitorJob:
    """What a monitoring job needs, built once per command (or per watch).

    Attributes:
        engine: The operational store.
        settings: The project's settings (registry URI, webhook).
        project: The project (spec, data for the domain classifier).
        model_name: The registered model (default: the project's name).
        models: Loaded versions, kept across rounds.
    """

    engine: Engine
    settings: Settings
    project: Project
    model_name: str
    models: dict[str, LoadedModel] = field(default_factory=dict)

    @property
    def tracking_uri(self) -> str:
        """The MLflow registry."""
        uri = self.settings.mlflow_tracking_uri
        assert uri is not None  # derived from the project folder when unset
        return uri

    def version(self, wanted: str | None = None) -> str:
        """The version to judge: ``wanted``, else the deployment's stable one, else the champion.

        Raises:
            RegistryError: No version is given, deployed or champion.
        """
        return wanted or serving_version(self.engine, self.model_name, self.tracking_uri)

    def model(self, version: str) -> LoadedModel:
        """The loaded version (from the cache after the first time)."""
        if version not in self.models:
            from modelcycle.registry.store import load_model

            self.models[version] = load_model(
                f"{self.model_name}/{version}", tracking_uri=self.tracking_uri
            )
        return self.models[version]

    def reference_frame(self) -> Any:
        """The project's data (for the domain classifier), or None when it is turned off."""
        if not self.project.spec.monitoring.domain_classifier:
            return None
        from modelcycle.data.io import read_source

        return read_source(self.project.spec.data, self.project.root).frame


def serving_version(engine: Engine, name: str, tracking_uri: str) -> str:
    """The version answering callers: the deployment's stable version, else the champion.

    Raises:
        RegistryError: The model was never deployed and has no champion.
    """
    with engine.connect() as conn:
        stable = conn.execute(
            sa.select(deployments.c.stable_version).where(deployments.c.model_name == name)
        ).scalar()
    if stable:
        return str(stable)
    from modelcycle.registry.store import resolve_version

    return str(resolve_version(f"{name}@champion", tracking_uri=tracking_uri))


def run_job(
    job: MonitorJob,
    window: Window,
    *,
    version: str | None = None,
    report_path: Path | None = None,
    now: datetime | None = None,
) -> RunResult:
    """Monitor one window of the model, record the run and its alerts, write the report.

    Args:
        job: The project's job context.
        window: The rows to judge.
        version: The version (default: :meth:`MonitorJob.version`).
        report_path: Where to write the HTML report (none when None).
        now: The run's time (tests).
    """
    policy = job.project.spec.monitoring
    model = job.model(job.version(version))
    report = monitor(
        job.engine, model, policy, window, reference_frame=job.reference_frame(), now=now
    )
    result = record(job.engine, report, policy, Notifier(job.settings.alert_webhook_url))
    if report_path is not None:
        from modelcycle.monitoring.report import write_report

        with job.engine.connect() as conn:
            history = recent_runs(conn, job.model_name, limit=HISTORY_RUNS)
        write_report(report, report_path, history=history)
    return result


def watch(
    job: MonitorJob,
    window_for: Any,
    every: float,
    stop: threading.Event,
    *,
    report_path: Path | None = None,
    on_result: Any = None,
) -> int:
    """Run :func:`run_job` every ``every`` seconds until ``stop`` is set; returns the runs made.

    Args:
        job: The project's job context.
        window_for: ``() -> Window``: the window of each round (it ends at the round's time).
        every: Seconds between rounds.
        stop: Set it to end the loop (checked while waiting, so it ends promptly).
        report_path: Rewritten after each run.
        on_result: Called with each :class:`RunResult`.
    """
    runs = 0
    while not stop.is_set():
        try:
            result = run_job(job, window_for(), report_path=report_path)
            runs += 1
            if on_result is not None:
                on_result(result)
        except Exception as err:  # one failed round must not end the watch
            logger.opt(exception=not _expected(err)).error("monitoring run failed: {}", err)
        stop.wait(every)
    return runs


def _expected(err: Exception) -> bool:
    from modelcycle.errors import ModelcycleError

    return isinstance(err, ModelcycleError)
