"""Benchmark: ``modelcycle predict`` (``predict_file``) against predicting in memory.

Trains and registers a rent model (a quick ``train`` on 20,000 rows, LightGBM by default), writes
1,000,000 new apartments as CSV and as Parquet, and times, median of ``--repeat`` runs:

- the anchor: ``model.pipeline.predict`` on the whole frame already in memory (read as
  modelcycle reads data), as a user would call the pipeline by hand;
- ``model.predict`` on the same frame (the anchor plus building the output frame);
- ``predict_file`` Parquet -> Parquet and CSV -> CSV: read in chunks, normalise, validate,
  predict, write with request ids;
- once, ``predict_file`` with ``--log`` on a SQLite store, on ``--log-rows`` rows.

Every measurement runs in a fresh process (the model is loaded before the clock starts), so each
reports its own peak memory: the file jobs stay flat while the in-memory anchor grows with rows.

    .venv/bin/python bench/batch_predict.py [--rows 1000000] [--repeat 3] [--candidates lgbm]

Goal (the batch-inference issue): ``predict_file`` at least 0.8x the rows/s of the anchor.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path
from typing import Any

GOAL = 0.8


def prepare(
    root: Path, *, rows: int, train_rows: int, candidates: list[str], log_rows: int
) -> dict[str, Any]:
    """Train and register the model; write the input files. Returns the paths and the model."""
    from modelcycle.config.settings import Settings
    from modelcycle.config.spec import load_project, parse_budget
    from modelcycle.data.examples import rent_apartments
    from modelcycle.scaffold import init_project
    from modelcycle.training.train import TrainOptions, train

    init_project(root / "project", example="rent", rows=train_rows, seed=11)
    project = load_project(root / "project")
    settings = Settings.load(project.root)
    options = TrainOptions(budget=parse_budget("3 trials"), candidates=candidates)
    outcome = train(project, settings, options)
    frame = rent_apartments(rows, seed=5)  # new apartments, with the example's messy rows
    frame.to_csv(root / "apartments.csv", index=False)
    frame.to_parquet(root / "apartments.parquet", index=False)
    frame.head(log_rows).to_parquet(root / "log-input.parquet", index=False)
    return {
        "uri": settings.mlflow_tracking_uri,
        "winner": outcome.evaluation.winner,
        "csv": root / "apartments.csv",
        "parquet": root / "apartments.parquet",
        "log-input": root / "log-input.parquet",
        "root": root,
    }


def measure(kind: str, setup: dict[str, Any], chunk_size: int) -> tuple[float, int, float]:
    """One measurement in this (fresh) process: (seconds, rows, MB resident once loaded)."""
    from modelcycle.data.io import read_table
    from modelcycle.registry.store import load_model
    from modelcycle.serving.batch import predict_file

    model = load_model("rent@champion", tracking_uri=setup["uri"])
    loaded = rss_mb("VmRSS")
    root: Path = setup["root"]
    if kind in ("pipeline", "model"):
        frame = read_table(setup["parquet"]).frame
        start = time.perf_counter()
        if kind == "pipeline":
            model.pipeline.predict(frame[model.feature_names])
        else:
            model.predict(frame)
        return time.perf_counter() - start, len(frame), loaded
    if kind == "log":
        from modelcycle.store import make_engine, upgrade

        url = f"sqlite:///{root / f'log-{time.time_ns()}.db'}"
        upgrade(url)
        engine = make_engine(url)
        result = predict_file(model, setup["log-input"], root / "out-log.parquet", engine=engine)
        engine.dispose()
        return result.seconds, result.rows_in, loaded
    fmt = kind.split("-")[1]
    out = root / f"out.{fmt}"
    result = predict_file(model, setup[fmt], out, chunk_size=chunk_size)
    return result.seconds, result.rows_in, loaded


def rss_mb(field: str) -> float:
    """``VmRSS`` (now) or ``VmHWM`` (peak) of this process, in MB.

    ``VmHWM`` belongs to the process image, so unlike ``ru_maxrss`` it does not include the
    memory of the parent that spawned this process.
    """
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def run_isolated(kind: str, setup: dict[str, Any], chunk_size: int) -> Any:
    """``measure`` in a new process; adds that process's peak RSS in MB."""
    seconds, rows, loaded = measure(kind, setup, chunk_size)
    return seconds, rows, rss_mb("VmHWM"), loaded


