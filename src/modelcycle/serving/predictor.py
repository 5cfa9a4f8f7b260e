"""Predicting for the server: a loaded model behind its input rules, and adaptive micro-batching.

A single-row prediction through a scikit-learn pipeline costs a few milliseconds, almost all of
it fixed per-call overhead (the DataFrame, the column transformer), while 16 rows cost barely
more than one. :class:`MicroBatcher` therefore runs every request that arrives while the
previous batch is predicting as one batch, on one worker thread: with one client there is no
added wait, with many the cost per request falls with the load.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
from loguru import logger

from modelcycle.registry.bundle import choose_classes
from modelcycle.registry.store import LoadedModel
from modelcycle.serving.compiled import CompiledPipeline, compile_pipeline
from modelcycle.serving.inputs import Columns, InputRules, columns_frame


@dataclass(frozen=True)
class Outputs:
    """What a model answered for a batch of rows.

    Attributes:
        predictions: One value (or class) per row, as plain Python values.
        probabilities: Per row, the class probabilities by class name (classification).
        ood: Per row, the OOD verdict ``{"flag", "score", "reasons"}`` (``None``: the model
            has no detector).
    """

    predictions: list[Any]
    probabilities: list[dict[str, float]] | None = None
    ood: list[dict[str, Any]] | None = None

    def __len__(self) -> int:
        return len(self.predictions)

    def part(self, start: int, stop: int) -> Outputs:
        """Rows ``start:stop``."""
        probabilities = None if self.probabilities is None else self.probabilities[start:stop]
        ood = None if self.ood is None else self.ood[start:stop]
        return Outputs(self.predictions[start:stop], probabilities, ood)


@dataclass
class Predictor:
    """One loaded model version, ready to predict (the arm it answers for is routing's business).

    Attributes:
        model: The verified, loaded model version.
        rules: The input rules generated from its FeatureSchema.
    """

    model: LoadedModel
    rules: InputRules = field(init=False)
    compiled: CompiledPipeline | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        self.rules = InputRules(self.model.schema, self.model.name)

    @property
    def name(self) -> str:
        """The registered model name."""
        return self.model.name

    @property
    def version(self) -> str:
        """The version number as text (as the prediction log stores it)."""
        return str(self.model.version)

    @property
    def classes(self) -> list[str] | None:
        """Class names in probability order (classification)."""
        return None if self.model.classes is None else [str(c) for c in self.model.classes]

    def predict(self, columns: Columns) -> Outputs:
        """Predict input columns (see :class:`~modelcycle.serving.inputs.InputRules`).

        When the model has an OOD detector, every row is also checked (vectorised over the
        batch) and ``Outputs.ood`` carries the verdicts.
        """
        if self.compiled is None:
            outputs = self._outputs(*self._pipeline_outputs(columns))
        elif self.model.task == "regression":
            outputs = self._outputs(self.compiled.predict(columns), None)
        else:
            outputs = self._outputs(None, self.compiled.predict_proba(columns))
        if self.model.ood is None:
            return outputs
        return replace(outputs, ood=self._ood(columns))

    def _ood(self, columns: Columns) -> list[dict[str, Any]] | None:
        """The OOD verdict per row; ``None`` (and a warning) if the detector fails.

        A broken detector must not cost the prediction: the rows are then logged without one.
        """
        assert self.model.ood is not None
        try:
            return self.model.ood.score(columns).records()
        except Exception as err:
            logger.warning(
                "{}: the OOD check failed: {}: {}", self.model.ref, type(err).__name__, err
            )
            return None

    def _pipeline_outputs(self, columns: Columns) -> tuple[Any, np.ndarray | None]:
        """Predictions (regression) or probabilities (classification) from the pipeline."""
        model = self.model
        inputs = columns_frame(columns)
        if model.task == "regression":
            return np.asarray(model.pipeline.predict(inputs)), None
        return None, np.asarray(model.pipeline.predict_proba(inputs), dtype="float64")

    def _outputs(self, values: Any, proba: np.ndarray | None) -> Outputs:
        if proba is None:
            return Outputs(np.asarray(values).tolist())
        labels = list(self.model.classes or [])
        chosen = choose_classes(proba, labels, self.model.threshold).tolist()
        names = self.classes or []
        return Outputs(chosen, [dict(zip(names, row, strict=True)) for row in proba.tolist()])

    def compile(self) -> bool:
        """Use the NumPy fast path if it exists for this pipeline and agrees with it exactly.

        Returns:
            Whether the fast path is in use.
        """
        compiled = compile_pipeline(self.model.pipeline, self.model.task)
        if compiled is None:
            logger.info("{}: no fast path for this pipeline; using it as is", self.model.ref)
            return False
        columns = self.check_columns()
        slow_values, slow_proba = self._pipeline_outputs(columns)
        try:
            if self.model.task == "regression":
                same = np.allclose(compiled.predict(columns), slow_values, rtol=1e-9, atol=1e-9)
            else:
                fast = compiled.predict_proba(columns)
                slow = np.asarray(slow_proba)
                same = fast.shape == slow.shape and np.allclose(fast, slow, rtol=1e-9, atol=1e-9)
        except Exception as err:
            logger.warning("{}: fast path failed its check ({}); not used", self.model.ref, err)
            return False
        if not same:
            logger.warning("{}: fast path disagrees with the pipeline; not used", self.model.ref)
            return False
        self.compiled = compiled
        return True

    def check_columns(self) -> Columns:
        """Rows that exercise every input: typical, extreme, missing and unseen values."""
        rows: list[dict[str, Any]] = []
        for position in range(12):
            row: dict[str, Any] = {}
            for rule in self.rules.features:
                column = self.model.schema.column(rule.name)
                options: list[Any]
                if column.is_numeric:
                    options = list(column.quantiles.values()) or [column.mean or 0.0]
                    options += [(column.min or 0) - 1, (column.max or 0) * 2 + 1]
                elif rule.kind == "boolean":
                    options = [True, False]
                elif rule.kind == "datetime":
                    options = ["2024-01-15", "2019-07-01T12:00:00"]
                else:
                    options = [*column.categories, "an unseen value"]
                if not rule.required:
                    options.append(None)
                row[rule.name] = options[(position * 7 + len(rule.name)) % len(options)]
            rows.append(row)
        return self.rules.columns_from_rows(rows)

    def sample_columns(self) -> Columns:
        """One typical row (medians, most frequent categories) to warm up and smoke-test with."""
        row: dict[str, Any] = {}
        for rule in self.rules.features:
            column = self.model.schema.column(rule.name)
            if column.is_numeric:
                row[rule.name] = column.quantiles.get("0.5", column.mean)
            elif column.categories:
                row[rule.name] = next(iter(column.categories))
            else:
                row[rule.name] = None
        return self.rules.columns_from_rows([row])

    def warm(self) -> float:
        """Compile the fast path, then predict a sample row once; returns its milliseconds.

        First calls pay one-off costs; warming keeps them off the first request.

        Raises:
            ValueError: The prediction is not finite (a broken model).
        """
        self.compile()
        start = time.perf_counter()
        outputs = self.predict(self.sample_columns())
        if self.model.task == "regression" and not np.isfinite(outputs.predictions).all():
            raise ValueError(f"{self.model.ref} predicted a non-finite value on a sample row")
        return (time.perf_counter() - start) * 1000


Records = Callable[[Outputs, float], list[dict[str, Any]]]
"""Builds a request's log records from its outputs and its latency in milliseconds."""
Sink = Callable[[list[dict[str, Any]]], None]
"""Durably logs a batch's records (one spool write per batch)."""


@dataclass
class _Job:
    predictor: Predictor
    columns: Columns
    rows: int
    future: asyncio.Future[Outputs]
    records: Records | None
    submitted: float


class MicroBatcher:
    """Runs concurrent prediction requests as batches on one worker thread.

    After a batch is predicted, the worker builds every request's log records and hands them to
    ``sink`` in one call — one spool write per batch instead of one per request — before any of
    the batch's requests is answered.

    Args:
        max_rows: Most rows predicted in one call; a larger request runs alone.
        sink: Where the batch's records go (e.g. ``PredictionLog.append``); ``None``: not logged.
    """

    def __init__(self, max_rows: int = 1024, sink: Sink | None = None) -> None:
        self.max_rows = max_rows
        self.sink = sink
        self._pending: list[_Job] = []
        self._wake: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="predict")

    async def predict(
        self, predictor: Predictor, columns: Columns, records: Records | None = None
    ) -> Outputs:
        """Predict ``columns`` with ``predictor``, batched with whatever else is waiting.

        Args:
            predictor: The model version to use.
            columns: Its input columns.
            records: Builds the request's log records; they are in the sink on return.
        """
        loop = asyncio.get_running_loop()
        if self._task is None:
            self._wake = asyncio.Event()
            self._task = loop.create_task(self._run())
        future: asyncio.Future[Outputs] = loop.create_future()
        rows = len(next(iter(columns.values()))) if columns else 0
        self._pending.append(_Job(predictor, columns, rows, future, records, time.perf_counter()))
        assert self._wake is not None
        self._wake.set()
        return await future

    async def close(self) -> None:
        """Stop the batching task and the worker thread."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        self._executor.shutdown(wait=True)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        assert self._wake is not None
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._pending:
                jobs = self._take()
                try:
                    results = await loop.run_in_executor(
                        self._executor, _predict_jobs, jobs, self.sink
                    )
                except Exception as err:
                    results = [err] * len(jobs)
                for job, result in zip(jobs, results, strict=True):
                    if job.future.done():
                        continue
                    if isinstance(result, BaseException):
                        job.future.set_exception(result)
                    else:
                        job.future.set_result(result)

    def _take(self) -> list[_Job]:
        jobs: list[_Job] = []
        rows = 0
        while self._pending and (not jobs or rows + self._pending[0].rows <= self.max_rows):
            job = self._pending.pop(0)
            jobs.append(job)
            rows += job.rows
        return jobs


def _predict_jobs(jobs: list[_Job], sink: Sink | None) -> list[Outputs | BaseException]:
    """Predict each predictor's jobs in one call, split the outputs back per job, and log."""
    results: list[Outputs | BaseException] = [ValueError("not predicted")] * len(jobs)
    groups: dict[int, list[int]] = {}
    for index, job in enumerate(jobs):
        groups.setdefault(id(job.predictor), []).append(index)
    for indexes in groups.values():
        predictor = jobs[indexes[0]].predictor
        parts = [jobs[i].columns for i in indexes]
        try:
            both = parts[0] if len(parts) == 1 else _concat(parts)
            outputs = predictor.predict(both)
        except Exception as err:
            for i in indexes:
                results[i] = err
            continue
        start = 0
        for i in indexes:
            results[i] = outputs.part(start, start + jobs[i].rows)
            start += jobs[i].rows
    if sink is not None:
        done = time.perf_counter()
        records = [
            record
            for job, result in zip(jobs, results, strict=True)
            if job.records is not None and isinstance(result, Outputs)
            for record in job.records(result, (done - job.submitted) * 1000)
        ]
        sink(records)
    return results


def _concat(parts: list[Columns]) -> Columns:
    return {name: np.concatenate([part[name] for part in parts]) for name in parts[0]}
