"""``modelcycle db``: create or upgrade the operational database, and show where it stands.

The database is ``MODELCYCLE_DATABASE_URL`` (default: ``.modelcycle/modelcycle.db`` in the
project). The server applies migrations on start too; these commands let a user do it ahead of
time (for example before starting several workers) and check the result.
"""

from __future__ import annotations

import json
from typing import Annotated

import typer

from modelcycle.cli._shared import STATE, console

app = typer.Typer(
    help="The operational database (prediction log, labels, deployments, alerts).",
    no_args_is_help=True,
)
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON.")]


def database_url() -> str:
    """The operational database of the current project (``MODELCYCLE_DATABASE_URL``)."""
    url = STATE.settings().database_url
    assert url is not None  # derived from the project folder when unset
    return url


@app.command()
def upgrade(as_json: JsonOpt = False) -> None:
    """Create the tables or apply new migrations (safe to run again, or from several places)."""
    from modelcycle.store.migrations import head_revision
    from modelcycle.store.migrations import upgrade as apply

    url = database_url()
    with console.status("Applying migrations..."):
        result = apply(url)
    if as_json:
        payload = {
            "url": result.url,
            "before": result.before,
            "after": result.after,
            "head": head_revision(),
            "changed": result.changed,
        }
        print(json.dumps(payload, indent=2))
        return
    if result.changed:
        start = f"revision {result.before}" if result.before else "an empty database"
        console.print(
            f"[green]Upgraded[/] {result.url} from {start} to revision {result.after} (head).",
            highlight=False,
        )
    else:
        console.print(
            f"{result.url} is already at revision {result.after} (head); nothing to do.",
            highlight=False,
        )


@app.command()
def status(as_json: JsonOpt = False) -> None:
    """Show the database's revision against this modelcycle's, and the rows in each table."""
    from rich.table import Table

    from modelcycle.store.migrations import status as store_status

    info = store_status(database_url())
    if as_json:
        payload = {
            "url": info.url,
            "current": info.current,
            "head": info.head,
            "up_to_date": info.up_to_date,
            "known": info.known,
            "tables": info.counts,
        }
        print(json.dumps(payload, indent=2))
        return
    console.print(f"database: {info.url}", highlight=False)
    if info.up_to_date:
        state = "[green]up to date[/]"
    elif info.current is None:
        state = "[yellow]not created yet[/]"
    elif not info.known:
        state = "[red]unknown revision: a newer modelcycle migrated it[/]"
    else:
        state = "[yellow]behind[/]"
    console.print(
        f"revision: {info.current or 'none'} (head {info.head}) — {state}", highlight=False
    )
    table = Table(title="tables")
    table.add_column("table", style="cyan")
    table.add_column("rows", justify="right")
    for name, count in info.counts.items():
        table.add_row(name, f"{count:,}" if count is not None else "– (missing)")
    console.print(table)
    if info.known and not info.up_to_date:
        console.print("Run `modelcycle db upgrade` to create or upgrade it.", highlight=False)
