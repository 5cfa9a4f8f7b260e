"""``modelcycle demo``: the lifecycle on the rent example, as far as it exists today, narrated.

Today: scaffold a project, generate the rent data (with the problems real files have), validate
it, infer and save the schema, write the EDA report, split the data, train baseline-first with
tuning and MLflow tracking, register the winner, serve it on a real HTTP server, send new
listings, post their true rents as labels and read the prediction log back. Each later stage
extends this same story.
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
from modelcycle.scaffold import init_project
from modelcycle.training.console import TrainingProgress, render_outcome
from modelcycle.training.train import TrainOptions, TrainOutcome, train

DEFAULT_ROWS = 20_000
FAST_ROWS = 2_000
DEFAULT_BUDGET = "12 trials"
FAST_BUDGET = "4 trials"


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
    served: ServedTraffic | None = None
    seconds: float = 0.0


@dataclass
class ServedTraffic:
    """What the serving step sent, and what the prediction log holds afterwards."""

    url: str
    requests: int
    rows: int
    logged: int
    labelled: int
    mae: float


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

    _step(console, 1, "Define", "scaffold a project and generate the rent data")
    made = init_project(root, example="rent", rows=rows)
    project = load_project(made.root)
    result = DemoResult(root=made.root)
    console.print(f"  {rows:,} apartments in {made.data_path}; spec in {project.spec_path}")

    _step(console, 2, "Validate", "check the data against the spec (planted problems expected)")
    dataset = read_source(project.spec.data, project.root)
    result.validation = validate(dataset, project.spec)
    render_findings(result.validation, console, least="warning")
    result.reports["validation"] = write_html_report(
        result.validation, project.root / "reports" / "validation.html"
    )
    console.print(f"  every finding, notes included: {result.reports['validation']}")

    _step(console, 3, "Describe", "infer the FeatureSchema: names, types, roles, ranges")
    schema = schema_for_spec(
        dataset.frame, project.spec, source=dataset.source, data_digest=dataset.digest
    )
    result.schema_path = schema.save(project.root / "data" / "schema.json")
    features = ", ".join(schema.feature_names)
    console.print(f"  {len(schema.features)} features: {features}", highlight=False)
    console.print(f"  saved {result.schema_path} (fingerprint {schema.fingerprint})")

    _step(console, 4, "Explore", "the EDA report (self-contained HTML, works offline)")
    with console.status("  building the report..."):
        summary = explore(
            dataset.frame,
            schema,
            out=project.root / "reports" / "eda.html",
            title="rent: EDA",
        )
    render_summary(summary, console)
    result.reports["eda"] = project.root / "reports" / "eda.html"

    _step(console, 5, "Split", "train / valid / test, each part with a digest")
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

    _step(console, 6, "Train", "baselines first, then tuned candidates, tracked in MLflow")
    settings = Settings.load(project.root)
    result.tracking_uri = settings.mlflow_tracking_uri or ""
    options = TrainOptions(budget=parse_budget(FAST_BUDGET if fast else DEFAULT_BUDGET))
    with TrainingProgress(console) as progress:
        result.training = train(project, settings, options, progress=progress.update)
    render_outcome(result.training, console, result.tracking_uri)
    result.reports["evaluation"] = result.training.report

    if result.training.registered is not None:
        _step(console, 7, "Serve", "a real HTTP server on 127.0.0.1; every prediction logged")
        result.served = serve_and_label(settings, project.spec.name, console, fast=fast)

    result.seconds = time.perf_counter() - start
    _summary(console, result)
    return result


def serve_and_label(
    settings: Settings, name: str, console: Console, *, fast: bool = False
) -> ServedTraffic:
    """Serve the champion, send new listings, post their true rents, read the log back."""
    import httpx

    from modelcycle.data.examples import rent_apartments
    from modelcycle.serving.local import LocalServer
    from modelcycle.store import make_engine, window

    listings = rent_apartments(20 if fast else 60, seed=2026, messy=False)
    features = listings.drop(columns=["rent", "address", "zip"], errors="ignore")
    rows = json.loads(features.to_json(orient="records"))
    sent: list[tuple[str, int, float]] = []  # request id, row, true rent
    with LocalServer(settings, f"{name}@champion") as server, httpx.Client() as client:
        console.print(f"  serving {name}@champion at {server.url} (API docs at /docs)")
        batches = [rows[i : i + 1] for i in range(len(rows) - 5)] + [rows[-5:]]
        answers = []
        for batch in batches:
            response = client.post(f"{server.url}/predict", json=batch)
            response.raise_for_status()
            answers.append(response.json())
        start = 0
        for answer, batch in zip(answers, batches, strict=True):
            for row in range(len(batch)):
                sent.append((answer["request_id"], row, float(listings["rent"].iloc[start + row])))
            start += len(batch)
        _show_predictions(console, rows, answers)
        labels = [{"request_id": rid, "row": row, "label": rent} for rid, row, rent in sent]
        posted = client.post(f"{server.url}/labels", json=labels).json()
        console.print(f"  posted {len(labels)} true rents to /labels: {posted['counts']}")
    engine = make_engine(settings.database_url or "")
    with engine.connect() as conn:
        logged = window(conn, name, with_features=False)
    engine.dispose()
    labelled = logged[logged["has_label"]]
    errors = (labelled["prediction"].astype(float) - labelled["label"].astype(float)).abs()
    mae = float(errors.mean()) if len(errors) else float("nan")
    console.print(
        f"  the prediction log holds {len(logged)} predictions, {len(labelled)} with their true "
        f"rent; live MAE {mae:,.0f}",
        highlight=False,
    )
    return ServedTraffic(server.url, len(batches), len(rows), len(logged), len(labelled), mae)


def _show_predictions(
    console: Console, rows: list[dict[str, object]], answers: list[dict[str, object]]
) -> None:
    table = Table(box=None, padding=(0, 2))
    for header in ("request id", "area", "neighborhood", "predicted rent", "version"):
        table.add_column(header)
    for row, answer in list(zip(rows, answers, strict=False))[:5]:
        predictions = answer["predictions"]
        assert isinstance(predictions, list)
        table.add_row(
            str(answer["request_id"])[:12],
            f"{row['area']} m2",
            str(row["neighborhood"]),
            f"{predictions[0]:,.0f}",
            str(answer["version"]),
        )
    console.print(table)


def _step(console: Console, number: int, title: str, what: str) -> None:
    console.rule(f"[bold cyan]{number}. {title}[/] — {what}", align="left")


def _summary(console: Console, result: DemoResult) -> None:
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
        table.add_row(
            "registered model", f"{reg.name} version {reg.version} ({', '.join(reg.aliases)})"
        )
    console.print(table)
    console.print(
        f"Done in {result.seconds:.1f} s. Deployment strategies, monitoring and retraining are "
        "on the roadmap (see README: status).\n"
        f"Next: cd {result.root} && modelcycle serve   (then open http://127.0.0.1:8000/docs)\n"
        f"MLflow UI: cd {result.root} && mlflow ui --backend-store-uri "
        "sqlite:///.modelcycle/mlflow.db --default-artifact-root ./.modelcycle/artifacts/mlflow",
        highlight=False,
    )
