"""``modelcycle train``: from a project's data to a registered model that beats its baseline.

The steps: read and validate the data (errors stop the run) → clean it (duplicates, impossible
values, missing targets) → infer the schema → split → fit the baselines → tune each candidate →
evaluate everything on the untouched test part → write the report → register the winner when it
beats the best baseline by the spec's margin.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from loguru import logger

from modelcycle.config.settings import Settings
from modelcycle.config.spec import Budget, Project, ProjectSpec, Task
from modelcycle.data.io import Dataset, read_source
from modelcycle.data.schema import FeatureSchema, schema_for_spec
from modelcycle.data.split import split
from modelcycle.data.validation import rule_violations, validate
from modelcycle.errors import ModelcycleError, plural
from modelcycle.metrics import (
    compute_metrics,
    improvement,
    score_for_optimizer,
    tune_threshold,
)
from modelcycle.training.candidates import BASELINES, CANDIDATES, Candidate
from modelcycle.training.evaluate import CandidateResult, Evaluation, pick_best, slice_metrics
from modelcycle.training.tracking import Tracker, git_commit
from modelcycle.training.tune import (
    FitContext,
    TrialRecord,
    TuneData,
    TuneResult,
    predict_scores,
    split_budget,
    tune,
)

if TYPE_CHECKING:
    from modelcycle.registry.store import RegisteredVersion

IMPORTANCE_ROWS = 2000


class TrainingError(ModelcycleError):
    """The data or the options do not allow training."""


@dataclass
class ExtraTraining:
    """Rows added to the training part only (e.g. labelled production data for a retrain).

    They join the train part after the split, so validation and test stay the project's own
    (comparable with earlier versions), and they count when the schema is inferred (a new
    category becomes known). Logged as a second MLflow dataset input with its digest.
    """

    frame: pd.DataFrame
    source: str
    digest: str
    weight: float = 1.0
    """How much each row counts against an original one: resampled after cleaning, so
    ``prepare``'s duplicate removal cannot undo it (see :func:`weighted`)."""


def weighted(frame: pd.DataFrame, weight: float, seed: int) -> pd.DataFrame:
    """``frame`` with each row counted ``weight`` times on average (whole copies + a sample)."""
    if frame.empty or weight == 1.0:
        return frame
    whole, part = divmod(weight, 1.0)
    pieces = [frame] * int(whole)
    if part > 0:
        pieces.append(frame.sample(frac=part, random_state=seed))
    return pd.concat(pieces, ignore_index=True)


@dataclass
class TrainOptions:
    """What the command line can change for one run."""

    budget: Budget | None = None
    candidates: list[str] | None = None
    data: Path | None = None
    track: bool = True
    register: bool = True
    report: Path | None = None
    extra: ExtraTraining | None = None


@dataclass
class TrainOutcome:
    """The result of one ``train``."""

    evaluation: Evaluation
    schema: FeatureSchema
    pipeline: Any
    """The winning pipeline, refit on train + valid."""
    report: Path
    registered: RegisteredVersion | None = None
    run_id: str | None = None
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0
    test: tuple[pd.DataFrame, pd.Series] | None = field(default=None, repr=False)
    """The test part's features and target (what every version of the project is scored on)."""
    registrar: Callable[[str | None], RegisteredVersion] | None = field(default=None, repr=False)

    def register_model(self) -> RegisteredVersion:
        """Register the winner now (after a run with ``register=False``), into its MLflow run.

        Raises:
            TrainingError: The winner did not beat the baseline, so it cannot be registered.
        """
        if self.registrar is None:
            raise TrainingError(
                "the winner did not beat the baseline, so there is nothing to register",
                "look at the evaluation report",
            )
        if self.registered is None:
            self.registered = self.registrar(self.run_id)
        return self.registered


@dataclass(frozen=True)
class Fitted:
    """A pipeline refit on train + valid, and its threshold tuned on valid (binary tasks)."""

    pipeline: Any
    threshold: float | None


Progress = Callable[[str, TrialRecord | None, int | None], None]
"""Called with (candidate, trial record or None when the candidate starts, trials planned)."""


def resolve_candidates(spec: ProjectSpec, names: list[str] | None) -> list[Candidate]:
    """The candidates to tune: the command line's, else the spec's.

    Raises:
        TrainingError: An unknown candidate name (with the closest known one).
    """
    from modelcycle.config.errors import did_you_mean

    chosen = names or list(spec.training.candidates)
    unknown = [n for n in chosen if n not in CANDIDATES]
    if unknown:
        hint = did_you_mean(unknown[0], list(CANDIDATES))
        raise TrainingError(
            f"unknown candidate {unknown[0]!r}{hint}",
            f"use some of: {', '.join(CANDIDATES)}",
        )
    return [CANDIDATES[n] for n in dict.fromkeys(chosen)]


