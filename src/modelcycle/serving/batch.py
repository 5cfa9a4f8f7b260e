"""Batch inference: predict a CSV or Parquet file into another one, in chunks of bounded memory.

:func:`predict_file` reads the input ``chunk_size`` rows at a time (``pandas.read_csv`` chunks,
Parquet record batches), normalises each chunk as :func:`~modelcycle.data.io.read_table` does
(textual nulls, numbers stored as text), checks it with the same
:class:`~modelcycle.serving.inputs.InputRules` as the server, predicts the valid rows in one
vectorised call and appends them to the output. Memory holds two chunks (the next one is read
in a background thread while this one is predicted), never the file.

Each output row is the input row (as modelcycle reads it) plus ``prediction`` (and one
``proba_<class>`` column per class for classification) and ``request_id``. Request ids are
``<batch id>-<row>``: a random batch id (16 hex digits) and the row's 0-based position in the
input, so each predicted row has its own id and a delayed label joins it as
``{"request_id": "<batch id>-<row>", "row": 0, ...}`` — the same shape as a single-row request
to the server. Rows that fail validation go to an errors file instead (the input columns as text,
plus ``row`` and ``reason``), and the job goes on. With a store engine, one prediction record per
predicted row is written to the prediction log (arm ``stable``), one transaction per chunk.

Files are written under a temporary name and renamed when the job ends, so a failed job never
leaves a half-written output behind.
"""

from __future__ import annotations

import difflib
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, cast

import numpy as np
import pandas as pd
import pyarrow as pa  # type: ignore[import-untyped]
from sqlalchemy.engine import Engine

from modelcycle.data.io import (
    CSV_SUFFIXES,
    PARQUET_SUFFIXES,
    csv_error,
    csv_options,
    is_parquet,
    normalise,
    read_head,
)
from modelcycle.errors import DataError, plural
from modelcycle.registry.store import LoadedModel
from modelcycle.serving.inputs import InputError, InputRules, Problem

DEFAULT_CHUNK_SIZE = 50_000
"""Rows read, checked, predicted and written at a time."""
ROW_COLUMN = "row"
REASON_COLUMN = "reason"
REQUEST_ID_COLUMN = "request_id"
BATCH_ID_HEX = 16
"""Hex digits of a batch id (64 random bits: ids of different jobs never meet)."""

Format = Literal["csv", "tsv", "parquet"]


@dataclass(frozen=True)
class BatchResult:
    """What a batch job did.

    Attributes:
        model: The model that predicted, as ``name/version``.
        rows_in: Rows read from the input.
        rows_predicted: Rows predicted and written to ``output``.
        rows_failed: Rows that failed validation (written to ``errors``).
        seconds: Wall time of the whole job (read, check, predict, write, log).
        output: The output file, or ``None`` when no row could be predicted.
        errors: The errors file, or ``None`` when no row failed.
        batch_id: The request-id prefix: row ``n`` of the input has request id
            ``<batch_id>-<n>``.
        logged: Prediction records written to the store (0 without an engine).
        notes: Things the job changed that the user should know (replaced columns, ...).
    """

    model: str
    rows_in: int
    rows_predicted: int
    rows_failed: int
    seconds: float
    output: Path | None
    errors: Path | None
    batch_id: str
    logged: int = 0
    notes: tuple[str, ...] = ()

    @property
    def rows_per_second(self) -> float:
        """Input rows processed per second of wall time."""
        return self.rows_in / self.seconds if self.seconds > 0 else float("inf")


