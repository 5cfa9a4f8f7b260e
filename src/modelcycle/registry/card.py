"""The model card: a Markdown page that says what a registered model is for and how good it is.

Sections: intended use, data (rows, digest, source, features and their kinds), metrics vs the
baseline, the worst slices by the deciding metric, the decision threshold, limitations, and the
library versions the model was built with. The card is a bundle file, so its digest is checked
like every other part.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

from modelcycle.metrics import higher_is_better, improvement, metric_names
from modelcycle.registry.bundle import ModelBundle

WORST_SLICES = 5
"""How many slices the card lists (the worst by the deciding metric)."""
ABSOLUTE_CHANGE = frozenset(
    {"r2", "roc_auc", "pr_auc", "f1", "precision", "recall", "balanced_accuracy", "brier"}
)
"""Bounded metrics whose change vs the baseline is shown in absolute points, not percent."""


def winner_key(metrics: dict[str, dict[str, Any]], candidate: str, baseline: str) -> str:
    """The key of the registered model's own scores in a bundle's ``metrics``.

    ``model`` when present, else the candidate's name, else the first key that is not the
    baseline.
    """
    for key in ("model", candidate):
        if key in metrics:
            return key
    others = [k for k in metrics if k != baseline]
    return others[0] if others else baseline


def format_value(value: Any) -> str:
    """A metric value for a table: 4 significant digits, ``–`` when missing."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    if isinstance(value, float):
        return f"{value:,.4g}" if abs(value) < 1e6 else f"{value:,.0f}"
    return str(value)


def worst_slices(
    slices: list[dict[str, Any]], metric: str, n: int = WORST_SLICES
) -> list[dict[str, Any]]:
    """The ``n`` slices with the worst value of ``metric`` (slices without it are left out)."""

    def value(row: dict[str, Any]) -> float | None:
        raw = row.get(metric)
        if raw is None:
            return None
        number = float(raw)
        return number if math.isfinite(number) else None

    scored = [row for row in slices if value(row) is not None]
    scored.sort(key=lambda row: value(row) or 0.0, reverse=not higher_is_better(metric))
    return scored[:n]


def render_card(
    bundle: ModelBundle,
    *,
    libraries: dict[str, str],
    version: int | None = None,
    created_at: datetime | None = None,
) -> str:
    """The model card of ``bundle`` as Markdown.

    Args:
        bundle: The trained model.
        libraries: Library versions (see :func:`~modelcycle.registry.manifest.library_versions`).
        version: The registered version, when known.
        created_at: When the bundle was written; now when ``None``.
    """
    created = (created_at or datetime.now(UTC)).strftime("%Y-%m-%d %H:%M UTC")
    title = f"{bundle.name} v{version}" if version is not None else bundle.name
    schema = bundle.schema
    target = schema.target or "the target"
    kind = "regression" if bundle.task == "regression" else "classification"
    lines = [
        f"# Model card: {title}",
        "",
        f"Registered by modelcycle on {created}. Candidate: **{bundle.candidate}**; "
        f"deciding metric: **{bundle.metric}** "
        f"({'higher' if higher_is_better(bundle.metric) else 'lower'} is better).",
        "",
        "## Intended use",
        "",
        f"Predicts `{target}` ({kind}) from the {len(schema.feature_names)} features listed "
        "below, one row per prediction, for rows that come from the same population as the "
        "training data. It is a decision aid: check its predictions against the limitations below "
        "and monitor it in production (drift, out-of-distribution rows, realised metrics).",
        "",
        "## Data",
        "",
        f"- Training rows: {bundle.training_rows:,}",
        f"- Rows profiled in the schema: {schema.n_rows:,}",
        f"- Source: {schema.source or '(not recorded)'}",
        f"- Data digest: `{bundle.data_digest or '(not recorded)'}`",
        f"- Spec hash: `{bundle.spec_hash or '(not recorded)'}`",
        f"- Schema fingerprint: `{schema.fingerprint}`",
        "",
        "| feature | kind | missing | range / top values |",
        "| --- | --- | --- | --- |",
    ]
    for col in schema.features:
        if col.kind == "numeric" and col.min is not None and col.max is not None:
            shape = f"{col.min:g} … {col.max:g}"
        else:
            shape = ", ".join(list(col.categories)[:4]) or "–"
        lines.append(f"| {col.name} | {col.kind} | {col.null_rate:.1%} | {_cell(shape)} |")
    ignored = [c for c in schema.columns if c.role not in ("feature", "target")]
    if ignored:
        lines += [
            "",
            "Not used as features: "
            + ", ".join(
                f"`{c.name}` ({c.role}{': ' + c.reason if c.reason else ''})" for c in ignored
            )
            + ".",
        ]
    lines += ["", *_metrics_section(bundle), "", *_slices_section(bundle)]
    lines += ["", "## Decision threshold", ""]
    if bundle.task == "classification" and bundle.threshold is not None:
        positive = bundle.classes[1] if bundle.classes and len(bundle.classes) > 1 else "positive"
        lines.append(
            f"A row is predicted `{positive}` when its probability is at least "
            f"**{bundle.threshold:.4g}** (tuned on validation data for {bundle.metric})."
        )
    elif bundle.task == "classification":
        lines.append("The class with the highest probability is predicted.")
    else:
        lines.append("Not applicable (regression).")
    lines += ["", "## Limitations", "", *_limitations(bundle)]
    lines += ["", "## Library versions", "", "| library | version |", "| --- | --- |"]
    lines += [f"| {name} | {ver} |" for name, ver in libraries.items()]
    return "\n".join(lines) + "\n"


