"""``modelcycle init``: scaffold a project folder with a commented spec, from an example or data."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

import pandas as pd

from modelcycle.config.settings import settings_fields
from modelcycle.config.spec import DEFAULT_METRIC, SPEC_FILENAME, parse_spec
from modelcycle.data.io import read_table
from modelcycle.data.schema import FeatureSchema, infer_task, missing_column_error
from modelcycle.errors import ProjectError

EXAMPLES = ("rent", "rent-default")
Example = Literal["rent", "rent-default"]
GITIGNORE = """\
# modelcycle project: data, stores, logs and secrets stay out of git
.env
data/
reports/
logs/
.modelcycle/
mlruns/
*.db
"""
_ID_NAMES = re.compile(r"(^id$|_id$|^id_|uuid|^key$)", re.IGNORECASE)
_TIME_NAMES = re.compile(r"(date|time|timestamp|_at$|^ts$)", re.IGNORECASE)


@dataclass(frozen=True)
class Scaffold:
    """What ``init`` wrote."""

    root: Path
    files: list[Path]
    data_path: Path | None
    spec_text: str


def q(value: str) -> str:
    """A TOML basic string for ``value`` (JSON string escapes are valid TOML)."""
    return json.dumps(value, ensure_ascii=False)


def env_example() -> str:
    """The ``.env.example`` text: every setting with its default and a comment."""
    lines = [
        "# modelcycle settings. Copy to .env (never commit .env) and uncomment what you change.",
        "# Unset paths and URLs are derived from the project folder.",
        "",
    ]
    for var, default, description in settings_fields():
        shown = "" if default is None else str(default)
        lines += [f"# {description}", f"# {var}={shown}", ""]
    return "\n".join(lines)


def spec_reference() -> str:
    """``docs/spec.md``: every key of ``modelcycle.toml``, section by section, from the models."""
    from pydantic import BaseModel

    from modelcycle.config.spec import ProjectSpec

    lines = [
        "# The project spec: every key of `modelcycle.toml`",
        "",
        "Generated from the pydantic models in `src/modelcycle/config/spec.py` by",
        "`modelcycle.scaffold.spec_reference()` (a test keeps this page in sync). The stage pages",
        "explain the choices behind the defaults.",
    ]

    def section(title: str, model: type[BaseModel]) -> None:
        rows, nested = [], []
        for key, info in model.model_fields.items():
            annotation = info.annotation
            if isinstance(annotation, type) and issubclass(annotation, BaseModel):
                nested.append((f"{title}.{key}" if title else key, annotation))
                continue
            if info.is_required():
                default = "required"
            elif info.default_factory is not None:
                made = info.default_factory()  # type: ignore[call-arg]
                default = f"`{json.dumps(made, default=str)}`"
            else:
                default = f"`{json.dumps(info.default, default=str)}`"
            text = (info.description or "").replace("|", "\\|")
            rows.append(f"| `{key}` | {default} | {text} |")
        if rows:
            lines.extend(["", f"## `[{title}]`" if title else "## top level", ""])
            lines.extend(["| key | default | meaning |", "| --- | --- | --- |", *rows])
        for name, inner in nested:
            section(name, inner)

    section("", ProjectSpec)
    return "\n".join(lines) + "\n"


def rent_spec(data_path: str, name: str = "rent") -> str:
    """The commented spec of the running example: monthly rent of an apartment."""
    year = datetime.now(UTC).year
    return f"""\
# modelcycle project spec — every key is described in docs/spec.md
name = {q(name)}
target = "rent"                 # monthly rent in EUR
task = "regression"
metric = "mae"                  # the metric that decides between models
drop = ["address"]              # free text: never a feature

[data]
path = {q(data_path)}

[split]
method = "random"               # random | stratified | time | group
test_size = 0.2
valid_size = 0.2
seed = 42

[training]
candidates = ["linear", "rf", "hgb", "lgbm"]
budget = "20 trials"            # or a duration: "120s", "5m"
margin = 0.02                   # beat the best baseline by 2% on the metric to be registered
increasing = ["area"]           # more area never lowers the predicted rent

[validation]
null_spike = 0.1                # null-rate increase vs the schema that is an error
invalid_share = 0.01            # share of impossible values in a column that is an error

# Impossible values: checked on every dataset, before training and scoring.
[validation.columns.construction_year]
min = 1800
max = {year}

[validation.columns.area]
min = 10
max = 1000

[validation.columns.rent]
min = 100

[validation.columns.rooms]
min = 1

