"""``modelcycle retrain`` and ``modelcycle watch``: continuous training and the closed loop.

``retrain`` trains a challenger on the project's data plus recent labelled production data,
compares it with the serving version on the same rows, and hands a winner to the deployment
policy (``[retraining]`` and ``[deployment]`` in the spec). ``watch`` runs monitoring, alert
evaluation, the retraining triggers and the rollout controller in one long-running process.
"""

from __future__ import annotations

import signal
import threading
from typing import TYPE_CHECKING, Annotated

import typer

from modelcycle.cli._shared import STATE, console, migrated_store

if TYPE_CHECKING:
    from modelcycle.retraining.loop import RetrainResult
    from modelcycle.retraining.triggers import RetrainDecision

BudgetOpt = Annotated[
    str | None,
    typer.Option(
        help="Tuning budget instead of the spec's, e.g. '4 trials' or '2m'.", show_default=False
    ),
]


def retrain(
    reason: Annotated[
        str, typer.Option(help="Why: recorded with every event of this retrain.")
    ] = "manual request",
    budget: BudgetOpt = None,
) -> None:
    """Retrain now: challenger vs the serving version on recent data; a winner is rolled out.

    Blocked while a schema break alert is open (fix the data first), a rollout is running
    (let it finish, or `modelcycle rollout abort`) or another retrain runs. Ctrl+C stops it and
    records it as abandoned.
    """
    from modelcycle.errors import ProjectError
    from modelcycle.monitoring.jobs import serving_version
    from modelcycle.retraining.loop import retrain as run_retrain
    from modelcycle.retraining.loop import retrain_decision
    from modelcycle.training.console import TrainingProgress

    project = STATE.project()
    settings = STATE.settings()
    name = project.spec.name
    with migrated_store() as engine:
        uri = settings.mlflow_tracking_uri or ""
        decision = retrain_decision(
            engine, name, project.spec.retraining, uri, manual_reason=reason
        )
        if not decision.retrain:
            raise ProjectError(
                f"retrain blocked: {decision.reason}",
                "clear what blocks it (the reason says what), then run it again",
            )
        version = serving_version(engine, name, uri)
        console.print(f"Retraining {name} (serving v{version}): {reason}", highlight=False)
        try:
            with TrainingProgress(console) as progress:
                result = run_retrain(
                    project,
                    settings,
                    engine,
                    reason=reason,
                    actor=_actor(),
                    budget=budget,
                    progress=progress.update,
                )
        except KeyboardInterrupt:
            console.print(
                "Retrain stopped; recorded as abandoned (modelcycle deployments history)."
            )
            raise typer.Exit(130) from None
    print_retrain(result)


def print_retrain(result: RetrainResult) -> None:
    """The retrain's outcome and the comparison behind it."""
    from modelcycle.retraining.console import render_retrain

    render_retrain(result, console)


def watch(budget: BudgetOpt = None) -> None:
    """Keep the model healthy: monitoring, alerts, retraining triggers and the rollout controller.

    Runs until SIGINT (Ctrl+C) or SIGTERM. Several may run: one leads (a database lock), the
    others stand by and take over if it stops. A retrain running when it stops is abandoned at
    its next step and recorded as such.
    """
    from modelcycle.cli.monitor import print_result
    from modelcycle.retraining.watch import Watcher

    project = STATE.project()
    spec = project.spec
    stop = threading.Event()
    # both signals end the loop cleanly (SIGINT too: a background job may ignore Ctrl+C's
    # default handler, and an exception mid-step would skip the clean stop)
    previous = {
        sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGTERM, signal.SIGINT)
    }
    with migrated_store() as engine:
        watcher = Watcher(
            project,
            STATE.settings(),
            engine,
            budget=budget,
            on_run=print_result,
            on_decision=_print_decision,
            on_retrain=print_retrain,
        )
        console.print(
            f"Watching [bold]{spec.name}[/]: monitoring every {spec.monitoring.every} over "
            f"{spec.monitoring.window}, rollouts every {spec.deployment.evaluation_interval}, "
            f"retraining {'automatic' if spec.retraining.auto else 'off'}. Ctrl+C stops.",
            highlight=False,
        )
        try:
            watcher.run(stop)
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
    console.print(f"Watch stopped after {watcher.runs} monitoring runs.", highlight=False)


def _print_decision(decision: RetrainDecision) -> None:
    if decision.trigger is not None or decision.retrain:
        console.print(f"  retraining: {decision.reason}", highlight=False)


def _actor() -> str:
    from modelcycle.cli.deploy import actor

    return actor()