def predict_file(
    model: LoadedModel,
    input: Path,
    output: Path,
    *,
    errors: Path | None = None,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    engine: Engine | None = None,
    progress: Callable[[int], None] | None = None,
) -> BatchResult:
    """Predict every row of a CSV or Parquet file into another file, chunk by chunk.

    Args:
        model: The loaded model version.
        input: The CSV or Parquet file to predict (format by suffix, else by content).
        output: Where the predictions go; ``.csv`` / ``.tsv`` or ``.parquet`` / ``.pq``.
        errors: Where rows that fail validation go (default: ``<output stem>.errors<suffix>``
            next to the output).
        chunk_size: Rows per chunk: memory use grows with it, speed barely does.
        engine: The operational store; when given, one prediction record per predicted row is
            logged (arm ``stable``), one transaction per chunk.
        progress: Called after each chunk with the number of input rows it held.

    Returns:
        The counts, timing and paths of the job. A file is written only when it has rows (no
        output when every row failed, no errors file when none did); an older file at that path
        is removed then, so the files on disk always describe the last run.

    Raises:
        DataError: The input is missing, empty or unreadable, lacks a required feature column,
            or an output name has an unknown suffix.
        StoreError: Logging to the store failed.
    """
    start = time.perf_counter()
    if chunk_size < 1:
        raise DataError(
            f"chunk size must be at least 1, got {chunk_size}", "pass --chunk-size 1000"
        )
    input, output = Path(input).expanduser(), Path(output).expanduser()
    errors = Path(errors).expanduser() if errors is not None else default_errors_path(output)
    _check_paths(input, output, errors)
    job = _Job(model, output, errors, engine)
    job.run(input, prefetch(read_chunks(input, chunk_size)), progress)
    return BatchResult(
        model=model.ref,
        rows_in=job.rows_in,
        rows_predicted=job.predicted,
        rows_failed=job.failed,
        seconds=time.perf_counter() - start,
        output=job.output_path,
        errors=job.errors_path,
        batch_id=job.batch_id,
        logged=job.logged,
        notes=tuple(dict.fromkeys(job.notes)),
    )


class _Job:
    """One batch job: its writers and counters, and what it does with each chunk."""

    def __init__(
        self, model: LoadedModel, output: Path, errors: Path, engine: Engine | None
    ) -> None:
        self.model = model
        self.rules = InputRules(model.schema, model.name)
        self.numeric = [rule.name for rule in self.rules.features if rule.kind == "numeric"]
        self.engine = engine
        self.batch_id = uuid.uuid4().hex[:BATCH_ID_HEX]
        self.out = _TableWriter(output, self.batch_id)
        self.err = _TableWriter(errors, self.batch_id)
        self.output_path: Path | None = None
        self.errors_path: Path | None = None
        self.rows_in = self.predicted = self.failed = self.logged = 0
        self.notes: list[str] = []

    def run(
        self,
        source: Path,
        chunks: Iterator[pd.DataFrame],
        progress: Callable[[int], None] | None,
    ) -> None:
        """Process every chunk, then move the files to their names (or delete them on error)."""
        try:
            for chunk in chunks:
                if self.rows_in == 0:
                    _check_columns(self.rules, chunk, self.model.ref)
                self.chunk(chunk, self.rows_in)
                self.rows_in += len(chunk)
                if progress is not None:
                    progress(len(chunk))
            if self.rows_in == 0:
                raise DataError(
                    f"{source} has a header but no rows", "give a file with at least one row"
                )
            self.output_path = self.out.commit()
            self.errors_path = self.err.commit()
        except BaseException:
            self.out.discard()
            self.err.discard()
            raise

    def chunk(self, chunk: pd.DataFrame, offset: int) -> None:
        """Check, predict, write (and log) one chunk whose first row is input row ``offset``."""
        typed, problems = self.rules.check_frame(chunk)
        if problems:
            self.err.write(errors_frame(chunk, problems, offset, self.notes))
            self.failed += len(problems)
        if typed.empty:
            return
        positions = typed.index.to_numpy()
        began = time.perf_counter()
        predicted = self.model.predict(typed)
        latency_ms = (time.perf_counter() - began) * 1000 / len(typed)
        ids = request_ids(self.batch_id, offset + positions)
        echo = _numbers_as_numbers(chunk.iloc[positions], typed, self.numeric)
        self.out.write(output_frame(echo, predicted, ids, self.notes))
        if self.engine is not None:
            self.logged += log_chunk(self.engine, self.model, typed, predicted, ids, latency_ms)
        self.predicted += len(typed)


# --------------------------------------------------------------------------------- frames


def request_ids(batch_id: str, rows: np.ndarray) -> pd.Series:
    """The request ids ``<batch_id>-<row>`` of input rows (vectorised).

    Args:
        batch_id: The job's batch id.
        rows: 0-based positions of the rows in the input.
    """
    return f"{batch_id}-" + pd.Series(rows, dtype="int64").astype("str")


def _numbers_as_numbers(
    echo: pd.DataFrame, typed: pd.DataFrame, numeric: list[str]
) -> pd.DataFrame:
    """Numeric features read as text (a bad value elsewhere in the chunk) as their numbers.

    Keeps a numeric feature's type the same in every chunk of the output.
    """
    text = [
        name
        for name in numeric
        if name in echo.columns and not pd.api.types.is_numeric_dtype(echo[name])
    ]
    return echo.assign(**{name: typed[name] for name in text}) if text else echo


