"""The fitted pipeline re-expressed in NumPy, for the server's small batches.

Running a scikit-learn pipeline on a one-row DataFrame costs milliseconds of per-call overhead
(pandas output containers, column selection, validation), while the arithmetic is microseconds.
:func:`compile_pipeline` walks a fitted pipeline and, when every step is one it knows —
ColumnTransformer, SimpleImputer (with indicators), StandardScaler, OneHotEncoder (unknown
levels ignored), TargetEncoder (continuous or binary), modelcycle's ToText and DateParts, the
Monotonic wrapper, samplers (skipped at prediction) — builds the same transformation on NumPy
arrays and calls the final estimator on a plain matrix (a LightGBM booster directly).

The result is checked against the original pipeline on rows built from the schema (typical,
extreme, missing and unseen values) before it is used; any difference and the server keeps the
original pipeline. Anything unknown returns ``None`` — the fast path is an optimisation, never a
different model.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from modelcycle.serving.inputs import Columns
from modelcycle.training.features import MISSING, DateParts, ToText

Step = Callable[[list[np.ndarray]], list[np.ndarray]]


class UnsupportedStepError(Exception):
    """A pipeline step the compiler does not know."""


@dataclass
class CompiledPipeline:
    """A pipeline's transform and estimator on NumPy arrays.

    Attributes:
        blocks: ``(input columns, steps)`` per ColumnTransformer part, in output order.
        estimator: The final estimator (unwrapped), called on the transformed matrix.
        booster: A LightGBM booster, when the estimator is a LightGBM model (faster).
        task: ``regression`` or ``classification``.
    """

    blocks: list[tuple[list[str], list[Step]]]
    estimator: Any
    booster: Any
    task: str

    def transform(self, columns: Columns) -> np.ndarray:
        """The model matrix for input columns."""
        parts: list[np.ndarray] = []
        for names, steps in self.blocks:
            arrays = [columns[name] for name in names]
            for step in steps:
                arrays = step(arrays)
            parts.extend(arrays)
        return np.column_stack(parts).astype("float64", copy=False)

    def predict(self, columns: Columns) -> np.ndarray:
        """Predicted values (regression)."""
        matrix = self.transform(columns)
        if self.booster is not None:
            return np.asarray(self.booster.predict(matrix))
        return np.asarray(self.estimator.predict(matrix))

    def predict_proba(self, columns: Columns) -> np.ndarray:
        """Class probabilities, one column per class (classification)."""
        matrix = self.transform(columns)
        if self.booster is not None:
            raw = np.asarray(self.booster.predict(matrix))
            return np.column_stack([1 - raw, raw]) if raw.ndim == 1 else raw
        return np.asarray(self.estimator.predict_proba(matrix))


def compile_pipeline(pipeline: Any, task: str) -> CompiledPipeline | None:
    """The NumPy version of a fitted pipeline, or ``None`` if a step is not supported."""
    try:
        steps = _steps(pipeline)
        *transforms, estimator = steps
        if len(transforms) != 1 or type(transforms[0]).__name__ != "ColumnTransformer":
            raise UnsupportedStepError("expected one ColumnTransformer before the estimator")
        blocks = _column_transformer(transforms[0])
        final, booster = _estimator(estimator)
    except UnsupportedStepError:
        return None
    return CompiledPipeline(blocks, final, booster, task)


# ---------------------------------------------------------------------------- walking


def _steps(pipeline: Any) -> list[Any]:
    """A pipeline's steps that act at prediction time (samplers only act when fitting)."""
    if not hasattr(pipeline, "steps"):
        raise UnsupportedStepError("not a pipeline")
    return [
        step
        for _, step in pipeline.steps
        if step not in (None, "passthrough") and not hasattr(step, "fit_resample")
    ]


def _column_transformer(transformer: Any) -> list[tuple[list[str], list[Step]]]:
    if transformer.sparse_output_ if hasattr(transformer, "sparse_output_") else False:
        raise UnsupportedStepError("sparse output")
    blocks = []
    for name, part, columns in transformer.transformers_:
        if part == "drop" or (name == "remainder" and part in ("drop", None)):
            continue
        if part == "passthrough" or not isinstance(columns, list | tuple) or not columns:
            if isinstance(columns, list | tuple) and not columns:
                continue
            raise UnsupportedStepError(f"part {name!r} is {part!r}")
        inner = part.steps if hasattr(part, "steps") else [(name, part)]
        blocks.append(([str(c) for c in columns], [_step(step) for _, step in inner]))
    return blocks


def _step(step: Any) -> Step:
    kind = type(step).__name__
    if isinstance(step, ToText):
        return _to_text
    if isinstance(step, DateParts):
        return _date_parts
    makers: dict[str, Callable[[Any], Step]] = {
        "SimpleImputer": _imputer,
        "StandardScaler": _scaler,
        "OneHotEncoder": _onehot,
        "TargetEncoder": _target_encoder,
    }
    if kind not in makers:
        raise UnsupportedStepError(kind)
    return makers[kind](step)


