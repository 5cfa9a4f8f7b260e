"""Model inputs checked against the FeatureSchema: JSON rows for the API, whole frames for files.

One table of rules (:class:`InputRules`, built from the schema) serves both paths:

- JSON rows (``POST /predict``) are validated by a pydantic ``TypedDict`` generated from the
  schema, so ``/openapi.json`` names every feature and its type, and each problem is reported
  with its row and field.
- Columnar inputs (MLflow ``/invocations``, Open Inference Protocol tensors, batch files) are
  checked column by column with vectorised pandas operations; rows that fail are reported with
  a reason and left out, the others go on.

A value outside the training range or an unseen category is *not* an input error: monitoring
flags it. Missing required features, wrong types and NaN/infinity are.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from datetime import date, datetime
from typing import Annotated, Any, NotRequired, Required

import numpy as np
import pandas as pd
from pydantic import ConfigDict, Field, StrictBool, StrictInt, StrictStr, TypeAdapter
from pydantic import ValidationError as PydanticValidationError
from typing_extensions import TypedDict

from modelcycle.data.schema import ColumnSchema, FeatureSchema
from modelcycle.errors import DataError, plural

FiniteNumber = Annotated[float, Field(allow_inf_nan=False, strict=True)]
"""A JSON number (integers accepted), never NaN or infinity."""

MAX_REPORTED = 20
"""Problems listed in one message; the rest are counted."""


@dataclass(frozen=True)
class Problem:
    """Why one row (or the whole input, ``row=None``) cannot be predicted."""

    row: int | None
    field: str | None
    reason: str

    def __str__(self) -> str:
        where = [] if self.row is None else [f"row {self.row}"]
        if self.field is not None:
            where.append(f"{self.field!r}")
        return f"{', '.join(where)}: {self.reason}" if where else self.reason

    def as_dict(self) -> dict[str, Any]:
        """JSON form: ``{"row": 0, "field": "area", "reason": "..."}``."""
        return {"row": self.row, "field": self.field, "reason": self.reason}


class InputError(DataError):
    """Input rows failed validation; ``problems`` lists each one."""

    def __init__(self, problems: list[Problem], hint: str | None = None) -> None:
        shown = "; ".join(str(p) for p in problems[:MAX_REPORTED])
        more = len(problems) - MAX_REPORTED
        if more > 0:
            shown += f"; and {plural(more, 'more problem')}"
        super().__init__(
            f"invalid input: {shown}",
            hint
            or "send every required feature with the type the model was trained on "
            "(see /openapi.json or `modelcycle models show`)",
        )
        self.problems = problems


@dataclass(frozen=True)
class FeatureRule:
    """What one model input accepts.

    Attributes:
        name: The feature name.
        kind: The schema kind (numeric, boolean, categorical, text, datetime).
        required: Whether the value must be present (the feature had no missing values in
            training); optional features may be null or absent.
        numeric_codes: A categorical feature whose training values were numbers (codes).
    """

    name: str
    kind: str
    required: bool
    numeric_codes: bool = False

    @classmethod
    def from_column(cls, column: ColumnSchema) -> FeatureRule:
        """The rule for a schema column."""
        codes = column.kind == "categorical" and column.dtype.startswith(("int", "float", "bool"))
        return cls(column.name, column.kind, not column.nullable, codes)

    @property
    def json_type(self) -> Any:
        """The Python type pydantic validates a JSON value of this feature against."""
        base: Any
        if self.kind == "numeric":
            base = FiniteNumber
        elif self.kind == "boolean":
            base = StrictBool
        elif self.kind == "datetime":
            base = datetime | date
        elif self.numeric_codes:
            base = StrictStr | StrictInt | FiniteNumber
        else:
            base = StrictStr
        return base if self.required else base | None


class InputRules:
    """The model inputs of a schema, and every check made on them.

    Args:
        schema: The model's FeatureSchema.
        model_name: Used to name the generated request model (``RentFeatures``).
    """

    def __init__(self, schema: FeatureSchema, model_name: str = "model") -> None:
        self.schema = schema
        self.features = [FeatureRule.from_column(schema.column(n)) for n in schema.input_names]
        self.names = [rule.name for rule in self.features]
        self.passthrough = [c.name for c in schema.columns if c.name not in set(self.names)]
        self.row_type = self._row_type(model_name)
        self._rows = TypeAdapter(list[self.row_type])  # type: ignore[name-defined]

    def _row_type(self, model_name: str) -> type:
        fields: dict[str, Any] = {}
        for rule in self.features:
            kind = rule.json_type
            described = Annotated[kind, Field(description=_describe(self.schema, rule))]  # type: ignore[valid-type]
            fields[rule.name] = Required[described] if rule.required else NotRequired[described]
        for name in self.passthrough:
            fields[name] = NotRequired[
                Annotated[Any, Field(description="Not a model input; accepted and ignored.")]
            ]
        title = "".join(part.capitalize() for part in _words(model_name)) + "Features"
        row = TypedDict(title, fields)  # type: ignore[misc]
        row.__pydantic_config__ = ConfigDict(extra="forbid", title=title)  # type: ignore[attr-defined]
        return row

    def json_schema(self, ref_template: str = "#/components/schemas/{model}") -> dict[str, Any]:
        """The JSON schema of one row (for OpenAPI)."""
        return TypeAdapter(self.row_type).json_schema(ref_template=ref_template)

    # ------------------------------------------------------------------ JSON rows

    def validate_rows(self, rows: Any) -> list[dict[str, Any]]:
        """Validate JSON rows (one object or a list of objects).

        Returns:
            The rows, each a dict of feature values (pass-through columns dropped).

        Raises:
            InputError: Any row is invalid; every problem is listed with its row and field.
        """
        if isinstance(rows, dict):
            rows = [rows]
        if not isinstance(rows, list) or not rows:
            raise InputError(
                [Problem(None, None, "expected one object of features or a non-empty list")]
            )
        try:
            valid = self._rows.validate_python(rows)
        except PydanticValidationError as err:
            raise InputError([self._problem(e) for e in err.errors()]) from None
        names = self.names
        return [{name: row.get(name) for name in names} for row in valid]

    def _problem(self, error: Any) -> Problem:
        loc = list(error.get("loc", ()))
        row = loc[0] if loc and isinstance(loc[0], int) else None
        field = next((str(part) for part in loc[1:2]), None)
        kind = error.get("type", "")
        if kind == "missing":
            return Problem(row, field, "missing required feature")
        if kind == "extra_forbidden" and field is not None:
            close = difflib.get_close_matches(field, self.names, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            return Problem(row, field, f"unknown feature{hint}")
        if kind in {"finite_number"}:
            return Problem(row, field, "must be a finite number (not NaN or infinity)")
        if field is not None and field in self.names and row is not None:
            rule = self.features[self.names.index(field)]
            return Problem(row, field, f"{_expected(rule)}, got {_shown(error.get('input'))}")
        if row is not None and field is None:
            return Problem(row, None, "expected an object of features by name")
        return Problem(row, field, str(error.get("msg", "invalid value")))

    # ------------------------------------------------------------------ frames

    def check_frame(self, frame: pd.DataFrame) -> tuple[pd.DataFrame, list[Problem]]:
        """Check a frame of inputs column by column.

        Args:
            frame: Features by column name; extra columns are ignored.

        Returns:
            The typed model inputs of the valid rows (original index kept) and one problem
            per invalid row (``row`` is the row's position in ``frame``).

        Raises:
            InputError: Required feature columns are absent (every row would fail).
        """
        absent = [r.name for r in self.features if r.required and r.name not in frame.columns]
        if absent:
            problems = [Problem(None, name, "missing required feature column") for name in absent]
            raise InputError(problems)
        bad = np.zeros(len(frame), dtype=bool)
        reasons: list[tuple[np.ndarray, str, str]] = []
        columns: dict[str, Any] = {}
        for rule in self.features:
            if rule.name not in frame.columns:
                columns[rule.name] = pd.Series(np.nan, index=frame.index, dtype="float64")
                continue
            values, failures = _coerce(frame[rule.name], rule)
            columns[rule.name] = values
            for mask, reason in failures:
                if mask.any():
                    reasons.append((mask, rule.name, reason))
                    bad |= mask
        typed = pd.DataFrame(columns, index=frame.index)
        problems = _row_problems(frame, bad, reasons)
        return typed[~bad], problems

    def columns_from_rows(self, rows: list[dict[str, Any]]) -> Columns:
        """Model input columns from rows returned by :meth:`validate_rows`.

        Numbers become float arrays (missing as NaN), everything else object arrays.
        """
        columns: Columns = {}
        for rule in self.features:
            values = [row.get(rule.name) for row in rows]
            kind = "float64" if rule.kind == "numeric" else object
            columns[rule.name] = np.array(values, dtype=kind)
        return columns

    def frame_from_rows(self, rows: list[dict[str, Any]]) -> pd.DataFrame:
        """A typed input frame from rows returned by :meth:`validate_rows`."""
        return columns_frame(self.columns_from_rows(rows))


Columns = dict[str, np.ndarray]
"""Model inputs by feature name: float arrays for numbers, object arrays for the rest."""


def columns_frame(columns: Columns) -> pd.DataFrame:
    """A DataFrame of input columns (object columns stay plain objects)."""
    return pd.DataFrame(
        {
            name: values if values.dtype.kind == "f" else pd.Series(values, dtype=object)
            for name, values in columns.items()
        }
    )


def frame_columns(frame: pd.DataFrame, names: list[str]) -> Columns:
    """Input columns from a typed frame (numbers as float arrays, the rest as objects)."""
    out: Columns = {}
    for name in names:
        series = frame[name]
        numeric = series.dtype.kind in "fiu"
        out[name] = series.to_numpy(dtype="float64" if numeric else object)
    return out


def _coerce(series: pd.Series, rule: FeatureRule) -> tuple[pd.Series, list[tuple[Any, str]]]:
    """The typed column and ``(mask, reason)`` for each kind of failure."""
    present = series.notna().to_numpy()
    failures: list[tuple[Any, str]] = []
    values: pd.Series
    if rule.kind == "numeric":
        values = pd.to_numeric(series, errors="coerce").astype("float64")
        if series.dtype == bool:
            values[:] = np.nan
        numbers = values.to_numpy()
        parsed = ~np.isnan(numbers)
        failures.append((present & ~parsed, "expected a number"))
        failures.append((parsed & ~np.isfinite(numbers), "must be finite"))
    elif rule.kind == "boolean":
        values = series.map(_as_bool).astype(object)
        failures.append((present & values.isna().to_numpy(), "expected true or false"))
    elif rule.kind == "datetime":
        values = pd.to_datetime(series, errors="coerce", format="mixed")
        failures.append((present & values.isna().to_numpy(), "expected a date or time"))
    else:
        values = series.astype(object).where(series.notna(), None)
    if rule.required:
        failures.append((~present, "missing required value"))
    return values, failures


def _as_bool(value: Any) -> bool | None:
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, float, np.integer, np.floating)) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        return {"true": True, "false": False, "1": True, "0": False, "yes": True, "no": False}.get(
            value.strip().lower()
        )
    return None


def _row_problems(
    frame: pd.DataFrame, bad: np.ndarray, reasons: list[tuple[np.ndarray, str, str]]
) -> list[Problem]:
    """One problem per bad row: every failing field of the row, joined."""
    if not bad.any():
        return []
    per_row: dict[int, list[str]] = {}
    for mask, name, reason in reasons:
        for position in np.flatnonzero(mask):
            value = frame[name].iat[int(position)]
            got = "" if reason == "missing required value" else f", got {_shown(value)}"
            per_row.setdefault(int(position), []).append(f"{name!r}: {reason}{got}")
    return [Problem(row, None, "; ".join(per_row[row])) for row in sorted(per_row)]


def _expected(rule: FeatureRule) -> str:
    wanted = {
        "numeric": "expected a number",
        "boolean": "expected true or false",
        "datetime": "expected an ISO date or time",
    }.get(rule.kind, "expected a number or a string" if rule.numeric_codes else "expected a string")
    return wanted if rule.required else f"{wanted} or null"


def _shown(value: Any) -> str:
    if isinstance(value, np.generic):
        value = value.item()
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _describe(schema: FeatureSchema, rule: FeatureRule) -> str:
    column = schema.column(rule.name)
    parts = [rule.kind]
    if column.is_numeric and column.min is not None and column.max is not None:
        parts.append(f"seen in training from {column.min:g} to {column.max:g}")
    elif column.categories:
        top = ", ".join(list(column.categories)[:8])
        parts.append(f"e.g. {top}")
    parts.append("required" if rule.required else "optional")
    return "; ".join(parts)


def _words(name: str) -> list[str]:
    return [part for part in "".join(c if c.isalnum() else " " for c in name).split() if part]