def output_frame(
    echo: pd.DataFrame, predicted: pd.DataFrame, ids: pd.Series, notes: list[str] | None = None
) -> pd.DataFrame:
    """The input rows, then the prediction columns and ``request_id``.

    Input columns named like an added column (a file that was predicted before) are replaced;
    ``notes`` gets a line saying so.
    """
    added = [*predicted.columns, REQUEST_ID_COLUMN]
    clash = [c for c in echo.columns if c in added]
    if clash and notes is not None:
        notes.append(f"replaced the input's {', '.join(map(repr, clash))} with the new predictions")
    frame = echo.drop(columns=clash).reset_index(drop=True)
    extra = predicted.reset_index(drop=True)
    extra[REQUEST_ID_COLUMN] = ids.set_axis(extra.index)
    return pd.concat([frame, extra], axis=1)


def errors_frame(
    chunk: pd.DataFrame, problems: list[Problem], offset: int, notes: list[str] | None = None
) -> pd.DataFrame:
    """The rows that failed, their input values as text, ``row`` and ``reason``.

    Args:
        chunk: The chunk as read.
        problems: One problem per failed row (``row`` is the position in ``chunk``).
        offset: Input position of the chunk's first row.
        notes: Gets a line when input columns named ``row`` or ``reason`` had to be replaced.
    """
    positions = np.fromiter((p.row for p in problems if p.row is not None), dtype="int64")
    kept = [c for c in chunk.columns if c not in (ROW_COLUMN, REASON_COLUMN)]
    if len(kept) < len(chunk.columns) and notes is not None:
        notes.append(f"the errors file replaces the input's {ROW_COLUMN!r} / {REASON_COLUMN!r}")
    frame = chunk.iloc[positions][kept].astype("string").reset_index(drop=True)
    frame[ROW_COLUMN] = offset + positions
    frame[REASON_COLUMN] = [p.reason for p in problems if p.row is not None]
    return frame


# --------------------------------------------------------------------------------- logging


def log_chunk(
    engine: Engine,
    model: LoadedModel,
    typed: pd.DataFrame,
    predicted: pd.DataFrame,
    ids: pd.Series,
    latency_ms: float,
) -> int:
    """Write one prediction record per predicted row, in one transaction.

    Rows are built in table form (no pydantic object per row). The record id is the request
    id, which is unique per row, so retrying a chunk stores each record once.

    Args:
        engine: The operational store.
        model: The model that predicted.
        typed: The typed model inputs of the rows.
        predicted: Their predictions (same order).
        ids: Their request ids (same order).
        latency_ms: Prediction time per row, in milliseconds.

    Returns:
        The number of records written.
    """
    from modelcycle.store.engine import store_errors
    from modelcycle.store.predictions import insert_prediction_rows

    rows = prediction_rows(model, typed, predicted, ids, latency_ms)
    with store_errors(engine, "logging batch predictions"), engine.begin() as conn:
        return insert_prediction_rows(conn, rows)


def prediction_rows(
    model: LoadedModel,
    typed: pd.DataFrame,
    predicted: pd.DataFrame,
    ids: pd.Series,
    latency_ms: float,
) -> list[dict[str, Any]]:
    """The prediction-log rows of a chunk, as :func:`~modelcycle.store.predictions.prediction_row`.

    Built column-wise, then zipped into one dict per row (what ``executemany`` takes). Each row
    carries the model's OOD check, as a served row does, so monitoring's OOD rate covers both.
    """
    features = _records(typed)
    oods: list[Any] = [None] * len(typed)
    if model.ood is not None:
        oods = model.ood.score(typed[model.feature_names]).records()
    numbers, labels = _split_predictions(predicted["prediction"])
    proba_columns = [c for c in predicted.columns if str(c).startswith("proba_")]
    probabilities: list[Any] = [None] * len(typed)
    if proba_columns:
        named = predicted[proba_columns].set_axis([str(c)[6:] for c in proba_columns], axis=1)
        probabilities = _records(named.astype("float64"))
    request_id = ids.tolist()
    now = datetime.now(UTC)
    name, version = model.name, str(model.version)
    return [
        {
            "request_id": rid,
            "row": 0,
            "created_at": now,
            "model_name": name,
            "model_version": version,
            "arm": "stable",
            "features": feats,
            "prediction": number,
            "prediction_label": label,
            "probabilities": proba,
            "latency_ms": latency_ms,
            "ood": ood,
            "error": None,
            "record_id": rid,
        }
        for rid, feats, number, label, proba, ood in zip(
            request_id, features, numbers, labels, probabilities, oods, strict=True
        )
    ]


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """One dict per row, missing values as ``None`` (column-wise; ~3x ``to_dict("records")``)."""
    names = [str(c) for c in frame.columns]
    columns = [
        frame[c].astype(object).where(frame[c].notna(), None).tolist() for c in frame.columns
    ]
    return [dict(zip(names, values, strict=True)) for values in zip(*columns, strict=True)]


