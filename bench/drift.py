"""Benchmark: drift of a 1,000,000-row window against a 100,000-row reference.

modelcycle's profiles (``reference_profile``, ``current_profile``, ``merge``, ``compare``) against
anchors measured in the same run, on the rent example's features: the schema's numeric,
categorical and boolean columns, with ``address`` dropped as in the example's spec (15 features;
``--exclude zip,facilities`` leaves the 13 low-cardinality ones).

- modelcycle, in this process: ``compare`` alone (profiles built: features x bins);
  ``current_profile`` of the whole window + ``compare``; streamed, ``current_profile`` per
  ``--chunk-rows`` slice + ``merge`` + ``compare``; the same streamed from Parquet row groups
  (reading included, unlike every other row); and ``reference_profile`` + ``current_profile`` +
  ``compare`` (both sides from raw rows, as the anchors work);
- plain numpy/scipy, in this process: exact ``ks_2samp`` + ``chi2_contingency`` + PSI on the raw
  columns;
- Evidently 0.7 ``DataDriftPreset`` and NannyML's ``UnivariateDriftCalculator`` (KS + chi-square,
  and its default Jensen-Shannon), in the separate environment ``.bench/anchors`` (``make
  bench-anchors``: Evidently 0.7 does not import with pandas 3), run by ``bench/_drift_anchors.py``
  on the same Parquet files. Without that environment the in-process parts still run.

Seconds are medians of ``--repeat`` runs after a warm-up (imports excluded). Memory is the peak
RSS growth of one run above what was loaded before it (frames, reference profile, imports): each
measurement runs in a fresh process that returns freed memory to the system (``malloc_trim``,
Arrow's pool) and resets the peak (``/proc/self/clear_refs``) just before the run, then reads
``VmHWM``; the anchors measure themselves the same way. Streamed runs are also measured over
three passes of the window (3,000,000 rows by default) to show where the growth stops.

Each tool also says which features it flags on the rent scenarios (same sizes, one run each;
``inflation`` changes only the target, so its features equal the baseline's and it is left out).

    .venv/bin/python bench/drift.py [--reference-rows 100000] [--current-rows 1000000] \\
        [--repeat 3] [--anchor-repeat N] [--scenarios ...] [--exclude zip,facilities]

Goals (the drift issue): faster than NannyML (the fastest anchor) and over 50x faster than
Evidently; memory growth that does not depend on the window's row count; the same features
flagged on the scenarios.
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import shutil
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from _drift_anchors import release_and_reset_peak  # the anchors' script, beside this one

ROOT = Path(__file__).resolve().parent.parent
ANCHORS_PYTHON = ROOT / ".bench" / "anchors" / "bin" / "python"
ANCHOR_SCRIPT = Path(__file__).resolve().parent / "_drift_anchors.py"
ANCHOR_TOOLS = {
    "evidently": "Evidently DataDriftPreset",
    "nannyml": "NannyML KS + chi2",
    "nannyml-js": "NannyML default (Jensen-Shannon)",
}
SHORT = {"evidently": "Evidently", "nannyml": "NannyML KS", "nannyml-js": "NannyML JS"}
SCENARIOS = ("baseline", "new_neighborhood", "bigger_apartments", "missing_spike")
PASSES = 3
"""Passes over the window for the streamed memory measurement that shows the plateau."""
PSI_FLOOR = 1e-4
EVIDENTLY_GOAL = 50.0


# --------------------------------------------------------------------------------------------
# data


@dataclass
class Setup:
    """Where the data is and which columns are features."""

    root: Path
    reference: Path
    small: Path
    currents: dict[str, Path]
    numeric: list[str]
    categorical: list[str]
    chunk_rows: int

    @property
    def features(self) -> list[str]:
        return [*self.numeric, *self.categorical]


def prepare(root: Path, args: argparse.Namespace) -> Setup:
    """Generate the reference and one current window per scenario, as Parquet files.

    Current windows are written in row groups of ``--chunk-rows`` rows, as a streaming producer
    would, so the streamed run never decodes more than one chunk at a time.
    """
    from modelcycle.data.examples import rent_apartments
    from modelcycle.data.schema import FeatureSchema

    reference = rent_apartments(args.reference_rows, seed=0, messy=False)
    schema = FeatureSchema.infer(reference, target="rent", drop=["address"])
    excluded = {c.strip() for c in args.exclude.split(",") if c.strip()}
    numeric = [c.name for c in schema.features if c.kind == "numeric" and c.name not in excluded]
    categorical = [
        c.name
        for c in schema.features
        if c.kind in ("categorical", "boolean") and c.name not in excluded
    ]
    reference_path = root / "reference.parquet"
    reference.to_parquet(reference_path, index=False)
    del reference
    currents, small = {}, root / "current-small.parquet"
    for scenario in dict.fromkeys(["baseline", *args.scenarios]):
        # one seed for every scenario: they reuse the baseline's draws and differ by their effect
        frame = rent_apartments(args.current_rows, seed=1, scenario=scenario, messy=False)
        currents[scenario] = root / f"current-{scenario}.parquet"
        frame.to_parquet(currents[scenario], index=False, row_group_size=args.chunk_rows)
        if scenario == "baseline":
            frame.head(args.chunk_rows).to_parquet(small, index=False)
        del frame
        gc.collect()
        print(f"  wrote {args.current_rows:,} rows ({scenario})", flush=True)
    return Setup(root, reference_path, small, currents, numeric, categorical, args.chunk_rows)


def read(path: Path, columns: list[str]) -> pd.DataFrame:
    return pd.read_parquet(path, columns=columns)


def load_reference(setup: Setup) -> tuple[pd.DataFrame, Any, Any]:
    """The reference frame (features only), its schema and its profile."""
    from modelcycle.data.schema import FeatureSchema
    from modelcycle.monitoring.profile import reference_profile

    frame = read(setup.reference, setup.features)
    schema = FeatureSchema.infer(frame)  # the same data, so the same kinds as in prepare()
    numeric = [c.name for c in schema.features if c.kind == "numeric"]
    if numeric != setup.numeric:
        raise SystemExit(f"numeric features {numeric} differ from {setup.numeric}")
    return frame, schema, reference_profile(frame, schema)


# --------------------------------------------------------------------------------------------
# what is timed


def chunks(frame: pd.DataFrame, rows: int, passes: int = 1) -> Iterator[pd.DataFrame]:
    for _ in range(passes):
        for start in range(0, len(frame), rows):
            yield frame.iloc[start : start + rows]


def parquet_chunks(path: Path, columns: list[str], rows: int, passes: int = 1) -> Iterator[Any]:
    import pyarrow.parquet as pq

    for _ in range(passes):
        for batch in pq.ParquetFile(path).iter_batches(batch_size=rows, columns=columns):
            yield batch.to_pandas()


def mc_whole(current: pd.DataFrame, ref: Any) -> Any:
    from modelcycle.monitoring.drift import compare
    from modelcycle.monitoring.profile import current_profile

    return compare(ref, current_profile(current, ref))


def mc_stream(parts: Iterator[pd.DataFrame], ref: Any) -> Any:
    from modelcycle.monitoring.drift import compare
    from modelcycle.monitoring.profile import current_profile, merge

    total = None
    for part in parts:
        profile = current_profile(part, ref)
        total = profile if total is None else merge(total, profile)
    return compare(ref, total)


def mc_from_raw(reference: pd.DataFrame, current: pd.DataFrame, schema: Any) -> Any:
    from modelcycle.monitoring.drift import compare
    from modelcycle.monitoring.profile import current_profile, reference_profile

    ref = reference_profile(reference, schema)
    return compare(ref, current_profile(current, ref))


def _psi(p: np.ndarray, q: np.ndarray) -> float:
    p = np.maximum(p / max(p.sum(), 1), PSI_FLOOR)
    q = np.maximum(q / max(q.sum(), 1), PSI_FLOOR)
    return float(np.sum((q - p) * np.log(q / p)))


def scipy_drift(
    reference: pd.DataFrame, current: pd.DataFrame, numeric: list[str], categorical: list[str]
) -> dict[str, tuple[float, float]]:
    """The plain anchor: exact KS + PSI on deciles (numeric), chi-square + PSI (categorical).

    The KS statistic is exact (from the raw values); its p-value is the asymptotic one, which
    ``ks_2samp``'s default ``auto`` picks anyway once a sample has over 10,000 values.
    """
    from scipy import stats

    out = {}
    for name in numeric:
        a = reference[name].to_numpy(dtype="float64", na_value=np.nan)
        b = current[name].to_numpy(dtype="float64", na_value=np.nan)
        a, b = a[np.isfinite(a)], b[np.isfinite(b)]
        if not a.size or not b.size:
            continue
        p_value = float(stats.ks_2samp(a, b, method="asymp").pvalue)  # auto's choice here
        edges = np.unique(np.quantile(a, np.arange(1, 10) / 10))
        bins = edges.size + 1
        p = np.bincount(np.searchsorted(edges, a, side="left"), minlength=bins)
        q = np.bincount(np.searchsorted(edges, b, side="left"), minlength=bins)
        out[name] = (p_value, _psi(p, q))
    for name in categorical:
        table = pd.concat(
            [reference[name].value_counts(), current[name].value_counts()], axis=1
        ).fillna(0)
        counts = table.to_numpy(dtype="float64").T
        if counts.shape[1] < 2:
            continue
        p_value = float(stats.chi2_contingency(counts).pvalue)
        out[name] = (p_value, _psi(counts[0], counts[1]))
    return out


def timed(function: Callable[[], Any]) -> float:
    gc.collect()
    start = time.perf_counter()
    function()
    return time.perf_counter() - start


# --------------------------------------------------------------------------------------------
# memory: one fresh process per measurement


def rss_mb(field_name: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field_name}:"):
            return int(line.split()[1]) / 1024
    return math.nan


def memory_run(kind: str, window: str, setup: Setup) -> dict[str, float]:
    """In a fresh process: load, warm up, release, reset the peak, run ``kind`` once.

    ``window`` is ``small`` (one chunk), ``full`` (the window) or ``passes`` (the window
    ``PASSES`` times, streamed kinds only). Returns the peak RSS growth (MB), the run's seconds,
    the RSS before it and the seconds of the process's first ``compare`` (it imports scipy.stats).
    """
    from modelcycle.monitoring.drift import compare
    from modelcycle.monitoring.profile import current_profile

    reference, _, ref = load_reference(setup)
    path = setup.small if window == "small" else setup.currents["baseline"]
    passes = PASSES if window == "passes" else 1
    current = None if kind == "parquet" else read(path, setup.features)
    warm = current_profile(reference.head(1000), ref)
    start = time.perf_counter()
    compare(ref, warm)
    cold = time.perf_counter() - start
    scipy_drift(reference.head(1000), reference.tail(1000), setup.numeric, setup.categorical)
    next(parquet_chunks(setup.small, setup.features, 1000))  # imports pyarrow.parquet
    runs: dict[str, Callable[[], Any]] = {
        "whole": lambda: mc_whole(current, ref),
        "stream": lambda: mc_stream(chunks(current, setup.chunk_rows, passes), ref),
        "parquet": lambda: mc_stream(
            parquet_chunks(path, setup.features, setup.chunk_rows, passes), ref
        ),
        "scipy": lambda: scipy_drift(reference, current, setup.numeric, setup.categorical),
    }
    del warm
    tracked = release_and_reset_peak()
    before = rss_mb("VmRSS")
    seconds = timed(runs[kind])
    growth = rss_mb("VmHWM") - before if tracked else math.nan
    return {"growth_mb": growth, "seconds": seconds, "cold_compare_s": cold, "rss_mb": before}


def isolated(kind: str, window: str, setup: Setup) -> dict[str, float]:
    with ProcessPoolExecutor(max_workers=1, mp_context=get_context("spawn")) as pool:
        found: dict[str, float] = pool.submit(memory_run, kind, window, setup).result()
    return found


# --------------------------------------------------------------------------------------------
# anchors in their own environment


def run_anchor(tool: str, setup: Setup, repeat: int, scenarios: list[str]) -> dict[str, Any]:
    """One process of ``bench/_drift_anchors.py`` for one tool; its JSON answer."""
    runs = [{"label": "timing", "current": str(setup.currents["baseline"]), "repeat": repeat}]
    runs.append({"label": "small", "current": str(setup.small), "repeat": 1})
    runs += [
        {"label": s, "current": str(setup.currents[s]), "repeat": 1}
        for s in scenarios
        if s != "baseline"
    ]
    job = setup.root / f"job-{tool}.json"
    job.write_text(
        json.dumps(
            {
                "tool": tool,
                "reference": str(setup.reference),
                "numeric": setup.numeric,
                "categorical": setup.categorical,
                "runs": runs,
            }
        )
    )
    env = {**os.environ, "NML_DISABLE_USAGE_LOGGING": "1", "DO_NOT_TRACK": "1"}
    done = subprocess.run(
        [str(ANCHORS_PYTHON), str(ANCHOR_SCRIPT), str(job)],
        capture_output=True,
        text=True,
        env=env,
        cwd=setup.root,  # away from the project's .env (NannyML loads one)
        check=False,
    )
    if done.returncode != 0:
        tail = "\n".join(done.stderr.strip().splitlines()[-15:])
        raise RuntimeError(f"{tool} failed (exit {done.returncode}):\n{tail}")
    answer: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    answer["runs"] = {run["label"]: run for run in answer["runs"]}
    if "baseline" in scenarios:
        answer["runs"]["baseline"] = answer["runs"]["timing"]
    return answer


# --------------------------------------------------------------------------------------------
# main


@dataclass
class Row:
    """One line of the timing table."""

    label: str
    seconds: list[float] = field(default_factory=list)
    growth: dict[str, float] = field(default_factory=dict)  # window -> MB
    note: str = ""
    anchor: bool = False

    @property
    def median(self) -> float:
        return statistics.median(self.seconds) if self.seconds else math.nan


def source_state() -> str:
    """The commit measured, and whether the profile / drift sources differ from it."""
    try:
        commit = subprocess.run(
            ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(ROOT), "status", "--porcelain", "src/modelcycle/monitoring"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "commit unknown"
    return f"commit {commit}" + (" (src/modelcycle/monitoring modified)" if dirty else "")


def time_in_process(
    setup: Setup, args: argparse.Namespace, reference: pd.DataFrame, schema: Any, ref: Any
) -> dict[str, Row]:
    """modelcycle and the numpy/scipy anchor in this process: ``--repeat`` timed runs each."""
    from modelcycle.monitoring.drift import compare
    from modelcycle.monitoring.profile import current_profile, reference_profile

    current = read(setup.currents["baseline"], setup.features)
    cur_profile = current_profile(current, ref)
    small = read(setup.small, setup.features)  # warm-up: imports scipy.stats and friends
    mc_whole(small, ref)
    mc_from_raw(reference, small, schema)
    scipy_drift(reference, small, setup.numeric, setup.categorical)
    next(parquet_chunks(setup.small, setup.features, 1000))
    rows = {
        "compare": Row("modelcycle compare alone (profiles built)"),
        "reference": Row(f"modelcycle reference_profile ({args.reference_rows:,} rows)"),
        "whole": Row("modelcycle current_profile + compare"),
        "stream": Row("modelcycle streamed: chunks + merge + compare"),
        "parquet": Row("modelcycle streamed from Parquet", note="reading included"),
        "raw": Row("modelcycle reference + current + compare", note="both sides from rows"),
        "scipy": Row("numpy/scipy exact KS + chi2 + PSI (anchor)"),
    }
    work: dict[str, Callable[[], Any]] = {
        "compare": lambda: compare(ref, cur_profile),
        "reference": lambda: reference_profile(reference, schema),
        "whole": lambda: mc_whole(current, ref),
        "stream": lambda: mc_stream(chunks(current, setup.chunk_rows), ref),
        "parquet": lambda: mc_stream(
            parquet_chunks(setup.currents["baseline"], setup.features, setup.chunk_rows), ref
        ),
        "raw": lambda: mc_from_raw(reference, current, schema),
        "scipy": lambda: scipy_drift(reference, current, setup.numeric, setup.categorical),
    }
    for i in range(args.repeat):
        for key, function in work.items():
            rows[key].seconds.append(timed(function))
        line = "  ".join(f"{k} {rows[k].seconds[-1]:.3f}" for k in work)
        print(f"repeat {i + 1}: {line}", flush=True)
    return rows


def load_average() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "unknown"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--reference-rows", type=int, default=100_000)
    parser.add_argument("--current-rows", type=int, default=1_000_000)
    parser.add_argument("--chunk-rows", type=int, default=100_000, help="streaming chunk size")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--anchor-repeat", type=int, default=None, help="timed runs of the anchors (--repeat)"
    )
    parser.add_argument("--scenarios", default=",".join(SCENARIOS), help="comma-separated")
    parser.add_argument("--exclude", default="", help="features to leave out, e.g. zip,facilities")
    parser.add_argument("--anchors", choices=["auto", "skip"], default="auto")
    args = parser.parse_args()
    args.scenarios = [s.strip() for s in args.scenarios.split(",") if s.strip()]
    anchor_repeat = args.anchor_repeat or args.repeat

    from loguru import logger

    logger.remove()
    root = Path(tempfile.mkdtemp(prefix="mc-bench-drift-"))
    try:
        run(args, root, anchor_repeat)
    finally:
        shutil.rmtree(root, ignore_errors=True)  # about 60 MB of Parquet per scenario


def run(args: argparse.Namespace, root: Path, anchor_repeat: int) -> None:
    """Prepare the data in ``root``, measure everything, print the report."""
    print(
        f"modelcycle {source_state()}; load average {load_average()}; preparing in {root} ...",
        flush=True,
    )
    setup = prepare(root, args)
    print(
        f"  {len(setup.features)} features: {len(setup.numeric)} numeric "
        f"({', '.join(setup.numeric)}), {len(setup.categorical)} categorical "
        f"({', '.join(setup.categorical)})",
        flush=True,
    )

    reference, schema, ref = load_reference(setup)
    rows = time_in_process(setup, args, reference, schema, ref)

    print("memory: one fresh process per measurement ...", flush=True)
    cold = math.nan
    for kind in ("whole", "stream", "parquet", "scipy"):
        windows = (
            ("small", "full", "passes") if kind in ("stream", "parquet") else ("small", "full")
        )
        for window in windows:
            found = isolated(kind, window, setup)
            rows[kind].growth[window] = found["growth_mb"]
            if kind == "whole" and window == "full":
                cold = found["cold_compare_s"]
            print(
                f"  {kind:<8} {window:<6} {found['growth_mb']:+6.1f} MB in {found['seconds']:.2f} s"
                f" (RSS before {found['rss_mb']:.0f} MB)",
                flush=True,
            )

    anchors: dict[str, dict[str, Any]] = {}
    if args.anchors == "skip":
        print("anchors skipped (--anchors skip)")
    elif not ANCHORS_PYTHON.exists():
        print(
            f"\nEvidently / NannyML anchors: {ANCHORS_PYTHON.parent.parent} is missing, so they "
            "are not measured.\n  Build it once with `make bench-anchors` (a uv venv from "
            "bench/anchors-requirements.txt: pandas<3, evidently 0.7, nannyml, statsmodels),\n"
            "  then run this script again. The in-process parts follow.\n"
        )
    else:
        for tool in ANCHOR_TOOLS:
            others = len([s for s in args.scenarios if s != "baseline"])
            print(
                f"anchor {tool}: {anchor_repeat} timed runs, 1 on {setup.chunk_rows:,} rows, "
                f"{others} scenarios ...",
                flush=True,
            )
            try:
                anchors[tool] = run_anchor(tool, setup, anchor_repeat, args.scenarios)
            except RuntimeError as err:
                print(f"  {err}")
                continue
            timing = anchors[tool]["runs"]["timing"]
            print(
                f"  seconds {', '.join(f'{s:.2f}' for s in timing['seconds'])}; "
                f"{max(timing['growth_mb']):+.0f} MB",
                flush=True,
            )

    print("modelcycle verdicts per scenario (whole window and streamed) ...", flush=True)
    flags = scenario_flags(setup, ref, args.scenarios)
    report(args, setup, rows, anchors, flags, cold, anchor_repeat)
    print(f"load average at the end: {load_average()} (other processes share the cores)")


def scenario_flags(setup: Setup, ref: Any, scenarios: list[str]) -> dict[str, dict[str, Any]]:
    """modelcycle's verdicts per scenario: drift and warning features, whole and streamed."""
    out = {}
    for scenario in scenarios:
        frame = read(setup.currents[scenario], setup.features)
        report = mc_whole(frame, ref)
        streamed = mc_stream(chunks(frame, setup.chunk_rows), ref)
        out[scenario] = {
            "drift": report.drifted,
            "warning": [f.name for f in report.features if f.verdict == "warning"],
            "reasons": {f.name: f.reasons for f in report.features if f.reasons},
            "streamed_same": [(f.name, f.verdict) for f in streamed.features]
            == [(f.name, f.verdict) for f in report.features],
        }
        del frame
    return out