def prepare(frame: pd.DataFrame, spec: ProjectSpec, notes: list[str]) -> pd.DataFrame:
    """Clean a validated dataset for training: duplicates, impossible values, missing targets.

    Impossible feature values (the spec's ``[validation.columns]`` rules) become missing values;
    rows with an impossible or missing target are dropped (or stop the run, by the spec).

    Raises:
        TrainingError: Targets are missing and the spec says to stop.
    """
    out = frame.drop_duplicates()
    if len(out) < len(frame):
        notes.append(f"dropped {plural(len(frame) - len(out), 'duplicate row')}")
    target = spec.target
    for name, rule in spec.validation.columns.items():
        if name not in out.columns:
            continue
        bad = rule_violations(out[name], rule)
        if not bad.any():
            continue
        if name == target:
            out = out[~bad]
            notes.append(f"dropped {plural(int(bad.sum()), 'row')} with an impossible target")
        else:
            out = out.assign(**{name: out[name].mask(bad)})
            notes.append(f"{name}: {plural(int(bad.sum()), 'impossible value')} set to missing")
    missing = int(out[target].isna().sum()) if target in out.columns else 0
    if missing and spec.training.missing_target == "error":
        raise TrainingError(
            f"target {target!r} is missing on {plural(missing, 'row')}",
            "fill them, or set training.missing_target = 'drop' in modelcycle.toml",
        )
    if missing:
        out = out[out[target].notna()]
        notes.append(f"dropped {plural(missing, 'row')} without a target")
        logger.warning("dropped {} rows without a target", missing)
    return out


