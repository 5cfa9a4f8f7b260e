"""One retrain: recent labelled production data → train → challenger vs champion → gated rollout.

:func:`retrain` runs the whole step and records every decision as an event of the model's
deployment history (``retrain_started``, ``retrain_rejected``, ``retrain_registered``,
``retrain_failed``, ``retrain_abandoned``; the rollout adds its own ``deploy``):

1. **Data**: the project's data source plus the labelled production rows of the last
   ``recent_window`` (the prediction log joined with its labels, rows that failed or lack a
   feature dropped). The newest ``recent_holdout`` share is kept out for the comparison; the rest
   joins the *training part only* (validation and test stay the project's own, so scores compare
   with earlier versions), each row counted ``recent_weight`` times (resampled), and is logged to
   the MLflow run as its own dataset with a digest.
2. **Train** with the project's spec (same candidates and budget), without registering.
3. **Compare** challenger and champion on the same rows: the original test part and the recent
   held-out rows (:func:`judge`, pure). The challenger wins when it beats the champion on the
   recent rows by ``min_improvement`` and is not worse on the test part by more than
   ``max_test_loss`` (without recent labels: it must beat it on the test part).
4. **Register** the winner and hand it to the deployment policy (``deploy``: ramp by default),
   whose gates and controller decide whether it is promoted or rolled back.

:func:`retrain_state` reads what :func:`~modelcycle.retraining.triggers.should_retrain` needs
from the store and the registry.
"""

from __future__ import annotations

import hashlib
import threading
import time
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd
import sqlalchemy as sa
from loguru import logger
from sqlalchemy.engine import Engine

from modelcycle.config.spec import RetrainingSpec, parse_duration
from modelcycle.deployment import state as st
from modelcycle.errors import ConfigError, ModelcycleError
from modelcycle.metrics import improvement
from modelcycle.retraining.triggers import (
    AlertInfo,
    RetrainDecision,
    RetrainState,
    should_retrain,
)
from modelcycle.store.alerts import list_alerts
from modelcycle.store.predictions import expand_features, window
from modelcycle.store.schema import deployment_events, labels, predictions

if TYPE_CHECKING:
    from modelcycle.config.settings import Settings
    from modelcycle.config.spec import Project
    from modelcycle.registry.store import LoadedModel
    from modelcycle.training.train import Progress

Status = Literal["deployed", "registered", "rejected", "failed", "abandoned"]
STARTED = "retrain_started"
FINISHED = ("retrain_rejected", "retrain_registered", "retrain_failed", "retrain_abandoned")
"""Events that end a retrain."""
STALE_AFTER = timedelta(hours=6)
"""A retrain started longer ago without an ending event is taken to have died."""
RECENT_SOURCE = "production"


class RetrainAbandonedError(ModelcycleError):
    """A stop was requested while a retrain ran (``modelcycle watch`` stopping)."""


@dataclass(frozen=True)
class Verdict:
    """Challenger vs champion on the same rows.

    Attributes:
        metric: The deciding metric.
        scores: ``{"test": {"champion": x, "challenger": y}, "recent": {...}}`` (parts present).
        rows: Rows of each part.
        gains: The challenger's relative improvement per part (positive: better).
        wins: The challenger should replace the champion.
        reason: One sentence with the numbers.
    """

    metric: str
    scores: dict[str, dict[str, float]]
    rows: dict[str, int]
    gains: dict[str, float]
    wins: bool
    reason: str