def _estimator(estimator: Any) -> tuple[Any, Any]:
    """The estimator to call on a matrix, and its LightGBM booster if it has one."""
    if type(estimator).__name__ == "Monotonic":
        estimator = estimator.estimator_
    if hasattr(estimator, "booster_") and type(estimator).__name__.startswith("LGBM"):
        classes = getattr(estimator, "classes_", None)
        if classes is None or len(classes) == 2:
            return estimator, estimator.booster_
    plain = copy.copy(estimator)
    if hasattr(plain, "feature_names_in_"):
        del plain.feature_names_in_  # fitted on named columns; we pass a plain matrix
    return plain, None


# ---------------------------------------------------------------------------- steps


def _as_float(array: np.ndarray) -> np.ndarray:
    if array.dtype.kind == "f":
        return array
    out = np.full(len(array), np.nan)
    for i, value in enumerate(array):
        if value is not None and value is not pd.NA:
            out[i] = float(value)
    return out


def _imputer(imputer: Any) -> Step:
    if imputer.strategy not in ("median", "mean", "most_frequent", "constant"):
        raise UnsupportedStepError(f"imputer strategy {imputer.strategy}")
    if not (isinstance(imputer.missing_values, float) and np.isnan(imputer.missing_values)):
        raise UnsupportedStepError("imputer missing_values other than NaN")
    statistics = np.asarray(imputer.statistics_, dtype="float64")
    keep = np.ones(len(statistics), dtype=bool)
    if not getattr(imputer, "keep_empty_features", False):
        keep = ~np.isnan(statistics)
    indicator = getattr(imputer, "indicator_", None)
    flagged = [] if indicator is None else list(indicator.features_)
    if indicator is not None and indicator.features not in ("missing-only",):
        raise UnsupportedStepError("indicator for all features")

    def impute(arrays: list[np.ndarray]) -> list[np.ndarray]:
        values = [_as_float(a) for a in arrays]
        missing = [np.isnan(v) for v in values]
        out = [
            np.where(missing[i], statistics[i], values[i]) for i in range(len(values)) if keep[i]
        ]
        out.extend(missing[i].astype("float64") for i in flagged)
        return out

    return impute


def _scaler(scaler: Any) -> Step:
    mean = scaler.mean_ if scaler.with_mean else None
    scale = scaler.scale_ if scaler.with_std else None

    def standardise(arrays: list[np.ndarray]) -> list[np.ndarray]:
        out = []
        for i, values in enumerate(arrays):
            column = _as_float(values)
            if mean is not None:
                column = column - mean[i]
            if scale is not None:
                column = column / scale[i]
            out.append(column)
        return out

    return standardise


def _onehot(encoder: Any) -> Step:
    if encoder.drop_idx_ is not None or any(
        c is not None for c in getattr(encoder, "infrequent_categories_", []) or []
    ):
        raise UnsupportedStepError("one-hot with dropped or infrequent levels")
    if encoder.handle_unknown not in ("ignore", "infrequent_if_exist"):
        raise UnsupportedStepError("one-hot that errors on unknown levels")
    lookups = [{value: i for i, value in enumerate(cats)} for cats in encoder.categories_]

    def encode(arrays: list[np.ndarray]) -> list[np.ndarray]:
        out: list[np.ndarray] = []
        for values, lookup in zip(arrays, lookups, strict=True):
            block = np.zeros((len(values), len(lookup)))
            for row, value in enumerate(values):
                hit = lookup.get(value)
                if hit is not None:
                    block[row, hit] = 1.0
            out.extend(block.T)
        return out

    return encode


def _target_encoder(encoder: Any) -> Step:
    if len(encoder.encodings_) != len(encoder.categories_):
        raise UnsupportedStepError("multiclass target encoding")
    lookups = [
        dict(zip(cats.tolist(), codes.tolist(), strict=True))
        for cats, codes in zip(encoder.categories_, encoder.encodings_, strict=True)
    ]
    default = float(np.ravel(encoder.target_mean_)[0])

    def encode(arrays: list[np.ndarray]) -> list[np.ndarray]:
        return [
            np.array([lookup.get(v, default) for v in values], dtype="float64")
            for values, lookup in zip(arrays, lookups, strict=True)
        ]

    return encode


def _to_text(arrays: list[np.ndarray]) -> list[np.ndarray]:
    out: list[np.ndarray] = []
    for values in arrays:
        column = np.empty(len(values), dtype=object)
        for i, value in enumerate(values):
            column[i] = MISSING if _missing(value) else _text(value)
        out.append(column)
    return out


def _missing(value: Any) -> bool:
    return value is None or value is pd.NA or (isinstance(value, float) and np.isnan(value))


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    return str(pd.array([value], dtype="string")[0])


def _date_parts(arrays: list[np.ndarray]) -> list[np.ndarray]:
    frame = pd.DataFrame({str(i): values for i, values in enumerate(arrays)})
    transformed = DateParts().fit(frame).transform(frame)
    return list(transformed.T)
