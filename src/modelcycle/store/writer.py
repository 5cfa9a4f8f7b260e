"""The durable prediction log: a write-ahead spool on local disk, group-committed to the store.

``append`` costs the caller one ``write`` to a local spool file and a queue put; a background
thread commits queued records to the database in batches. Because every record reaches the spool
(the operating system's page cache) before ``append`` returns, a record the server acknowledged
survives the server process being killed (``kill -9``); the spool is replayed on the next start.
Set ``fsync=True`` to survive a power cut too, at the cost of a disk flush per append.

If the database is unreachable, predictions go on: records stay in the spool (and in memory up
to ``max_pending``), the writer retries with backoff, and the stats say how many are waiting.
Replays are idempotent: every record carries a unique ``record_id`` and the insert skips ids
already stored.

Several server processes may share one spool folder: each owns the files it writes (named by an
owner token and held with a ``flock``); the files of an owner that died are replayed by whichever
process finds them first.
"""

from __future__ import annotations

import contextlib
import fcntl
import itertools
import os
import threading
import time
import uuid
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import IO, Any

import orjson
from loguru import logger
from sqlalchemy import exc
from sqlalchemy.engine import Engine

from modelcycle.store.engine import display_url, first_line
from modelcycle.store.predictions import insert_prediction_rows

SEGMENT_RECORDS = 50_000
"""Records per spool file before the writer starts a new one."""


@dataclass(frozen=True)
class LogStats:
    """What the writer is doing, for ``/metrics`` and ``/health``.

    Attributes:
        queue_depth: Records in memory waiting for the database.
        spooled: Records in the spool not yet committed (equal to ``queue_depth`` while the
            database keeps up; larger when records overflowed memory during an outage).
        written: Records committed since start (replays included).
        dropped: Records that could be neither spooled nor queued (lost).
        database_ok: Whether the last write succeeded.
        last_error: The last database error, if the database is failing.
    """

    queue_depth: int
    spooled: int
    written: int
    dropped: int
    database_ok: bool
    last_error: str | None