def judge(
    metric: str,
    scores: dict[str, dict[str, float]],
    rows: dict[str, int],
    policy: RetrainingSpec,
) -> Verdict:
    """Decide whether the challenger wins (pure).

    Args:
        metric: The deciding metric.
        scores: Per part (``test``, ``recent``), the champion's and challenger's metric.
        rows: Rows per part.
        policy: ``min_improvement`` and ``max_test_loss``.
    """
    gains = {
        part: improvement(metric, both["challenger"], both["champion"])
        for part, both in scores.items()
    }

    def said(part: str) -> str:
        both = scores[part]
        return (
            f"{part} {metric} {both['challenger']:,.4g} vs champion {both['champion']:,.4g} "
            f"({gains[part]:+.1%}, {rows[part]:,} rows)"
        )

    if "recent" in scores:
        needed = f"needs {policy.min_improvement:+.1%} on recent rows"
        if gains["recent"] < policy.min_improvement or gains["recent"] <= 0:
            return Verdict(metric, scores, rows, gains, False, f"{said('recent')}: {needed}")
        if "test" in scores and gains["test"] < -policy.max_test_loss:
            return Verdict(
                metric,
                scores,
                rows,
                gains,
                False,
                f"{said('recent')}, but {said('test')}: worse than the allowed "
                f"{policy.max_test_loss:.0%} on the original test part",
            )
        extra = f"; {said('test')}" if "test" in scores else ""
        return Verdict(metric, scores, rows, gains, True, f"{said('recent')}{extra}")
    if "test" not in scores:
        return Verdict(metric, scores, rows, gains, False, "no rows to compare on")
    wins = gains["test"] > 0 and gains["test"] >= policy.min_improvement
    need = "" if wins else f": needs {policy.min_improvement:+.1%} (no recent labels)"
    return Verdict(metric, scores, rows, gains, wins, said("test") + need)


@dataclass
class RetrainResult:
    """What one retrain did.

    Attributes:
        model_name: The registered model.
        status: ``deployed``, ``registered``, ``rejected``, ``failed`` or ``abandoned``.
        reason: One sentence.
        champion: The version it was compared with.
        challenger: The registered version (``None`` unless registered).
        verdict: The comparison (``None`` when it did not get that far).
        recent_rows: Recent labelled rows used (training + held out).
        run_id: The MLflow run of the training.
        seconds: How long it took.
    """

    model_name: str
    status: Status
    reason: str
    champion: str | None = None
    challenger: str | None = None
    verdict: Verdict | None = None
    recent_rows: int = 0
    run_id: str | None = None
    seconds: float = 0.0
    details: dict[str, Any] = field(default_factory=dict)


@dataclass
class RecentData:
    """Labelled production rows: features by name plus the target column."""

    frame: pd.DataFrame
    digest: str
    source: str
    dropped: int = 0
    """Labelled rows left out: a required feature or the target missing or not a number."""

    def split(self, holdout: float) -> tuple[pd.DataFrame, pd.DataFrame]:
        """The older rows (to train on) and the newest ``holdout`` share (to compare on)."""
        cut = len(self.frame) - round(len(self.frame) * holdout)
        return self.frame.iloc[:cut], self.frame.iloc[cut:]


def recent_labelled(engine: Engine, model: LoadedModel, target: str, since: datetime) -> RecentData:
    """The model's labelled, successfully predicted production rows since ``since``, oldest first.

    Every served version's rows count (the labels are the truth whoever predicted), shadow rows
    excepted (they repeat stable's requests). Checked against the FeatureSchema: numeric
    features that are not numbers become missing, and rows then missing a required feature or
    the target are dropped (counted in ``dropped``). New categories are kept: learning them is
    the point.
    """
    with engine.connect() as conn:
        frame = window(
            conn, model.name, arm=("stable", "canary", "blue", "green"), since=since, labelled=True
        )
    frame = frame[frame["error"].isna()]
    columns = model.schema.input_names
    if frame.empty:
        return RecentData(pd.DataFrame(columns=[*columns, target]), _digest(pd.DataFrame()), "")
    data = expand_features(frame).reindex(columns=columns)
    for column in model.schema.features:
        if column.kind == "numeric" and column.name in data:
            data[column.name] = pd.to_numeric(data[column.name], errors="coerce")
    truth = frame["label"].to_numpy()
    data[target] = pd.to_numeric(truth, errors="coerce") if model.task == "regression" else truth
    required = [c.name for c in model.schema.features if c.name in columns and not c.nullable]
    usable = data.dropna(subset=[*required, target]).reset_index(drop=True)
    return RecentData(usable, _digest(usable), "", dropped=len(data) - len(usable))