def train(
    project: Project,
    settings: Settings,
    options: TrainOptions | None = None,
    *,
    progress: Progress | None = None,
) -> TrainOutcome:
    """Train, evaluate and (when it beats the baseline) register a model for ``project``.

    Raises:
        TrainingError: Validation errors, bad options, too little data, a failed candidate.
        TrackingError: The MLflow store cannot be used.
    """
    options = options or TrainOptions()
    start = time.perf_counter()
    spec = project.spec
    candidates = resolve_candidates(spec, options.candidates)
    budget = options.budget or spec.training.parsed_budget
    notes: list[str] = []

    dataset = read_source(spec.data, project.root, options.data)
    _stop_on_validation_errors(dataset, spec)
    frame = prepare(dataset.frame, spec, notes)
    extra = prepare(options.extra.frame, spec, notes) if options.extra is not None else None
    seen = frame if extra is None else pd.concat([frame, extra], ignore_index=True)
    schema = schema_for_spec(seen, spec, source=dataset.source, data_digest=dataset.digest)
    task: Task = schema.task or "regression"
    metric = spec.resolved_metric(task)
    classes = sorted(frame[spec.target].unique().tolist()) if task == "classification" else None
    parts = split(
        frame,
        spec.split,
        target=spec.target,
        task=task,
        time_column=spec.time_column,
        id_column=spec.id_column,
    )
    _check_monotonic(spec, schema)
    inputs = schema.input_names
    if not inputs:
        raise TrainingError(
            "no usable features: every column is the target, an id, ignored or constant",
            "check `drop`, `id_column` and the schema (`modelcycle data schema`)",
        )
    for col in schema.features:
        if col.kind == "categorical" and col.n_unique > spec.training.onehot_max_levels:
            notes.append(f"{col.name}: {col.n_unique:,} levels, target-encoded")
    X = {k: v[inputs] for k, v in parts.parts().items()}  # noqa: N806
    y = {k: v[spec.target] for k, v in parts.parts().items()}
    if extra is not None and options.extra is not None:
        counted = weighted(extra, options.extra.weight, spec.training.seed)
        X["train"] = pd.concat([X["train"], counted[inputs]], ignore_index=True)
        y["train"] = pd.concat([y["train"], counted[spec.target]], ignore_index=True)
    ctx = FitContext(
        schema=schema,
        task=task,
        metric=metric,
        imbalance=spec.imbalance,
        seed=spec.training.seed,
        onehot_max_levels=spec.training.onehot_max_levels,
        classes=classes,
        increasing=tuple(spec.training.increasing),
        decreasing=tuple(spec.training.decreasing),
    )
    data = TuneData(
        X["train"],
        y["train"],
        X["valid"],
        y["valid"],
        use_cv=len(frame) <= spec.training.cv_max_rows,
        folds=spec.training.cv_folds,
    )
    tracker = Tracker(
        settings.mlflow_tracking_uri or "",
        spec.name,
        settings.artifact_dir or settings.state_dir,
        enabled=options.track,
    )
    tracker.connect()
    tags = {"modelcycle.spec_hash": project.spec_hash, "modelcycle.task": task}
    commit = git_commit(project.root)
    if commit:
        tags["mlflow.source.git.commit"] = commit
    with tracker.parent(f"train-{spec.name}", tags):
        tracker.log_text(project.spec_path.read_text(encoding="utf-8"), "modelcycle.toml")
        tracker.log_params(
            {
                "budget": str(budget),
                "candidates": ",".join(c.name for c in candidates),
                "metric": metric,
                "rows": len(frame),
                "split": parts.method,
            }
        )
        tracker.log_dataset(
            frame, source=dataset.source, name=spec.name, digest=dataset.digest, target=spec.target
        )
        if options.extra is not None and extra is not None:
            tracker.log_params(
                {
                    "extra_rows": len(extra),
                    "extra_weight": options.extra.weight,
                    "extra_rows_counted": len(weighted(extra, options.extra.weight, 0)),
                    "extra_source": options.extra.source,
                }
            )
            tracker.log_dataset(
                extra,
                source=options.extra.source,
                name=f"{spec.name}-production",
                digest=options.extra.digest,
                target=spec.target,
            )
        with single_threaded_openmp():
            results, finals, trials = _fit_all(
                candidates,
                budget,
                data,
                X,
                y,
                ctx,
                tracker,
                progress,
                {str(k): v for k, v in spec.training.params.items()},
            )
            evaluation = _evaluate(spec, ctx, results, finals, trials, X, y, parts.test)
        report = options.report or project.root / "reports" / "evaluation.html"
        from modelcycle.training.report import write_evaluation_report

        write_evaluation_report(evaluation, report, title=f"{spec.name}: evaluation")
        tracker.log_artifact(report, "reports")
        tracker.set_tags(
            {"modelcycle.winner": evaluation.winner, "modelcycle.passed": str(evaluation.passed)}
        )
        outcome = TrainOutcome(
            evaluation=evaluation,
            schema=schema,
            pipeline=finals[evaluation.winner].pipeline,
            report=report,
            run_id=tracker.run_id,
            notes=notes,
            test=(X["test"], y["test"]),
        )
        if evaluation.passed:
            outcome.registrar = functools.partial(
                _register,
                spec,
                project,
                settings,
                schema,
                evaluation,
                outcome.pipeline,
                X,
                y,
                dataset,
            )
            if options.register:
                outcome.register_model()
    outcome.seconds = time.perf_counter() - start
    return outcome


def single_threaded_openmp() -> Any:
    """Limit OpenMP (HistGradientBoosting, LightGBM) to one thread while training.

    Their threads spin-wait: on a shared 2-core machine one busy neighbour turns a 0.2 s fit into
    3 s. Random forests parallelise through joblib instead and keep both cores.
    """
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=1, user_api="openmp")


def _check_monotonic(spec: ProjectSpec, schema: FeatureSchema) -> None:
    numeric = {c.name for c in schema.features if c.kind == "numeric"}
    for key in ("increasing", "decreasing"):
        for name in getattr(spec.training, key):
            if name not in numeric:
                raise TrainingError(
                    f"training.{key} names {name!r}, which is not a numeric feature",
                    f"use numeric features only: {', '.join(sorted(numeric)) or '(none)'}",
                )


def _stop_on_validation_errors(dataset: Dataset, spec: ProjectSpec) -> None:
    result = validate(dataset, spec)
    if result.ok:
        return
    first = "; ".join(f.message for f in result.errors[:3])
    hint = result.errors[0].hint
    raise TrainingError(
        f"the data has {plural(len(result.errors), 'validation error')}: {first}",
        f"{hint + '; ' if hint else ''}`modelcycle data validate` shows every finding",
    )


