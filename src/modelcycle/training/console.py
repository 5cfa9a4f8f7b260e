"""Rich output for training: a progress display per model, and the outcome summary."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rich.console import Console

if TYPE_CHECKING:
    from modelcycle.training.train import TrainOutcome
    from modelcycle.training.tune import TrialRecord


class TrainingProgress:
    """A Rich progress display: one row per model, trials done, best so far, elapsed."""

    def __init__(self, console: Console) -> None:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
        )

        self._progress = Progress(
            TextColumn("{task.description:<16}"),
            BarColumn(bar_width=24),
            MofNCompleteColumn(),
            TextColumn("{task.fields[best]}"),
            TimeElapsedColumn(),
            console=console,
            transient=False,
        )
        self._tasks: dict[str, Any] = {}
        self._last: str | None = None

    def __enter__(self) -> TrainingProgress:
        self._progress.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self._finish_last()
        self._progress.__exit__(*exc)  # type: ignore[arg-type]

    def _finish_last(self) -> None:
        if self._last is not None:
            task = self._tasks[self._last]
            self._progress.update(task, completed=self._progress.tasks[task].total)
            self._progress.stop_task(task)

    def update(self, name: str, record: TrialRecord | None, planned: int | None) -> None:
        """Progress callback given to ``train``."""
        if record is None:
            self._finish_last()
            self._tasks[name] = self._progress.add_task(name, total=planned, best="")
            self._last = name
            return
        best = "" if record.best is None else f"best {record.best:.4g}"
        self._progress.update(self._tasks[name], advance=1, best=best)


def render_outcome(outcome: TrainOutcome, out: Console, tracking_uri: str) -> None:
    """The comparison with the baseline, the verdict, notes and where everything is."""
    from rich.table import Table

    from modelcycle.metrics import higher_is_better, metric_names

    ev = outcome.evaluation
    names = metric_names(ev.task)
    table = Table(title=f"test metrics ({ev.metric} decides; {len(ev.y_test):,} rows)")
    table.add_column("model")
    for name in names:
        arrow = "↑" if higher_is_better(name) else "↓"
        table.add_column(f"{name} {arrow}", justify="right")
    table.add_column("trials", justify="right")
    for result in ev.results:
        style = (
            "bold green"
            if result.name == ev.winner
            else ("cyan" if result.name == ev.baseline else "")
        )
        values = [f"{result.test_metrics.get(n, float('nan')):.4g}" for n in names]
        table.add_row(result.name, *values, str(result.trials or ""), style=style)
    out.print(table)
    for note in outcome.notes:
        out.print(f"  note: {note}", highlight=False)
    colour = "green" if ev.passed else "yellow"
    out.print(f"[{colour}]{ev.reason}[/]", highlight=False)
    if ev.threshold is not None:
        out.print(f"decision threshold (tuned on valid for {ev.metric}): {ev.threshold:.3f}")
    out.print(f"report: {outcome.report}", highlight=False)
    if outcome.registered is not None:
        reg = outcome.registered
        aliases = ", ".join(reg.aliases) or "no alias"
        out.print(
            f"[bold green]registered[/] {reg.name} version {reg.version} ({aliases})",
            highlight=False,
        )
    elif not ev.passed:
        out.print(
            "[yellow]not registered[/]: the best candidate must beat the baseline by "
            "training.margin",
            highlight=False,
        )
    else:
        out.print("[yellow]not registered[/] (--no-register)", highlight=False)
    if tracking_uri and outcome.run_id is not None:
        out.print(f"runs: mlflow ui --backend-store-uri {tracking_uri}", highlight=False)
    out.print(f"done in {outcome.seconds:.1f} s", highlight=False)
