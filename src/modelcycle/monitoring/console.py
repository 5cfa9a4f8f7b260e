"""Console output of monitoring runs (Rich), shared by the CLI, ``watch`` and the demo."""

from __future__ import annotations

from rich.console import Console

from modelcycle.monitoring.run import RunResult

VERDICT_STYLE = {"healthy": "green", "degraded": "yellow", "failing": "red"}


def render_run(result: RunResult, console: Console) -> None:
    """The run's verdict, drift, OOD, performance and alert changes, in a few lines."""
    report = result.report
    style = VERDICT_STYLE[report["verdict"]]
    console.print(
        f"[bold]{report['model_name']} v{report['model_version']}[/] over "
        f"{report['window']['description']}: [{style} bold]{report['verdict']}[/] — "
        f"{report['n_rows']:,} predictions (run {result.run_id})",
        highlight=False,
    )
    drift = report["drift"]
    if drift is not None:
        drifted = ", ".join(drift["drifted"]) or "none"
        console.print(
            f"  drift: {drift['dataset_drift_share']:.0%} of features ({drifted})",
            highlight=False,
        )
    else:
        console.print(f"  drift not judged: {report['drift_skipped']}", highlight=False)
    ood = report["ood"]["rate"]
    perf = report["performance"]
    parts = [f"OOD {ood:.1%}" if ood is not None else "OOD n/a"]
    if perf["value"] is not None:
        trained = perf["reference"].get(perf["metric"], float("nan"))
        parts.append(
            f"{perf['metric']} {perf['value']:,.4g} (training {trained:,.4g}; "
            f"{perf['labelled']:,} labels, {perf['label_coverage']:.0%})"
        )
    if perf["estimated"]:
        name = perf["estimated_metric"]
        parts.append(f"estimated {name} {perf['estimated'][name]:.3f}")
    console.print("  " + "; ".join(parts), highlight=False)
    for reason in report["reasons"]:
        console.print(f"  [{style}]•[/] {reason}", highlight=False)
    changes = result.changes
    if changes.opened or changes.resolved:
        console.print(
            f"  alerts: {len(changes.opened)} opened, {len(changes.resolved)} resolved "
            "(modelcycle alerts list)",
            highlight=False,
        )