[validation.columns.energy]
allowed = ["A", "B", "C", "D", "E", "F", "G"]
{LIFECYCLE_SECTIONS}"""


LIFECYCLE_SECTIONS = """
[deployment]                    # how `modelcycle deploy` rolls out a version: docs/deployment.md
strategy = "ramp"               # direct | canary | ramp | blue-green | shadow
steps = [5, 25, 50, 100]        # percent of traffic at each ramp step
step_duration = "10m"           # least time at each step
min_requests = 200              # least candidate requests at each step
failure_limit = 2               # failed evaluations in a row that roll back automatically
evaluation_interval = "15s"     # how often the controller evaluates a running rollout

[deployment.gates]              # the candidate fails a gate when it is worse than stable by
max_error_rate_increase = 0.01  # more errors (and significantly so)
max_latency_ratio = 2.0         # a slower p99
max_prediction_psi = 0.25       # differently distributed predictions
metric_margin = 0.05            # a worse realised metric, once labels arrive (and significantly)

[monitoring]                    # `modelcycle monitor run` and `watch`: docs/monitoring.md
window = "1h"                   # the traffic each run judges
every = "5m"                    # how often `watch` / `monitor watch` run it
min_rows = 200                  # fewer answered rows: drift is not judged

[monitoring.alerts]             # an alert opens when a run finds
ood_rate = 0.05                 # this share of out-of-distribution rows (critical from 0.2)
metric_drop = 0.1               # the realised metric 10% worse than at training (critical 0.25)
error_rate = 0.01               # this share of failed predictions
p99_latency_ms = 250            # a slower p99 latency

[retraining]                    # `modelcycle retrain` and `watch`: docs/retraining.md
auto = true                     # `watch` retrains when a trigger fires
on_drift = true                 # an open drift alert triggers
on_metric_drop = true           # an open metric-drop alert triggers
# schedule = "7d"               # also on a schedule: an interval or a cron line ("0 3 * * 1")
cooldown = "1h"                 # least time between two retrains
recent_window = "7d"            # labelled production rows of this period join the training
min_improvement = 0.0           # the challenger must beat the champion on recent rows by this
deploy = "ramp"                 # how a winner goes live (a strategy above), or "none"
"""
"""The ``[deployment]``, ``[monitoring]`` and ``[retraining]`` sections every template ends with."""


def default_spec(data_path: str, name: str = "rent_default") -> str:
    """The commented spec of the imbalanced classification example: will the tenant pay late."""
    return f"""\
# modelcycle project spec — every key is described in docs/spec.md
name = {q(name)}
target = "late_payment"         # 1 = the tenant paid late (about 6% of tenants)
task = "classification"
metric = "pr_auc"               # suits a rare positive class
id_column = "tenant_id"
time_column = "contract_start"

[data]
path = {q(data_path)}

[split]
method = "stratified"           # keeps the 6% positives in every part
test_size = 0.2
valid_size = 0.2
seed = 42

[imbalance]
strategy = "class_weight"       # none | class_weight | random_over | random_under | smote
{LIFECYCLE_SECTIONS}"""


def spec_from_data(frame: pd.DataFrame, data_path: str, target: str, name: str) -> str:
    """A commented spec filled in from a dataset: target, task, metric, id and time columns."""
    if target not in frame.columns:
        raise missing_column_error(target, frame.columns, "target")
    task = infer_task(frame[target])
    schema = FeatureSchema.infer(frame, target=target, task=task)
    id_column = next(
        (
            c.name
            for c in schema.columns
            if c.role != "target" and _ID_NAMES.search(c.name) and c.n_unique >= 0.9 * len(frame)
        ),
        None,
    )
    time_column = next(
        (
            c.name
            for c in schema.columns
            if c.role != "target"
            and c.name != id_column
            and (c.kind == "datetime" or (_TIME_NAMES.search(c.name) and c.kind != "numeric"))
        ),
        None,
    )
    named = {id_column, time_column}
    drop = [c.name for c in schema.columns if c.kind == "text" and c.name not in named]
    lines = [
        "# modelcycle project spec — every key is described in docs/spec.md",
        f"# Filled in from {data_path!r}: check each inferred value.",
        f"name = {q(name)}",
        f"target = {q(target)}",
        f'task = "{task}"              # inferred from the target',
        f'metric = "{DEFAULT_METRIC[task]}"  # the metric that decides between models',
    ]
    lines.append(
        f"id_column = {q(id_column)}" if id_column else '# id_column = ""   # none recognised'
    )
    lines.append(
        f"time_column = {q(time_column)}"
        if time_column
        else '# time_column = ""  # none recognised'
    )
    shown = ", ".join(q(d) for d in drop)
    lines.append(f"drop = [{shown}]   # free-text columns are never features")
    method = "stratified" if task == "classification" else ("time" if time_column else "random")
    lines += [
        "",
        "[data]",
        f"path = {q(data_path)}",
        "",
        "[split]",
        f'method = "{method}"',
        "test_size = 0.2",
        "valid_size = 0.2",
        "seed = 42",
    ]
    return "\n".join(lines) + "\n" + LIFECYCLE_SECTIONS


def project_readme(name: str) -> str:
    """The short README of a new project."""
    return f"""\
