"""Benchmark a monitoring run over the prediction log: time and memory against the window's size.

Trains a small rent model in a temporary project, logs N predictions (the model's own, as the
server logs them) into the project's SQLite store, then runs ``monitor()`` over the whole window
in a fresh process per size and reports seconds, rows/s and the process's peak memory growth.
The claim checked: memory does not grow with the window (it is streamed in chunks and reduced to
profiles), time grows linearly (JSON decoding of the logged features dominates).

    .venv/bin/python bench/monitor_run.py --rows 100000,400000
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from rich.console import Console
from rich.table import Table

console = Console()


def setup(root: Path, rows: int) -> None:
    """A trained project whose store holds ``rows`` logged predictions of the last hour."""
    from modelcycle.config.settings import Settings
    from modelcycle.config.spec import load_project, parse_budget
    from modelcycle.data.examples import rent_apartments
    from modelcycle.registry.store import load_model
    from modelcycle.scaffold import init_project
    from modelcycle.store import make_engine, upgrade
    from modelcycle.store.predictions import insert_prediction_rows
    from modelcycle.training.train import TrainOptions, train

    made = init_project(root, example="rent", rows=3_000).root
    settings = Settings.load(made)
    options = TrainOptions(budget=parse_budget("2 trials"), candidates=["lgbm"], track=False)
    train(load_project(made), settings, options)
    assert settings.database_url is not None
    assert settings.mlflow_tracking_uri is not None
    upgrade(settings.database_url)
    model = load_model("rent@champion", tracking_uri=settings.mlflow_tracking_uri)
    engine = make_engine(settings.database_url)
    start = datetime.now(UTC) - timedelta(minutes=50)
    block = 50_000
    for offset in range(0, rows, block):
        n = min(block, rows - offset)
        frame = rent_apartments(n, seed=offset + 1, messy=False)
        features = frame[model.feature_names]
        predicted = model.predict(features)["prediction"].tolist()
        flags = model.ood.score(features).records() if model.ood else [None] * n
        records = json.loads(features.to_json(orient="records"))
        with engine.begin() as conn:
            insert_prediction_rows(
                conn,
                [
                    {
                        "request_id": f"r{offset + i}",
                        "created_at": start + timedelta(seconds=(offset + i) * 2400 / rows),
                        "model_name": "rent",
                        "model_version": str(model.version),
                        "features": records[i],
                        "prediction": predicted[i],
                        "latency_ms": 2.0,
                        "ood": flags[i],
                        "record_id": f"r{offset + i}",
                    }
                    for i in range(n)
                ],
            )
    engine.dispose()


def child(root: Path, last: int) -> dict[str, float]:
    """Run one monitoring run over the newest ``last`` rows; seconds and peak memory growth."""
    from modelcycle.config.settings import Settings
    from modelcycle.config.spec import load_project
    from modelcycle.monitoring.run import monitor, resolve_window
    from modelcycle.registry.store import load_model
    from modelcycle.store import make_engine

    settings = Settings.load(root)
    project = load_project(root)
    model = load_model("rent@champion", tracking_uri=settings.mlflow_tracking_uri or "")
    engine = make_engine(settings.database_url or "")
    before = rss_mb()
    peak = [before]
    done = threading.Event()

    def sample() -> None:  # the process's resident memory every 10 ms while the run works
        while not done.wait(0.01):
            peak[0] = max(peak[0], rss_mb())

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    started = time.perf_counter()
    report = monitor(engine, model, project.spec.monitoring, resolve_window(None, last))
    seconds = time.perf_counter() - started
    done.set()
    sampler.join()
    assert report["n_rows"] == last
    return {"rows": last, "seconds": seconds, "growth_mb": max(peak[0], rss_mb()) - before}


def rss_mb() -> float:
    """Resident memory of this process in MB (Linux)."""
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * resource.getpagesize() / 1e6


def main() -> None:
    """Parse options, build the project once, measure each size in a fresh process."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", default="100000,400000", help="window sizes, comma-separated")
    parser.add_argument("--repeat", type=int, default=3, help="runs per size (median)")
    parser.add_argument("--child", nargs=2, metavar=("ROOT", "ROWS"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(Path(args.child[0]), int(args.child[1]))))
        return
    sizes = [int(size) for size in args.rows.split(",")]
    with tempfile.TemporaryDirectory(prefix="mc-bench-monitor-") as folder:
        root = Path(folder) / "rent"
        with console.status(f"training a model and logging {max(sizes):,} predictions..."):
            setup(root, max(sizes))
        table = Table(title="monitoring run over the prediction log (SQLite)")
        for header in ("window rows", "seconds (median)", "rows/s", "peak memory growth (MB)"):
            table.add_column(header, justify="right")
        for size in sizes:
            runs = []
            for _ in range(args.repeat):
                out = subprocess.run(
                    [sys.executable, __file__, "--child", str(root), str(size)],
                    check=True,
                    capture_output=True,
                    text=True,
                )
                runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
            runs.sort(key=lambda run: run["seconds"])
            middle = runs[len(runs) // 2]
            growth = sorted(run["growth_mb"] for run in runs)[len(runs) // 2]
            table.add_row(
                f"{size:,}",
                f"{middle['seconds']:.2f}",
                f"{size / middle['seconds']:,.0f}",
                f"{growth:.0f}",
            )
        console.print(table)


if __name__ == "__main__":
    main()
