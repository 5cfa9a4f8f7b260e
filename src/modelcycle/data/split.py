"""Split a dataset into train, validation and test parts, and show that the parts agree.

Methods (``split.method`` in ``modelcycle.toml``):

- ``random``: a seeded shuffle.
- ``stratified``: every class of the target keeps its share in every part (a numeric target is
  stratified on its deciles instead).
- ``time``: rows sorted by the time column; the oldest go to train, then valid, the newest to test.
- ``group``: all rows that share an ``id_column`` value land in the same part.
- ``auto``: stratified for classification, time when a time column exists, else random.

Every method is deterministic for the same data and seed. Parts keep the frame's index, so each
row can be traced back to the source; parts keep the source's row order (time order for a time
split). Rows with a missing target are kept: training decides what to do with them.

The split report has one row per (column, part): for the target and every numeric column, the
non-null count, mean, median and the Kolmogorov-Smirnov statistic of the part against train; for
a classification target, the class shares of the part and their largest absolute difference from
train's. Small values mean the parts come from the same distribution.
"""

from __future__ import annotations

import json
import math
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from loguru import logger

from modelcycle.config.spec import SplitSpec
from modelcycle.data.io import frame_digest, write_table
from modelcycle.data.schema import infer_task, missing_column_error
from modelcycle.errors import DataError

PARTS = ("train", "valid", "test")
MIN_ROWS = 10
"""Fewer rows than this cannot be split into three useful parts."""
KS_SAMPLE = 100_000
"""Each part is sampled (seeded) to at most this many rows for the KS statistic."""
REGRESSION_STRATA = 10
"""Quantile bins of a numeric target when a regression target is stratified."""
MAX_SHARES = 20
"""The report lists the shares of at most this many classes (the most frequent in train)."""
REPORT_COLUMNS = (
    "column",
    "kind",
    "part",
    "n",
    "mean",
    "median",
    "ks_vs_train",
    "share_diff",
    "shares",
)
SPLIT_FORMATS = ("parquet", "csv")
REPORT_FILENAME = "split_report.json"

_RANDOM_HINT = 'set split.method = "random" in modelcycle.toml'

Positions = tuple[np.ndarray, np.ndarray, np.ndarray]


@dataclass(frozen=True, eq=False)
class SplitResult:
    """The three parts of a split, how they were made, and the evidence that they agree.

    Attributes:
        train: Training rows (original index kept).
        valid: Validation rows (original index kept).
        test: Test rows (original index kept).
        method: The method used, with ``auto`` resolved.
        digests: Part name -> :func:`~modelcycle.data.io.frame_digest` of the part.
        report: One row per (column, part); see the module docstring.
        target: The target column, if any.
        task: The task the split assumed (given or inferred from the target), if any.
        seed: The seed of the split.
    """

    train: pd.DataFrame
    valid: pd.DataFrame
    test: pd.DataFrame
    method: str
    digests: dict[str, str]
    report: pd.DataFrame
    target: str | None = None
    task: str | None = None
    seed: int | None = None

    def parts(self) -> dict[str, pd.DataFrame]:
        """The parts by name, in the order train, valid, test."""
        return {"train": self.train, "valid": self.valid, "test": self.test}

    @property
    def sizes(self) -> dict[str, int]:
        """Rows per part."""
        return {name: len(part) for name, part in self.parts().items()}


def resolve_method(
    spec: SplitSpec,
    *,
    task: str | None,
    time_column: str | None,
    id_column: str | None,  # noqa: ARG001 - part of the contract; a group split is never implied
) -> str:
    """The split method to use: ``spec.method``, with ``auto`` resolved.

    ``auto`` is stratified for classification, time-based when a time column exists, else random.
    An id column alone never implies a group split (ids are usually row keys); ask for
    ``method = "group"`` when several rows share an id.

    Args:
        spec: The project's split section.
        task: ``"classification"``, ``"regression"`` or ``None`` when unknown.
        time_column: The project's time column, if any.
        id_column: The project's id column, if any.

    Returns:
        One of ``random``, ``stratified``, ``time``, ``group``.
    """
    if spec.method != "auto":
        return spec.method
    if task == "classification":
        return "stratified"
    if time_column:
        return "time"
    return "random"


