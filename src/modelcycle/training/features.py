"""The preprocessing, built from the FeatureSchema: one ColumnTransformer per model family.

- numeric: median imputation with missing-value indicators; standard scaling for linear models;
- categorical / boolean with few levels: one-hot (unknown levels ignored at prediction time);
- categorical with many levels: target encoding (cross-fitted by scikit-learn);
- dates (datetime features and the time column): year, month, day of week, day of year.

Features always travel by name: the transformer selects columns from a DataFrame.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin

from modelcycle.data.schema import FeatureSchema

MISSING = "(missing)"


class ToText(TransformerMixin, BaseEstimator):  # type: ignore[misc]
    """Cast columns to text, with missing values as ``"(missing)"`` (for the encoders)."""

    def fit(self, X: pd.DataFrame, y: Any = None) -> ToText:  # noqa: N803, ARG002
        """Learn nothing; remember the column names."""
        self.feature_names_in_ = np.asarray(list(X.columns), dtype=object)
        return self

    def transform(self, X: pd.DataFrame) -> pd.DataFrame:  # noqa: N803
        """Every value as a string; missing as ``"(missing)"``."""
        frame = pd.DataFrame(X)
        return frame.astype("string").fillna(MISSING).astype(object)

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:  # noqa: ARG002
        """The input names, unchanged."""
        return np.asarray(self.feature_names_in_, dtype=object)


class DateParts(TransformerMixin, BaseEstimator):  # type: ignore[misc]
    """Year, month, day of week and day of year of date columns (NaN when unparseable)."""

    PARTS = ("year", "month", "day_of_week", "day_of_year")

    def fit(self, X: pd.DataFrame, y: Any = None) -> DateParts:  # noqa: N803, ARG002
        """Learn nothing; remember the column names."""
        self.feature_names_in_ = np.asarray(list(X.columns), dtype=object)
        return self

    def transform(self, X: pd.DataFrame) -> np.ndarray:  # noqa: N803
        """Four numeric columns per date column."""
        frame = pd.DataFrame(X)
        out = []
        for name in frame.columns:
            stamps = pd.to_datetime(frame[name], errors="coerce", utc=True, format="mixed")
            for part in self.PARTS:
                out.append(getattr(stamps.dt, part).astype("float64").to_numpy())
        return np.column_stack(out) if out else np.empty((len(frame), 0))

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:  # noqa: ARG002
        """``<column>_<part>`` for every column and part."""
        names = [f"{c}_{p}" for c in self.feature_names_in_ for p in self.PARTS]
        return np.asarray(names, dtype=object)


def build_preprocessor(
    schema: FeatureSchema,
    *,
    scale: bool,
    task: str,
    onehot_max_levels: int = 20,
    seed: int = 0,
) -> Any:
    """A ColumnTransformer for the schema's features.

    Args:
        schema: The training data's schema (kinds, roles, level counts).
        scale: Standard-scale numeric inputs (for linear models).
        task: ``regression`` or ``classification`` (the target encoder's target type).
        onehot_max_levels: Categoricals with more levels are target-encoded.
        seed: Seed of the target encoder's cross-fitting.
    """
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.model_selection import KFold, StratifiedKFold
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler, TargetEncoder

    columns = {c.name: c for c in schema.columns}
    inputs = schema.input_names
    numeric = [n for n in inputs if columns[n].kind == "numeric" and columns[n].role == "feature"]
    dates = [n for n in inputs if columns[n].kind == "datetime" or columns[n].role == "time"]
    categorical = [n for n in inputs if n not in numeric and n not in dates]
    few = [n for n in categorical if columns[n].n_unique <= onehot_max_levels]
    many = [n for n in categorical if n not in few]

    def numeric_steps() -> list[tuple[str, Any]]:
        steps: list[tuple[str, Any]] = [
            ("impute", SimpleImputer(strategy="median", add_indicator=True))
        ]
        if scale:
            steps.append(("scale", StandardScaler()))
        return steps

    parts: list[tuple[str, Any, list[str]]] = []
    if numeric:
        parts.append(("numeric", Pipeline(numeric_steps()), numeric))
    if dates:
        parts.append(("dates", Pipeline([("parts", DateParts()), *numeric_steps()]), dates))
    if few:
        onehot = OneHotEncoder(handle_unknown="ignore", sparse_output=False, dtype=np.float64)
        parts.append(("onehot", Pipeline([("text", ToText()), ("encode", onehot)]), few))
    if many:
        target_type = "continuous" if task == "regression" else "auto"
        folds = (KFold if task == "regression" else StratifiedKFold)(
            n_splits=5, shuffle=True, random_state=seed
        )
        encoder = TargetEncoder(target_type=target_type, cv=folds)
        steps = [("text", ToText()), ("encode", encoder)]
        if scale:
            steps.append(("scale", StandardScaler()))
        parts.append(("target_encoded", Pipeline(steps), many))
    return ColumnTransformer(parts, remainder="drop", verbose_feature_names_out=True)
