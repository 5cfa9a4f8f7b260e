"""A realistic monitoring report, for the report page and dashboard tests.

:func:`sample_report` builds the JSON a monitoring run stores (``MonitoringReport.as_dict()``)
from real pieces: rent data, a reference profile, a current profile of a shifted window and
:func:`~modelcycle.monitoring.drift.compare`; OOD, latency and the timeline are synthetic but
consistent with the window. Replace it with a real run once ``modelcycle.monitoring.run`` exists.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd

from modelcycle.data.examples import rent_apartments
from modelcycle.data.schema import FeatureSchema
from modelcycle.metrics import regression_metrics
from modelcycle.monitoring.drift import compare
from modelcycle.monitoring.profile import Profile, current_profile, histogram, reference_profile
from modelcycle.monitoring.run import run_row

TIME_BINS = 12
WINDOW = timedelta(hours=1)
END = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


def sample_report(
    scenario: str = "bigger_apartments",
    rows: int = 2_000,
    seed: int = 1,
    *,
    model_name: str = "rent",
    model_version: str = "1",
    end: datetime = END,
) -> dict[str, Any]:
    """A monitoring report of ``rows`` rent rows of ``scenario`` against a baseline reference.

    ``bigger_apartments`` makes ``area`` drift; ``baseline`` gives a healthy window.
    """
    rng = np.random.default_rng(seed)
    reference_frame = rent_apartments(4_000, seed=0, messy=False)
    schema = FeatureSchema.infer(reference_frame, target="rent")
    reference_pred = _predict(reference_frame, rng)
    reference = reference_profile(
        reference_frame, schema, predictions=reference_pred, target=reference_frame["rent"]
    )
    frame = rent_apartments(rows, seed=seed, scenario=scenario, messy=False)
    pred = _predict(frame, rng)
    labelled = np.arange(rows) < int(rows * 0.4)  # labels arrive late: the oldest 40 %
    current = current_profile(frame, reference, predictions=pred, target=frame["rent"])
    drift = compare(reference, current).as_dict()
    reference_metrics = regression_metrics(reference_frame["rent"], reference_pred)
    realised = regression_metrics(frame["rent"][labelled], pred[labelled])
    ood = _ood(rows, scenario, rng)
    start = end - WINDOW
    alerts = _alerts(drift, ood)
    change = (realised["mae"] - reference_metrics["mae"]) / reference_metrics["mae"]
    verdict = "failing" if drift["dataset_drifted"] else "degraded" if alerts else "healthy"
    reasons = [a["message"] for a in alerts]
    return {
        "model_name": model_name,
        "model_version": model_version,
        "arms": ["stable"],
        "created_at": end.isoformat(),
        "window": {
            "start": start.isoformat(),
            "end": end.isoformat(),
            "last": None,
            "description": "last 1h",
        },
        "n_rows": rows,
        "verdict": verdict,
        "reasons": reasons,
        "drift": drift,
        "drift_skipped": None,
        "domain": {
            "auc": 0.74 if drift["drifted"] else 0.51,
            "ci_low": 0.72 if drift["drifted"] else 0.48,
            "ci_high": 0.76 if drift["drifted"] else 0.54,
            "drifted": bool(drift["drifted"]),
            "n_reference": 2_000,
            "n_current": rows,
            "top_features": [["area", 0.21], ["rooms", 0.03], ["neighborhood", 0.01]],
            "threshold": 0.55,
        },
        "ood": ood,
        "operations": {
            "requests": rows - 150,
            "errors": 4,
            "error_rate": 4 / rows,
            "p50_latency_ms": 3.1,
            "p99_latency_ms": 17.8,
        },
        "performance": {
            "task": "regression",
            "metric": "mae",
            "higher_is_better": False,
            "labelled": int(labelled.sum()),
            "label_coverage": float(labelled.mean()),
            "realised": realised,
            "reference": reference_metrics,
            "estimated": {"mae": reference_metrics["mae"] * 1.08},
            "estimated_metric": "mae",
            "value": realised["mae"],
            "realised_change": change,
            "estimated_change": 0.08,
        },
        "timeline": _timeline(start, frame, pred, labelled, ood, rng),
        "histograms": {
            "features": {
                name: histogram(reference.columns[name], current.columns[name])
                for name in reference.columns
            },
            "prediction": _outcome_histogram(reference, current, "prediction"),
            "target": _outcome_histogram(reference, current, "target"),
        },
        "alerts": alerts,
    }


def monitoring_row(report: dict[str, Any]) -> dict[str, Any]:
    """The ``monitoring_runs`` row of a report (what ``save_run`` takes)."""
    return run_row(report)


def sample_history(runs: int = 8, end: datetime = END) -> list[dict[str, Any]]:
    """Summaries of ``runs`` hourly runs (``recent_runs`` rows, oldest first), drift growing."""
    rng = np.random.default_rng(runs)
    rows = []
    for i in range(runs):
        share = min(1.0, max(0.0, (i - runs / 2) / runs)) if i > runs / 2 else 0.0
        rows.append(
            {
                "id": i + 1,
                "created_at": end - timedelta(hours=runs - 1 - i),
                "model_name": "rent",
                "model_version": "1",
                "window_start": end - timedelta(hours=runs - i),
                "window_end": end - timedelta(hours=runs - 1 - i),
                "n_rows": int(rng.integers(1_500, 2_500)),
                "verdict": "failing" if share > 0.2 else "degraded" if share > 0 else "healthy",
                "dataset_drift_share": share,
                "ood_rate": float(0.01 + 0.1 * share + rng.uniform(0, 0.005)),
                "metric": "mae",
                "metric_value": float(140 + 200 * share + rng.normal(0, 4)),
            }
        )
    return rows


def _predict(frame: pd.DataFrame, rng: np.random.Generator) -> np.ndarray:
    """A model's predictions: the rent with a lognormal error (about 10 %)."""
    rent = frame["rent"].to_numpy(dtype="float64")
    prediction: np.ndarray = rent * rng.lognormal(0.0, 0.1, len(rent))
    return prediction