def split(
    frame: pd.DataFrame,
    spec: SplitSpec,
    *,
    target: str | None,
    task: str | None,
    time_column: str | None = None,
    id_column: str | None = None,
) -> SplitResult:
    """Split ``frame`` into train, valid and test parts.

    Args:
        frame: The whole dataset.
        spec: Method, sizes and seed.
        target: The target column (needed for a stratified split; profiled in the report).
        task: ``"classification"`` or ``"regression"``; inferred from the target when ``None``.
        time_column: The column a time split sorts by.
        id_column: The column a group split keeps together.

    Returns:
        The parts, the resolved method, their digests and the agreement report.

    Raises:
        DataError: Too few rows, a missing column, a class too rare to stratify, unparseable
            or missing time values, or too few ids to fill every part.
    """
    n = len(frame)
    needed = rows_needed(spec)
    if n < needed:
        raise DataError(
            f"the data has {n} rows; a split into train, valid and test needs at least {needed} "
            f"(test_size={spec.test_size}, valid_size={spec.valid_size})",
            f"give at least {needed} rows"
            + (", or raise split.test_size / split.valid_size" if needed > MIN_ROWS else ""),
        )
    if target is not None and target not in frame.columns:
        raise missing_column_error(target, frame.columns, "target")
    if task is None and target is not None:
        task = infer_task(frame[target])
    method = resolve_method(spec, task=task, time_column=time_column, id_column=id_column)
    sizes = _part_sizes(n, spec)
    rng = np.random.default_rng(spec.seed)
    if method == "random":
        positions = _random_positions(n, sizes, rng)
    elif method == "stratified":
        if target is None:
            raise DataError(
                "a stratified split needs a target column, and none was given",
                f"set target in modelcycle.toml, or {_RANDOM_HINT}",
            )
        positions = _stratified_positions(frame[target], task, spec, sizes, rng)
    elif method == "time":
        positions = _time_positions(frame, time_column, sizes)
    elif method == "group":
        positions = _group_positions(frame, id_column, sizes, rng)
    else:  # pragma: no cover - SplitSpec validates the method
        raise DataError(f"unknown split method {method!r}", "use random, stratified, time or group")
    repeated_ids = (
        method in ("random", "stratified")
        and id_column is not None
        and id_column in frame.columns
        and bool(frame[id_column].duplicated().any())
    )
    if repeated_ids:
        logger.warning(
            "id column {!r} repeats: rows of one id can land in different parts "
            '(split.method = "group" keeps them together)',
            id_column,
        )
    train, valid, test = (frame.iloc[p] for p in positions)
    parts = {"train": train, "valid": valid, "test": test}
    exclude = {c for c in (id_column, time_column) if c is not None}
    report = split_report(parts, target=target, task=task, exclude=exclude, seed=spec.seed)
    return SplitResult(
        train=train,
        valid=valid,
        test=test,
        method=method,
        digests={name: frame_digest(part) for name, part in parts.items()},
        report=report,
        target=target,
        task=task,
        seed=spec.seed,
    )


def rows_needed(spec: SplitSpec) -> int:
    """The fewest rows that give every part at least one row under ``spec`` (and ``MIN_ROWS``)."""
    n = max(MIN_ROWS, math.ceil(0.5 / spec.test_size), math.ceil(0.5 / spec.valid_size))
    while min(_part_sizes(n, spec)) < 1:
        n += 1
    return n


def write_split(result: SplitResult, out_dir: Path, fmt: str = "parquet") -> dict[str, Path]:
    """Write the parts and ``split_report.json`` into ``out_dir``.

    Parquet files keep the parts' index (the source row labels, restored by ``pd.read_parquet``);
    CSV files do not. The recorded digests are those of the in-memory parts.

    Args:
        result: The split to write.
        out_dir: The folder; created when missing.
        fmt: ``parquet`` (default) or ``csv``.

    Returns:
        ``train``, ``valid``, ``test`` and ``report`` -> the written file.

    Raises:
        DataError: An unknown format.
    """
    fmt = fmt.lower().lstrip(".")
    if fmt not in SPLIT_FORMATS:
        raise DataError(f"unknown split file format {fmt!r}", "use parquet or csv")
    out_dir = Path(out_dir).expanduser()
    out_dir.mkdir(parents=True, exist_ok=True)
    paths: dict[str, Path] = {}
    for name, part in result.parts().items():
        path = out_dir / f"{name}.{fmt}"
        index_clashes = any(level in part.columns for level in part.index.names if level)
        if fmt == "parquet" and not index_clashes:
            part.to_parquet(path, index=None)
        else:
            write_table(part, path)
        paths[name] = path
    document: dict[str, Any] = {
        "method": result.method,
        "seed": result.seed,
        "target": result.target,
        "task": result.task,
        "format": fmt,
        "index_kept": fmt == "parquet",
        "sizes": result.sizes,
        "files": {name: path.name for name, path in paths.items()},
        "digests": result.digests,
        "report": json.loads(result.report.to_json(orient="records")),
    }
    report_path = out_dir / REPORT_FILENAME
    report_path.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    paths["report"] = report_path
    return paths


