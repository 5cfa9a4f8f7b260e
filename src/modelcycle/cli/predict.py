"""``modelcycle predict``: batch predictions from a CSV or Parquet file into another one.

The file is processed in chunks (bounded memory) with a progress bar; each output row carries
its prediction and a request id, rows that fail validation go to an errors file with the reason,
and ``--log`` writes the predictions to the prediction log so monitoring and delayed labels see
them. The work is done by :func:`modelcycle.serving.batch.predict_file`.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from modelcycle.cli._shared import STATE, console, migrated_store

if TYPE_CHECKING:
    from rich.progress import Progress, Task
    from rich.text import Text
    from sqlalchemy.engine import Engine

    from modelcycle.serving.batch import BatchResult

DEFAULT_CHUNK_SIZE = 50_000
"""Rows per chunk (the same as :data:`modelcycle.serving.batch.DEFAULT_CHUNK_SIZE`)."""


def predict(
    input: Annotated[
        Path,
        typer.Argument(
            help="CSV or Parquet file of rows to predict (the model's feature columns by name; "
            "other columns are copied to the output).",
            show_default=False,
        ),
    ],
    out: Annotated[
        Path,
        typer.Option(
            "--out",
            "-o",
            help="Output file; its suffix chooses the format: .csv, .tsv or .parquet.",
            show_default=False,
        ),
    ],
    model: Annotated[
        str | None,
        typer.Option(
            "--model",
            "-m",
            help="Model reference: NAME, NAME@ALIAS, NAME/VERSION or models:/NAME/VERSION "
            "(default: <project name>@champion).",
            show_default=False,
        ),
    ] = None,
    log: Annotated[
        bool,
        typer.Option(
            "--log",
            help="Write every prediction to the prediction log (MODELCYCLE_DATABASE_URL), so "
            "monitoring sees it and labels can be joined by request id.",
        ),
    ] = False,
    chunk_size: Annotated[
        int,
        typer.Option(
            "--chunk-size",
            min=1,
            help="Rows read, checked, predicted and written at a time; memory grows with it.",
        ),
    ] = DEFAULT_CHUNK_SIZE,
    errors: Annotated[
        Path | None,
        typer.Option(
            "--errors",
            help="File for rows that fail validation, with the reason (default: "
            "<out name>.errors.<suffix>, next to the output); written only when a row fails.",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Predict a CSV or Parquet file in chunks; bad rows go to an errors file, not a crash."""
    from modelcycle.registry.store import load_model
    from modelcycle.serving.batch import count_rows, predict_file

    settings = STATE.settings()
    assert settings.mlflow_tracking_uri is not None  # derived from the project folder when unset
    ref = model or default_model_ref()
    with console.status(f"Loading {ref}..."):
        loaded = load_model(ref, tracking_uri=settings.mlflow_tracking_uri)
    with _prediction_log(log) as engine, _progress() as bar:
        task = bar.add_task(f"{loaded.ref}", total=count_rows(input))
        result = predict_file(
            loaded,
            input,
            out,
            errors=errors,
            chunk_size=chunk_size,
            engine=engine,
            progress=lambda rows: bar.advance(task, rows),
        )
    _summary(result, engine)


def default_model_ref() -> str:
    """``<project name>@champion``, or a clear error outside a project."""
    from modelcycle.errors import ProjectError

    try:
        name = STATE.project().spec.name
    except ProjectError as err:
        raise ProjectError(
            f"no --model given and {err.message}",
            "pass --model NAME@ALIAS (e.g. rent@champion), or run inside a project "
            "(or with --project DIR)",
        ) from None
    return f"{name}@champion"


@contextmanager
def _prediction_log(enabled: bool) -> Iterator[Engine | None]:
    """The prediction log's engine (migrated first) for ``--log``, else ``None``."""
    if not enabled:
        yield None
        return
    with migrated_store("Preparing the prediction log...") as engine:
        yield engine


def _progress() -> Progress:
    """A progress bar with the rows done and rows/s (rich is imported only when predicting)."""
    from rich.progress import BarColumn, Progress, ProgressColumn, TextColumn, TimeElapsedColumn
    from rich.text import Text

    class RowsColumn(ProgressColumn):
        """``12,345 / 1,000,000 rows`` (``12,345 rows`` when the total is unknown: CSV)."""

        def render(self, task: Task) -> Text:
            """The rows done (and the total)."""
            done = f"{int(task.completed):,}"
            shown = f"{done} / {int(task.total):,} rows" if task.total else f"{done} rows"
            return Text(shown, style="progress.download")

    class RateColumn(ProgressColumn):
        """Rows per second over the last seconds (over the whole run once finished)."""

        def render(self, task: Task) -> Text:
            """The speed, e.g. ``61,234 rows/s``."""
            speed = task.finished_speed or task.speed
            shown = "" if speed is None else f"{speed:,.0f} rows/s"
            return Text(shown, style="progress.data.speed")

    return Progress(
        TextColumn("{task.description}"),
        BarColumn(bar_width=30),
        RowsColumn(),
        RateColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,  # the summary that follows says it all; a failed job leaves no bar
    )


def _summary(result: BatchResult, engine: Engine | None) -> None:
    """What was predicted, what failed, how fast, and where everything is."""
    from rich.markup import escape

    from modelcycle.errors import DataError, plural

    if result.rows_predicted == 0:
        raise DataError(
            f"none of the {plural(result.rows_in, 'row')} could be predicted: every row failed "
            "validation",
            f"see the reasons in {result.errors}",
        )
    console.print(
        f"[green]Predicted[/] {result.rows_predicted:,} of {plural(result.rows_in, 'row')} "
        f"with {result.model} in {result.seconds:.1f} s ({result.rows_per_second:,.0f} rows/s)",
        highlight=False,
        soft_wrap=True,
    )
    console.print(
        f"  output:      {escape(str(result.output))} (request ids {result.batch_id}-<row>)",
        highlight=False,
        soft_wrap=True,
    )
    if result.errors is not None:
        console.print(
            f"  [yellow]failed:[/]      {plural(result.rows_failed, 'row')} → "
            f"{escape(str(result.errors))} (columns row and reason)",
            highlight=False,
            soft_wrap=True,
        )
    else:
        console.print("  failed:      none", highlight=False)
    if engine is not None:
        from modelcycle.store.engine import display_url

        console.print(
            f"  logged:      {plural(result.logged, 'prediction')} to {display_url(engine)}",
            highlight=False,
            soft_wrap=True,
        )
    for note in result.notes:
        console.print(f"  note:        {escape(note)}", highlight=False, soft_wrap=True)
