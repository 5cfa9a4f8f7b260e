"""``modelcycle monitor run|watch`` and ``modelcycle alerts list|ack``.

A monitoring run judges one window of the prediction log of the deployed (stable) version, or
the champion, against the reference profile made at training: drift per feature, OOD rate,
errors and latency, realised and estimated performance; it records the run, opens or resolves
alerts, and writes an HTML report. Thresholds come from the spec's ``[monitoring]`` section.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import typer

from modelcycle.cli._shared import STATE, console, migrated_store
from modelcycle.errors import ConfigError

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from modelcycle.monitoring.jobs import MonitorJob
    from modelcycle.monitoring.run import RunResult, Window

monitor_app = typer.Typer(
    help="Judge the live traffic against the training data: drift, OOD, performance, alerts.",
    no_args_is_help=True,
)
alerts_app = typer.Typer(help="Monitoring and deployment alerts: list and acknowledge.")

WindowOpt = Annotated[
    str | None,
    typer.Option(
        "--window",
        "-w",
        help="Judge this much recent traffic, e.g. 1h, 30m, 1d (default: the spec's "
        "monitoring.window).",
        show_default=False,
    ),
]
LastOpt = Annotated[
    int | None,
    typer.Option("--last", "-n", min=1, help="Judge the newest N predictions instead."),
]
ReportOpt = Annotated[
    Path | None,
    typer.Option(
        "--report",
        help="Write the HTML report here (default: reports/monitor.html in the project).",
        show_default=False,
    ),
]
ModelOpt = Annotated[
    str | None,
    typer.Option(help="The model (default: the project's name).", show_default=False),
]
VersionOpt = Annotated[
    str | None,
    typer.Option(
        help="The version to judge (default: the deployed stable version, else the champion).",
        show_default=False,
    ),
]


def _job(engine: Engine, model: str | None) -> MonitorJob:
    from modelcycle.monitoring.jobs import MonitorJob

    project = STATE.project()
    return MonitorJob(engine, STATE.settings(), project, model or project.spec.name)


def _window(window: str | None, last: int | None, default: str) -> Window:
    from modelcycle.monitoring.run import resolve_window

    try:
        return resolve_window(window or (None if last else default), last)
    except ValueError as err:
        raise ConfigError(str(err), "use --window 1h or --last 10000") from None


def _report_path(report: Path | None) -> Path:
    if report is None:
        return STATE.project().root / "reports" / "monitor.html"
    return report.expanduser().resolve()


@monitor_app.command("run")
def run(
    window: WindowOpt = None,
    last: LastOpt = None,
    report: ReportOpt = None,
    model: ModelOpt = None,
    version: VersionOpt = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the whole report as JSON.")
    ] = False,
) -> None:
    """Judge one window now: record the run, open or resolve alerts, write the HTML report.

    Exits with status 1 when the verdict is failing, so a scheduler or CI can act on it.
    """
    from modelcycle.monitoring.jobs import run_job

    spec = STATE.project().spec.monitoring
    path = _report_path(report)
    with migrated_store() as engine:
        job = _job(engine, model)
        chosen = _window(window, last, spec.window)
        with console.status(f"  monitoring {job.model_name}: {chosen.description}..."):
            result = run_job(job, chosen, version=version, report_path=path)
    if as_json:
        print(json.dumps(result.report, indent=2, default=str))
    else:
        print_result(result)
        console.print(f"Report: {path}", highlight=False)
    if result.report["verdict"] == "failing":
        raise typer.Exit(1)


@monitor_app.command("watch")
def watch(
    every: Annotated[
        str | None,
        typer.Option(
            help="Time between runs, e.g. 5m (default: the spec's monitoring.every).",
            show_default=False,
        ),
    ] = None,
    window: WindowOpt = None,
    report: ReportOpt = None,
    model: ModelOpt = None,
) -> None:
    """Run the monitoring on a schedule until stopped (Ctrl+C); the report is rewritten each time.

    `modelcycle watch` does this too, with retraining and the rollout controller.
    """
    import threading

    from modelcycle.config.spec import parse_duration
    from modelcycle.monitoring import jobs

    spec = STATE.project().spec.monitoring
    try:
        seconds = parse_duration(every or spec.every)
    except ValueError as err:
        raise ConfigError(f"--every: {err}", "write it like 30s, 5m or 1h") from None
    if seconds <= 0:
        raise ConfigError("--every must be longer than 0", "write it like 30s, 5m or 1h")
    path = _report_path(report)
    with migrated_store() as engine:
        job = _job(engine, model)
        console.print(
            f"Monitoring [bold]{job.model_name}[/] every {every or spec.every} over "
            f"{window or spec.window}; report: {path}. Ctrl+C stops.",
            highlight=False,
        )
        stop = threading.Event()
        try:
            jobs.watch(
                job,
                lambda: _window(window, None, spec.window),
                seconds,
                stop,
                report_path=path,
                on_result=print_result,
            )
        except KeyboardInterrupt:
            stop.set()
            console.print("Monitoring stopped.")


def print_result(result: RunResult) -> None:
    """The run's verdict, drift, OOD, performance and alert changes, in a few lines."""
    from modelcycle.monitoring.console import render_run

    render_run(result, console)


