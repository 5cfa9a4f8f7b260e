"""``modelcycle demo``: the whole lifecycle on the rent example, narrated, in one command.

Scaffold a project, generate the rent data (with the problems real files have), validate it,
infer and save the schema, write the EDA report, split the data, train baseline-first with
tuning and MLflow tracking, and register the winner; then the live story of
:mod:`modelcycle.demo_live` on a real HTTP server: traffic with labels arriving later, a healthy
monitoring run, a market that moves, alerts, a retrain that beats the champion and ramps up
through its gates, and a bad version rolled back on its own. It ends with a summary read from
the stores.
"""

from __future__ import annotations

import json
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Console
from rich.panel import Panel
from rich.table import Table

from modelcycle.config.settings import Settings
from modelcycle.config.spec import load_project, parse_budget
from modelcycle.data.eda import explore, render_summary
from modelcycle.data.io import read_source
from modelcycle.data.schema import schema_for_spec
from modelcycle.data.split import split, write_split
from modelcycle.data.validation import (
    ValidationReport,
    render_findings,
    validate,
    write_html_report,
)
from modelcycle.demo_live import LiveStory, live_story, quick_rollouts, step
from modelcycle.scaffold import init_project
from modelcycle.training.console import TrainingProgress, render_outcome
from modelcycle.training.train import TrainOptions, TrainOutcome, train

DEFAULT_ROWS = 20_000
FAST_ROWS = 2_000
DEFAULT_BUDGET = "12 trials"
FAST_BUDGET = "4 trials"
RETRAIN_BUDGET = "8 trials"
"""The demo's retrain: a smaller budget than the first training, to keep the story under 3 min."""


@dataclass
class DemoResult:
    """What the demo made, for the summary and for tests."""

    root: Path
    validation: ValidationReport | None = None
    schema_path: Path | None = None
    reports: dict[str, Path] = field(default_factory=dict)
    split_files: dict[str, Path] = field(default_factory=dict)
    training: TrainOutcome | None = None
    tracking_uri: str = ""
    live: LiveStory | None = None
    seconds: float = 0.0


def run_demo(directory: Path | None, *, fast: bool = False, console: Console) -> DemoResult:
    """Run the demo in ``directory`` (a new temporary folder when ``None``).

    Args:
        directory: The project folder to create; it must not already hold a project.
        fast: Small data, for a quick look or the tests.
        console: Where the narration goes.
    """
    start = time.perf_counter()
    root = directory or Path(tempfile.mkdtemp(prefix="modelcycle-demo-"))
    rows = FAST_ROWS if fast else DEFAULT_ROWS
    console.print(
        Panel.fit(
            "[bold]modelcycle demo[/] — predicting the monthly rent of an apartment\n"
            f"project: {root}",
            border_style="cyan",
        )
    )

    step(console, 1, "Define", "scaffold a project and generate the rent data")
    made = init_project(root, example="rent", rows=rows)
    quick_rollouts(made.root / "modelcycle.toml")
    project = load_project(made.root)
    result = DemoResult(root=made.root)
    console.print(f"  {rows:,} apartments in {made.data_path}; spec in {project.spec_path}")

    step(console, 2, "Validate", "check the data against the spec (planted problems expected)")
    dataset = read_source(project.spec.data, project.root)
    result.validation = validate(dataset, project.spec)
    render_findings(result.validation, console, least="warning")
    result.reports["validation"] = write_html_report(
        result.validation, project.root / "reports" / "validation.html"
    )
    console.print(f"  every finding, notes included: {result.reports['validation']}")

    step(console, 3, "Describe", "infer the FeatureSchema: names, types, roles, ranges")
    schema = schema_for_spec(
        dataset.frame, project.spec, source=dataset.source, data_digest=dataset.digest
    )
    result.schema_path = schema.save(project.root / "data" / "schema.json")
    features = ", ".join(schema.feature_names)
    console.print(f"  {len(schema.features)} features: {features}", highlight=False)
    console.print(f"  saved {result.schema_path} (fingerprint {schema.fingerprint})")

    step(console, 4, "Explore", "the EDA report (self-contained HTML, works offline)")
    with console.status("  building the report..."):
        summary = explore(
            dataset.frame,
            schema,
            out=project.root / "reports" / "eda.html",
            title="rent: EDA",
        )
    render_summary(summary, console)
    result.reports["eda"] = project.root / "reports" / "eda.html"

    step(console, 5, "Split", "train / valid / test, each part with a digest")
    parts = split(
        dataset.frame,
        project.spec.split,
        target=project.spec.target,
        task=schema.task,
        time_column=project.spec.time_column,
        id_column=project.spec.id_column,
    )
    result.split_files = write_split(parts, project.root / "data" / "splits")
    table = Table(show_header=True, box=None, padding=(0, 2))
    for header in ("part", "rows", "digest"):
        table.add_column(header)
    for name, frame in parts.parts().items():
        table.add_row(name, f"{len(frame):,}", parts.digests[name][:12])
    console.print(table)

    step(console, 6, "Train", "baselines first, then tuned candidates, tracked in MLflow")
    settings = Settings.load(project.root)
    result.tracking_uri = settings.mlflow_tracking_uri or ""
    options = TrainOptions(budget=parse_budget(FAST_BUDGET if fast else DEFAULT_BUDGET))
    with TrainingProgress(console) as progress:
        result.training = train(project, settings, options, progress=progress.update)
    render_outcome(result.training, console, result.tracking_uri)
    result.reports["evaluation"] = result.training.report

    if result.training.registered is not None:
        budget = FAST_BUDGET if fast else RETRAIN_BUDGET
        result.live = live_story(project, settings, console, fast=fast, budget=budget)
        result.reports["monitoring"] = project.root / "reports" / "monitor.html"
        story_file = project.root / "reports" / "demo.json"
        story_file.write_text(json.dumps(result.live.as_dict(), indent=2))
        result.reports["demo summary"] = story_file

    result.seconds = time.perf_counter() - start
    _summary(console, result)
    return result


