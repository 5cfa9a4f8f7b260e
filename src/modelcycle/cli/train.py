"""``modelcycle train``: baseline-first training with tuning, tracking and registration."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from modelcycle.cli._shared import STATE, console


def train(
    budget: Annotated[
        str | None,
        typer.Option(help="Tuning budget: '20 trials', '120s', '5m' (default: the spec's)."),
    ] = None,
    candidates: Annotated[
        str | None,
        typer.Option(help="Comma-separated candidates: linear,rf,hgb,lgbm (default: the spec's)."),
    ] = None,
    data: Annotated[
        Path | None, typer.Option(help="Train on this file instead of the spec's data source.")
    ] = None,
    report: Annotated[
        Path | None, typer.Option(help="Evaluation report (default: reports/evaluation.html).")
    ] = None,
    track: Annotated[bool, typer.Option(help="Log the run to MLflow.")] = True,
    register: Annotated[bool, typer.Option(help="Register the winner when it passes.")] = True,
) -> None:
    """Train baselines and tuned candidates, evaluate on the test part, register the winner."""
    from modelcycle.config.spec import parse_budget
    from modelcycle.errors import ConfigError
    from modelcycle.training.train import TrainOptions
    from modelcycle.training.train import train as run_training

    project = STATE.project()
    parsed = None
    if budget is not None:
        try:
            parsed = parse_budget(budget)
        except ValueError as err:
            raise ConfigError(str(err), "pass --budget like '20 trials' or '120s'") from None
    options = TrainOptions(
        budget=parsed,
        candidates=[c.strip() for c in candidates.split(",") if c.strip()] if candidates else None,
        data=data,
        track=track,
        register=register,
        report=project.resolve(report) if report else None,
    )
    from modelcycle.training.console import TrainingProgress, render_outcome

    with TrainingProgress(console) as progress:
        outcome = run_training(project, STATE.settings(), options, progress=progress.update)
    render_outcome(outcome, console, STATE.settings().mlflow_tracking_uri or "")
