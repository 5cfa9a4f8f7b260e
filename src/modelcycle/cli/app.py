"""The root command: global options, ``init``, ``config show``, ``examples`` and ``demo``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from modelcycle import __version__
from modelcycle.cli import data as data_cli
from modelcycle.cli import db as db_cli
from modelcycle.cli import deploy as deploy_cli
from modelcycle.cli import models as models_cli
from modelcycle.cli import monitor as monitor_cli
from modelcycle.cli import predict as predict_cli
from modelcycle.cli import retrain as retrain_cli
from modelcycle.cli import serve as serve_cli
from modelcycle.cli import train as train_cli
from modelcycle.cli._shared import STATE, console

app = typer.Typer(
    name="modelcycle",
    help="Carry a tabular ML model through its whole life: data, training, registry, serving, "
    "deployment, monitoring and retraining. Runs embedded; no servers to install.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
    context_settings={"help_option_names": ["-h", "--help"]},
)
config_app = typer.Typer(help="Runtime settings (.env and MODELCYCLE_* variables).")
examples_app = typer.Typer(help="Generate the running examples' datasets.")
app.add_typer(config_app, name="config")
app.add_typer(examples_app, name="examples")
app.add_typer(data_cli.app, name="data")
app.command("train")(train_cli.train)
app.add_typer(models_cli.app, name="models")
app.add_typer(db_cli.app, name="db")
app.command("serve")(serve_cli.serve)
app.command("predict")(predict_cli.predict)
app.command("deploy")(deploy_cli.deploy)
app.add_typer(deploy_cli.rollout_app, name="rollout")
app.command("rollback")(deploy_cli.rollback)
app.add_typer(deploy_cli.deployments_app, name="deployments")
app.command("controller")(deploy_cli.controller)
app.add_typer(monitor_cli.monitor_app, name="monitor")
app.add_typer(monitor_cli.alerts_app, name="alerts")
app.command("retrain")(retrain_cli.retrain)
app.command("watch")(retrain_cli.watch)


def _version(value: bool) -> None:
    if value:
        console.print(f"modelcycle {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    project: Annotated[
        Path | None,
        typer.Option(
            "--project",
            "-p",
            help="Project folder (default: the nearest folder with a modelcycle.toml).",
            envvar="MODELCYCLE_PROJECT_DIR",
            show_default=False,
        ),
    ] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Show debug logs.")] = False,
    quiet: Annotated[
        bool, typer.Option("--quiet", "-q", help="Show only warnings and errors.")
    ] = False,
    version: Annotated[  # noqa: ARG001 - handled by its eager callback
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version."),
    ] = False,
) -> None:
    """Global options, applied before any command."""
    STATE.reset(project, "DEBUG" if verbose else ("WARNING" if quiet else None))
    setup_logging()


def setup_logging() -> None:
    """Configure logging for a command: files only inside a project folder."""
    from modelcycle.config.logging import configure_logging
    from modelcycle.config.spec import SPEC_FILENAME

    settings = STATE.settings()
    in_project = (settings.project_dir / SPEC_FILENAME).is_file()
    STATE.log_file = configure_logging(settings, files=in_project)


@app.command()
def init(
    directory: Annotated[
        Path, typer.Argument(help="Folder to create (default: the current folder).")
    ] = Path(),
    example: Annotated[
        str | None,
        typer.Option(help="Scaffold a running example and generate its data: rent | rent-default."),
    ] = None,
    data: Annotated[
        Path | None,
        typer.Option(help="Your CSV/Parquet file; the spec is filled in from it."),
    ] = None,
    target: Annotated[
        str | None,
        typer.Option(help="The column to predict (with --data)."),
    ] = None,
    rows: Annotated[int, typer.Option(min=30, help="Rows of example data.")] = 5000,
    seed: Annotated[int, typer.Option(help="Seed of example data.")] = 42,
    force: Annotated[bool, typer.Option(help="Overwrite existing files.")] = False,
) -> None:
    """Scaffold a project: modelcycle.toml, .env.example, .gitignore, data/, reports/."""
    from modelcycle.errors import ProjectError
    from modelcycle.scaffold import EXAMPLES, init_project

    if example is not None and example not in EXAMPLES:
        raise ProjectError(f"unknown example {example!r}", f"use one of: {', '.join(EXAMPLES)}")
    with console.status("Scaffolding the project..."):
        made = init_project(
            directory,
            example=example,  # type: ignore[arg-type]
            data=data,
            target=target,
            rows=rows,
            seed=seed,
            force=force,
        )
    console.print(f"[green]Created project in[/] {made.root}")
    for path in made.files:
        console.print(f"  {path.relative_to(made.root)}")
    go = "" if made.root == Path.cwd().resolve() else f"cd {made.root} && "
    console.print("\nNext:")
    console.print(f"  {go}modelcycle data validate", highlight=False)
    console.print("  modelcycle data eda", highlight=False)


@config_app.command("show")
def config_show(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Print the effective settings and where each came from (secrets masked)."""
    from rich.table import Table

    rows = STATE.settings().display()
    if as_json:
        payload = {var: {"value": value, "source": src} for var, value, src in rows}
        console.print_json(json.dumps(payload))
        return
    table = Table(title="modelcycle settings", show_lines=False)
    table.add_column("variable", style="cyan", no_wrap=True)
    table.add_column("value", overflow="fold")
    table.add_column("source", style="dim")
    for var, value, src in rows:
        table.add_row(var, value, src)
    console.print(table)


