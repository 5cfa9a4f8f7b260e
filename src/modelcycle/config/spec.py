"""The project spec, ``modelcycle.toml``: what the project predicts, from which data, and how.

The spec is a pydantic model. Unknown keys are errors with a "did you mean" hint, and every
problem names its key and the fix. Later lifecycle stages add their own sections.
"""

from __future__ import annotations

import hashlib
import re
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from modelcycle.config.errors import validation_error_to_config_error
from modelcycle.errors import ConfigError, ProjectError

SPEC_FILENAME = "modelcycle.toml"

Task = Literal["regression", "classification"]
REGRESSION_METRICS = ("mae", "rmse", "r2", "mape")
CLASSIFICATION_METRICS = (
    "roc_auc",
    "pr_auc",
    "f1",
    "precision",
    "recall",
    "balanced_accuracy",
    "log_loss",
    "brier",
)
DEFAULT_METRIC: dict[str, str] = {"regression": "mae", "classification": "roc_auc"}
METRICS: dict[str, tuple[str, ...]] = {
    "regression": REGRESSION_METRICS,
    "classification": CLASSIFICATION_METRICS,
}
NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")


def metric_error(metric: str, task: str | None) -> None:
    """Raise ``ValueError`` when ``metric`` is unknown, or does not fit ``task``."""
    allowed = METRICS[task] if task else REGRESSION_METRICS + CLASSIFICATION_METRICS
    if metric in allowed:
        return
    if task and metric in REGRESSION_METRICS + CLASSIFICATION_METRICS:
        raise ValueError(
            f"metric {metric!r} does not fit task {task}; use one of {', '.join(allowed)}"
        )
    raise ValueError(f"unknown metric {metric!r}; use one of {', '.join(allowed)}")


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DataSource(_Section):
    """Where the project's data comes from: a file, or a SQL table or query."""

    path: Path | None = Field(default=None, description="CSV or Parquet file, relative to project.")
    url: str | None = Field(default=None, description="SQLAlchemy URL of a database.")
    table: str | None = Field(default=None, description="Table to read (with url).")
    query: str | None = Field(default=None, description="SQL query to read (with url).")
    delimiter: str | None = Field(default=None, description="CSV delimiter; sniffed when absent.")
    encoding: str | None = Field(default=None, description="Text encoding; sniffed when absent.")

    @model_validator(mode="after")
    def _one_source(self) -> DataSource:
        if (self.path is None) == (self.url is None):
            raise ValueError("give exactly one of `data.path` or `data.url`")
        if self.url is not None and (self.table is None) == (self.query is None):
            raise ValueError("with `data.url`, give exactly one of `data.table` or `data.query`")
        return self


class SplitSpec(_Section):
    """How the data is split into train, validation and test parts."""

    method: Literal["auto", "random", "stratified", "time", "group"] = Field(
        default="auto",
        description="auto: stratified for classification, time when a time column exists, "
        "else random.",
    )
    test_size: float = Field(default=0.2, gt=0, lt=0.9, description="Share of rows for test.")
    valid_size: float = Field(default=0.2, gt=0, lt=0.9, description="Share of rows for valid.")
    seed: int = Field(default=42, description="Seed of every random choice in the split.")

    @model_validator(mode="after")
    def _room_for_training(self) -> SplitSpec:
        if self.test_size + self.valid_size >= 0.9:
            raise ValueError("`split.test_size` + `split.valid_size` must leave 10% for training")
        return self


class ImbalanceSpec(_Section):
    """Class-imbalance handling, applied to training folds only."""

    strategy: Literal["none", "class_weight", "random_over", "random_under", "smote"] = Field(
        default="none",
        description="How a rare class is handled (inside training folds only).",
    )
    sampling_ratio: float = Field(
        default=1.0,
        gt=0,
        le=1,
        description="Minority/majority ratio the resamplers aim for.",
    )


class ColumnRule(_Section):
    """Domain rules for one column: values outside them are impossible, not just unusual."""

    min: float | None = None
    max: float | None = None
    allowed: list[str] | None = None
    nullable: bool = True