@alerts_app.command("list")
def list_(
    status: Annotated[
        Literal["active", "open", "acknowledged", "resolved", "all"],
        typer.Option(help="Which alerts: active = open or acknowledged."),
    ] = "active",
    model: Annotated[
        str | None, typer.Option(help="Only this model's alerts.", show_default=False)
    ] = None,
    limit: Annotated[int, typer.Option(min=1, help="At most this many, newest first.")] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """List alerts, newest first: rule, severity, status, when, and what happened."""
    from modelcycle.store.alerts import list_alerts

    with migrated_store() as engine, engine.connect() as conn:
        rows = list_alerts(conn, model, status=status, limit=limit)
    if as_json:
        print(json.dumps(rows, indent=2, default=str))
        return
    if not rows:
        console.print(f"No {status} alerts.", highlight=False)
        return
    console.print(alerts_table(rows, f"{status} alerts"))


def alerts_table(rows: list[dict[str, Any]], title: str) -> Any:
    """A Rich table of alert rows."""
    from rich.table import Table

    table = Table(title=title)
    for header in ("id", "opened", "model", "rule", "severity", "status", "message"):
        table.add_column(header, overflow="fold")
    colour = {"critical": "red", "warning": "yellow", "info": "cyan"}
    for row in rows:
        version = f" v{row['model_version']}" if row["model_version"] else ""
        table.add_row(
            str(row["id"]),
            row["opened_at"].strftime("%Y-%m-%d %H:%M"),
            f"{row['model_name']}{version}",
            row["rule"],
            f"[{colour.get(row['severity'], 'white')}]{row['severity']}[/]",
            row["status"],
            row["message"],
        )
    return table


@alerts_app.command("ack")
def ack(
    alert_ids: Annotated[
        list[int], typer.Argument(help="The alerts' ids (modelcycle alerts list).")
    ],
) -> None:
    """Acknowledge alerts: someone is on it. They stay active until a run finds them resolved."""
    from modelcycle.errors import ProjectError
    from modelcycle.store.alerts import acknowledge_alert

    with migrated_store() as engine, engine.begin() as conn:
        done = {alert_id: acknowledge_alert(conn, alert_id) for alert_id in alert_ids}
    unknown = [str(alert_id) for alert_id, row in done.items() if row is None]
    for alert_id, row in done.items():
        if row is not None:
            console.print(
                f"alert {alert_id} ({row['rule']}, {row['model_name']}): {row['status']}",
                highlight=False,
            )
    if unknown:
        raise ProjectError(
            f"no alert with id {', '.join(unknown)}", "see the ids with `modelcycle alerts list`"
        )
