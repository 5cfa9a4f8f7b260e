"""FeatureSchema: the single source of feature names, types, roles, ranges and categories.

A schema is inferred from a dataset once (``FeatureSchema.infer``), saved as versioned JSON, and
from then on every stage (validation, training, serving, monitoring) takes feature names and types
from it, never from column positions.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from modelcycle import __version__
from modelcycle.errors import DataError

if TYPE_CHECKING:
    from modelcycle.config.spec import ProjectSpec

SCHEMA_FORMAT = 1
Kind = Literal["numeric", "boolean", "categorical", "text", "datetime"]
Role = Literal["feature", "target", "id", "time", "ignored"]
QUANTILES = (0.0, 0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99, 1.0)
MAX_CATEGORIES = 50
HIGH_CARDINALITY = 50
MAX_CLASSES = 20
_DATE_PATTERN = r"^\s*(\d{4}-\d{1,2}-\d{1,2}|\d{1,2}[/.-]\d{1,2}[/.-]\d{2,4})"


class ColumnSchema(BaseModel):
    """What one column looks like in the data the schema was inferred from."""

    model_config = ConfigDict(extra="forbid")

    name: str
    kind: Kind
    dtype: str = Field(description="pandas dtype at inference time.")
    role: Role
    reason: str = Field(default="", description="Why the role was chosen, when not obvious.")
    nullable: bool
    null_rate: float
    n_unique: int
    constant: bool = False
    high_cardinality: bool = False
    integer: bool = Field(default=False, description="Numeric values are all whole numbers.")
    min: float | None = None
    max: float | None = None
    mean: float | None = None
    std: float | None = None
    quantiles: dict[str, float] = Field(default_factory=dict)
    categories: dict[str, float] = Field(
        default_factory=dict, description="Most frequent values and their shares (top 50)."
    )
    other_share: float = Field(default=0.0, description="Share of values beyond the top 50.")

    @property
    def is_numeric(self) -> bool:
        """Whether values are numbers (booleans excluded)."""
        return self.kind == "numeric"


class FeatureSchema(BaseModel):
    """The columns of a dataset, their roles, and their profile at inference time."""

    model_config = ConfigDict(extra="forbid")

    format: int = SCHEMA_FORMAT
    created_at: datetime = Field(default_factory=lambda: datetime.now(UTC))
    created_by: str = f"modelcycle {__version__}"
    source: str = ""
    data_digest: str = ""
    n_rows: int
    target: str | None
    task: Literal["regression", "classification"] | None
    columns: list[ColumnSchema]

    @property
    def features(self) -> list[ColumnSchema]:
        """The columns used as model inputs, in order."""
        return [c for c in self.columns if c.role == "feature"]

    @property
    def feature_names(self) -> list[str]:
        """Names of the feature columns, in order."""
        return [c.name for c in self.features]

    @property
    def input_names(self) -> list[str]:
        """The columns a model takes: the non-constant features, then the time column.

        Models turn the time column into date parts, so it is an input though not a feature.
        """
        names = [c.name for c in self.features if not c.constant]
        return names + [c.name for c in self.columns if c.role == "time"]

    @property
    def names(self) -> list[str]:
        """Names of every column, in order."""
        return [c.name for c in self.columns]

    def column(self, name: str) -> ColumnSchema:
        """The column called ``name``.

        Raises:
            DataError: No such column.
        """
        for col in self.columns:
            if col.name == name:
                return col
        raise DataError(f"the schema has no column {name!r}", "check the column name")

    @property
    def fingerprint(self) -> str:
        """A short hash of names, kinds and roles: equal fingerprints mean compatible schemas."""
        shape = [(c.name, c.kind, c.role) for c in self.columns]
        return hashlib.sha256(json.dumps(shape).encode()).hexdigest()[:16]

    def save(self, path: Path) -> Path:
        """Write the schema as indented JSON."""
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(self.model_dump_json(indent=2), encoding="utf-8")
        return path

    @classmethod
    def load(cls, path: Path) -> FeatureSchema:
        """Read a schema saved by :meth:`save`.

        Raises:
            DataError: The file is missing, not a schema, or from an unknown format version.
        """
        if not path.is_file():
            raise DataError(
                f"schema file {path} does not exist", "create one with `modelcycle data schema`"
            )
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise DataError(f"{path} is not a JSON schema file: {err}", "regenerate it") from None
        version = raw.get("format") if isinstance(raw, dict) else None
        if isinstance(version, int) and version > SCHEMA_FORMAT:
            raise DataError(
                f"{path} was written by a newer modelcycle (format {raw['format']})",
                "upgrade modelcycle",
            )
        try:
            return cls.model_validate(raw)
        except ValidationError as err:
            problems = "; ".join(
                f"{'.'.join(map(str, e['loc'])) or 'top level'}: {e['msg']}"
                for e in err.errors()[:3]
            )
            raise DataError(
                f"{path} is not a modelcycle schema ({problems})",
                "regenerate it with `modelcycle data schema`",
            ) from None

    @classmethod
    def infer(
        cls,
        frame: pd.DataFrame,
        *,
        target: str | None = None,
        task: Literal["regression", "classification"] | None = None,
        id_column: str | None = None,
        time_column: str | None = None,
        drop: list[str] | tuple[str, ...] = (),
        source: str = "",
        data_digest: str = "",
    ) -> FeatureSchema:
        """Infer a schema from a dataset.

        Args:
            frame: The data.
            target: The target column, if any.
            task: The task; inferred from the target when ``None``.
            id_column: The id column (role ``id``, never a feature).
            time_column: The time column (role ``time``; parsed as dates).
            drop: Columns that are never features (role ``ignored``).
            source: Where the data came from, recorded in the schema.
            data_digest: The data's digest, recorded in the schema.

        Raises:
            DataError: A named column is absent.
        """
        for label, name in (
            ("target", target),
            ("id_column", id_column),
            ("time_column", time_column),
        ):
            if name is not None and name not in frame.columns:
                raise missing_column_error(name, frame.columns, label)
        if target is not None and task is None:
            task = infer_task(frame[target])
        n_rows = len(frame)
        columns = []
        for column in frame.columns:
            name = str(column)
            series = frame[column]
            role: Role = "feature"
            reason = ""
            if name == target:
                role = "target"
            elif name == id_column:
                role = "id"
            elif name == time_column:
                role = "time"
            elif name in drop:
                role, reason = "ignored", "listed in `drop`"
            columns.append(_profile_column(name, series, role, reason, n_rows))
        return cls(
            source=source,
            data_digest=data_digest,
            n_rows=n_rows,
            target=target,
            task=task,
            columns=columns,
        )


def schema_for_spec(
    frame: pd.DataFrame, spec: ProjectSpec, *, source: str = "", data_digest: str = ""
) -> FeatureSchema:
    """Infer a dataset's schema with the roles the project spec gives (target, id, time, drop)."""
    return FeatureSchema.infer(
        frame,
        target=spec.target,
        task=spec.task,
        id_column=spec.id_column,
        time_column=spec.time_column,
        drop=spec.drop,
        source=source,
        data_digest=data_digest,
    )