def _split_predictions(values: pd.Series) -> tuple[list[Any], list[Any]]:
    """Predictions as the store's (number, class name) column pair, column-wise."""
    empty: list[Any] = [None] * len(values)
    if pd.api.types.is_bool_dtype(values) or pd.api.types.is_numeric_dtype(values):
        return values.astype("float64").tolist(), empty
    return empty, values.astype(str).tolist()


# --------------------------------------------------------------------------------- reading


def read_chunks(path: Path, chunk_size: int) -> Iterator[pd.DataFrame]:
    """The rows of a CSV or Parquet file, ``chunk_size`` at a time, normalised like read_table.

    Each chunk has a fresh ``RangeIndex``. CSV delimiter and encoding are sniffed as
    :func:`~modelcycle.data.io.read_table` does.

    Raises:
        DataError: The file is missing, a folder, empty, binary, or unreadable.
    """
    head = read_head(path)
    if is_parquet(path, head):
        yield from _parquet_chunks(path, chunk_size)
    else:
        yield from _csv_chunks(path, head, chunk_size)


def prefetch(chunks: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
    """The same chunks, each read in a background thread while the caller works on the last one.

    Reading and parsing (pandas and pyarrow release the GIL for most of it) overlap with
    predicting, so the job costs little more than the predictions. At most one chunk waits.
    """
    from concurrent.futures import ThreadPoolExecutor, wait

    done = object()
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="modelcycle-read") as pool:
        pending = pool.submit(next, chunks, done)
        try:
            while (chunk := pending.result()) is not done:
                pending = pool.submit(next, chunks, done)
                yield cast(pd.DataFrame, chunk)
        finally:
            wait([pending])
            close = getattr(chunks, "close", None)
            if close is not None:
                close()


def count_rows(path: Path) -> int | None:
    """The rows of a Parquet file (from its footer); ``None`` for CSV or an unreadable file."""
    import pyarrow.parquet as pq  # type: ignore[import-untyped]

    try:
        with path.open("rb") as handle:
            if handle.read(4) != b"PAR1":
                return None
        return int(pq.ParquetFile(path).metadata.num_rows)
    except Exception:  # only a progress-bar total: reading the file reports the problem
        return None


def _csv_chunks(path: Path, head: bytes, chunk_size: int) -> Iterator[pd.DataFrame]:
    options, _ = csv_options(path, head)
    try:
        reader = pd.read_csv(path, chunksize=chunk_size, **options)
        with reader:
            for frame in reader:
                if len(frame):  # a file of blank lines after the header yields an empty chunk
                    yield normalise(frame.reset_index(drop=True), str(path), []).frame
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as err:
        raise csv_error(path, options["sep"], err) from None


def _parquet_chunks(path: Path, chunk_size: int) -> Iterator[pd.DataFrame]:
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(path)
    except Exception as err:  # pyarrow raises many types for a damaged file
        raise DataError(
            f"{path} is not a readable Parquet file: {err}", "re-export the file"
        ) from None
    if parquet.metadata.num_rows == 0:
        raise DataError(f"{path} has no rows", "give a file with at least one row")
    with parquet:
        for batch in parquet.iter_batches(batch_size=chunk_size):
            yield normalise(batch.to_pandas(), str(path), []).frame


def _check_columns(rules: InputRules, chunk: pd.DataFrame, ref: str) -> None:
    """Fail at once when required feature columns are absent, suggesting close names."""
    try:
        rules.check_frame(chunk.head(0))
    except InputError as err:
        absent = [p.field for p in err.problems if p.field is not None]
        raise DataError(
            f"the input lacks {plural(len(absent), 'required feature column')} of {ref}: "
            f"{', '.join(absent)}",
            f"{_renames(absent, chunk.columns, rules.names)}add the columns "
            f"(see `modelcycle models show {ref}`)",
        ) from None