def _metrics_section(bundle: ModelBundle) -> list[str]:
    metrics = bundle.metrics
    if not metrics:
        return ["## Metrics vs baseline", "", "No test metrics were recorded."]
    winner = winner_key(metrics, bundle.candidate, bundle.baseline)
    columns = [winner] + [k for k in metrics if k != winner]
    names = [m for m in metric_names(bundle.task) if any(m in metrics[c] for c in columns)]
    has_baseline = bundle.baseline in metrics and bundle.baseline != winner
    header = ["metric", *[_label(c, winner, bundle) for c in columns]]
    if has_baseline:
        header.append(f"vs {bundle.baseline}")
    lines = [
        "## Metrics vs baseline",
        "",
        "On the untouched test part of the data.",
        "",
        "| " + " | ".join(header) + " |",
        "| " + " | ".join("---" for _ in header) + " |",
    ]
    for name in names:
        mark = f"**{name}**" if name == bundle.metric else name
        row = [mark, *[format_value(metrics[c].get(name)) for c in columns]]
        if has_baseline:
            row.append(
                change_text(name, metrics[winner].get(name), metrics[bundle.baseline].get(name))
            )
        lines.append("| " + " | ".join(row) + " |")
    return lines


def _label(column: str, winner: str, bundle: ModelBundle) -> str:
    if column == winner:
        return f"{bundle.candidate} (this model)"
    if column == bundle.baseline:
        return f"{column} (baseline)"
    return column


def change_text(metric: str, model: Any, baseline: Any) -> str:
    """How much better ``model`` is than ``baseline`` on ``metric``, e.g. ``+41.2% better``.

    Bounded scores (R², AUCs, F1, ...) change by absolute points (a relative change against a
    baseline near 0 means nothing); error metrics change relatively.
    """
    try:
        value, ref = float(model), float(baseline)
    except (TypeError, ValueError):
        return "–"
    if not (math.isfinite(value) and math.isfinite(ref)):
        return "–"
    if metric in ABSOLUTE_CHANGE:
        gain = value - ref if higher_is_better(metric) else ref - value
        shown = f"{gain:+.3g}"
    else:
        gain = improvement(metric, value, ref)
        shown = f"{gain:+.1%}"
    return f"{shown} {'better' if gain > 0 else 'worse' if gain < 0 else 'same'}"


def _slices_section(bundle: ModelBundle) -> list[str]:
    lines = [f"## Slices (worst {WORST_SLICES} by {bundle.metric})", ""]
    worst = worst_slices(bundle.slices, bundle.metric)
    if not worst:
        return [*lines, "No slice metrics were recorded (no categorical features, or few rows)."]
    lines += [
        f"| feature | value | rows | {bundle.metric} |",
        "| --- | --- | --- | --- |",
    ]
    for row in worst:
        lines.append(
            f"| {_cell(row.get('feature', ''))} | {_cell(row.get('value', ''))} | "
            f"{format_value(row.get('count'))} | {format_value(row.get(bundle.metric))} |"
        )
    return lines


def _limitations(bundle: ModelBundle) -> list[str]:
    schema = bundle.schema
    items = [
        "- Trained on historical data: predictions degrade when the population drifts away "
        "from it; values outside the training ranges above are extrapolations.",
        "- Unseen categories are treated as unknown; rows with many of them are out of "
        "distribution.",
    ]
    missing = [c.name for c in schema.features if c.null_rate > 0.05]
    if missing:
        items.append(f"- Often missing in training (>5 %): {', '.join(missing)}; imputed values.")
    high = [c.name for c in schema.features if c.high_cardinality]
    if high:
        items.append(f"- High-cardinality features: {', '.join(high)}.")
    if bundle.training_rows < 1000:
        items.append(
            f"- Small training set ({bundle.training_rows:,} rows): expect wide error bars."
        )
    return items


def _cell(value: Any) -> str:
    return str(value).replace("|", "\\|").replace("\n", " ")