def _digest(frame: pd.DataFrame) -> str:
    return hashlib.sha256(
        pd.util.hash_pandas_object(frame.astype(str), index=False).to_numpy().tobytes()
    ).hexdigest()


def keep_copy(recent: RecentData, folder: Path) -> RecentData:
    """Write the rows to ``folder/production-<digest>.parquet``: the run's source, reproducible."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{RECENT_SOURCE}-{recent.digest[:16]}.parquet"
    if not path.exists():
        temporary = path.with_suffix(".tmp")
        recent.frame.to_parquet(temporary, index=False)
        temporary.replace(path)
    return RecentData(recent.frame, recent.digest, str(path), recent.dropped)


def retrain(
    project: Project,
    settings: Settings,
    engine: Engine,
    *,
    reason: str,
    actor: str = "retrain",
    budget: str | None = None,
    progress: Progress | None = None,
    stop: threading.Event | None = None,
    now: datetime | None = None,
) -> RetrainResult:
    """Retrain the project's model, compare it with the champion, deploy it if it wins.

    Args:
        project: The project (spec, data source).
        settings: Where the stores are.
        engine: The operational store.
        reason: Why (recorded with every event).
        actor: Who, for the history.
        budget: A tuning budget instead of the spec's (e.g. ``"4 trials"``).
        progress: Training progress callback.
        stop: When set, the retrain is abandoned at the next trial or step.
        now: The time (tests).

    Raises:
        ModelcycleError: The project cannot be trained (the failure is recorded first).
    """
    from modelcycle.config.spec import parse_budget
    from modelcycle.training.train import ExtraTraining, TrainOptions, train

    start = time.perf_counter()
    spec = project.spec
    policy = spec.retraining
    name = spec.name
    now = now or datetime.now(UTC)
    uri = settings.mlflow_tracking_uri or ""
    try:
        chosen = parse_budget(budget) if budget else None
    except ValueError as err:  # checked before anything is recorded
        raise ConfigError(f"--budget: {err}", "write it like '20 trials' or '5m'") from None
    with engine.connect() as conn:
        deployment = st.load(conn, name)
    if deployment.active:  # its challenger could not be deployed beside the running candidate
        raise st.DeploymentError(
            f"{name}: v{deployment.candidate_version} is being rolled out ({deployment.status})",
            "wait until it is promoted or rolled back, or run `modelcycle rollout abort`",
        )
    champion = _champion(engine, name, uri)
    _event(engine, name, STARTED, actor, champion.version, None, reason)

    def stopped() -> None:
        if stop is not None and stop.is_set():
            raise RetrainAbandonedError(
                "the retrain was stopped before it finished", "start it again"
            )

    def watched(*args: Any) -> None:
        stopped()
        if progress is not None:
            progress(*args)

    result = RetrainResult(name, "failed", "", champion=str(champion.version))
    try:
        since = now - timedelta(seconds=parse_duration(policy.recent_window))
        recent = recent_labelled(engine, champion, spec.target, since)
        recent = keep_copy(recent, settings.state_dir / "retraining")
        train_rows, held_out = recent.split(policy.recent_holdout)
        result.recent_rows = len(recent.frame)
        result.details["recent_dropped"] = recent.dropped
        extra = None
        if len(train_rows):
            extra = ExtraTraining(train_rows, recent.source, recent.digest, policy.recent_weight)
        options = TrainOptions(budget=chosen, register=False, extra=extra)
        stopped()
        outcome = train(project, settings, options, progress=watched)
        result.run_id = outcome.run_id
        stopped()
        if not outcome.evaluation.passed:
            return _finish(
                engine, result, "rejected", "the challenger did not beat its baseline", actor, start
            )
        result.verdict = _compare(outcome, champion, held_out, spec.target, policy)
        if not result.verdict.wins:
            return _finish(engine, result, "rejected", result.verdict.reason, actor, start)
        registered = outcome.register_model()
        result.challenger = str(registered.version)
        _finish(engine, result, "registered", result.verdict.reason, actor, start)
        if policy.deploy != "none":
            _deploy(engine, spec, name, result, uri, actor)
        return result
    except RetrainAbandonedError as err:
        return _finish(engine, result, "abandoned", err.message, actor, start)
    except KeyboardInterrupt:  # Ctrl+C: end the retrain in the history, then stop
        _finish(engine, result, "abandoned", "interrupted (Ctrl+C)", actor, start)
        raise
    except Exception as err:
        message = (
            err.message if isinstance(err, ModelcycleError) else f"{type(err).__name__}: {err}"
        )
        _finish(engine, result, "failed", message, actor, start)
        raise


def _champion(engine: Engine, name: str, uri: str) -> LoadedModel:
    """The version serving now (the one a challenger must beat)."""
    from modelcycle.monitoring.jobs import serving_version
    from modelcycle.registry.store import load_model

    return load_model(f"{name}/{serving_version(engine, name, uri)}", tracking_uri=uri)


def _compare(
    outcome: Any,
    champion: LoadedModel,
    held_out: pd.DataFrame,
    target: str,
    policy: RetrainingSpec,
) -> Verdict:
    """Score both on the test part and the recent held-out rows, then :func:`judge`."""
    from modelcycle.metrics import compute_metrics
    from modelcycle.training.tune import predict_scores

    evaluation = outcome.evaluation
    metric = evaluation.metric
    parts: dict[str, tuple[pd.DataFrame, pd.Series]] = {}
    if outcome.test is not None and len(outcome.test[0]):
        parts["test"] = outcome.test
    if len(held_out):
        parts["recent"] = (held_out[champion.schema.input_names], held_out[target])
    scores: dict[str, dict[str, float]] = {}
    for part, (features, truth) in parts.items():
        scores[part] = {}
        for who, pipeline, threshold in (
            ("champion", champion.pipeline, champion.threshold),
            ("challenger", outcome.pipeline, evaluation.threshold),
        ):
            values = predict_scores(pipeline, features, evaluation.task)
            computed = compute_metrics(
                evaluation.task,
                truth,
                values,
                threshold=threshold if threshold is not None else 0.5,
                classes=evaluation.classes,
            )
            scores[part][who] = float(computed[metric])
    usable = {p: s for p, s in scores.items() if all(np.isfinite(list(s.values())))}
    return judge(metric, usable, {p: len(parts[p][0]) for p in usable}, policy)


def _deploy(
    engine: Engine, spec: Any, name: str, result: RetrainResult, uri: str, actor: str
) -> None:
    from modelcycle.deployment import commands

    assert result.challenger is not None
    plan = commands.plan_from_spec(spec.deployment)
    commands.deploy(
        engine,
        name,
        result.challenger,
        spec.retraining.deploy,
        plan,
        tracking_uri=uri,
        actor=actor,
        reason=f"retrained challenger v{result.challenger} won: {result.reason}",
    )
    result.status = "deployed"


def _finish(
    engine: Engine,
    result: RetrainResult,
    status: Status,
    reason: str,
    actor: str,
    start: float,
) -> RetrainResult:
    result.status = status
    result.reason = reason
    result.seconds = time.perf_counter() - start
    details: dict[str, Any] = {
        "recent_rows": result.recent_rows,
        "recent_dropped": result.details.get("recent_dropped", 0),
        "run_id": result.run_id,
        "seconds": round(result.seconds, 1),
    }
    if result.verdict is not None:
        details["comparison"] = asdict(result.verdict)
    action = f"retrain_{status}"
    name = result.model_name
    _event(engine, name, action, actor, result.champion, result.challenger, reason, details)
    log = logger.warning if status in ("failed", "abandoned") else logger.info
    log("{}: retrain {} — {}", name, status, reason)
    return result


def _event(
    engine: Engine,
    name: str,
    action: str,
    actor: str,
    from_version: Any,
    to_version: Any,
    reason: str,
    details: dict[str, Any] | None = None,
) -> None:
    event = st.Event(
        model_name=name,
        action=action,
        actor=actor,
        from_version=str(from_version) if from_version is not None else None,
        to_version=str(to_version) if to_version is not None else None,
        reason=reason,
        details=details,
    )
    with engine.begin() as conn:
        st.record(conn, event)


def retrain_decision(
    engine: Engine,
    name: str,
    policy: RetrainingSpec,
    tracking_uri: str,
    *,
    now: datetime | None = None,
    manual_reason: str | None = None,
    running: int = 0,
) -> RetrainDecision:
    """Whether to retrain ``name`` now: :func:`retrain_state` of the serving version, judged.

    Args:
        engine: The operational store.
        name: The registered model.
        policy: The ``[retraining]`` section.
        tracking_uri: The registry (the serving version's training time).
        now: The time of the decision.
        manual_reason: A manual request's reason.
        running: Retrains this process knows are running (its own thread), at least.
    """
    from modelcycle.monitoring.jobs import serving_version
    from modelcycle.registry.store import describe

    now = now or datetime.now(UTC)
    version = serving_version(engine, name, tracking_uri)
    created = describe(f"{name}/{version}", tracking_uri=tracking_uri).created
    state = retrain_state(
        engine, name, created, version=version, now=now, manual_reason=manual_reason
    )
    if running > state.running:
        state = replace(state, running=running)
    return should_retrain(state, policy, now)


def retrain_state(
    engine: Engine,
    name: str,
    champion_created: datetime | None,
    *,
    version: str | None,
    now: datetime,
    manual_reason: str | None = None,
) -> RetrainState:
    """What the triggers need, from the store: trainings, running retrains, alerts, new labels.

    Args:
        engine: The operational store.
        name: The registered model.
        champion_created: When the serving version was registered (its training time).
        version: The serving version (only its alerts count, and unversioned ones).
        now: The time.
        manual_reason: A manual request's reason.
    """
    ev = deployment_events
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(ev.c.action, ev.c.created_at)
            .where(ev.c.model_name == name)
            .where(ev.c.action.in_((STARTED, *FINISHED)))
            .order_by(ev.c.created_at, ev.c.id)
        ).all()
        finished = [t for action, t in rows if action in FINISHED[:2]]
        started = [t for action, t in rows if action == STARTED]
        last_end = max((t for action, t in rows if action in FINISHED), default=None)
        trained = max([t for t in [champion_created, *finished] if t is not None], default=None)
        running = sum(
            1 for t in started if (last_end is None or t > last_end) and now - t < STALE_AFTER
        )
        alerts = [
            AlertInfo(a["rule"], a["severity"], a["opened_at"], a["model_version"])
            for a in list_alerts(conn, name)
            if a["model_version"] in (None, version)
        ]
        new_labels = _labels_since(conn, name, trained)
        deployment = st.load(conn, name)
    rollout = None
    if deployment.active:
        rollout = f"v{deployment.candidate_version} {deployment.status} at {deployment.weight:g}%"
    return RetrainState(
        last_trained_at=trained,
        last_attempt_at=max(started, default=None),
        running=running,
        open_alerts=tuple(alerts),
        new_labels=new_labels,
        manual_reason=manual_reason,
        rollout=rollout,
    )


def _labels_since(conn: sa.Connection, name: str, since: datetime | None) -> int:
    lab, p = labels, predictions
    joined = sa.exists().where(
        sa.and_(p.c.request_id == lab.c.request_id, p.c.row == lab.c.row, p.c.model_name == name)
    )
    query = sa.select(sa.func.count()).select_from(lab).where(joined)
    if since is not None:
        query = query.where(lab.c.created_at > since)
    return int(conn.execute(query).scalar_one())