class ValidationSpec(_Section):
    """Thresholds for ``modelcycle data validate``."""

    null_spike: float = Field(
        default=0.1, ge=0, le=1, description="Null-rate increase vs the schema that is an error."
    )
    leakage_correlation: float = Field(
        default=0.98, gt=0, le=1, description="|correlation| with the target that hints leakage."
    )
    duplicate_rows: float = Field(
        default=0.05, ge=0, le=1, description="Duplicate-row share above which it is an error."
    )
    invalid_share: float = Field(
        default=0.01,
        ge=0,
        le=1,
        description="Share of impossible values in a column above which it is an error.",
    )
    min_rows: int = Field(default=30, ge=2, description="Fewer rows than this is an error.")
    columns: dict[str, ColumnRule] = Field(
        default_factory=dict, description="Per-column domain rules (impossible values)."
    )


Candidate = Literal["linear", "rf", "hgb", "lgbm"]
CANDIDATES: tuple[Candidate, ...] = ("linear", "rf", "hgb", "lgbm")
_BUDGET = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(trials?|s|sec|seconds?|m|min|minutes?|h)?\s*$")


class Budget(BaseModel):
    """A tuning budget: a number of trials, or a time limit in seconds."""

    model_config = ConfigDict(frozen=True)

    trials: int | None = None
    seconds: float | None = None

    def __str__(self) -> str:
        return f"{self.trials} trials" if self.trials is not None else f"{self.seconds:g}s"


def parse_budget(text: str | int) -> Budget:
    """Parse ``"20 trials"``, ``"20"``, ``"120s"``, ``"2m"`` or ``"1h"``.

    Raises:
        ValueError: Not a budget, or not positive.
    """
    match = _BUDGET.match(str(text))
    if not match:
        raise ValueError(
            f"budget {text!r} is not a number of trials or a duration; "
            "write e.g. '20 trials', '120s' or '5m'"
        )
    value, unit = float(match.group(1)), (match.group(2) or "trials")
    if value <= 0:
        raise ValueError(f"budget {text!r} must be positive: give at least 1 trial or 1s")
    if unit.startswith("trial"):
        if value != int(value):
            raise ValueError(f"budget {text!r}: give a whole number of trials, e.g. '20 trials'")
        return Budget(trials=int(value))
    factor = 3600 if unit == "h" else 60 if unit.startswith("m") else 1
    return Budget(seconds=value * factor)