# {name}

A [modelcycle](https://pypi.org/project/modelcycle/) project. Next steps:

```bash
modelcycle data validate          # check the data against the spec
modelcycle data eda               # explore it: reports/eda.html
modelcycle data split             # train / valid / test parts in data/splits/
```

`modelcycle.toml` is the project spec; `.env.example` lists every runtime setting.
"""


def init_project(
    root: Path,
    *,
    example: Example | None = None,
    data: Path | None = None,
    target: str | None = None,
    rows: int = 5000,
    seed: int = 42,
    force: bool = False,
) -> Scaffold:
    """Create a project folder.

    Args:
        root: The folder to create or fill.
        example: Scaffold a running example and generate its data.
        data: The user's dataset (with ``target``) to fill the spec from.
        target: The target column of ``data``.
        rows: Rows of generated example data.
        seed: Seed of generated example data.
        force: Overwrite existing files.

    Raises:
        ProjectError: Files would be overwritten without ``force``, or the options conflict.
    """
    if example and data:
        raise ProjectError("give either --example or --data, not both", "pick one")
    if data is not None and not target:
        raise ProjectError("--data needs --target COLUMN", "name the column to predict")
    root = root.expanduser().resolve()
    name = _project_name(root, example)
    data_path: Path | None = None
    if example == "rent":
        data_path = root / "data" / "rent_apartments.csv"
        spec = rent_spec("data/rent_apartments.csv", name)
    elif example == "rent-default":
        data_path = root / "data" / "rent_default.csv"
        spec = default_spec("data/rent_default.csv", name)
    elif data is not None:
        data = data.expanduser().resolve()
        shown = str(data.relative_to(root)) if data.is_relative_to(root) else str(data)
        spec = spec_from_data(read_table(data).frame, shown, target or "", name)
    else:
        spec = _blank_spec(name)
    files = {
        root / SPEC_FILENAME: spec,
        root / ".env.example": env_example(),
        root / ".gitignore": GITIGNORE,
        root / "README.md": project_readme(name),
    }
    existing = [p for p in files if p.exists()]
    if data_path is not None and data_path.exists():
        existing.append(data_path)
    if existing and not force:
        shown_files = ", ".join(str(p.relative_to(root)) for p in existing)
        raise ProjectError(
            f"{root} already has {shown_files}",
            "use another folder, or --force to overwrite",
        )
    parse_spec(spec, where=f"generated {SPEC_FILENAME}")  # a template bug must not reach users
    for folder in ("data", "reports"):
        (root / folder).mkdir(parents=True, exist_ok=True)
    for path, text in files.items():
        path.write_text(text, encoding="utf-8")
    written = list(files)
    if data_path is not None:
        from modelcycle.data import examples
        from modelcycle.data.io import write_table

        frame = (
            examples.rent_apartments(rows=rows, seed=seed)
            if example == "rent"
            else examples.rent_default(rows=rows, seed=seed)
        )
        written.append(write_table(frame, data_path))
    return Scaffold(root=root, files=written, data_path=data_path, spec_text=spec)


def _project_name(root: Path, example: str | None) -> str:
    if example:
        return example.replace("-", "_")
    cleaned = re.sub(r"[^A-Za-z0-9_.-]+", "_", root.name).strip("_.-")
    return cleaned or "project"


def _blank_spec(name: str) -> str:
    return f"""\
# modelcycle project spec — every key is described in docs/spec.md
name = {q(name)}
target = "CHANGE_ME"            # the column to predict
# task = "regression"           # regression | classification (inferred when absent)
# metric = "mae"                # the metric that decides between models
# id_column = ""
# time_column = ""
drop = []

[data]
path = "data/CHANGE_ME.csv"     # or: url = "postgresql+psycopg://..." with table = "..."
{LIFECYCLE_SECTIONS}"""