# --------------------------------------------------------------------------------------------
# report


def _mb(value: float | None) -> str:
    return "" if value is None or math.isnan(value) else f"{value:+.0f} MB"


def _rows(n: int) -> str:
    if n % 1_000_000 == 0:
        return f"{n // 1_000_000}M"
    return f"{n // 1000}k" if n % 1000 == 0 else f"{n:,}"


def _ratio(anchor: float, mine: float) -> str:
    """How many times faster ``mine`` is than ``anchor`` (below 1: slower)."""
    if math.isnan(anchor) or math.isnan(mine) or mine <= 0:
        return ""
    return f"{anchor / mine:.1f}x" if anchor >= mine else f"{anchor / mine:.2f}x"


def _flag_cell(drift: list[str], warning: list[str] | None = None) -> str:
    text = ", ".join(drift) or "-"
    return f"{text} (warning: {', '.join(warning)})" if warning else text


def report(
    args: argparse.Namespace,
    setup: Setup,
    rows: dict[str, Row],
    anchors: dict[str, dict[str, Any]],
    flags: dict[str, dict[str, Any]],
    cold: float,
    anchor_repeat: int,
) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(width=170)
    lines = list(rows.values())
    medians = {"numpy/scipy": rows["scipy"].median}
    for tool, answer in anchors.items():
        timing, small = answer["runs"]["timing"], answer["runs"].get("small", {})
        version = answer["versions"].get(tool.split("-")[0], "?")
        lines.append(
            Row(
                f"{ANCHOR_TOOLS[tool]} {version}",
                timing["seconds"],
                {
                    "small": max(small.get("growth_mb") or [math.nan]),
                    "full": max(timing["growth_mb"]),
                },
                note=f"median of {anchor_repeat}, own process",
                anchor=True,
            )
        )
        medians[SHORT[tool]] = lines[-1].median
    passes_rows = PASSES * args.current_rows
    table = Table(
        title=(
            f"drift of a {args.current_rows:,}-row window against a {args.reference_rows:,}-row "
            f"reference, {len(setup.features)} features, medians of {args.repeat}\n"
            "mem: peak RSS growth of one run above what was loaded before it, fresh process, for "
            f"a window of {setup.chunk_rows:,} / {args.current_rows:,} / {passes_rows:,} rows "
            f"(the last: streamed, the window {PASSES} times)\n"
            "vs X: how many times faster than X (below 1: slower)"
        ),
        title_justify="left",
    )
    table.add_column("what")
    table.add_column("seconds", justify="right")
    for window in (setup.chunk_rows, args.current_rows, passes_rows):
        table.add_column(f"mem {_rows(window)}", justify="right")
    for name in medians:
        table.add_column(f"vs {name}", justify="right")
    table.add_column("note")
    for line in lines:
        skip = line.anchor or line is rows["reference"] or line is rows["compare"]
        ratios = ["" if skip else _ratio(m, line.median) for m in medians.values()]
        table.add_row(
            line.label,
            f"{line.median:.3f}",
            *(_mb(line.growth.get(w)) for w in ("small", "full", "passes")),
            *ratios,
            line.note,
        )
    console.print()
    console.print(table)
    if not math.isnan(cold):
        console.print(
            f"first compare in a fresh process: {cold:.2f} s (it imports scipy.stats); warm: "
            f"{rows['compare'].median * 1000:.1f} ms"
        )

    consensus = {
        scenario: sorted(
            set.intersection(
                *(set(a["runs"].get(scenario, {}).get("flagged", [])) for a in anchors.values())
            ),
            key=setup.features.index,
        )
        for scenario in flags
        if anchors
    }
    flag_table = Table(
        title=(
            "features flagged per scenario (same window sizes; each tool's default verdicts; "
            "'all anchors': flagged by every anchor)"
        ),
        title_justify="left",
    )
    flag_table.add_column("scenario")
    flag_table.add_column("modelcycle: drift (warning)")
    for tool in anchors:
        flag_table.add_column(ANCHOR_TOOLS[tool])
    if anchors:
        flag_table.add_column("all anchors")
    agree = dict.fromkeys([*anchors, "all"] if anchors else [], 0)
    differences = []
    for scenario, mine in flags.items():
        cells = [_flag_cell(mine["drift"], mine["warning"])]
        for tool, answer in anchors.items():
            run = answer["runs"].get(scenario, {})
            if "error" in run:
                cells.append(f"error: {run['error'][:70]}")
                continue
            theirs = run.get("flagged", [])
            same = set(theirs) == set(mine["drift"])
            agree[tool] += same
            cells.append(_flag_cell(theirs) + ("" if same else "  [differs]"))
            only_theirs = [n for n in theirs if n not in mine["drift"]]
            only_mine = [n for n in mine["drift"] if n not in theirs]
            if only_theirs:
                verdicts = [
                    f"{n} (modelcycle: {'warning' if n in mine['warning'] else 'ok'})"
                    for n in only_theirs
                ]
                differences.append(f"  {scenario}: {SHORT[tool]} also flags {', '.join(verdicts)}")
            if only_mine:
                differences.append(
                    f"  {scenario}: modelcycle flags {', '.join(only_mine)}, {SHORT[tool]} does not"
                )
        if anchors:
            same = set(consensus[scenario]) == set(mine["drift"])
            agree["all"] += same
            cells.append(_flag_cell(consensus[scenario]) + ("" if same else "  [differs]"))
        flag_table.add_row(scenario, *cells)
    console.print()
    console.print(flag_table)
    for line_text in differences:
        console.print(line_text)
    streamed = [s for s, mine in flags.items() if not mine["streamed_same"]]
    console.print(
        "modelcycle streamed (chunks + merge) gives the whole window's verdicts on every scenario"
        if not streamed
        else f"modelcycle streamed verdicts DIFFER from the whole window's on {', '.join(streamed)}"
    )
    console.print("why each tool flags what it flags:")
    for scenario, mine in flags.items():
        for name, reasons in mine["reasons"].items():
            console.print(f"  modelcycle, {scenario}, {name}: {'; '.join(reasons)}")
    for tool, answer in anchors.items():
        for scenario in flags:
            run = answer["runs"].get(scenario, {})
            for name in run.get("flagged", []):
                console.print(f"  {SHORT[tool]}, {scenario}, {name}: {run['detail'][name]}")

    console.print("\ngoals")
    paths = {"whole": "current_profile + compare", "stream": "streamed in chunks"}
    if anchors:
        fastest = min(anchors, key=lambda t: medians[SHORT[t]])
        anchor = medians[SHORT[fastest]]
        for key, label in paths.items():
            mine = rows[key].median
            console.print(
                f"  faster than the fastest anchor ({ANCHOR_TOOLS[fastest]}, {anchor:.2f} s): "
                f"{label} {mine:.3f} s, {_ratio(anchor, mine)}: "
                f"{'met' if mine < anchor else 'NOT met'}"
            )
    else:
        console.print("  faster than NannyML, 50x faster than Evidently: not measured (no anchors)")
    if "evidently" in anchors:
        evidently = medians[SHORT["evidently"]]
        for key, label in paths.items():
            mine = rows[key].median
            met = evidently / mine > EVIDENTLY_GOAL
            console.print(
                f"  over {EVIDENTLY_GOAL:.0f}x faster than Evidently ({evidently:.1f} s): "
                f"{label} {_ratio(evidently, mine)}: {'met' if met else 'NOT met'}"
            )
    for kind in ("stream", "parquet"):
        growth = rows[kind].growth
        flat = growth.get("passes", math.nan) <= 1.2 * growth.get("full", math.nan) + 8
        console.print(
            f"  memory independent of the window's rows, {rows[kind].label[11:]}: "
            f"{_mb(growth.get('small'))} / {_mb(growth.get('full'))} / "
            f"{_mb(growth.get('passes'))} for {setup.chunk_rows:,} / {args.current_rows:,} / "
            f"{passes_rows:,} rows: {'met' if flat else 'NOT met'} "
            f"(rule: {passes_rows:,} rows <= 1.2 x {args.current_rows:,} rows + 8 MB)"
        )
    whole_growth = rows["whole"].growth
    console.print(
        f"  (whole window in one call: {_mb(whole_growth.get('small'))} / "
        f"{_mb(whole_growth.get('full'))} for {setup.chunk_rows:,} / {args.current_rows:,} rows)"
    )
    for tool, count in agree.items():
        label = "every anchor's common flags" if tool == "all" else ANCHOR_TOOLS[tool]
        console.print(f"  same features flagged as {label}: {count} of {len(flags)} scenarios")


if __name__ == "__main__":
    main()
