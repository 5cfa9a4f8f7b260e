"""Benchmark: read, profile (schema) and validate a 1,000,000-row × 17-column rent file.

Prints rows/s and peak memory of each phase, and ratios against anchors measured in the same run:
a plain ``pandas.read_csv`` of the same file, and the DataFrame's own memory. Each repeat runs in a
fresh process so peak-memory numbers are not polluted by earlier repeats.

    .venv/bin/python bench/data_validate.py [--rows 1000000] [--repeat 3]

Goal (issue #2): validate + profile in under 10 s, peak memory under 3x the DataFrame's memory.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _status_mb(field: str) -> float:
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _rss_mb() -> float:
    return _status_mb("VmRSS")


def _peak_mb() -> float:
    # VmHWM, not getrusage: ru_maxrss survives fork+exec and would count the parent's memory
    return _status_mb("VmHWM")


def measure(path: str, phase: str) -> dict[str, float]:
    """One measurement in this (fresh) process."""
    import pandas as pd
    import pandera.pandas  # noqa: F401 - import cost is not part of the measurement

    from modelcycle.config.spec import parse_spec
    from modelcycle.data.io import read_table
    from modelcycle.data.schema import schema_for_spec
    from modelcycle.data.validation import validate
    from modelcycle.scaffold import rent_spec

    spec = parse_spec(rent_spec(path))  # the spec `modelcycle init --example rent` writes
    base = _rss_mb()
    start = time.perf_counter()
    if phase == "pandas_read_csv":
        frame = pd.read_csv(path)
        seconds = time.perf_counter() - start
        return {"seconds": seconds, "peak_mb": _peak_mb() - base, "frame_mb": _frame_mb(frame)}
    dataset = read_table(path)
    read_s = time.perf_counter() - start
    t1 = time.perf_counter()
    schema = schema_for_spec(dataset.frame, spec, source=path)
    profile_s = time.perf_counter() - t1
    t2 = time.perf_counter()
    report = validate(dataset, spec, schema)
    validate_s = time.perf_counter() - t2
    return {
        "read_s": read_s,
        "profile_s": profile_s,
        "validate_s": validate_s,
        "seconds": time.perf_counter() - start,
        "peak_mb": _peak_mb() - base,
        "frame_mb": _frame_mb(dataset.frame),
        "findings": len(report.findings),
    }


def _frame_mb(frame: object) -> float:
    import pandas as pd

    assert isinstance(frame, pd.DataFrame)
    return float(frame.memory_usage(deep=True).sum()) / 2**20


def main() -> None:
    """Generate the file once, then measure each phase in fresh processes."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(*args.child)))
        return

    from modelcycle.data.examples import rent_apartments

    workdir = Path(tempfile.mkdtemp(prefix="mc-bench-"))
    path = workdir / "rent.csv"
    t0 = time.perf_counter()
    frame = rent_apartments(rows=args.rows, seed=7)
    frame.to_csv(path, index=False)
    print(
        f"generated {len(frame):,} rows × {frame.shape[1]} columns "
        f"({path.stat().st_size / 2**20:.0f} MB CSV) in {time.perf_counter() - t0:.1f} s"
    )
    del frame

    results: dict[str, list[dict[str, float]]] = {"pandas_read_csv": [], "modelcycle": []}
    try:
        for _ in range(args.repeat):
            for phase, runs in results.items():
                out = subprocess.run(
                    [sys.executable, __file__, "--child", str(path), phase],
                    capture_output=True,
                    text=True,
                    check=True,
                )
                runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)

    def med(phase: str, key: str) -> float:
        return statistics.median(r[key] for r in results[phase])

    anchor = med("pandas_read_csv", "seconds")
    total = med("modelcycle", "seconds")
    frame_mb = med("modelcycle", "frame_mb")
    peak = med("modelcycle", "peak_mb")
    rows = args.rows
    print(f"\nmedians of {args.repeat} runs, each in a fresh process")
    print(f"{'phase':<34}{'seconds':>10}{'rows/s':>14}")
    print(f"{'anchor: pandas.read_csv':<34}{anchor:>10.2f}{rows / anchor:>14,.0f}")
    for key, label in (("read_s", "modelcycle read (sniff+normalise)"),
                       ("profile_s", "profile (FeatureSchema.infer)"),
                       ("validate_s", "validate (with schema)")):  # fmt: skip
        value = med("modelcycle", key)
        print(f"{label:<34}{value:>10.2f}{rows / value:>14,.0f}")
    print(f"{'total read + profile + validate':<34}{total:>10.2f}{rows / total:>14,.0f}")
    print(f"\ntotal / pandas.read_csv            {total / anchor:.2f}x")
    print(f"DataFrame memory                   {frame_mb:,.0f} MB")
    anchor_peak = med("pandas_read_csv", "peak_mb")
    print(
        f"anchor: pandas.read_csv peak       {anchor_peak:,.0f} MB = {anchor_peak / frame_mb:.2f}x"
    )
    print(
        f"peak memory growth                 {peak:,.0f} MB = {peak / frame_mb:.2f}x the DataFrame"
    )
    print(f"goal: total < 10 s ({'met' if total < 10 else 'NOT met'}), "
          f"peak < 3x the DataFrame ({'met' if peak < 3 * frame_mb else 'NOT met'})")  # fmt: skip


if __name__ == "__main__":
    main()
