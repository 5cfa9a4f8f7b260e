"""Drift anchors for ``bench/drift.py``: Evidently and NannyML, run in their own environment.

Evidently 0.7 does not import with pandas 3 and NannyML needs statsmodels without declaring it,
so they live in ``.bench/anchors`` (``make bench-anchors``), never in the project's ``.venv``.
``bench/drift.py`` runs this script once per tool with that environment's python:

    .bench/anchors/bin/python bench/_drift_anchors.py JOB.json

The job (JSON) names the tool (``evidently``, ``nannyml`` or ``nannyml-js``), the reference
Parquet file, the numeric and categorical columns, and the runs: a label, a current Parquet file
and a repeat count. For every run the script reads the files (not timed), resets the process's
peak RSS (``/proc/self/clear_refs``), times the tool and reports the seconds, the peak RSS growth
above the loaded frames (freed memory is given back to the system first: ``malloc_trim`` and
Arrow's pool), and the features the tool's own verdicts flag. The result is one JSON
object on stdout; everything the libraries print goes to stderr.

- ``evidently``: ``Report([DataDriftPreset()])`` with a ``DataDefinition`` that declares the same
  numeric and categorical columns as modelcycle's schema; the clock covers
  ``Dataset.from_pandas`` of both frames and ``Report.run``. Default tests (above 1,000 rows:
  normed Wasserstein for numeric columns with more than 5 values, Jensen-Shannon distance
  otherwise, drift at 0.1).
- ``nannyml``: ``UnivariateDriftCalculator`` with Kolmogorov-Smirnov (continuous; approximated
  from a 10,000-bin histogram when the reference has 10,000 rows or more) and chi-square
  (categorical), the tests modelcycle and the numpy/scipy anchor run; fit on the reference and
  calculate on the current window, both timed. Default chunking (10 chunks of each frame): a
  feature is flagged when at least one current chunk raises an alert.
- ``nannyml-js``: the same with NannyML's default methods (Jensen-Shannon for both kinds).
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import json
import sys
import time
import traceback
import warnings
from pathlib import Path
from typing import Any


def rss_mb(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def release_and_reset_peak() -> bool:
    """Give freed memory back to the system (so a run cannot hide growth in pages freed by the
    loading), then reset ``VmHWM`` to the current RSS."""
    import pyarrow as pa

    gc.collect()
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    pa.default_memory_pool().release_unused()
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def run_evidently(
    reference: Any, current: Any, numeric: list[str], categorical: list[str]
) -> dict[str, Any]:
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    definition = DataDefinition(numerical_columns=numeric, categorical_columns=categorical)
    ref = Dataset.from_pandas(reference, data_definition=definition)
    cur = Dataset.from_pandas(current, data_definition=definition)
    snapshot = Report([DataDriftPreset()]).run(current_data=cur, reference_data=ref)
    flagged, detail = [], {}
    for metric in snapshot.dict()["metrics"]:
        config = metric.get("config", {})
        if not str(config.get("type", "")).endswith("ValueDrift"):
            continue
        column, method, threshold = config["column"], config["method"], config["threshold"]
        score = float(metric["value"])
        drifted = score < threshold if "p_value" in method else score >= threshold
        detail[column] = f"{method} {score:.3g} (threshold {threshold:g})"
        if drifted:
            flagged.append(column)
    return {"flagged": flagged, "detail": detail}


def run_nannyml(
    reference: Any, current: Any, numeric: list[str], categorical: list[str], methods: str
) -> dict[str, Any]:
    from nannyml import UnivariateDriftCalculator

    continuous, categoric = (
        (["kolmogorov_smirnov"], ["chi2"]) if methods == "ks" else (None, None)
    )  # None: NannyML's defaults
    calculator = UnivariateDriftCalculator(
        column_names=[*numeric, *categorical],
        treat_as_categorical=categorical,
        continuous_methods=continuous,
        categorical_methods=categoric,
    )
    calculator.fit(reference)
    result = calculator.calculate(current)
    table = result.filter(period="analysis").to_df()
    flagged, detail = [], {}
    for column in [*numeric, *categorical]:
        for method in sorted({key[1] for key in table.columns if key[0] == column}):
            alerts = table[(column, method, "alert")].astype(bool)
            detail[column] = f"{method}: alert in {int(alerts.sum())}/{len(alerts)} chunks"
            if alerts.any() and column not in flagged:
                flagged.append(column)
    return {"flagged": flagged, "detail": detail}


def run_tool(
    tool: str, reference: Any, current: Any, numeric: list[str], categorical: list[str]
) -> dict[str, Any]:
    if tool == "evidently":
        return run_evidently(reference, current, numeric, categorical)
    methods = "ks" if tool == "nannyml" else "default"
    return run_nannyml(reference, current, numeric, categorical, methods)


def versions(tool: str) -> dict[str, str]:
    import numpy
    import pandas

    found = {"pandas": pandas.__version__, "numpy": numpy.__version__}
    if tool == "evidently":
        import evidently

        found["evidently"] = evidently.__version__
    else:
        import nannyml

        found["nannyml"] = nannyml.__version__
    return found


def main() -> None:
    job = json.loads(Path(sys.argv[1]).read_text())
    tool, numeric, categorical = job["tool"], job["numeric"], job["categorical"]
    columns = [*numeric, *categorical]
    out: dict[str, Any] = {"tool": tool, "runs": []}
    with contextlib.redirect_stdout(sys.stderr), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import pandas as pd

        out["versions"] = versions(tool)
        reference = pd.read_parquet(job["reference"], columns=columns)
        half = len(reference) // 2  # warm-up: the tool's lazy imports happen before any clock
        run_tool(tool, reference.iloc[:half], reference.iloc[half:], numeric, categorical)
        for run in job["runs"]:
            found: dict[str, Any] = {"label": run["label"], "seconds": [], "growth_mb": []}
            try:
                current = pd.read_parquet(run["current"], columns=columns)
                for _ in range(run["repeat"]):
                    tracked = release_and_reset_peak()
                    before = rss_mb("VmRSS")
                    start = time.perf_counter()
                    verdict = run_tool(tool, reference, current, numeric, categorical)
                    found["seconds"].append(time.perf_counter() - start)
                    growth = rss_mb("VmHWM") - before if tracked else float("nan")
                    found["growth_mb"].append(growth)
                    found.update(verdict)
                    del verdict
                found["rows"] = len(current)
                del current
            except Exception as err:  # one failing scenario (e.g. schema_break) is a finding
                found["error"] = f"{type(err).__name__}: {err}"
                traceback.print_exc()
            out["runs"].append(found)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