def main() -> None:
    """Prepare once, then time each way of predicting in fresh processes."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--train-rows", type=int, default=20_000)
    parser.add_argument("--candidates", default="lgbm", help="comma-separated, e.g. lgbm or linear")
    parser.add_argument("--chunk-size", type=int, default=50_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--log-rows", type=int, default=200_000, help="0 to skip the --log run")
    args = parser.parse_args()

    root = Path(tempfile.mkdtemp(prefix="mc-bench-batch-"))
    print(f"preparing in {root} ...", flush=True)
    setup = prepare(
        root,
        rows=args.rows,
        train_rows=args.train_rows,
        candidates=args.candidates.split(","),
        log_rows=args.log_rows,
    )
    kinds = [*LABELS] + (["log"] if args.log_rows else [])
    runs: dict[str, list[tuple[float, int, float, float]]] = {kind: [] for kind in kinds}
    for i in range(args.repeat):
        for kind in kinds:
            if kind == "log" and i > 0:
                continue  # once is enough: it shows the cost of logging, not a ratio
            found = isolated(kind, setup, args.chunk_size)
            runs[kind].append(found)
            print(
                f"repeat {i + 1} {kind:<13} {found[0]:7.2f} s  peak {found[2]:6.0f} MB", flush=True
            )
    report(runs, args, setup["winner"])


def isolated(kind: str, setup: dict[str, Any], chunk_size: int) -> tuple[float, int, float, float]:
    """One measurement in a fresh process (spawned: nothing inherited but the arguments)."""
    with ProcessPoolExecutor(max_workers=1, mp_context=get_context("spawn")) as pool:
        found: tuple[float, int, float, float] = pool.submit(
            run_isolated, kind, setup, chunk_size
        ).result()
    return found


LABELS = {
    "pipeline": "pipeline.predict, in memory (anchor)",
    "model": "model.predict, in memory",
    "file-parquet": "predict_file Parquet -> Parquet",
    "file-csv": "predict_file CSV -> CSV",
}


def report(runs: dict[str, list[tuple[float, int, float, float]]], args: Any, winner: str) -> None:
    """The table: median seconds, rows/s, ratio to the anchor, peak and loaded-model memory."""
    anchor = statistics.median(r[0] for r in runs["pipeline"])
    print(
        f"\nrent example, {args.rows:,} rows, model {winner}, chunk size {args.chunk_size:,}, "
        f"medians of {args.repeat}"
    )
    header = f"{'seconds':>8} {'rows/s':>10} {'vs anchor':>10} {'peak RSS':>9} {'(model)':>8}"
    print(f"  {'':<40} {header}")
    for kind, label in LABELS.items():
        seconds = statistics.median(r[0] for r in runs[kind])
        rate = runs[kind][0][1] / seconds
        peak, loaded = max(r[2] for r in runs[kind]), max(r[3] for r in runs[kind])
        print(
            f"  {label:<40} {seconds:8.2f} {rate:10,.0f} {anchor / seconds:9.2f}x "
            f"{peak:6.0f} MB {loaded:5.0f} MB"
        )
    if runs.get("log"):
        seconds, rows, peak, loaded = runs["log"][0]
        label = f"predict_file + --log, {rows:,} rows"
        print(
            f"  {label:<40} {seconds:8.2f} {rows / seconds:10,.0f} {'':>10} {peak:6.0f} MB "
            f"{loaded:5.0f} MB"
        )
    worst = min(anchor / statistics.median(r[0] for r in runs[k]) for k in LABELS if "file" in k)
    print(f"  goal: file jobs >= {GOAL}x the anchor: {'met' if worst >= GOAL else 'NOT met'}")


if __name__ == "__main__":
    main()