@examples_app.command("rent")
def examples_rent(
    out: Annotated[Path, typer.Option(help="Output file (.csv or .parquet).")] = Path(
        "data/rent_apartments.csv"
    ),
    rows: Annotated[int, typer.Option(min=1, help="Number of apartments.")] = 5000,
    seed: Annotated[int, typer.Option(help="Random seed (same seed, same data).")] = 42,
    scenario: Annotated[
        str,
        typer.Option(
            help="baseline | inflation | new_neighborhood | bigger_apartments | missing_spike | "
            "schema_break"
        ),
    ] = "baseline",
    clean: Annotated[
        bool, typer.Option(help="Leave out the planted problems (duplicates, typos, nulls).")
    ] = False,
) -> None:
    """Generate apartment-rent data (the running example), optionally as a drift scenario."""
    from modelcycle.data import examples
    from modelcycle.data.io import write_table

    with console.status(f"Generating {rows:,} apartments ({scenario})..."):
        frame = examples.rent_apartments(rows=rows, seed=seed, scenario=scenario, messy=not clean)
        write_table(frame, out)
    console.print(f"[green]Wrote[/] {len(frame):,} rows × {frame.shape[1]} columns to {out}")


@examples_app.command("rent-default")
def examples_rent_default(
    out: Annotated[Path, typer.Option(help="Output file (.csv or .parquet).")] = Path(
        "data/rent_default.csv"
    ),
    rows: Annotated[int, typer.Option(min=1, help="Number of tenants.")] = 5000,
    seed: Annotated[int, typer.Option(help="Random seed (same seed, same data).")] = 42,
) -> None:
    """Generate tenant late-payment data: an imbalanced classification example (~6% positive)."""
    from modelcycle.data import examples
    from modelcycle.data.io import write_table

    with console.status(f"Generating {rows:,} tenants..."):
        frame = examples.rent_default(rows=rows, seed=seed)
        write_table(frame, out)
    console.print(f"[green]Wrote[/] {len(frame):,} rows × {frame.shape[1]} columns to {out}")


@app.command()
def demo(
    directory: Annotated[
        Path | None,
        typer.Option("--dir", help="Project folder to create (default: a temporary one)."),
    ] = None,
    fast: Annotated[bool, typer.Option(help="Small sizes, for a quick look or tests.")] = False,
) -> None:
    """Run the lifecycle as far as it exists today on the rent example, narrated."""
    from modelcycle.demo import run_demo

    run_demo(directory, fast=fast, console=console)