def split_report(
    parts: dict[str, pd.DataFrame],
    *,
    target: str | None,
    task: str | None,
    exclude: set[str] | None = None,
    seed: int = 0,
) -> pd.DataFrame:
    """How well the parts agree: one row per (column, part); see the module docstring.

    Args:
        parts: ``train`` (the reference) and the other parts, by name.
        target: The target column, reported first.
        task: ``classification`` reports the target's class shares; otherwise its mean/median/KS.
        exclude: Columns left out (id and time columns).
        seed: Seed of the KS sampling of parts larger than ``KS_SAMPLE`` rows.

    Returns:
        A frame with the columns of ``REPORT_COLUMNS``.
    """
    exclude = exclude or set()
    train = parts["train"]
    rows: list[dict[str, Any]] = []
    categorical_target = target is not None and (
        task == "classification" or not _is_numeric(train[target])
    )
    if categorical_target and target is not None:
        rows.extend(_share_rows(parts, target))
    numeric = [
        str(c)
        for c in train.columns
        if c not in exclude and not (categorical_target and c == target) and _is_numeric(train[c])
    ]
    if target in numeric:
        numeric.remove(str(target))
        numeric.insert(0, str(target))
    if numeric:
        rows.extend(_numeric_rows(parts, numeric, seed))
    return pd.DataFrame(rows, columns=list(REPORT_COLUMNS))


def _is_numeric(series: pd.Series) -> bool:
    return bool(pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series))


def _numeric_rows(
    parts: dict[str, pd.DataFrame], columns: list[str], seed: int
) -> list[dict[str, Any]]:
    from scipy.stats import ks_2samp

    rng = np.random.default_rng(seed)
    stats: dict[str, tuple[pd.Series, pd.Series, pd.Series]] = {}
    samples: dict[str, pd.DataFrame] = {}
    for name, part in parts.items():
        values = part[columns].astype("float64")
        stats[name] = (values.count(), values.mean(), values.median())
        if len(values) > KS_SAMPLE:
            values = values.iloc[np.sort(rng.choice(len(values), KS_SAMPLE, replace=False))]
        samples[name] = values
    rows: list[dict[str, Any]] = []
    for column in columns:
        reference = _finite(samples["train"][column])
        for name in parts:
            counts, means, medians = stats[name]
            ks = 0.0 if name == "train" else _ks(ks_2samp, reference, samples[name][column])
            rows.append(
                {
                    "column": column,
                    "kind": "numeric",
                    "part": name,
                    "n": int(counts[column]),
                    "mean": float(means[column]),
                    "median": float(medians[column]),
                    "ks_vs_train": ks,
                    "share_diff": math.nan,
                    "shares": None,
                }
            )
    return rows


def _finite(values: pd.Series) -> np.ndarray:
    array: np.ndarray = values.to_numpy(dtype="float64", na_value=np.nan)
    finite: np.ndarray = array[np.isfinite(array)]
    return finite


def _ks(ks_2samp: Any, reference: np.ndarray, values: pd.Series) -> float:
    sample = _finite(values)
    if reference.size == 0 or sample.size == 0:
        return math.nan
    return float(ks_2samp(reference, sample).statistic)


def _share_rows(parts: dict[str, pd.DataFrame], target: str) -> list[dict[str, Any]]:
    counts = {
        name: part[target].astype(str).where(part[target].notna()).value_counts()
        for name, part in parts.items()
    }
    # One row per class (train's most frequent first), one column per part; absent classes are 0.
    table = (
        pd.concat(counts, axis=1).fillna(0.0).sort_values("train", ascending=False, kind="stable")
    )
    shares = table / table.sum().where(table.sum() > 0)
    diffs = shares.sub(shares["train"], axis=0).abs().max()
    shown = shares.iloc[:MAX_SHARES]
    return [
        {
            "column": target,
            "kind": "categorical",
            "part": name,
            "n": int(part[target].notna().sum()),
            "mean": math.nan,
            "median": math.nan,
            "ks_vs_train": math.nan,
            "share_diff": float(diffs[name]) if len(table) else math.nan,
            "shares": {str(k): round(float(v), 6) for k, v in shown[name].items()},
        }
        for name, part in parts.items()
    ]


def _round(value: float) -> int:
    return math.floor(value + 0.5)


def _part_sizes(n: int, spec: SplitSpec) -> tuple[int, int, int]:
    """Rows of (train, valid, test) for ``n`` rows."""
    n_test = _round(n * spec.test_size)
    n_valid = _round(n * spec.valid_size)
    return n - n_valid - n_test, n_valid, n_test