def infer_task(target: pd.Series) -> Literal["regression", "classification"]:
    """Regression for a numeric target with many distinct values, classification otherwise."""
    values = target.dropna()
    if pd.api.types.is_bool_dtype(values) or not pd.api.types.is_numeric_dtype(values):
        return "classification"
    n_unique = values.nunique()
    whole = bool(np.all(np.mod(values.to_numpy(dtype="float64"), 1) == 0))
    return (
        "classification" if n_unique <= 2 or (whole and n_unique <= MAX_CLASSES) else "regression"
    )


def missing_column_error(name: str, columns: pd.Index | list[str], label: str) -> DataError:
    """The error for a column the spec names but the data lacks, with the closest match."""
    import difflib

    names = [str(c) for c in columns]
    close = difflib.get_close_matches(name, names, n=1, cutoff=0.6)
    hint = f"did you mean {close[0]!r}? " if close else ""
    shown = ", ".join(names[:20]) + (" ..." if len(names) > 20 else "")
    if len(names) == 1 and any(d in names[0] for d in ",;\t|"):
        hint += "the file reads as a single column: set data.delimiter. "
    return DataError(
        f"{label} column {name!r} is not in the data (columns: {shown})",
        f"{hint}fix `{label}` in modelcycle.toml or the data",
    )


def _profile_column(
    name: str, series: pd.Series, role: Role, reason: str, n_rows: int
) -> ColumnSchema:
    nulls = int(series.isna().sum())
    present = series.dropna()
    n_unique = int(present.nunique())
    kind = _kind(series, present, n_unique)
    common = {
        "name": name,
        "dtype": str(series.dtype),
        "nullable": nulls > 0,
        "null_rate": nulls / n_rows if n_rows else 0.0,
        "n_unique": n_unique,
        "constant": n_unique <= 1,
    }
    if role == "feature" and kind == "text":
        role, reason = "ignored", "free text with a different value on most rows"
    if role == "feature" and n_unique <= 1:
        reason = "constant: carries no information"
    if kind == "numeric":
        values = present.to_numpy(dtype="float64")
        finite = values[np.isfinite(values)]
        if finite.size:
            qs = np.quantile(finite, QUANTILES)
            stats = {
                "min": float(finite.min()),
                "max": float(finite.max()),
                "mean": float(finite.mean()),
                "std": float(finite.std()),
                "quantiles": {f"{q:g}": float(v) for q, v in zip(QUANTILES, qs, strict=True)},
                "integer": bool(np.all(np.mod(finite, 1) == 0)),
            }
        else:
            stats = {}
        return ColumnSchema(kind=kind, role=role, reason=reason, **common, **stats)
    if kind == "datetime":
        stamps = pd.to_datetime(present, errors="coerce")
        span = {}
        if stamps.notna().any():
            span = {"min": float(stamps.min().timestamp()), "max": float(stamps.max().timestamp())}
        return ColumnSchema(kind=kind, role=role, reason=reason, **common, **span)
    counts = present.astype("string").value_counts(normalize=True)
    top = counts.iloc[:MAX_CATEGORIES]
    return ColumnSchema(
        kind=kind,
        role=role,
        reason=reason,
        high_cardinality=n_unique > HIGH_CARDINALITY,
        categories={str(k): float(v) for k, v in top.items()},
        other_share=float(max(0.0, 1.0 - top.sum())),
        **common,
    )


def _kind(series: pd.Series, present: pd.Series, n_unique: int) -> Kind:
    if pd.api.types.is_bool_dtype(series):
        return "boolean"
    if pd.api.types.is_numeric_dtype(series):
        return "numeric"
    if pd.api.types.is_datetime64_any_dtype(series):
        return "datetime"
    if len(present) and _looks_like_dates(present):
        return "datetime"
    if len(present) and n_unique > HIGH_CARDINALITY and n_unique / len(present) > 0.5:
        return "text"
    return "categorical"


def _looks_like_dates(present: pd.Series) -> bool:
    """Whether a text column holds dates: a cheap pattern test, then a parse of a sample."""
    sample = present.iloc[:200].astype("string")
    if sample.str.match(_DATE_PATTERN).mean() < 0.95:
        return False
    parsed = pd.to_datetime(sample, errors="coerce", format="mixed")
    return bool(parsed.notna().mean() >= 0.95)
