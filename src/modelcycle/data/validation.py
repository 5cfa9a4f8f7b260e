"""Validate a dataset against the project spec and, when given, a saved FeatureSchema.

Each problem becomes a :class:`Finding` with a severity: ``error`` (the data cannot be used as
it is), ``warning`` (usable, but look) or ``info``. Per-column value checks (impossible values
from the spec's rules, ranges and categories from the schema) run through pandera schemas
derived from the spec and the FeatureSchema; the rest are vectorised pandas checks.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd

from modelcycle.config.spec import ColumnRule, ProjectSpec
from modelcycle.data.io import Dataset
from modelcycle.data.schema import ColumnSchema, FeatureSchema, infer_task, missing_column_error
from modelcycle.errors import DataError, plural

if TYPE_CHECKING:
    from rich.console import Console

Severity = Literal["error", "warning", "info"]
SEVERITY_ORDER: dict[str, int] = {"error": 0, "warning": 1, "info": 2}
MAX_EXAMPLES = 5
OUTLIER_IQR = 3.0


@dataclass(frozen=True)
class Finding:
    """One problem found in a dataset."""

    severity: Severity
    check: str
    message: str
    column: str | None = None
    count: int | None = None
    hint: str = ""


@dataclass
class ValidationReport:
    """The findings for one dataset, most severe first."""

    source: str
    n_rows: int
    n_columns: int
    findings: list[Finding] = field(default_factory=list)

    @property
    def errors(self) -> list[Finding]:
        """Findings of severity ``error``."""
        return [f for f in self.findings if f.severity == "error"]

    @property
    def ok(self) -> bool:
        """True when there is no error (warnings are allowed)."""
        return not self.errors

    def counts(self) -> dict[str, int]:
        """Number of findings per severity."""
        return {s: sum(f.severity == s for f in self.findings) for s in SEVERITY_ORDER}

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "source": self.source,
            "rows": self.n_rows,
            "columns": self.n_columns,
            "ok": self.ok,
            "counts": self.counts(),
            "findings": [asdict(f) for f in self.findings],
        }

    def to_json(self) -> str:
        """The report as indented JSON."""
        return json.dumps(self.to_dict(), indent=2)


class _Collector:
    def __init__(self) -> None:
        self.findings: list[Finding] = []

    def add(self, severity: Severity, check: str, message: str, **kw: Any) -> None:
        self.findings.append(Finding(severity, check, message, **kw))


def validate(
    dataset: Dataset, spec: ProjectSpec, schema: FeatureSchema | None = None
) -> ValidationReport:
    """Check a dataset for everything that would make it unfit for training or scoring.

    Args:
        dataset: The data and the notes from reading it.
        spec: The project spec (target, roles, validation thresholds and column rules).
        schema: A saved schema to compare against (columns, types, ranges, categories, nulls).

    Returns:
        The report; ``report.ok`` is False when any finding is an error.
    """
    frame = dataset.frame
    out = _Collector()
    for note in dataset.notes:
        out.add("info", "read", note)
    _check_shape(frame, spec, out)
    _check_mixed_types(dataset, out)
    _check_columns(frame, spec, out)
    _check_target(frame, spec, out)
    if schema is not None:
        _check_against_schema(frame, schema, spec, out)
    _check_rules(frame, spec, out)
    _check_leakage(frame, spec, out)
    _check_outliers(frame, spec, out)
    findings = sorted(out.findings, key=lambda f: SEVERITY_ORDER[f.severity])
    return ValidationReport(dataset.source, len(frame), frame.shape[1], findings)


def _check_shape(frame: pd.DataFrame, spec: ProjectSpec, out: _Collector) -> None:
    minimum = spec.validation.min_rows
    if len(frame) < minimum:
        out.add(
            "error",
            "rows",
            f"the dataset has {len(frame)} row{'s' * (len(frame) != 1)}; at least {minimum} "
            "are needed to train and test a model",
            count=len(frame),
            hint="use more data (or lower validation.min_rows in modelcycle.toml)",
        )
    if len(frame) > 1:
        dupes = int(frame.duplicated().sum())
        if dupes:
            share = dupes / len(frame)
            severity: Severity = "error" if share > spec.validation.duplicate_rows else "warning"
            out.add(
                severity,
                "duplicates",
                f"{plural(dupes, 'duplicate row')} ({share:.1%})",
                count=dupes,
                hint="remove them at the source; training drops exact duplicates",
            )
    rates = frame.isna().mean()
    partial = rates[(rates > 0) & (rates < 1)].sort_values(ascending=False)
    if len(partial):
        shown = ", ".join(f"{name} {rate:.1%}" for name, rate in partial.items())
        out.add(
            "info",
            "missing_values",
            f"missing values in {plural(len(partial), 'column')}: {shown}",
            count=int(frame[partial.index].isna().sum().sum()),
            hint="training imputes them; a sudden rise is flagged against a saved schema",
        )
    for name in frame.columns:
        column = frame[name]
        nulls = int(column.isna().sum())
        if len(frame) and nulls == len(frame):
            out.add(
                "error",
                "all_null",
                f"column {name!r} is entirely empty",
                column=str(name),
                count=nulls,
                hint=f"fill it at the source or add {name!r} to `drop` in modelcycle.toml",
            )
        elif len(frame) > 1 and column.nunique(dropna=True) == 1 and name != spec.target:
            out.add(
                "warning",
                "constant",
                f"column {name!r} has a single value ({_scalar(column.dropna().iloc[0])!r})",
                column=str(name),
                hint="it carries no information; add it to `drop`",
            )
        if pd.api.types.is_float_dtype(column):
            infinite = int(np.isinf(column.to_numpy()).sum())
            if infinite:
                out.add(
                    "error",
                    "infinite",
                    f"column {name!r} has {plural(infinite, 'infinite value')}",
                    column=str(name),
                    count=infinite,
                    hint="replace them with real numbers or leave them empty",
                )


def _check_mixed_types(dataset: Dataset, out: _Collector) -> None:
    for name, examples in dataset.mixed_types.items():
        bad = dataset.frame[name]
        count = int(pd.to_numeric(bad, errors="coerce").isna().sum() - bad.isna().sum())
        out.add(
            "error",
            "mixed_types",
            f"column {name!r} mixes numbers and text: {plural(count, 'value')} not numbers "
            f"(e.g. {', '.join(map(repr, examples))})",
            column=name,
            count=count,
            hint="fix those values at the source, or leave them empty",
        )


def _check_columns(frame: pd.DataFrame, spec: ProjectSpec, out: _Collector) -> None:
    for name, err in missing_columns(frame, spec).items():
        out.add("error", "missing_column", err.message, column=name, hint=err.hint or "")
    for name in spec.drop:
        if name not in frame.columns:
            out.add(
                "warning",
                "missing_column",
                f"`drop` lists {name!r}, which is not in the data",
                column=name,
                hint="remove it from `drop`",
            )
    if spec.id_column in frame.columns:
        dupes = int(frame[spec.id_column].duplicated().sum())
        if dupes:
            out.add(
                "info",
                "id",
                f"id column {spec.id_column!r} repeats {dupes} times",
                column=spec.id_column,
                count=dupes,
                hint="a group split (split.method = 'group') keeps each id in one part",
            )


def _check_target(frame: pd.DataFrame, spec: ProjectSpec, out: _Collector) -> None:
    if spec.target not in frame.columns:
        return
    target = frame[spec.target]
    missing = int(target.isna().sum())
    if missing == len(frame):
        return  # reported as all_null
    if missing:
        out.add(
            "warning",
            "target_missing",
            f"target {spec.target!r} is missing on {plural(missing, 'row')} "
            f"({missing / len(frame):.1%})",
            column=spec.target,
            count=missing,
            hint="those rows cannot be used for training and are dropped",
        )
    task = spec.task or infer_task(target)
    if task == "regression" and not pd.api.types.is_numeric_dtype(target):
        out.add(
            "error",
            "target_type",
            f"target {spec.target!r} is not numeric, but the task is regression",
            column=spec.target,
            hint="set task = 'classification' or clean the target",
        )
    if task == "classification":
        classes = target.dropna().nunique()
        if classes < 2:
            out.add(
                "error",
                "single_class",
                f"target {spec.target!r} has a single class ({_scalar(target.dropna().iloc[0])!r})",
                column=spec.target,
                hint="a classifier needs at least two classes in the data",
            )


def _check_against_schema(
    frame: pd.DataFrame, schema: FeatureSchema, spec: ProjectSpec, out: _Collector
) -> None:
    expected = {c.name: c for c in schema.columns if c.role != "ignored"}
    for name, col in expected.items():
        if name not in frame.columns:
            severity: Severity = "error" if col.role in ("feature", "target") else "warning"
            err = missing_column_error(name, frame.columns, "schema")
            out.add(
                severity,
                "missing_column",
                f"{col.role} column {name!r} from the schema is missing",
                column=name,
                hint=err.hint or "",
            )
    extra = [str(c) for c in frame.columns if c not in set(schema.names)]
    if extra:
        out.add(
            "warning",
            "extra_columns",
            f"columns not in the schema: {', '.join(extra)}",
            hint="they are ignored; regenerate the schema if they should be features",
        )
    for name, col in expected.items():
        if name not in frame.columns:
            continue
        column = frame[name]
        if col.kind == "numeric" and not pd.api.types.is_numeric_dtype(column):
            out.add(
                "error",
                "type",
                f"column {name!r} should hold numbers but holds {column.dtype} values "
                f"(e.g. {_examples(column)})",
                column=name,
                hint="fix the values at the source",
            )
        rate = float(column.isna().mean()) if len(frame) else 0.0
        if rate - col.null_rate > spec.validation.null_spike:
            out.add(
                "error",
                "null_spike",
                f"column {name!r} is {rate:.0%} empty, against {col.null_rate:.0%} in the schema",
                column=name,
                count=int(column.isna().sum()),
                hint="check the upstream source of this column",
            )
    _run_pandera(frame, _schema_checks(frame, schema), "warning", out)


def _schema_checks(frame: pd.DataFrame, schema: FeatureSchema) -> dict[str, Any]:
    """Pandera columns for the ranges and categories seen when the schema was made."""
    import pandera.pandas as pa

    columns: dict[str, Any] = {}
    for col in schema.columns:
        if col.role not in ("feature", "target") or col.name not in frame.columns:
            continue
        checks = _value_checks(col, frame[col.name])
        if checks:
            columns[col.name] = pa.Column(checks=checks, nullable=True, coerce=False)
    return columns


def _value_checks(col: ColumnSchema, column: pd.Series) -> list[Any]:
    import pandera.pandas as pa

    if col.kind == "numeric" and pd.api.types.is_numeric_dtype(column):
        if col.min is None or col.max is None:
            return []
        return [
            pa.Check.in_range(
                col.min,
                col.max,
                error=f"outside the schema's range [{col.min:g}, {col.max:g}]",
            )
        ]
    if col.kind in ("categorical", "boolean") and col.categories and col.other_share == 0:
        known = list(col.categories)
        return [
            pa.Check(
                lambda s, known=known: s.astype("string").isin(known),
                error="category not seen when the schema was made",
            )
        ]
    return []


def _check_rules(frame: pd.DataFrame, spec: ProjectSpec, out: _Collector) -> None:
    import pandera.pandas as pa

    columns: dict[str, Any] = {}
    for name, rule in spec.validation.columns.items():
        if name not in frame.columns:
            out.add(
                "warning",
                "missing_column",
                f"validation.columns names {name!r}, which is not in the data",
                column=name,
                hint="fix the name in modelcycle.toml",
            )
            continue
        checks = _rule_checks(rule, frame[name])
        if not rule.nullable and frame[name].isna().any():
            count = int(frame[name].isna().sum())
            out.add(
                "error",
                "nullable",
                f"column {name!r} must not be empty but is on {plural(count, 'row')}",
                column=name,
                count=count,
                hint="fill the values at the source",
            )
        if checks:
            columns[name] = pa.Column(checks=checks, nullable=True, coerce=False)
    _run_pandera(frame, columns, "impossible", out, max_share=spec.validation.invalid_share)


def rule_violations(column: pd.Series, rule: ColumnRule) -> pd.Series:
    """Which values break a ``[validation.columns]`` rule (missing values never do)."""
    bad = pd.Series(False, index=column.index)
    if pd.api.types.is_numeric_dtype(column):
        if rule.min is not None:
            bad |= column < rule.min
        if rule.max is not None:
            bad |= column > rule.max
    if rule.allowed is not None:
        bad |= column.notna() & ~column.astype("string").isin(rule.allowed)
    return bad.fillna(False).astype(bool)


def _rule_checks(rule: ColumnRule, column: pd.Series) -> list[Any]:
    import pandera.pandas as pa

    checks = []
    numeric = pd.api.types.is_numeric_dtype(column)
    if numeric and rule.min is not None:
        checks.append(pa.Check.ge(rule.min, error=f"below the minimum {rule.min:g}"))
    if numeric and rule.max is not None:
        checks.append(pa.Check.le(rule.max, error=f"above the maximum {rule.max:g}"))
    if rule.allowed is not None:
        allowed = list(rule.allowed)
        checks.append(
            pa.Check(
                lambda s, allowed=allowed: s.astype("string").isin(allowed),
                error=f"not one of {', '.join(allowed)}",
            )
        )
    return checks


def _run_pandera(
    frame: pd.DataFrame,
    columns: dict[str, Any],
    mode: Literal["warning", "impossible"],
    out: _Collector,
    max_share: float = 0.0,
) -> None:
    """Run pandera lazily on ``columns`` and turn failure cases into one finding per check."""
    if not columns:
        return
    import pandera.pandas as pa
    from pandera.errors import SchemaErrors

    subset = frame[list(columns)]
    try:
        pa.DataFrameSchema(columns, strict=False).validate(subset, lazy=True)
        return
    except SchemaErrors as err:
        cases = err.failure_cases
    cases = cases[cases["index"].notna()]
    for (column, check), group in cases.groupby(["column", "check"], sort=False):
        count = int(group["index"].nunique())
        share = count / len(frame)
        examples = ", ".join(_show(v) for v in pd.unique(group["failure_case"])[:MAX_EXAMPLES])
        severity: Severity = "warning"
        if mode == "impossible":
            code, hint = (
                "impossible_value",
                "fix them at the source; training treats them as missing",
            )
            severity = "error" if share > max_share else "warning"
        else:
            code = "unseen_category" if "category" in str(check) else "out_of_range"
            hint = "the model has not seen such values; monitoring will flag them"
        out.add(
            severity,
            code,
            f"column {column!r}: {plural(count, 'value')} ({share:.2%}) {check} (e.g. {examples})",
            column=str(column),
            count=count,
            hint=hint,
        )


def _check_leakage(frame: pd.DataFrame, spec: ProjectSpec, out: _Collector) -> None:
    if spec.target not in frame.columns:
        return
    target = frame[spec.target]
    if not pd.api.types.is_numeric_dtype(target):
        if target.dropna().nunique() != 2:
            return
        target = (target == target.dropna().iloc[0]).astype("float64").where(target.notna())
    skip = {spec.target, spec.id_column, spec.time_column, *spec.drop}
    numeric = [
        c
        for c in frame.columns
        if c not in skip
        and pd.api.types.is_numeric_dtype(frame[c])
        and not pd.api.types.is_bool_dtype(frame[c])
    ]
    if not numeric or target.nunique() < 2:
        return
    with np.errstate(all="ignore"):
        corr = frame[numeric].corrwith(target.astype("float64")).abs()
    for name, value in corr[corr >= spec.validation.leakage_correlation].items():
        out.add(
            "warning",
            "leakage",
            f"column {name!r} is almost perfectly correlated with the target ({value:.3f})",
            column=str(name),
            hint="check it is known at prediction time; if not, add it to `drop`",
        )


def _show(value: Any) -> str:
    """A value for a message: numbers as numbers (1066, not '1066.0'), text quoted."""
    value = _scalar(value)
    if isinstance(value, float | int) and not isinstance(value, bool):
        return f"{value:g}"
    return repr(str(value))


def _scalar(value: Any) -> Any:
    """A numpy scalar as its plain Python value, for readable messages."""
    return value.item() if isinstance(value, np.generic) else value


def _check_outliers(frame: pd.DataFrame, spec: ProjectSpec, out: _Collector) -> None:
    """Extreme values: beyond ``OUTLIER_IQR`` interquartile ranges from the quartiles."""
    skip = {spec.id_column, spec.time_column, *spec.drop}
    numeric = [
        c
        for c in frame.columns
        if c not in skip
        and pd.api.types.is_numeric_dtype(frame[c])
        and not pd.api.types.is_bool_dtype(frame[c])
    ]
    if len(frame) < 20 or not numeric:
        return
    values = frame[numeric].astype("float64")
    q1, q3 = values.quantile(0.25), values.quantile(0.75)
    iqr = q3 - q1
    low, high = q1 - OUTLIER_IQR * iqr, q3 + OUTLIER_IQR * iqr
    extreme = (values.lt(low) | values.gt(high)) & iqr.gt(0)
    for name in numeric:
        mask = extreme[name]
        count = int(mask.sum())
        if not count:
            continue
        column = values[name]
        worst = column[mask].abs().nlargest(3).index
        shown = ", ".join(f"{v:g}" for v in column[worst])
        out.add(
            "warning" if name == spec.target else "info",
            "outliers",
            f"column {name!r}: {plural(count, 'extreme value')} ({count / len(frame):.2%}) beyond "
            f"{OUTLIER_IQR:g}×IQR of the quartiles [{low[name]:g}, {high[name]:g}] "
            f"(e.g. {shown})",
            column=str(name),
            count=count,
            hint="check for typos or unit errors; tree models tolerate them, linear ones less",
        )


def _examples(column: pd.Series) -> str:
    return ", ".join(map(repr, column.dropna().unique()[:MAX_EXAMPLES].tolist()))


def missing_columns(frame: pd.DataFrame, spec: ProjectSpec) -> dict[str, DataError]:
    """The columns the spec names (target, id, time) that the data lacks, with their errors."""
    named = {"target": spec.target, "id_column": spec.id_column, "time_column": spec.time_column}
    return {
        name: missing_column_error(name, frame.columns, label)
        for label, name in named.items()
        if name is not None and name not in frame.columns
    }


def require_columns(frame: pd.DataFrame, spec: ProjectSpec) -> None:
    """Stop early when a column the spec names (target, id, time) is not in the data.

    Raises:
        DataError: The first missing column, with the closest existing name.
    """
    for err in missing_columns(frame, spec).values():
        raise err


SEVERITY_STYLE = {"error": "bold red", "warning": "yellow", "info": "dim"}


def render_findings(report: ValidationReport, console: Console, least: Severity = "info") -> None:
    """Print the findings at least as severe as ``least`` as a Rich table, then a summary."""
    from rich.table import Table

    shown = [f for f in report.findings if SEVERITY_ORDER[f.severity] <= SEVERITY_ORDER[least]]
    if shown:
        table = Table(title=f"validation of {report.source}", show_lines=False)
        table.add_column("severity")
        table.add_column("check")
        table.add_column("finding", overflow="fold")
        table.add_column("fix", overflow="fold", style="dim")
        for f in shown:
            style = SEVERITY_STYLE[f.severity]
            table.add_row(f"[{style}]{f.severity}[/]", f.check, f.message, f.hint)
        console.print(table)
    counts = report.counts()
    verdict = "[bold green]OK[/]" if report.ok else "[bold red]FAILED[/]"
    console.print(
        f"{verdict}: {counts['error']} errors, {counts['warning']} warnings, "
        f"{counts['info']} notes on {report.n_rows:,} rows"
    )


def write_html_report(report: ValidationReport, path: Path) -> Path:
    """Write the findings as a self-contained HTML page."""
    from modelcycle.htmlreport import Card, Cell, Page

    counts = report.counts()
    page = Page("Data validation", subtitle=report.source)
    summary = page.section("Summary")
    summary.cards(
        [
            Card(
                "verdict", "OK" if report.ok else "FAILED", severity="ok" if report.ok else "error"
            ),
            Card("rows", report.n_rows),
            Card("columns", report.n_columns),
            Card("errors", counts["error"], severity="error" if counts["error"] else "ok"),
            Card("warnings", counts["warning"], severity="warning" if counts["warning"] else "ok"),
            Card("notes", counts["info"]),
        ]
    )
    findings = page.section("Findings", intro="Most severe first.")
    if report.findings:
        findings.table(
            [
                [Cell(f.severity, severity=f.severity), f.check, f.column or "", f.message, f.hint]
                for f in report.findings
            ],
            columns=["severity", "check", "column", "finding", "fix"],
        )
    else:
        findings.callout("No problems found.", "ok")
    return page.write(path)