def _from_labels(part: np.ndarray) -> Positions:
    """Positions of train (0), valid (1) and test (2) rows, in source order."""
    return (np.flatnonzero(part == 0), np.flatnonzero(part == 1), np.flatnonzero(part == 2))


def _random_positions(n: int, sizes: tuple[int, int, int], rng: np.random.Generator) -> Positions:
    _, n_valid, n_test = sizes
    part = np.zeros(n, dtype=np.int8)
    order = rng.permutation(n)
    part[order[:n_test]] = 2
    part[order[n_test : n_test + n_valid]] = 1
    return _from_labels(part)


def _stratified_positions(
    target: pd.Series,
    task: str | None,
    spec: SplitSpec,
    sizes: tuple[int, int, int],
    rng: np.random.Generator,
) -> Positions:
    n = len(target)
    _, n_valid, n_test = sizes
    numeric_target = task == "regression" and _is_numeric(target)
    if numeric_target:
        values = pd.to_numeric(target, errors="coerce")
        n_bins = min(REGRESSION_STRATA, int(values.nunique()))
        if n_bins >= 2:
            bins = pd.qcut(values, q=n_bins, labels=False, duplicates="drop")
            codes = bins.fillna(-1).to_numpy(dtype=np.int64)
        else:
            codes = np.full(n, -1, dtype=np.int64)
        labels: list[str] = []
        n_strata = int(codes.max()) + 1
    else:
        try:
            codes, uniques = pd.factorize(target, sort=True)
        except TypeError:  # labels of mixed types do not sort
            codes, uniques = pd.factorize(target)
        codes = np.asarray(codes, dtype=np.int64)
        labels = [str(u) for u in uniques]
        n_strata = len(uniques)
    # Rows without a target form a stratum of their own, with no minimum per part.
    codes = np.where(codes < 0, n_strata, codes)
    counts = np.bincount(codes, minlength=n_strata + 1)
    minimum = np.zeros(n_strata + 1, dtype=np.int64)
    if not numeric_target:
        members = min_class_members(spec)
        rare = [(labels[i], int(counts[i])) for i in range(n_strata) if counts[i] < members]
        if rare:
            rare.sort(key=lambda item: item[1])
            label, count = rare[0]
            others = f" (and {len(rare) - 1} other classes)" if len(rare) > 1 else ""
            raise DataError(
                f"class {label!r} of target {target.name!r} has only {count} rows{others}; a "
                f"stratified split with test_size={spec.test_size} and "
                f"valid_size={spec.valid_size} needs at least {members} rows per class",
                f"{_RANDOM_HINT}, or merge or drop the rare classes",
            )
        minimum[:n_strata] = 1
    test_counts = _allocate(n_test, counts, minimum)
    valid_counts = _allocate(n_valid, counts - test_counts, minimum)
    train_counts = counts - test_counts - valid_counts
    if not numeric_target:
        for i in range(n_strata):
            if min(train_counts[i], valid_counts[i], test_counts[i]) < 1:
                raise DataError(
                    f"class {labels[i]!r} of target {target.name!r} ({int(counts[i])} rows) "
                    "cannot appear in every part of a stratified split",
                    f"{_RANDOM_HINT}, or merge or drop the rare classes",
                )
    # Group rows by stratum, shuffled within each; the first ranks of a stratum go to test.
    order = np.lexsort((rng.random(n), codes))
    sorted_codes = codes[order]
    starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
    rank = np.arange(n) - starts[sorted_codes]
    test_end = test_counts[sorted_codes]
    valid_end = test_end + valid_counts[sorted_codes]
    part = np.empty(n, dtype=np.int8)
    part[order] = np.where(rank < test_end, 2, np.where(rank < valid_end, 1, 0))
    return _from_labels(part)


def min_class_members(spec: SplitSpec) -> int:
    """Rows a class needs so that a stratified split can give each part at least one of them."""
    smallest = min(spec.test_size, spec.valid_size, 1.0 - spec.test_size - spec.valid_size)
    return max(3, math.ceil(1.0 / smallest - 1e-9))


def _allocate(total: int, counts: np.ndarray, minimum: np.ndarray) -> np.ndarray:
    """Share ``total`` rows among strata in proportion to ``counts`` (largest remainder).

    Every stratum gets at least ``minimum`` (when it has the rows) and at most its count.
    """
    size = int(counts.sum())
    quotas = counts * (total / size) if size else np.zeros(len(counts))
    result: np.ndarray = np.minimum(np.maximum(np.floor(quotas), minimum), counts).astype(np.int64)
    missing = total - int(result.sum())
    # Strata with the largest remainders gain a row first; those with the smallest lose one first.
    order = np.argsort(-(quotas - result), kind="stable")
    while missing != 0:
        changed = False
        for i in order if missing > 0 else order[::-1]:
            if missing > 0 and result[i] < counts[i]:
                result[i] += 1
                missing -= 1
                changed = True
            elif missing < 0 and result[i] > minimum[i]:
                result[i] -= 1
                missing += 1
                changed = True
            if missing == 0:
                break
        if not changed:
            break
    return result


