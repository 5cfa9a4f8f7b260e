"""``modelcycle data``: schema, validate, eda and split a project's dataset."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from modelcycle.cli._shared import STATE, console, err_console

if TYPE_CHECKING:
    from modelcycle.config.spec import Project
    from modelcycle.data.io import Dataset
    from modelcycle.data.schema import FeatureSchema

app = typer.Typer(help="The data stage: schema, validate, eda, split.", no_args_is_help=True)

DataArg = Annotated[
    Path | None,
    typer.Argument(
        help="CSV or Parquet file (default: the spec's data source).", show_default=False
    ),
]


def load(data: Path | None, out: Console = console) -> tuple[Project, Dataset]:
    """The project and its dataset (or the file given instead), read with a spinner."""
    from modelcycle.data.io import read_source

    project = STATE.project()
    with out.status("Reading the data..."):
        dataset = read_source(project.spec.data, project.root, data)
    out.print(
        f"Read {len(dataset.frame):,} rows × {dataset.frame.shape[1]} columns from "
        f"{dataset.source}",
        highlight=False,
    )
    return project, dataset


def load_with_schema(data: Path | None) -> tuple[Project, Dataset, FeatureSchema]:
    """The project, its dataset and the dataset's schema under the spec's roles."""
    from modelcycle.data.schema import schema_for_spec

    project, dataset = load(data)
    inferred = schema_for_spec(
        dataset.frame, project.spec, source=dataset.source, data_digest=dataset.digest
    )
    return project, dataset, inferred


@app.command()
def schema(
    data: DataArg = None,
    out: Annotated[Path, typer.Option(help="Where to save the schema JSON.")] = Path(
        "data/schema.json"
    ),
) -> None:
    """Infer the FeatureSchema (names, types, roles, ranges, categories) and save it as JSON."""
    from rich.table import Table

    project, _, inferred = load_with_schema(data)
    path = inferred.save(project.resolve(out))
    table = Table(title=f"schema ({inferred.task or 'no target'})")
    for header in ("column", "kind", "role", "null %", "unique", "range / top values"):
        table.add_column(header)
    for col in inferred.columns:
        if col.kind == "numeric" and col.min is not None and col.max is not None:
            shape = f"{col.min:g} … {col.max:g}"
        else:
            shape = ", ".join(list(col.categories)[:4])
        role = col.role + (f" ({col.reason})" if col.reason else "")
        table.add_row(col.name, col.kind, role, f"{col.null_rate:.1%}", f"{col.n_unique:,}", shape)
    console.print(table)
    console.print(f"[green]Saved[/] {path} (fingerprint {inferred.fingerprint})")


@app.command()
def validate(
    data: DataArg = None,
    schema: Annotated[
        Path | None,
        typer.Option("--schema", help="A saved schema to check against (modelcycle data schema)."),
    ] = None,
    report: Annotated[
        Path | None, typer.Option(help="Also write an HTML report here.", show_default=False)
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the findings as JSON.")] = False,
) -> None:
    """Check the data against the spec (and a saved schema): exit code 1 when there are errors."""
    from modelcycle.data.schema import FeatureSchema
    from modelcycle.data.validation import render_findings, write_html_report
    from modelcycle.data.validation import validate as run_validation

    out = err_console if as_json else console
    project, dataset = load(data, out)
    saved = FeatureSchema.load(project.resolve(schema)) if schema else None
    with err_console.status("Validating..."):
        result = run_validation(dataset, project.spec, saved)
    if as_json:
        print(result.to_json())
    else:
        render_findings(result, console)
    if report is not None:
        path = write_html_report(result, project.resolve(report))
        out.print(f"Report: {path}")
    if not result.ok:
        raise typer.Exit(1)


@app.command()
def eda(
    data: DataArg = None,
    out: Annotated[Path, typer.Option(help="Where to write the HTML report.")] = Path(
        "reports/eda.html"
    ),
) -> None:
    """Explore the data: a self-contained HTML report (works offline) and a terminal summary."""
    from modelcycle.data.eda import explore, render_summary

    project, dataset, inferred = load_with_schema(data)
    with console.status("Building the EDA report..."):
        summary = explore(
            dataset.frame, inferred, out=project.resolve(out), title=f"{project.spec.name}: EDA"
        )
    render_summary(summary, console)


@app.command()
def split(
    data: DataArg = None,
    out_dir: Annotated[Path, typer.Option(help="Folder for train/valid/test files.")] = Path(
        "data/splits"
    ),
    fmt: Annotated[str, typer.Option("--format", help="parquet or csv.")] = "parquet",
) -> None:
    """Split the data into train / valid / test as the spec says; each part gets a digest."""
    from rich.table import Table

    from modelcycle.data.balance import class_balance
    from modelcycle.data.schema import infer_task
    from modelcycle.data.split import split as run_split
    from modelcycle.data.split import write_split
    from modelcycle.data.validation import require_columns

    project, dataset = load(data)
    spec = project.spec
    require_columns(dataset.frame, spec)
    task = spec.task or infer_task(dataset.frame[spec.target])
    result = run_split(
        dataset.frame,
        spec.split,
        target=spec.target,
        task=task,
        time_column=spec.time_column,
        id_column=spec.id_column,
    )
    paths = write_split(result, project.resolve(out_dir), fmt)
    table = Table(title=f"{result.method} split")
    for header in ("part", "rows", "digest", "file"):
        table.add_column(header)
    for part, frame in result.parts().items():
        table.add_row(part, f"{len(frame):,}", result.digests[part][:12], str(paths[part]))
    console.print(table)
    if task == "classification":
        balance = class_balance(dataset.frame[spec.target].dropna())
        note = " — imbalanced" if balance.imbalanced else ""
        console.print(
            f"class balance: {balance.counts} (minority/majority {balance.ratio:.3f}){note}; "
            f"imbalance strategy: {spec.imbalance.strategy} (training folds only)",
            highlight=False,
        )
