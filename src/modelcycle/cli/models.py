"""``modelcycle models``: list, show, compare, card and alias the registered model versions.

Models are named by reference: ``NAME`` (the champion, else the latest version), ``NAME@ALIAS``,
``NAME/VERSION`` or ``models:/NAME/VERSION``. A bad reference ends in one message that lists
what exists.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated, Any

import typer

from modelcycle.cli._shared import STATE, console

if TYPE_CHECKING:
    from rich.table import Table

    from modelcycle.registry.store import Comparison, ModelSummary, VersionInfo

app = typer.Typer(
    help="The registry: list, show, compare, card and alias registered model versions.",
    no_args_is_help=True,
)
alias_app = typer.Typer(help="Move aliases (champion, challenger, ...).", no_args_is_help=True)
app.add_typer(alias_app, name="alias")

RefArg = Annotated[
    str,
    typer.Argument(
        help="NAME, NAME@ALIAS, NAME/VERSION or models:/NAME/VERSION.", show_default=False
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON.")]


def tracking_uri() -> str:
    """The MLflow store of the current project (``MODELCYCLE_MLFLOW_TRACKING_URI``)."""
    uri = STATE.settings().mlflow_tracking_uri
    assert uri is not None  # derived from the project folder when unset
    return uri


@app.command("list")
def list_models(as_json: JsonOpt = False) -> None:
    """List the registered models: versions, aliases and the champion's deciding metric."""
    from modelcycle.config.settings import mask
    from modelcycle.registry.store import list_models as registry_list

    uri = tracking_uri()
    models = registry_list(uri)
    if as_json:
        print(json.dumps([_summary_json(m) for m in models], indent=2))
        return
    if not models:
        console.print(
            f"No registered models in {mask(uri)}. Train and register one with `modelcycle train`.",
            highlight=False,
        )
        return
    table = _table(
        f"registered models ({mask(uri)})",
        "model",
        "versions",
        "latest",
        "aliases",
        "champion metric",
        "candidate",
        "updated",
    )
    for model in models:
        metric = f"{model.metric} {_fmt(model.metric_value)}" if model.metric is not None else "–"
        table.add_row(
            model.name,
            str(len(model.versions)),
            str(model.latest or "–"),
            _aliases(model.aliases),
            metric,
            model.candidate or "–",
            model.updated.strftime("%Y-%m-%d %H:%M") if model.updated else "–",
        )
    console.print(table)


@app.command()
def show(ref: RefArg, as_json: JsonOpt = False) -> None:
    """Show one version: aliases, tags, metrics vs baseline, features and library versions."""
    from modelcycle.registry.store import describe

    info = describe(ref, tracking_uri=tracking_uri())
    if as_json:
        print(json.dumps(_version_json(info), indent=2, default=str))
        return
    bundle = info.bundle
    meta = info.info
    manifest = bundle.manifest
    overview = _table(f"{info.ref}", "", "", show_header=False)
    rows: list[tuple[str, Any]] = [
        ("aliases", ", ".join(info.aliases) or "–"),
        ("registered", info.created.strftime("%Y-%m-%d %H:%M UTC") if info.created else "–"),
        ("candidate", meta.get("candidate")),
        ("task", meta.get("task")),
        ("deciding metric", meta.get("metric")),
        ("threshold", _fmt(meta.get("threshold"))),
        ("classes", ", ".join(map(str, meta.get("classes") or [])) or "–"),
        ("training rows", f"{meta.get('training_rows', 0):,}"),
        ("data digest", manifest.get("data_digest") or "–"),
        ("spec hash", manifest.get("spec_hash") or "–"),
        ("schema fingerprint", bundle.schema.fingerprint),
        ("manifest sha256", bundle.manifest_sha256),
        ("run id", info.run_id or "–"),
        ("description", info.description or "–"),
    ]
    for key, value in rows:
        overview.add_row(key, str(value) if value is not None else "–")
    console.print(overview)
    console.print(_metrics_table(meta))
    features = _table("features", "feature", "kind", "missing", "range / top values")
    for col in bundle.schema.features:
        if col.kind == "numeric" and col.min is not None and col.max is not None:
            shape = f"{col.min:g} … {col.max:g}"
        else:
            shape = ", ".join(list(col.categories)[:4]) or "–"
        features.add_row(col.name, col.kind, f"{col.null_rate:.1%}", shape)
    console.print(features)
    libraries = manifest.get("libraries", {})
    console.print(
        "libraries: " + ", ".join(f"{k} {v}" for k, v in libraries.items()), highlight=False
    )
    console.print(f"Model card: modelcycle models card {info.ref}", highlight=False)


@app.command()
def compare(ref_a: RefArg, ref_b: RefArg, as_json: JsonOpt = False) -> None:
    """Score two versions side by side on the project's test split (same rows, same metrics).

    The data is cleaned and split exactly as ``modelcycle train`` does, so the rows are the
    test part the models were evaluated on (for versions trained on the current data).
    """
    from modelcycle.data.io import read_source
    from modelcycle.data.schema import infer_task
    from modelcycle.data.split import split
    from modelcycle.data.validation import require_columns
    from modelcycle.registry.store import compare as registry_compare
    from modelcycle.training.train import prepare

    project = STATE.project()
    spec = project.spec
    with console.status("Reading the data and splitting it..."):
        dataset = read_source(spec.data, project.root)
        require_columns(dataset.frame, spec)
        frame = prepare(dataset.frame, spec, notes=[])
        result = split(
            frame,
            spec.split,
            target=spec.target,
            task=spec.task or infer_task(frame[spec.target]),
            time_column=spec.time_column,
            id_column=spec.id_column,
        )
    test = result.test
    with console.status("Loading and scoring both models..."):
        outcome = registry_compare(
            ref_a, ref_b, test, test[spec.target], tracking_uri=tracking_uri()
        )
    if as_json:
        print(json.dumps(_comparison_json(outcome), indent=2))
        return
    console.print(_comparison_table(outcome, f"{result.method} split, seed {spec.split.seed}"))