def _time_positions(
    frame: pd.DataFrame, time_column: str | None, sizes: tuple[int, int, int]
) -> Positions:
    if time_column is None:
        raise DataError(
            "a time split needs a time column, and none was given",
            f"set time_column in modelcycle.toml, or {_RANDOM_HINT}",
        )
    if time_column not in frame.columns:
        raise missing_column_error(time_column, frame.columns, "time_column")
    stamps = parse_times(frame[time_column])
    missing = int(stamps.isna().sum())
    if missing:
        raise DataError(
            f"time column {time_column!r} has {missing} missing values; a time split cannot "
            "place those rows",
            f"fill or drop the rows without a time, or {_RANDOM_HINT}",
        )
    n_train, n_valid, _ = sizes
    order = stamps.reset_index(drop=True).sort_values(kind="stable").index.to_numpy()
    return (
        order[:n_train],
        order[n_train : n_train + n_valid],
        order[n_train + n_valid :],
    )


def parse_times(column: pd.Series) -> pd.Series:
    """A time column as sortable values: datetimes, or numbers (years, epochs) left as they are.

    Text is parsed as dates (timezone offsets converted to UTC); missing values stay missing.

    Raises:
        DataError: Some present values are not dates; the message shows a few of them.
    """
    if pd.api.types.is_datetime64_any_dtype(column) or _is_numeric(column):
        return column
    text = column.astype("string")
    with warnings.catch_warnings():
        # pandas warns when it cannot infer one format; the mixed-format retry handles those.
        warnings.simplefilter("ignore", UserWarning)
        stamps = pd.to_datetime(text, errors="coerce", utc=True)
        retry = text.notna() & stamps.isna()
        if retry.any():
            stamps = stamps.where(
                ~retry, pd.to_datetime(text, errors="coerce", utc=True, format="mixed")
            )
    bad = text.notna() & stamps.isna()
    if bad.any():
        examples = ", ".join(repr(str(v)) for v in text[bad].unique()[:3])
        raise DataError(
            f"time column {column.name!r} has {int(bad.sum())} values that are not dates "
            f"(e.g. {examples})",
            "fix or drop those rows, or set time_column to the right column",
        )
    return stamps


def _group_positions(
    frame: pd.DataFrame,
    id_column: str | None,
    sizes: tuple[int, int, int],
    rng: np.random.Generator,
) -> Positions:
    if id_column is None:
        raise DataError(
            "a group split needs an id column, and none was given",
            "set id_column in modelcycle.toml (rows sharing an id stay together), "
            f"or {_RANDOM_HINT}",
        )
    if id_column not in frame.columns:
        raise missing_column_error(id_column, frame.columns, "id_column")
    codes, uniques = pd.factorize(frame[id_column])
    codes = np.asarray(codes, dtype=np.int64)
    # A row without an id is a group of its own.
    no_id = codes < 0
    codes[no_id] = len(uniques) + np.arange(int(no_id.sum()))
    n_groups = len(uniques) + int(no_id.sum())
    if n_groups < 3:
        raise DataError(
            f"id column {id_column!r} has only {n_groups} distinct ids; a group split needs at "
            "least 3 (one per part)",
            f"check id_column in modelcycle.toml, or {_RANDOM_HINT}",
        )
    _, n_valid, n_test = sizes
    group_sizes = np.bincount(codes, minlength=n_groups)
    order = rng.permutation(n_groups)
    ends = np.cumsum(group_sizes[order])
    middles = ends - group_sizes[order] / 2
    group_part = np.empty(n_groups, dtype=np.int8)
    group_part[order] = np.where(middles <= n_test, 2, np.where(middles <= n_test + n_valid, 1, 0))
    positions = _from_labels(group_part[codes])
    empty = [name for name, p in zip(PARTS, positions, strict=True) if p.size == 0]
    if empty:
        raise DataError(
            f"a group split by {id_column!r} leaves {', '.join(empty)} empty: {n_groups} ids, "
            f"the largest with {int(group_sizes.max())} of {len(frame)} rows",
            "use an id with more, smaller groups, or change split.seed or the part sizes",
        )
    return positions