def _fit_all(
    candidates: list[Candidate],
    budget: Budget,
    data: TuneData,
    X: dict[str, pd.DataFrame],  # noqa: N803
    y: dict[str, pd.Series],
    ctx: FitContext,
    tracker: Tracker,
    progress: Progress | None,
    fixed: dict[str, dict[str, Any]],
) -> tuple[list[CandidateResult], dict[str, Fitted], pd.DataFrame]:
    """Baselines with defaults, candidates tuned; each refit on train + valid for the test."""
    results: list[CandidateResult] = []
    finals: dict[str, Fitted] = {}
    trial_rows: list[TrialRecord] = []
    share = split_budget(budget, len(candidates))
    planned = [*BASELINES, *candidates]
    for i, candidate in enumerate(planned):
        kind = "baseline" if i < len(BASELINES) else "candidate"
        name = candidate.name if kind == "candidate" else f"baseline_{candidate.name}"
        if progress:
            progress(name, None, share.trials if kind == "candidate" else 1)
        started = time.perf_counter()
        with tracker.child(name, {"kind": kind}):
            tuned: TuneResult | None = None
            if kind == "candidate":

                def on_trial(record: TrialRecord, name: str = name) -> None:
                    tracker.log_trial(record, ctx.metric)
                    if progress:
                        progress(name, record, share.trials)

                try:
                    tuned = tune(
                        candidate,
                        data,
                        ctx,
                        share,
                        fixed=fixed.get(candidate.name),
                        on_trial=on_trial,
                    )
                except RuntimeError as err:
                    raise TrainingError(str(err), "check the candidate's fixed params") from None
                trial_rows.extend(tuned.trials)
            params = tuned.params if tuned else dict(candidate.defaults)
            pipeline = tuned.fitted if tuned and tuned.fitted is not None else None
            if pipeline is None:  # CV tuning (or a baseline): fit on the training part
                pipeline = ctx.pipeline(candidate, params)
                pipeline.fit(X["train"], y["train"])
            valid_scores = predict_scores(pipeline, X["valid"], ctx.task)
            threshold = _threshold(ctx, y["valid"], valid_scores)
            valid = compute_metrics(
                ctx.task, y["valid"], valid_scores, threshold=threshold or 0.5, classes=ctx.classes
            )
            final = ctx.pipeline(candidate, params)
            final.fit(pd.concat([X["train"], X["valid"]]), pd.concat([y["train"], y["valid"]]))
            tracker.log_params(params)
            tracker.log_metrics(valid, "valid_")
            result = CandidateResult(
                name=name,
                kind=kind,  # type: ignore[arg-type]
                params=params,
                valid_metrics=valid,
                fit_seconds=time.perf_counter() - started,
                trials=len(tuned.trials) if tuned else 0,
            )
            results.append(result)
            finals[name] = Fitted(final, threshold)
    trials = pd.DataFrame(
        [
            {
                "candidate": t.candidate,
                "number": t.number,
                "value": t.value,
                "state": t.state,
                "params": str(t.params),
                "seconds": t.seconds,
            }
            for t in trial_rows
        ],
        columns=["candidate", "number", "value", "state", "params", "seconds"],
    )
    return results, finals, trials


def _threshold(ctx: FitContext, y_valid: pd.Series, scores: np.ndarray) -> float | None:
    if ctx.task != "classification" or scores.ndim != 1 or not ctx.classes:
        return None
    return tune_threshold(y_valid, scores, ctx.metric, positive=ctx.classes[1])[0]


def _evaluate(
    spec: ProjectSpec,
    ctx: FitContext,
    results: list[CandidateResult],
    finals: dict[str, Fitted],
    trials: pd.DataFrame,
    X: dict[str, pd.DataFrame],  # noqa: N803
    y: dict[str, pd.Series],
    test_frame: pd.DataFrame,
) -> Evaluation:
    predictions: dict[str, np.ndarray] = {}
    for result in results:
        fitted = finals[result.name]
        scores = predict_scores(fitted.pipeline, X["test"], ctx.task)
        predictions[result.name] = scores
        result.test_metrics = compute_metrics(
            ctx.task, y["test"], scores, threshold=fitted.threshold or 0.5, classes=ctx.classes
        )
    baselines = [r for r in results if r.kind == "baseline"]
    candidates = [r for r in results if r.kind == "candidate"]
    winner = pick_best(candidates, ctx.metric, "valid")
    baseline = pick_best(baselines, ctx.metric, "valid")
    metric = ctx.metric
    gain = improvement(metric, winner.test_metrics[metric], baseline.test_metrics[metric])
    margin = spec.training.margin
    passed = bool(gain >= margin)
    verdict = "beats" if passed else "does not beat"
    reason = (
        f"{winner.name} {verdict} {baseline.name} on test {metric}: "
        f"{winner.test_metrics[metric]:.4g} vs {baseline.test_metrics[metric]:.4g} "
        f"({gain:+.1%}, required {margin:+.1%})"
    )
    final = finals[winner.name].pipeline
    threshold = finals[winner.name].threshold
    slices = slice_metrics(
        test_frame,
        y["test"].to_numpy(),
        predictions[winner.name],
        ctx.schema,
        ctx.task,
        threshold=threshold or 0.5,
        classes=ctx.classes,
    )
    return Evaluation(
        project=spec.name,
        task=ctx.task,
        metric=metric,
        results=results,
        winner=winner.name,
        baseline=baseline.name,
        margin=margin,
        improvement=gain,
        passed=passed,
        reason=reason,
        y_test=y["test"].to_numpy(),
        test_prediction=predictions[winner.name],
        threshold=threshold,
        classes=ctx.classes,
        slices=slices,
        importance=_importance(final, X["test"], y["test"], ctx, spec.training.permutation_repeats),
        trials=trials,
    )