def _outcome_histogram(reference: Profile, current: Profile, name: str) -> dict[str, Any] | None:
    ref, cur = getattr(reference, name), getattr(current, name)
    return histogram(ref, cur) if ref is not None and cur is not None else None


def _ood(rows: int, scenario: str, rng: np.random.Generator) -> dict[str, Any]:
    shifted = scenario != "baseline"
    by_reason = {
        "area: out of range": int(rows * 0.05) if shifted else 0,
        "multivariate": int(rows * 0.012),
        "neighborhood: unseen category": int(rng.integers(0, 5)),
    }
    by_reason = {reason: count for reason, count in by_reason.items() if count}
    flagged = int(sum(by_reason.values()) * 0.9)
    return {"rate": flagged / rows, "flagged": flagged, "checked": rows, "by_reason": by_reason}


def _alerts(drift: dict[str, Any], ood: dict[str, Any]) -> list[dict[str, Any]]:
    alerts = [
        {
            "rule": "feature_drift",
            "severity": "critical",
            "message": f"{f['name']} drifted: {'; '.join(f['reasons'])}",
            "feature": f["name"],
            "value": f["statistics"].get("psi"),
            "threshold": f["threshold"],
        }
        for f in drift["features"]
        if f["verdict"] == "drift"
    ]
    if ood["rate"] > 0.03:
        alerts.append(
            {
                "rule": "ood_rate",
                "severity": "warning",
                "message": f"{ood['rate']:.1%} of rows are out of distribution (limit 3.0%)",
                "feature": None,
                "value": ood["rate"],
                "threshold": 0.03,
            }
        )
    return alerts


def _timeline(
    start: datetime,
    frame: pd.DataFrame,
    pred: np.ndarray,
    labelled: np.ndarray,
    ood: dict[str, Any],
    rng: np.random.Generator,
) -> list[dict[str, Any]]:
    step = WINDOW / TIME_BINS
    truth = frame["rent"].to_numpy(dtype="float64")
    bins = []
    for i, rows in enumerate(np.array_split(np.arange(len(frame)), TIME_BINS)):
        known = rows[labelled[rows]]
        mae = float(np.mean(np.abs(truth[known] - pred[known]))) if len(known) else None
        bins.append(
            {
                "start": (start + i * step).isoformat(),
                "end": (start + (i + 1) * step).isoformat(),
                "rows": len(rows),
                "ood_rate": float(max(0.0, ood["rate"] + rng.normal(0, 0.005))),
                "error_rate": float(rng.uniform(0, 0.004)),
                "p99_latency_ms": float(rng.uniform(12, 24)),
                "labelled": len(known),
                "metric": mae,
                "estimated": float(np.mean(pred[rows]) * 0.08),
                "mean_prediction": float(np.mean(pred[rows])),
            }
        )
    return bins
