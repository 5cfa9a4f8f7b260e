"""Benchmark: ``modelcycle train`` on the rent example, and the overhead of MLflow tracking.

Trains the rent example (50,000 rows, the spec's default budget of 20 trials) twice per repeat —
with MLflow tracking and without — in fresh project folders, and prints the wall time of each
and the tracking overhead as a ratio against the untracked run measured in the same repeat.
Registration is left out of both so that the comparison is the same fits with and without
logging; it is timed once on its own.

    .venv/bin/python bench/train.py [--rows 50000] [--budget "20 trials"] [--repeat 3]

Goals (issue #3): the default ``train`` under 2 minutes here; tracking adds under 10%.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path


def run_once(root: Path, *, track: bool, register: bool, budget: str) -> tuple[float, str]:
    """One ``train`` in ``root``; returns (seconds, winner)."""
    from modelcycle.config.settings import Settings
    from modelcycle.config.spec import load_project, parse_budget
    from modelcycle.training.train import TrainOptions, train

    project = load_project(root)
    options = TrainOptions(budget=parse_budget(budget), track=track, register=register)
    start = time.perf_counter()
    outcome = train(project, Settings.load(root), options)
    return time.perf_counter() - start, outcome.evaluation.winner


def main() -> None:
    """Make a project, then time tracked and untracked runs."""
    from modelcycle.scaffold import init_project

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=50_000)
    parser.add_argument("--budget", default="20 trials")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    base = Path(tempfile.mkdtemp(prefix="mc-bench-train-"))
    times: dict[str, list[float]] = {"untracked": [], "tracked": []}
    for i in range(args.repeat):
        for mode, runs in times.items():
            root = base / f"{mode}-{i}"
            init_project(root, example="rent", rows=args.rows, seed=11)
            seconds, winner = run_once(
                root, track=mode == "tracked", register=False, budget=args.budget
            )
            runs.append(seconds)
            print(f"repeat {i + 1} {mode:<9} {seconds:7.1f} s  winner {winner}", flush=True)
    root = base / "registered"
    init_project(root, example="rent", rows=args.rows, seed=11)
    registered, _ = run_once(root, track=True, register=True, budget=args.budget)

    untracked = statistics.median(times["untracked"])
    tracked = statistics.median(times["tracked"])
    print(f"\nrent example, {args.rows:,} rows, budget {args.budget}, medians of {args.repeat}")
    print(f"  train, no tracking (anchor)     {untracked:7.1f} s")
    print(f"  train, MLflow tracking          {tracked:7.1f} s   {tracked / untracked:.3f}x")
    print(f"  train, tracking + registration  {registered:7.1f} s   (one run)")
    print(f"  tracking overhead               {tracked / untracked - 1:+.1%} (goal < +10%)")
    print(f"  default train under 2 minutes:  {'met' if registered < 120 else 'NOT met'}")


if __name__ == "__main__":
    main()