class PredictionLog:
    """Durable, batched writes of prediction rows (see :func:`~modelcycle.store.prediction_row`).

    Args:
        engine: The operational store (tables already migrated).
        spool_dir: The local write-ahead folder (created if needed).
        batch_size: Most records committed in one transaction.
        interval: Longest wait (seconds) before a partial batch is committed.
        max_pending: Most records held in memory; beyond it, records live only in the spool
            until the database is back.
        fsync: Flush each append to disk (survives power loss, slower).
    """

    def __init__(
        self,
        engine: Engine,
        spool_dir: Path,
        *,
        batch_size: int = 1000,
        interval: float = 0.2,
        max_pending: int = 200_000,
        fsync: bool = False,
    ) -> None:
        self.engine = engine
        self.spool_dir = spool_dir
        self.batch_size = batch_size
        self.interval = interval
        self.max_pending = max_pending
        self.fsync = fsync
        self.token = f"{os.getpid()}-{time.time_ns()}-{uuid.uuid4().hex[:6]}"
        self._ids = itertools.count()
        self._queue: deque[tuple[int, list[dict[str, Any]]]] = deque()
        self._queued = 0
        self._inflight = 0
        self._cond = threading.Condition()
        self._file_lock = threading.Lock()
        self._pending: dict[int, int] = {}
        self._overflowed: set[int] = set()
        self._seq = 0
        self._segment_count = 0
        self._file: IO[bytes] | None = None
        self._lock_file: IO[bytes] | None = None
        self._thread: threading.Thread | None = None
        self._stopping = False
        self._written = 0
        self._dropped = 0
        self._db_ok = True
        self._last_error: str | None = None

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        """Own a spool, and start the writer thread (which first replays orphaned spools)."""
        self.spool_dir.mkdir(parents=True, exist_ok=True)
        self._lock_file = _hold_lock(self.spool_dir / f"{self.token}.lock")
        self._open_segment()
        self._thread = threading.Thread(target=self._run, name="prediction-log", daemon=True)
        self._thread.start()

    def close(self, timeout: float = 10.0) -> None:
        """Commit what is queued (waiting up to ``timeout`` seconds) and stop.

        What could not be committed stays in the spool and is replayed on the next start.
        """
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout)
        with self._file_lock:
            if self._file is not None:
                self._file.close()
                self._file = None
        with self._cond:
            committed = self._queued == 0 and self._inflight == 0 and not self._overflowed
        if committed:
            for seq in {*self._pending, self._seq}:
                _unlink(self._segment_path(self.token, seq))
            _unlink(self.spool_dir / f"{self.token}.lock")
        if self._lock_file is not None:
            self._lock_file.close()
            self._lock_file = None

    def record_id(self) -> str:
        """A new unique record id (this writer's token and a counter)."""
        return f"{self.token}-{next(self._ids)}"

    # ------------------------------------------------------------------ appending

    def append(self, rows: list[dict[str, Any]]) -> None:
        """Spool ``rows`` and queue them for the database; returns once they are spooled.

        Args:
            rows: Table-form prediction rows, each with a unique ``record_id``.
        """
        if not rows:
            return
        line = orjson.dumps(rows, option=orjson.OPT_SERIALIZE_NUMPY) + b"\n"
        spooled = True
        with self._file_lock:
            seq = self._seq
            try:
                assert self._file is not None, "PredictionLog.start() was not called"
                self._file.write(line)
                self._file.flush()
                if self.fsync:
                    os.fsync(self._file.fileno())
                self._segment_count += len(rows)
                if self._segment_count >= SEGMENT_RECORDS:
                    self._rotate()
            except OSError as err:
                spooled = False
                logger.error("prediction spool write failed: {}", err)
        with self._cond:
            if self._queued + self._inflight + len(rows) > self.max_pending:
                if spooled:
                    self._overflowed.add(seq)
                    self._pending[seq] = self._pending.get(seq, 0) + len(rows)
                else:
                    self._dropped += len(rows)
                return
            if spooled:
                self._pending[seq] = self._pending.get(seq, 0) + len(rows)
            else:
                seq = -1
            self._queue.append((seq, rows))
            self._queued += len(rows)
            if self._queued >= self.batch_size:
                self._cond.notify()

    def stats(self) -> LogStats:
        """A snapshot of the writer's counters."""
        with self._cond:
            return LogStats(
                queue_depth=self._queued + self._inflight,
                spooled=sum(self._pending.values()),
                written=self._written,
                dropped=self._dropped,
                database_ok=self._db_ok,
                last_error=self._last_error,
            )

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until everything queued so far is committed; ``False`` on timeout."""
        deadline = time.monotonic() + timeout
        with self._cond:
            self._cond.notify_all()
            while self._queued or self._inflight or self._overflowed:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(min(left, 0.05))
        return True

    # ------------------------------------------------------------------ the writer thread

    def _run(self) -> None:
        self._replay_orphans()
        backoff = 0.5
        last_scan = time.monotonic()
        while True:
            with self._cond:
                if not self._queue and not self._stopping:
                    self._cond.wait(self.interval)
                if self._stopping and not self._queue:
                    return
                batch = self._take()
            if batch and not self._write(batch):
                self._requeue(batch)
                with self._cond:
                    if self._stopping:
                        return
                    self._cond.wait(backoff)
                backoff = min(backoff * 2, 5.0)
                continue
            backoff = 0.5
            if self._overflowed and not self._queue:
                self._replay_own_overflow()
            if time.monotonic() - last_scan > 30:
                last_scan = time.monotonic()
                self._replay_orphans()

    def _take(self) -> list[tuple[int, list[dict[str, Any]]]]:
        batch: list[tuple[int, list[dict[str, Any]]]] = []
        size = 0
        while self._queue and size < self.batch_size:
            item = self._queue.popleft()
            batch.append(item)
            size += len(item[1])
        self._queued -= size
        self._inflight = size
        return batch

    def _requeue(self, batch: list[tuple[int, list[dict[str, Any]]]]) -> None:
        with self._cond:
            self._queue.extendleft(reversed(batch))
            self._queued += sum(len(rows) for _, rows in batch)
            self._inflight = 0

    def _write(self, batch: list[tuple[int, list[dict[str, Any]]]]) -> bool:
        rows = [row for _, chunk in batch for row in chunk]
        if not self._insert(rows):
            return False
        with self._cond:
            self._written += len(rows)
            self._inflight = 0
            for seq, chunk in batch:
                if seq < 0:
                    continue
                left = self._pending.get(seq, 0) - len(chunk)
                self._pending[seq] = left
                if left <= 0 and seq != self._seq and seq not in self._overflowed:
                    self._pending.pop(seq, None)
                    _unlink(self._segment_path(self.token, seq))
            self._cond.notify_all()
        return True

    def _insert(self, rows: list[dict[str, Any]]) -> bool:
        try:
            with self.engine.begin() as conn:
                insert_prediction_rows(conn, rows)
        except (exc.DBAPIError, exc.SQLAlchemyError, OSError) as err:
            message = first_line(err)
            if self._db_ok:
                logger.warning(
                    "prediction log: the database {} is unavailable ({}); predictions are "
                    "spooled to {} and will be written when it is back",
                    display_url(self.engine),
                    message,
                    self.spool_dir,
                )
            self._db_ok, self._last_error = False, message
            return False
        if not self._db_ok:
            logger.info("prediction log: the database is back; writing spooled predictions")
        self._db_ok, self._last_error = True, None
        return True

    # ------------------------------------------------------------------ spool files

    def _segment_path(self, token: str, seq: int) -> Path:
        return self.spool_dir / f"{token}.{seq:06d}.jsonl"

    def _open_segment(self) -> None:
        self._file = self._segment_path(self.token, self._seq).open("ab")
        self._segment_count = 0

    def _rotate(self) -> None:
        """Close the current segment and start the next (the caller holds ``_file_lock``)."""
        assert self._file is not None
        self._file.close()
        closed = self._seq
        self._seq += 1
        self._open_segment()
        with self._cond:
            if self._pending.get(closed, 0) <= 0 and closed not in self._overflowed:
                self._pending.pop(closed, None)
                _unlink(self._segment_path(self.token, closed))

    def _replay_own_overflow(self) -> None:
        """Write the segments whose records overflowed memory, from disk."""
        with self._file_lock:
            if self._seq in self._overflowed:
                self._rotate()
            current = self._seq
        with self._cond:  # only closed segments: the open one may still receive records
            closed = sorted(seq for seq in self._overflowed if seq < current)
        for seq in closed:
            path = self._segment_path(self.token, seq)
            if not self._replay_file(path):
                return
            with self._cond:
                self._overflowed.discard(seq)
                self._pending.pop(seq, None)
                self._cond.notify_all()
            _unlink(path)

    def _replay_orphans(self) -> None:
        """Replay and delete the spools of owners that are no longer running."""
        tokens = {path.name.split(".")[0] for path in self.spool_dir.glob("*.jsonl")}
        tokens |= {path.stem for path in self.spool_dir.glob("*.lock")}
        tokens.discard(self.token)
        for token in sorted(tokens):
            lock_path = self.spool_dir / f"{token}.lock"
            with _try_lock(lock_path) as held:
                if not held:
                    continue  # its owner is alive
                segments = sorted(self.spool_dir.glob(f"{token}.*.jsonl"))
                for path in segments:
                    if not self._replay_file(path):
                        return
                    _unlink(path)
                _unlink(lock_path)
                if segments:
                    logger.info(
                        "prediction log: replayed {} spool file(s) of {}", len(segments), token
                    )

    def _replay_file(self, path: Path) -> bool:
        """Insert every record of a spool file (skipping those already stored)."""
        for rows in _read_spool(path):
            if not self._insert(rows):
                return False
            with self._cond:
                self._written += len(rows)
        return True


def _read_spool(path: Path, chunk: int = 5000) -> Iterator[list[dict[str, Any]]]:
    """The rows of a spool file in chunks; a torn last line (a crash mid-write) is skipped."""
    batch: list[dict[str, Any]] = []
    try:
        handle = path.open("rb")
    except FileNotFoundError:
        return
    with handle:
        for line in handle:
            try:
                rows = orjson.loads(line)
            except orjson.JSONDecodeError:
                logger.warning("prediction log: skipped a torn line in {}", path.name)
                continue
            for row in rows:
                row["created_at"] = datetime.fromisoformat(row["created_at"])
            batch.extend(rows)
            if len(batch) >= chunk:
                yield batch
                batch = []
    if batch:
        yield batch


def _hold_lock(path: Path) -> IO[bytes]:
    handle = path.open("ab")
    fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    return handle


@contextlib.contextmanager
def _try_lock(path: Path) -> Iterator[bool]:
    try:
        handle = path.open("ab")
    except OSError:
        yield False
        return
    with handle:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            yield False
            return
        yield True


def _unlink(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
