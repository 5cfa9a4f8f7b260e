"""Arm comparison: synthetic prediction-log frames in, exact counts, quantiles, PSI and agreement out."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from modelcycle.data.records import LabelRecord, PredictionRecord
from modelcycle.deployment.compare import (
    ArmComparison,
    compare_arms,
    compare_frame,
    psi,
    write_report,
)
from modelcycle.deployment.stats import ArmStats, prediction_psi
from modelcycle.monitoring.performance import class_names
from modelcycle.store import insert_labels, insert_predictions, make_engine, upgrade

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


def frame(*arms: tuple[str, str, list[dict[str, Any]]]) -> pd.DataFrame:
    """A window frame: ``(arm, version, rows)`` with rows of ``id``, ``pred`` and optional
    ``label``, ``error``, ``ms``, ``row`` and ``proba``."""
    records = []
    for arm, version, rows in arms:
        for i, row in enumerate(rows):
            label = row.get("label")
            records.append(
                {
                    "id": len(records) + 1,
                    "request_id": row["id"],
                    "row": row.get("row", 0),
                    "created_at": T0 + timedelta(seconds=i),
                    "model_name": "rent",
                    "model_version": version,
                    "arm": arm,
                    "prediction": row["pred"],
                    "probabilities": row.get("proba"),
                    "latency_ms": float(row.get("ms", 1.0)),
                    "ood": None,
                    "error": row.get("error"),
                    "label": label,
                    "label_at": T0 if label is not None else None,
                    "label_source": None,
                    "has_label": label is not None,
                }
            )
    return pd.DataFrame.from_records(records)


def rows(ids: list[str], preds: list[Any], **columns: list[Any]) -> list[dict[str, Any]]:
    """Rows of one arm from parallel lists."""
    out = []
    for i, (rid, pred) in enumerate(zip(ids, preds, strict=True)):
        row = {"id": rid, "pred": pred}
        row.update({name: values[i] for name, values in columns.items()})
        out.append(row)
    return out


IDS = ["r0", "r1", "r2", "r3"]


def shadow_regression() -> ArmComparison:
    stable = rows(
        IDS, [100.0, 200.0, 300.0, 400.0], ms=[1, 2, 3, 4], label=[110.0, 190.0, 300.0, None]
    )
    shadow = rows(IDS, [110.0, 190.0, 330.0, 400.0], ms=[2, 2, 2, 10])
    return compare_frame(frame(("stable", "1", stable), ("shadow", "2", shadow)), "rent", T0)


def test_psi_of_identical_distributions_is_zero() -> None:
    values = np.arange(100.0)
    assert psi(values, values) == 0.0
    assert psi(values, values[::-1].copy()) == 0.0
    assert psi(["a", "b", "b"], ["b", "a", "b"], "classification") == 0.0


def test_psi_matches_the_formula() -> None:
    stable, candidate = [1.0, 1.0, 2.0, 2.0, 1.5] * 2, [3.0, 3.0, 4.0, 4.0, 3.5] * 2
    # deciles of the 20 pooled values (linear interpolation): 1, 1.4, 1.85, 2, 2.5, 3, 3.15,
    # 3.6, 4; right-closed bins (-inf, 1], (1, 1.4], ..., (4, inf)
    counts_a = np.array([4, 0, 2, 4, 0, 0, 0, 0, 0, 0], dtype=float)
    counts_b = np.array([0, 0, 0, 0, 0, 4, 0, 2, 4, 0], dtype=float)
    share_a = (counts_a + 0.5) / (10 + 5)
    share_b = (counts_b + 0.5) / (10 + 5)
    expected = float(np.sum((share_b - share_a) * np.log(share_b / share_a)))
    assert psi(stable, candidate) == pytest.approx(expected, rel=1e-12)
    # classes by frequency: 3 "no" + 1 "yes" against 1 "no" + 3 "yes", pseudo-count 0.5 per class
    a, b = np.array([3.5, 1.5, 0.5]) / 5.5, np.array([1.5, 3.5, 0.5]) / 5.5
    expected = float(np.sum((b - a) * np.log(b / a)))
    got = psi(["no", "no", "no", "yes"], ["no", "yes", "yes", "yes"], "classification")
    assert got == pytest.approx(expected, rel=1e-12)
    assert math.isnan(psi([], candidate))
    assert math.isnan(psi(stable, [math.nan, math.inf]))


def test_the_report_psi_is_the_gate_psi() -> None:
    rng = np.random.default_rng(0)
    stable, candidate = rng.normal(0, 1, 500), rng.normal(0.3, 1, 300)
    gate = prediction_psi(
        ArmStats("1", predictions=stable), ArmStats("2", predictions=candidate), "regression"
    )
    assert psi(stable, candidate) == gate


def test_class_names_compare_numbers_and_text_alike() -> None:
    names = class_names(pd.Series([1.0, 1, "1", 0.5, "yes"], dtype=object))
    assert names.tolist() == ["1", "1", "1", "0.5", "yes"]


def test_shadow_regression_per_arm_numbers() -> None:
    result = shadow_regression()
    assert result.task == "regression"
    assert result.reference == "stable v1"
    assert [a.key for a in result.arms] == ["stable v1", "shadow v2"]
    assert result.rows == 8
    stable = result.arm("stable v1")
    assert (stable.requests, stable.rows, stable.errors, stable.error_rate) == (4, 4, 0, 0.0)
    assert stable.latency_ms == pytest.approx({"p50": 2.5, "p95": 3.85, "p99": 3.97})
    assert stable.prediction["mean"] == 250.0
    assert stable.prediction["min"] == 100.0
    assert stable.prediction["max"] == 400.0
    assert stable.prediction["p50"] == 250.0
    assert stable.prediction["std"] == pytest.approx(math.sqrt(12500.0))
    shadow = result.arm("shadow v2")
    assert shadow.latency_ms["p50"] == 2.0
    assert shadow.latency_ms["p99"] == pytest.approx(2 + 0.97 * 8)
    # both histograms over the same 30 bins spanning every prediction
    assert result.bin_edges[0] == 100.0
    assert result.bin_edges[-1] == 400.0
    assert len(result.bin_edges) == 31
    assert sum(stable.histogram) == sum(shadow.histogram) == 4


def test_shadow_regression_is_paired_row_by_row() -> None:
    (agreement,) = shadow_regression().agreements
    assert (agreement.reference, agreement.other) == ("stable v1", "shadow v2")
    assert agreement.pairs == 4
    assert agreement.basis == "paired"
    assert agreement.mean_abs_diff == pytest.approx((10 + 10 + 30 + 0) / 4)
    assert agreement.mean_diff == pytest.approx((10 - 10 + 30 + 0) / 4)
    assert sum(agreement.diff_counts) == 4
    assert agreement.diff_edges[0] == -10.0
    assert agreement.diff_edges[-1] == 30.0
    expected = psi([100.0, 200.0, 300.0, 400.0], [110.0, 190.0, 330.0, 400.0])
    assert agreement.psi == pytest.approx(expected)
    assert agreement.agreement_rate is None


def test_realised_metrics_use_the_labelled_rows_only() -> None:
    stable = shadow_regression().arm("stable v1")
    assert stable.labelled == 3
    assert stable.metrics["mae"] == pytest.approx(20 / 3)
    assert stable.metrics["rmse"] == pytest.approx(math.sqrt(200 / 3))
    assert stable.metrics["mape"] == pytest.approx((10 / 110 + 10 / 190 + 0) / 3)
    assert shadow_regression().arm("shadow v2").metrics == {}  # no labels given for its rows


def test_canary_compares_distributions_and_counts_errors() -> None:
    stable = rows(["a", "b", "c", "d"], [1.0, 2.0, 3.0, 4.0])
    canary = rows(
        ["e", "f", "g", "g"],
        [5.0, None, 7.0, 8.0],
        error=[None, "boom", None, None],
        row=[0, 0, 0, 1],
        ms=[1, 50, 3, 3],
    )
    result = compare_frame(frame(("stable", "1", stable), ("canary", "2", canary)), "rent", T0)
    canary_arm = result.arm("canary v2")
    assert (canary_arm.requests, canary_arm.rows, canary_arm.errors) == (3, 4, 1)
    assert canary_arm.error_rate == 0.25
    assert canary_arm.prediction["count"] == 3  # the failed row has no prediction
    assert canary_arm.prediction["mean"] == pytest.approx(20 / 3)
    assert canary_arm.latency_ms["p50"] == 3.0  # latency counts failed rows too
    (agreement,) = result.agreements
    assert agreement.pairs == 0
    assert agreement.basis == "distribution"
    assert agreement.mean_abs_diff is None
    assert agreement.psi == pytest.approx(psi([1.0, 2.0, 3.0, 4.0], [5.0, 7.0, 8.0]))
    assert agreement.psi > 0.25  # every canary prediction lies above every stable one


def test_classification_shadow_agreement_and_flips() -> None:
    stable = rows(
        IDS,
        ["yes", "no", "yes", "no"],
        proba=[
            {"no": 0.2, "yes": 0.8},
            {"no": 0.9, "yes": 0.1},
            {"no": 0.4, "yes": 0.6},
            {"no": 0.7, "yes": 0.3},
        ],
        label=["yes", "no", "no", "no"],
    )
    shadow = rows(IDS, ["yes", "yes", "no", "no"], proba=[{"no": 0.5, "yes": 0.5}] * 4)
    result = compare_frame(frame(("stable", "3", stable), ("shadow", "4", shadow)), "rent", T0)
    assert result.task == "classification"
    stable_arm = result.arm("stable v3")
    assert stable_arm.classes == {"no": 2, "yes": 2}
    assert stable_arm.histogram == ()
    assert stable_arm.labelled == 4
    assert stable_arm.metrics["accuracy"] == 0.75
    assert stable_arm.metrics["roc_auc"] == 1.0  # every "yes" scores above every "no"
    assert stable_arm.metrics["brier"] == pytest.approx((0.2**2 + 0.1**2 + 0.6**2 + 0.3**2) / 4)
    (agreement,) = result.agreements
    assert agreement.pairs == 4
    assert agreement.agreement_rate == 0.5
    assert agreement.flipped == {"no → yes": 1, "yes → no": 1}
    assert agreement.psi == 0.0  # same class shares, different rows
    assert agreement.mean_abs_diff is None


def test_numeric_classes_pair_with_their_text_labels() -> None:
    stable = rows(
        ["a", "b"], [1.0, 0.0], proba=[{"0": 0.1, "1": 0.9}, {"0": 0.8, "1": 0.2}], label=["1", "1"]
    )
    shadow = rows(["a", "b"], [1.0, 1.0], proba=[{"0": 0.3, "1": 0.7}] * 2)
    result = compare_frame(frame(("stable", "1", stable), ("shadow", "2", shadow)), "m", T0)
    assert result.task == "classification"
    assert result.arm("stable v1").metrics["accuracy"] == 0.5
    assert result.agreements[0].flipped == {"0 → 1": 1}


def test_the_busiest_stable_version_is_the_reference_and_never_pairs_with_itself() -> None:
    old = rows(["a", "b", "c"], [1.0, 2.0, 3.0])
    new = rows(["d"], [2.0])
    result = compare_frame(frame(("stable", "2", new), ("stable", "1", old)), "rent", T0)
    assert [a.key for a in result.arms] == ["stable v1", "stable v2"]
    assert result.reference == "stable v1"
    (agreement,) = result.agreements
    assert agreement.other == "stable v2"
    assert agreement.pairs == 0
    assert agreement.basis == "distribution"


def test_blue_is_the_reference_of_a_blue_green_switch() -> None:
    blue = rows(["a", "b"], [1.0, 2.0])
    green = rows(["c", "d"], [1.0, 2.0])
    result = compare_frame(frame(("green", "2", green), ("blue", "1", blue)), "rent", T0)
    assert result.reference == "blue v1"
    assert result.agreements[0].other == "green v2"
    assert result.agreements[0].psi == 0.0


def test_without_a_reference_arm_nothing_is_paired() -> None:
    result = compare_frame(frame(("canary", "2", rows(["a"], [1.0]))), "rent", T0)
    assert result.reference is None
    assert result.agreements == ()
    assert result.arm("canary v2").rows == 1


def test_an_empty_window() -> None:
    empty = frame()
    result = compare_frame(empty, "rent", T0, T0 + timedelta(hours=1))
    assert result.arms == ()
    assert result.rows == 0
    assert result.task is None
    payload = result.to_dict()
    assert payload["until"] == "2025-03-01T13:00:00+00:00"
    assert payload["arms"] == []


def test_to_dict_is_json_with_no_nan() -> None:
    result = shadow_regression()
    payload = json.loads(json.dumps(result.to_dict(), allow_nan=False))
    assert payload["rows"] == 8
    assert payload["arms"][0]["key"] == "stable v1"
    assert payload["arms"][1]["metrics"] == {}
    assert payload["agreements"][0]["mean_abs_diff"] == 12.5


def test_report_shows_arms_histograms_latency_and_agreement(tmp_path: Path) -> None:
    path = write_report(shadow_regression(), tmp_path / "reports" / "rollout.html")
    html = path.read_text(encoding="utf-8")
    assert html.startswith("<!DOCTYPE html>")
    for text in (
        "rent: rollout comparison",
        "Prediction distributions",
        "Latency",
        "Agreement with the reference arm",
        "Realised metrics",
        "stable v1",
        "shadow v2",
        "12.5",  # mean |difference|
        "paired",
        "3.97",  # stable's p99 latency
        "labelled rows",
    ):
        assert text in html, text
    assert html.count('id="plotlyjs"') == 1  # plotly.js inlined once: works offline
    assert "<script src=" not in html
    assert html.count('class="plotly-graph-div"') == 4  # 2 histograms, latency, differences


def test_report_of_an_empty_window_says_so(tmp_path: Path) -> None:
    result = compare_frame(frame(), "rent", T0)
    html = write_report(result, tmp_path / "empty.html").read_text(encoding="utf-8")
    assert "No predictions were logged in this window" in html
    assert 'id="plotlyjs"' not in html


def test_compare_arms_reads_the_window_from_the_store(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'store.db'}"
    upgrade(url)
    engine = make_engine(url)
    records = [
        PredictionRecord(
            request_id=f"r{i}",
            timestamp=T0 + timedelta(minutes=i),
            model_name="rent",
            model_version=version,
            arm=arm,
            features={"area": 50 + i},
            prediction=float(100 * i + offset),
            latency_ms=float(i),
        )
        for i in range(4)
        for arm, version, offset in (("stable", "1", 0), ("shadow", "2", 5))
    ]
    records.append(  # outside the window
        PredictionRecord(
            request_id="old",
            timestamp=T0 - timedelta(days=1),
            model_name="rent",
            model_version="1",
            features={},
            prediction=1e6,
        )
    )
    with engine.begin() as conn:
        insert_predictions(conn, records)
        insert_labels(conn, [LabelRecord(request_id="r1", label=110.0)])
    with engine.connect() as conn:
        result = compare_arms(conn, "rent", T0, T0 + timedelta(hours=1))
    engine.dispose()
    assert result.rows == 8
    stable = result.arm("stable v1")
    assert stable.requests == 4
    assert stable.prediction["max"] == 300.0
    assert stable.labelled == 1
    assert stable.metrics["mae"] == 10.0
    shadow = result.arm("shadow v2")  # a label joins every arm's row of its request
    assert shadow.labelled == 1
    assert shadow.metrics["mae"] == 5.0
    (agreement,) = result.agreements
    assert agreement.pairs == 4
    assert agreement.mean_abs_diff == 5.0
    assert agreement.mean_diff == 5.0