def _summary(console: Console, result: DemoResult) -> None:
    live = result.live
    if live is not None:
        story = Table(title="The story, from the stores", box=None, padding=(0, 2))
        for header in ("phase", "rows", "live MAE", "verdict", "alerts"):
            story.add_column(header)
        for phase in live.phases:
            story.add_row(
                phase.name,
                f"{phase.rows:,}",
                f"{phase.mae:,.0f}",
                phase.verdict,
                ", ".join(dict.fromkeys(phase.alerts)) or "none",
            )
        console.print(story)
        retrained = live.retrain
        if retrained is not None:
            console.print(
                f"  retrain: {retrained.status}"
                + (f" v{retrained.challenger}" if retrained.challenger else "")
                + f" — {retrained.reason}",
                highlight=False,
            )
        if live.promoted:
            console.print(f"  v{live.promoted} was promoted by the server's controller")
        if live.bad_version:
            console.print(
                f"  the bad v{live.bad_version} ended {live.bad_status}: "
                "the gates caught it, no person involved",
                highlight=False,
            )
    table = Table(title="What the demo made", show_header=False, box=None, padding=(0, 2))
    table.add_column(style="cyan")
    table.add_column()
    for name, path in result.reports.items():
        table.add_row(f"{name} report", str(path))
    if result.schema_path:
        table.add_row("schema", str(result.schema_path))
    for name, path in result.split_files.items():
        table.add_row(f"{name} split", str(path))
    if result.training is not None and result.training.registered is not None:
        reg = result.training.registered
        table.add_row("first model", f"{reg.name} version {reg.version}")
    console.print(table)
    console.print(
        f"Done in {result.seconds:.1f} s.\n"
        f"Next: cd {result.root} && modelcycle serve   (then open http://127.0.0.1:8000/dashboard "
        "and /docs)\n"
        f"      cd {result.root} && modelcycle alerts list; modelcycle deployments history "
        "rent; modelcycle watch\n"
        f"MLflow UI: cd {result.root} && mlflow ui --backend-store-uri "
        "sqlite:///.modelcycle/mlflow.db --default-artifact-root ./.modelcycle/artifacts/mlflow",
        highlight=False,
    )