def _renames(absent: list[str], columns: pd.Index, features: list[str]) -> str:
    """``"rename 'Area' to 'area', or "`` for unused columns whose names are close."""
    spare = {str(c).lower(): str(c) for c in columns if c not in features}
    pairs = []
    for name in absent:
        close = difflib.get_close_matches(name.lower(), list(spare), n=1, cutoff=0.8)
        if close:
            pairs.append(f"{spare.pop(close[0])!r} to {name!r}")
    return f"rename {', '.join(pairs)}, or " if pairs else ""


# --------------------------------------------------------------------------------- writing


def output_format(path: Path) -> Format:
    """The file format a name asks for, by suffix.

    Raises:
        DataError: The suffix is neither CSV (``.csv``, ``.tsv``, ``.txt``) nor Parquet.
    """
    suffix = path.suffix.lower()
    if suffix in PARQUET_SUFFIXES:
        return "parquet"
    if suffix in CSV_SUFFIXES:
        return "tsv" if suffix == ".tsv" else "csv"
    raise DataError(f"cannot write {path}: unknown format", "use a .csv or .parquet file name")


def default_errors_path(output: Path) -> Path:
    """``predictions.csv`` -> ``predictions.errors.csv`` (same folder, same format)."""
    return output.with_name(f"{output.stem}.errors{output.suffix}")


def _check_paths(input: Path, output: Path, errors: Path) -> None:
    output_format(output)
    output_format(errors)
    same = {p.resolve() for p in (input, output, errors)}
    if len(same) < 3:
        raise DataError(
            f"the input {input}, output {output} and errors file {errors} must be three files",
            "choose another --out or --errors",
        )


class _TableWriter:
    """Appends frames to a CSV or Parquet file under a temporary name; renames it on commit.

    Parquet needs one type per column: the first chunk fixes it, later chunks are cast to it
    (integers with missing values, numbers read as text); a value that cannot be cast is an
    error naming the column.
    """

    def __init__(self, path: Path, batch_id: str) -> None:
        self.path = path
        self.format = output_format(path)
        self.partial = path.with_name(f".{path.name}.{batch_id}.partial")
        self._sink: Any = None
        self._schema: Any = None
        self._rows = 0

    def write(self, frame: pd.DataFrame) -> None:
        """Append ``frame`` (same columns as the first one written)."""
        table = pa.Table.from_pandas(frame, preserve_index=False)
        if self._sink is None:
            self._open(table)
        if self.format == "parquet":
            self._sink.write_table(_conform(table, self._schema, self.path))
        else:
            self._write_csv(table, header=self._rows == 0)
        self._rows += len(frame)

    def _open(self, table: Any) -> None:
        import pyarrow.parquet as pq

        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self.format == "parquet":
            fields = [
                pa.field(f.name, pa.string()) if pa.types.is_null(f.type) else f
                for f in table.schema
            ]
            self._schema = pa.schema(fields)
            self._sink = pq.ParquetWriter(self.partial, self._schema)
        else:
            self._sink = pa.OSFile(str(self.partial), "wb")

    def _write_csv(self, table: Any, *, header: bool) -> None:
        import pyarrow.csv as pcsv  # type: ignore[import-untyped]

        options = pcsv.WriteOptions(
            include_header=header,
            delimiter="\t" if self.format == "tsv" else ",",
            quoting_style="needed",
        )
        pcsv.write_csv(table, self._sink, write_options=options)

    def commit(self) -> Path | None:
        """Close and rename to the final name.

        Returns:
            The file; ``None`` when nothing was written (an older file at the path is removed).
        """
        if self._sink is None:
            self.path.unlink(missing_ok=True)
            return None
        self._sink.close()
        self._sink = None
        self.partial.replace(self.path)
        return self.path

    def discard(self) -> None:
        """Close and delete the temporary file (the job failed)."""
        if self._sink is not None:
            self._sink.close()
            self._sink = None
        self.partial.unlink(missing_ok=True)


def _conform(table: Any, schema: Any, path: Path) -> Any:
    """``table`` cast to the file's column types, or a DataError naming the column."""
    if table.schema.equals(schema, check_metadata=False):
        return table
    columns = []
    for target, column in zip(schema, table.columns, strict=True):
        if column.type == target.type:
            columns.append(column)
            continue
        try:
            columns.append(column.cast(target.type))
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            raise DataError(
                f"cannot write column {target.name!r} to {path}: it held {target.type} values "
                f"in the first chunk and {column.type} values in a later one (a Parquet column "
                "has one type)",
                "write CSV (--out *.csv), or pass a --chunk-size large enough for the first "
                "chunk to show the column's real type",
            ) from None
    return pa.Table.from_arrays(columns, schema=schema)