class TrainingSpec(_Section):
    """How ``modelcycle train`` searches for a model and when it registers one."""

    candidates: list[Candidate] = Field(
        default_factory=lambda: list(CANDIDATES),
        description="Candidates to tune: linear, rf, hgb, lgbm. Baselines always run.",
    )
    budget: str = Field(default="20 trials", description="'20 trials', '120s', '5m'.")
    margin: float = Field(
        default=0.02, ge=0, lt=1, description="Relative improvement over the best baseline needed."
    )
    cv_folds: int = Field(default=3, ge=2, le=10, description="Folds when data is small.")
    cv_max_rows: int = Field(
        default=5000, ge=0, description="Up to this many rows, tune with k-fold CV."
    )
    missing_target: Literal["drop", "error"] = Field(
        default="drop", description="Rows without a target: drop them (with a warning) or stop."
    )
    onehot_max_levels: int = Field(
        default=20, ge=2, description="Categoricals with more levels are target-encoded."
    )
    permutation_repeats: int = Field(default=5, ge=1, description="Permutation importance.")
    increasing: list[str] = Field(
        default_factory=list,
        description="Numeric features the prediction may only rise with (rf, hgb, lgbm).",
    )
    decreasing: list[str] = Field(
        default_factory=list,
        description="Numeric features the prediction may only fall with (rf, hgb, lgbm).",
    )
    seed: int = Field(default=42, description="Seed of tuning and every model.")
    params: dict[Candidate, dict[str, Any]] = Field(
        default_factory=dict, description="Fixed hyper-parameters per candidate (not tuned)."
    )

    @field_validator("budget")
    @classmethod
    def _valid_budget(cls, value: str) -> str:
        parse_budget(value)
        return value

    @field_validator("candidates")
    @classmethod
    def _some_candidates(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError(f"list at least one candidate: {', '.join(CANDIDATES)}")
        return list(dict.fromkeys(value))

    @property
    def parsed_budget(self) -> Budget:
        """The budget as trials or seconds."""
        return parse_budget(self.budget)


Strategy = Literal["direct", "canary", "ramp", "blue-green", "shadow"]


class GatesSpec(_Section):
    """``[deployment.gates]``: when a candidate is worse than the stable version.

    Each gate compares the two arms over the same window of the prediction log.
    """

    alpha: float = Field(
        default=0.01, gt=0, lt=0.5, description="Significance level of the statistical tests."
    )
    max_error_rate_increase: float = Field(
        default=0.01,
        ge=0,
        description="Candidate error rate may exceed stable's by this much (absolute), and the "
        "excess must also be significant, before the gate fails.",
    )
    max_latency_ratio: float = Field(
        default=2.0, gt=1, description="Candidate p99 latency / stable p99 latency limit."
    )
    min_latency_ms: float = Field(
        default=5.0,
        ge=0,
        description="Latency differences below this (p99, ms) never fail the gate.",
    )
    max_prediction_psi: float = Field(
        default=0.25, gt=0, description="PSI between the arms' prediction distributions."
    )
    max_ood_rate_increase: float = Field(
        default=0.05, ge=0, description="Candidate OOD rate may exceed stable's by this much."
    )
    metric_margin: float = Field(
        default=0.05,
        ge=0,
        description="With labels: candidate loss may exceed stable's by this share before the "
        "(one-sided, significant) gate fails.",
    )
    min_labels: int = Field(
        default=30, ge=2, description="Labelled rows per arm before the metric gate counts."
    )


class DeploymentSpec(_Section):
    """``[deployment]``: the default policy of ``modelcycle deploy`` and the ramp controller."""

    strategy: Strategy = Field(default="ramp", description="Default strategy.")
    canary_weight: float = Field(
        default=10, gt=0, lt=100, description="Percent of traffic a canary gets."
    )
    steps: list[float] = Field(
        default_factory=lambda: [5.0, 25.0, 50.0, 100.0],
        description="Ramp-up: percent of traffic at each step; the last step is usually 100.",
    )
    step_duration: str = Field(default="10m", description="Least time per step: '30s', '10m'.")
    min_requests: int = Field(
        default=200, ge=1, description="Least candidate requests per step before it can pass."
    )
    failure_limit: int = Field(
        default=2,
        ge=1,
        description="Failed evaluations (in a row) that roll the candidate back automatically.",
    )
    evaluation_interval: str = Field(
        default="15s", description="How often the controller evaluates a running rollout."
    )
    routing_key: str | None = Field(
        default=None,
        description="A feature (e.g. an apartment id) whose hash picks the arm, so the same key "
        "always lands on the same version; random when absent (X-Routing-Key overrides).",
    )
    gates: GatesSpec = Field(default_factory=GatesSpec)

    @field_validator("steps")
    @classmethod
    def _valid_steps(cls, value: list[float]) -> list[float]:
        if not value or any(not 0 < step <= 100 for step in value) or value != sorted(value):
            raise ValueError("list increasing percentages in (0, 100], e.g. [5, 25, 50, 100]")
        return value

    @field_validator("step_duration", "evaluation_interval")
    @classmethod
    def _valid_duration(cls, value: str) -> str:
        parse_duration(value)
        return value


class DriftSpec(_Section):
    """``[monitoring.drift]``: when a feature, the predictions or the dataset count as drifted.

    Verdicts use effect sizes, which do not grow with the window's size, so a large window of
    unchanged data stays quiet; p-values count only with a multiple-testing correction and an
    effect-size floor. ``docs/monitoring.md`` explains each default.
    """

    psi_warning: float = Field(default=0.1, gt=0, description="PSI of a 'warning'.")
    psi_drift: float = Field(default=0.25, gt=0, description="PSI of a 'drift'.")
    wasserstein_warning: float = Field(
        default=0.1, gt=0, description="Wasserstein distance / reference std of a 'warning'."
    )
    wasserstein_drift: float = Field(
        default=0.2, gt=0, description="Wasserstein distance / reference std of a 'drift'."
    )
    js_warning: float = Field(
        default=0.1, gt=0, le=1, description="Jensen-Shannon distance (base 2) of a 'warning'."
    )
    js_drift: float = Field(
        default=0.2, gt=0, le=1, description="Jensen-Shannon distance (base 2) of a 'drift'."
    )
    null_rate_warning: float = Field(
        default=0.05, gt=0, le=1, description="Absolute change of the missing share: 'warning'."
    )
    null_rate_drift: float = Field(
        default=0.1, gt=0, le=1, description="Absolute change of the missing share: 'drift'."
    )
    new_category_warning: float = Field(
        default=0.01,
        gt=0,
        le=1,
        description="Share of current values in new categories: 'warning'.",
    )
    new_category_drift: float = Field(
        default=0.05, gt=0, le=1, description="Share of current values in new categories: 'drift'."
    )
    use_p_values: bool = Field(
        default=False,
        description="Also flag a feature whose corrected KS / chi-square p-value is below alpha "
        "and whose PSI reaches p_value_effect_floor.",
    )
    correction: Literal["bonferroni", "benjamini-hochberg"] = Field(
        default="benjamini-hochberg", description="Multiple-testing correction of the p-values."
    )
    alpha: float = Field(default=0.01, gt=0, lt=0.5, description="Level of the corrected tests.")
    p_value_effect_floor: float = Field(
        default=0.1, ge=0, description="Least PSI for a significant test to count as drift."
    )
    dataset_drift_share: float = Field(
        default=0.3, gt=0, le=1, description="Share of drifted features that is dataset drift."
    )

    @model_validator(mode="after")
    def _ordered_bands(self) -> DriftSpec:
        for name in ("psi", "wasserstein", "js", "null_rate", "new_category"):
            if getattr(self, f"{name}_warning") > getattr(self, f"{name}_drift"):
                raise ValueError(f"{name}_warning must not exceed {name}_drift")
        return self


class AlertsSpec(_Section):
    """``[monitoring.alerts]``: the rules a monitoring run evaluates, and their thresholds.

    Each rule opens at most one alert per model (per feature for ``feature_drift``) until a
    later run finds it no longer firing, which resolves it. ``docs/monitoring.md`` lists them.
    """

    feature_psi: float = Field(
        default=0.25, gt=0, description="A feature's PSI that opens a 'feature_drift' alert."
    )
    ood_rate: float = Field(
        default=0.05, gt=0, le=1, description="Share of out-of-distribution rows: warning."
    )
    ood_rate_critical: float = Field(
        default=0.2, gt=0, le=1, description="Share of out-of-distribution rows: critical."
    )
    metric_drop: float = Field(
        default=0.1,
        gt=0,
        description="Relative worsening of the realised (or estimated) metric against the "
        "model's test metric that opens a warning, e.g. 0.1 = 10% worse.",
    )
    metric_drop_critical: float = Field(
        default=0.25, gt=0, description="Relative worsening that makes the alert critical."
    )
    min_labels: int = Field(
        default=50, ge=1, description="Labelled rows before the realised metric is judged."
    )
    error_rate: float = Field(
        default=0.01, gt=0, le=1, description="Share of failed predictions: warning."
    )
    p99_latency_ms: float = Field(default=250.0, gt=0, description="p99 latency (ms): warning.")
    min_requests: int = Field(
        default=1, ge=1, description="Fewer predictions than this in a window: 'no_traffic'."
    )

    @model_validator(mode="after")
    def _ordered_levels(self) -> AlertsSpec:
        if self.ood_rate > self.ood_rate_critical:
            raise ValueError("ood_rate must not exceed ood_rate_critical")
        if self.metric_drop > self.metric_drop_critical:
            raise ValueError("metric_drop must not exceed metric_drop_critical")
        return self


class OODSpec(_Section):
    """``[monitoring.ood]``: the out-of-distribution detector fitted at training."""

    fpr: float = Field(
        default=0.01,
        gt=0,
        lt=0.5,
        description="Share of training rows the multivariate score flags: its threshold.",
    )
    margin: float = Field(
        default=0.1,
        ge=0,
        description="Numeric values count as out of range beyond the training range widened by "
        "this share of it.",
    )


class MonitoringSpec(_Section):
    """``[monitoring]``: the monitoring runs: window, schedule, drift and alert thresholds."""

    window: str = Field(default="1h", description="Default window of `modelcycle monitor run`.")
    every: str = Field(
        default="5m", description="How often `modelcycle monitor watch` / `watch` run it."
    )
    min_rows: int = Field(
        default=200,
        ge=1,
        description="Least rows in a window before drift is judged (fewer: too little to tell).",
    )
    domain_classifier: bool = Field(
        default=False,
        description="Also train a reference-vs-current classifier; its ROC AUC is a multivariate "
        "drift score.",
    )
    drift: DriftSpec = Field(default_factory=DriftSpec)
    alerts: AlertsSpec = Field(default_factory=AlertsSpec)
    ood: OODSpec = Field(default_factory=OODSpec)

    @field_validator("window", "every")
    @classmethod
    def _valid_duration(cls, value: str) -> str:
        if parse_duration(value) <= 0:
            raise ValueError(f"{value!r} must be longer than 0, e.g. '5m'")
        return value


class RetrainingSpec(_Section):
    """``[retraining]``: when the project retrains itself, on what data, and what wins.

    ``modelcycle watch`` evaluates these triggers; ``modelcycle retrain`` runs one retraining.
    A schema break never triggers one: it needs a person.
    """

    auto: bool = Field(
        default=True, description="Let `modelcycle watch` retrain when a trigger fires."
    )
    schedule: str | None = Field(
        default=None,
        description="Retrain on a schedule: an interval ('7d') or a cron line ('0 3 * * 1').",
    )
    on_drift: bool = Field(default=True, description="An open drift alert triggers a retrain.")
    on_metric_drop: bool = Field(
        default=True, description="An open (realised or estimated) metric-drop alert triggers."
    )
    min_new_labels: int | None = Field(
        default=None,
        ge=1,
        description="Retrain once this many new labels arrived since the last training.",
    )
    cooldown: str = Field(default="1h", description="Least time between two retrains.")
    max_concurrent: int = Field(default=1, ge=1, description="Retrains running at once.")
    recent_window: str = Field(
        default="7d", description="Labelled production data of this period joins the training."
    )
    recent_weight: float = Field(
        default=1.0,
        gt=0,
        description="How much each recent labelled row counts against an original one "
        "(2.0: twice; rows are resampled).",
    )
    recent_holdout: float = Field(
        default=0.3,
        gt=0,
        lt=1,
        description="Share of the recent labelled rows (the newest) kept out of training to "
        "compare challenger and champion on.",
    )
    min_improvement: float = Field(
        default=0.0,
        ge=0,
        description="The challenger must beat the champion's metric on the recent held-out "
        "rows by this relative margin (on the test part when there are no recent labels).",
    )
    max_test_loss: float = Field(
        default=0.25,
        ge=0,
        description="... and may be worse on the project's original test part by at most this "
        "share: that part shows the past, which a model adapted to a changed world may fit a "
        "little less well.",
    )
    deploy: Strategy | Literal["none"] = Field(
        default="ramp",
        description="How a winning challenger is deployed; 'none' only registers it.",
    )

    @field_validator("cooldown", "recent_window")
    @classmethod
    def _valid_duration(cls, value: str) -> str:
        parse_duration(value)
        return value

    @field_validator("schedule")
    @classmethod
    def _valid_schedule(cls, value: str | None) -> str | None:
        from modelcycle.config.schedule import parse_schedule

        if value is not None:
            parse_schedule(value)
        return value


def parse_duration(text: str) -> float:
    """Seconds in ``'90s'``, ``'10m'``, ``'1h'``, ``'1d'`` or a plain number of seconds.

    Raises:
        ValueError: The text is not a duration.
    """
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(s|sec|m|min|h|d)?\s*", str(text))
    if match is None:
        raise ValueError(f"{text!r} is not a duration; write it like '30s', '10m' or '1h'")
    unit = {"s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600, "d": 86400}[match.group(2) or "s"]
    return float(match.group(1)) * unit


class ProjectSpec(_Section):
    """The whole ``modelcycle.toml``."""

    name: str = Field(description="Project name; also the registered model's name.")
    target: str = Field(min_length=1, description="The column to predict.")
    task: Task | None = Field(default=None, description="Inferred from the target when absent.")
    metric: str | None = Field(default=None, description="Deciding metric; default by task.")
    id_column: str | None = Field(
        default=None, description="A row identifier: never a feature; group splits use it."
    )
    time_column: str | None = Field(
        default=None, description="When each row happened: time splits use it; not a feature."
    )
    drop: list[str] = Field(default_factory=list, description="Columns that are never features.")
    data: DataSource
    split: SplitSpec = Field(default_factory=SplitSpec)
    imbalance: ImbalanceSpec = Field(default_factory=ImbalanceSpec)
    validation: ValidationSpec = Field(default_factory=ValidationSpec)
    training: TrainingSpec = Field(default_factory=TrainingSpec)
    deployment: DeploymentSpec = Field(default_factory=DeploymentSpec)
    monitoring: MonitoringSpec = Field(default_factory=MonitoringSpec)
    retraining: RetrainingSpec = Field(default_factory=RetrainingSpec)

    @field_validator("name")
    @classmethod
    def _valid_name(cls, value: str) -> str:
        if not NAME_PATTERN.fullmatch(value):
            raise ValueError(
                "use letters, digits, '_', '.' or '-', starting with a letter or digit"
            )
        return value

    @model_validator(mode="after")
    def _metric_fits_task(self) -> ProjectSpec:
        if self.metric is not None:
            metric_error(self.metric, self.task)
        return self

    def resolved_metric(self, task: Task) -> str:
        """The deciding metric for ``task`` (the spec's, or the task's default).

        Raises:
            ConfigError: The spec's metric does not fit the (inferred) task.
        """
        if self.metric is None:
            return DEFAULT_METRIC[task]
        try:
            metric_error(self.metric, task)
        except ValueError as err:
            raise ConfigError(f"modelcycle.toml: {err}", "fix `metric` or set `task`") from None
        return self.metric


class Project(BaseModel):
    """A loaded project: its folder, its spec and the spec's content hash."""

    model_config = ConfigDict(frozen=True)

    root: Path
    spec: ProjectSpec
    spec_hash: str

    @property
    def spec_path(self) -> Path:
        """The ``modelcycle.toml`` file."""
        return self.root / SPEC_FILENAME

    def resolve(self, path: Path) -> Path:
        """A path from the spec or command line, relative to the project folder."""
        path = path.expanduser()
        return path if path.is_absolute() else self.root / path


def parse_spec(text: str, where: str = SPEC_FILENAME) -> ProjectSpec:
    """Parse and validate spec text.

    Raises:
        ConfigError: Bad TOML, an unknown key or a wrong type; the message names the key.
    """
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(
            f"{where} is not valid TOML: {err}", f"fix the syntax in {where}"
        ) from None
    try:
        return ProjectSpec.model_validate(raw)
    except ValidationError as err:
        raise validation_error_to_config_error(
            err,
            ProjectSpec,
            where=where,
            key_name=lambda loc: ".".join(str(p) for p in loc) or "(top level)",
            fix=f"edit {where}; every key is described in docs/spec.md",
        ) from None


def find_project_root(start: Path) -> Path | None:
    """The nearest folder at or above ``start`` that holds a ``modelcycle.toml``."""
    start = start.expanduser().resolve()
    for folder in (start, *start.parents):
        if (folder / SPEC_FILENAME).is_file():
            return folder
    return None


def load_project(project_dir: Path | None = None) -> Project:
    """Load the project at ``project_dir``, or the nearest one above the current folder.

    Raises:
        ProjectError: No ``modelcycle.toml`` was found.
        ConfigError: The spec is invalid.
    """
    if project_dir is not None:
        root = project_dir.expanduser().resolve()
        if not (root / SPEC_FILENAME).is_file():
            raise ProjectError(
                f"no {SPEC_FILENAME} in {root}",
                f"run `modelcycle init {project_dir}` or pass --project to an existing project",
            )
    else:
        found = find_project_root(Path.cwd())
        if found is None:
            raise ProjectError(
                f"no {SPEC_FILENAME} in {Path.cwd()} or its parents",
                "run `modelcycle init` here, or pass --project DIR",
            )
        root = found
    raw = (root / SPEC_FILENAME).read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError(
            f"{root / SPEC_FILENAME} is not UTF-8 text", "save the file as UTF-8"
        ) from None
    spec = parse_spec(text, where=str(root / SPEC_FILENAME))
    return Project(root=root, spec=spec, spec_hash=hashlib.sha256(raw).hexdigest())
