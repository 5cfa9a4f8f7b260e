"""Console output of retrains (Rich), shared by the CLI, ``watch`` and the demo."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from modelcycle.retraining.loop import RetrainResult

STATUS_STYLE = {
    "deployed": "green",
    "registered": "green",
    "rejected": "yellow",
    "failed": "red",
    "abandoned": "yellow",
}


def render_retrain(result: RetrainResult, console: Console) -> None:
    """The retrain's outcome and the comparison behind it."""
    style = STATUS_STYLE[result.status]
    who = f" v{result.challenger}" if result.challenger else ""
    console.print(
        f"[{style} bold]{result.status}[/]{who} — {result.reason} ({result.seconds:.0f} s, "
        f"{result.recent_rows:,} recent labelled rows)",
        highlight=False,
    )
    if result.verdict is None or not result.verdict.scores:
        return
    table = Table(title=f"challenger vs champion v{result.champion} ({result.verdict.metric})")
    for header in ("rows", "champion", "challenger", "change", "count"):
        table.add_column(header, justify="right" if header != "rows" else "left")
    for part, both in result.verdict.scores.items():
        table.add_row(
            part,
            f"{both['champion']:,.4g}",
            f"{both['challenger']:,.4g}",
            f"{result.verdict.gains[part]:+.1%}",
            f"{result.verdict.rows[part]:,}",
        )
    console.print(table)
    if result.status == "deployed":
        console.print(
            "Rolling out under the deployment gates: modelcycle rollout status "
            f"{result.model_name}",
            highlight=False,
        )