@app.command()
def card(ref: RefArg) -> None:
    """Print a version's model card (Markdown)."""
    from rich.markdown import Markdown

    from modelcycle.registry.store import describe

    info = describe(ref, tracking_uri=tracking_uri())
    console.print(Markdown(info.bundle.card))


@alias_app.command("set")
def alias_set(
    name: Annotated[str, typer.Argument(help="Registered model name.", show_default=False)],
    version: Annotated[int, typer.Argument(help="Version number.", min=1, show_default=False)],
    alias: Annotated[
        str, typer.Argument(help="Alias, e.g. champion or challenger.", show_default=False)
    ],
) -> None:
    """Point NAME@ALIAS at VERSION (``previous`` is kept for deployment rollbacks)."""
    from modelcycle.registry.store import set_alias

    before = set_alias(name, version, alias, tracking_uri=tracking_uri())
    moved = "" if before is None or before == version else f" (was {before})"
    console.print(f"[green]{name}@{alias}[/] → version {version}{moved}", highlight=False)


def _table(title: str, *headers: str, show_header: bool = True) -> Table:
    from rich.table import Table

    table = Table(title=title, show_header=show_header)
    for header in headers:
        table.add_column(header, overflow="fold")
    return table


def _fmt(value: Any) -> str:
    from modelcycle.registry.card import format_value

    return format_value(value)


def _aliases(aliases: dict[str, int]) -> str:
    return ", ".join(f"{a} → {v}" for a, v in sorted(aliases.items())) or "–"


def _metrics_table(meta: dict[str, Any]) -> Table:
    from modelcycle.metrics import metric_names
    from modelcycle.registry.card import change_text, winner_key

    metrics: dict[str, dict[str, Any]] = meta.get("metrics") or {}
    candidate, baseline = str(meta.get("candidate", "")), str(meta.get("baseline", ""))
    metric = str(meta.get("metric", ""))
    if not metrics:
        return _table("metrics vs baseline (none recorded)", "metric")
    winner = winner_key(metrics, candidate, baseline)
    columns = [winner] + [k for k in metrics if k != winner]
    labels = [
        f"{candidate} (this model)" if c == winner else f"{c} (baseline)" if c == baseline else c
        for c in columns
    ]
    has_baseline = baseline in metrics and baseline != winner
    table = _table(
        "test metrics vs baseline", "metric", *labels, *(["vs baseline"] if has_baseline else [])
    )
    for name in metric_names(meta.get("task", "regression")):
        if not any(name in metrics[c] for c in columns):
            continue
        row = [f"[bold]{name}[/]" if name == metric else name]
        row += [_fmt(metrics[c].get(name)) for c in columns]
        if has_baseline:
            row.append(change_text(name, metrics[winner].get(name), metrics[baseline].get(name)))
        table.add_row(*row)
    return table


def _comparison_table(outcome: Comparison, how: str) -> Table:
    from modelcycle.metrics import metric_names

    first, second = outcome.refs
    table = _table(f"{first} vs {second}", "metric", first, second, "better")
    table.caption = f"{outcome.rows:,} test rows ({how})"
    for name in metric_names(outcome.task):
        better = outcome.better(name)
        row = [
            f"[bold]{name}[/] (deciding)" if name == outcome.metric else name,
            _fmt(outcome.metrics[first].get(name)),
            _fmt(outcome.metrics[second].get(name)),
            better or "tie",
        ]
        table.add_row(*row)
    return table


def _summary_json(model: ModelSummary) -> dict[str, Any]:
    return {
        "name": model.name,
        "versions": model.versions,
        "latest": model.latest,
        "aliases": model.aliases,
        "metric": model.metric,
        "metric_value": model.metric_value,
        "candidate": model.candidate,
        "updated": model.updated.isoformat() if model.updated else None,
    }


def _version_json(info: VersionInfo) -> dict[str, Any]:
    return {
        "name": info.name,
        "version": info.version,
        "aliases": info.aliases,
        "created": info.created.isoformat() if info.created else None,
        "run_id": info.run_id,
        "tags": info.tags,
        "info": info.info,
        "manifest": info.bundle.manifest,
        "features": [{"name": c.name, "kind": c.kind} for c in info.bundle.schema.features],
    }


def _comparison_json(outcome: Comparison) -> dict[str, Any]:
    from modelcycle.registry.manifest import json_ready

    return {
        "refs": list(outcome.refs),
        "task": outcome.task,
        "metric": outcome.metric,
        "rows": outcome.rows,
        "metrics": json_ready(outcome.metrics),
        "better": {name: outcome.better(name) for name in outcome.metrics[outcome.refs[0]]},
    }