def _importance(
    pipeline: Any,
    X: pd.DataFrame,  # noqa: N803
    y: pd.Series,
    ctx: FitContext,
    repeats: int,
) -> pd.DataFrame:
    """Permutation importance of each input column on (a sample of) the test part."""
    from sklearn.inspection import permutation_importance

    from modelcycle.training.tune import score

    if len(X) > IMPORTANCE_ROWS:
        X = X.sample(IMPORTANCE_ROWS, random_state=ctx.seed)  # noqa: N806
        y = y.loc[X.index]

    def scorer(estimator: Any, features: pd.DataFrame, target: pd.Series) -> float:
        return score_for_optimizer(ctx.metric, score(estimator, features, target, ctx))

    found = permutation_importance(
        pipeline, X, y, scoring=scorer, n_repeats=repeats, random_state=ctx.seed
    )
    return (
        pd.DataFrame(
            {
                "feature": list(X.columns),
                "importance_mean": found.importances_mean,
                "importance_std": found.importances_std,
            }
        )
        .sort_values("importance_mean", ascending=False)
        .reset_index(drop=True)
    )


def _register(
    spec: ProjectSpec,
    project: Project,
    settings: Settings,
    schema: FeatureSchema,
    evaluation: Evaluation,
    pipeline: Any,
    X: dict[str, pd.DataFrame],  # noqa: N803
    y: dict[str, pd.Series],
    dataset: Dataset,
    run_id: str | None = None,
) -> RegisteredVersion:
    from modelcycle.monitoring.ood import OODDetector
    from modelcycle.monitoring.profile import reference_profile
    from modelcycle.registry.bundle import ModelBundle
    from modelcycle.registry.store import register

    fit_x = pd.concat([X["train"], X["valid"]])
    fit_y = pd.concat([y["train"], y["valid"]])
    scores = predict_scores(pipeline, fit_x, evaluation.task)
    profile = reference_profile(fit_x, schema, predictions=scores, target=fit_y)
    ood = OODDetector(**_ood_params(spec)).fit(fit_x[schema.input_names])
    winner = evaluation.result(evaluation.winner)
    metrics = {"model": winner.test_metrics}
    metrics.update({r.name: r.test_metrics for r in evaluation.results if r.kind == "baseline"})
    bundle = ModelBundle(
        name=spec.name,
        pipeline=pipeline,
        schema=schema,
        task=evaluation.task,
        metric=evaluation.metric,
        metrics=metrics,
        baseline=evaluation.baseline,
        profile=profile.model_dump(mode="json"),
        candidate=evaluation.winner,
        params=winner.params,
        data_digest=dataset.digest,
        spec_hash=project.spec_hash,
        training_rows=len(fit_x),
        input_example=fit_x.head(5),
        threshold=evaluation.threshold,
        classes=evaluation.classes,
        slices=[
            {str(k): v for k, v in row.items()} for row in evaluation.slices.to_dict("records")
        ],
        extra={"source": dataset.source, "improvement": evaluation.improvement},
        ood=ood,
    )
    return register(
        bundle,
        tracking_uri=settings.mlflow_tracking_uri or "",
        artifact_dir=settings.artifact_dir or settings.state_dir,
        run_id=run_id,
    )


OOD_PARAMS = ("fpr", "margin")
"""Fields of a ``[monitoring.ood]`` spec section passed to the OOD detector."""


def _ood_params(spec: ProjectSpec) -> dict[str, Any]:
    """The OOD detector's parameters: the spec's ``[monitoring.ood]`` section."""
    return {name: getattr(spec.monitoring.ood, name) for name in OOD_PARAMS}
