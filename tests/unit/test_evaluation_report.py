"""The evaluation report: sections and charts per task, highlighting, escaping, offline."""

from __future__ import annotations

import dataclasses
import functools
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from modelcycle.metrics import compute_metrics, improvement
from modelcycle.training import report
from modelcycle.training.evaluate import CandidateResult, Evaluation
from modelcycle.training.report import evaluation_page, write_evaluation_report

EVIL = "<script>alert('x')</script>"
SECTIONS = ["verdict", "metrics-vs-baseline", "feature-importance", "slices", "tuning-history"]


@functools.cache
def make_evaluation(
    task: str = "regression",
    *,
    n: int = 600,
    classes: int = 2,
    passed: bool = True,
    evil: bool = False,
    seed: int = 0,
) -> Evaluation:
    """A synthetic evaluation with real metrics: baselines, candidates, slices, trials."""
    rng = np.random.default_rng(seed)
    city = rng.choice(["Madrid", "Sevilla", EVIL if evil else "Bilbao"], n)
    labels: list[Any] | None = None
    if task == "regression":
        y = rng.gamma(4.0, 300.0, n)
        noise = np.where(city == "Sevilla", 400.0, 120.0)

        def predict(skill: float) -> np.ndarray:
            return skill * y + (1 - skill) * y.mean() + rng.normal(0, noise * (1.5 - skill), n)

        metric, threshold = "mae", None
    else:
        labels = ["no", "yes"] if classes == 2 else [f"class {c}" for c in range(classes)]
        if evil:
            labels[0] = EVIL  # sorted first, as classes are
        z = rng.integers(0, classes, n)
        y = np.asarray(labels, dtype=object)[z]

        def predict(skill: float) -> np.ndarray:
            logits = rng.normal(0, 1, (n, classes)) + 3 * skill * np.eye(classes)[z]
            probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
            return probs[:, 1] if classes == 2 else probs

        metric, threshold = "roc_auc", 0.42 if classes == 2 else None

    def metrics(pred: np.ndarray) -> dict[str, float]:
        return compute_metrics(task, y, pred, threshold=threshold or 0.5, classes=labels)  # type: ignore[arg-type]

    skills = {"dummy": 0.0, "ridge": 0.4, "random_forest": 0.8, "lightgbm": 0.7}
    preds = {name: predict(skill) for name, skill in skills.items()}
    results = [
        CandidateResult(
            name if not (evil and name == "lightgbm") else EVIL,
            "baseline" if name in ("dummy", "ridge") else "candidate",
            {"alpha": 1.0} if name == "ridge" else {},
            valid_metrics=metrics(predict(skill)),
            test_metrics=metrics(preds[name]),
            fit_seconds=0.1 + skill,
            trials=6 if skill > 0.5 else 0,
        )
        for name, skill in skills.items()
    ]
    winner, baseline = "random_forest", "ridge"
    gain = improvement(metric, results[2].test_metrics[metric], results[1].test_metrics[metric])
    best = preds[winner]
    slice_rows = [
        {
            "feature": "city",
            "value": str(value),
            "count": int((city == value).sum()),
            **compute_metrics(
                task,
                y[city == value],
                best[city == value],
                threshold=threshold or 0.5,
                classes=labels,
            ),  # type: ignore[arg-type]
        }
        for value in pd.unique(city)
    ]
    features = ["area", "rooms", "age", EVIL if evil else "floor"]
    trials = pd.DataFrame(
        [
            {
                "candidate": cand,
                "number": i,
                "value": float(
                    rng.uniform(0.6, 0.9) if task != "regression" else rng.uniform(150, 300)
                ),
                "state": "pruned" if i == 3 else "complete",
                "params": {"max_depth": int(rng.integers(2, 12)), "learning_rate": 0.0123456},
                "seconds": 0.2,
            }
            for cand in ("random_forest", "lightgbm")
            for i in range(6)
        ]
    )
    return Evaluation(
        project=EVIL if evil else "rent",
        task=task,  # type: ignore[arg-type]
        metric=metric,
        results=results,
        winner=winner,
        baseline=baseline,
        margin=0.02,
        improvement=gain if passed else 0.005,
        passed=passed,
        reason=(
            "random_forest beats ridge"
            if passed
            else f"improvement 0.5% is below the 2% margin {EVIL if evil else ''}"
        ),
        y_test=y,
        test_prediction=best,
        threshold=threshold,
        classes=labels,
        slices=pd.DataFrame(slice_rows),
        importance=pd.DataFrame(
            {
                "feature": features,
                "importance_mean": [0.3, 0.1, 0.02, -0.01],
                "importance_std": [0.03, 0.02, 0.01, 0.01],
            }
        ),
        trials=trials,
    )


def section_ids(html: str) -> list[str]:
    return re.findall(r'<section id="([^"]+)"', html)


def charts(html: str) -> int:
    return html.count('class="plotly-graph-div"')


def test_regression_report(tmp_path: Path) -> None:
    evaluation = make_evaluation("regression")
    page = evaluation_page(evaluation)
    html = page.render()
    ids = section_ids(html)
    assert ids == [*SECTIONS[:2], "regression-diagnostics", *SECTIONS[2:]]
    # metric bars, predicted vs actual, residuals vs predicted, residual histogram,
    # importance, tuning history
    assert page.n_figures == charts(html) == 6
    for text in ("Predicted vs actual", "Residuals vs predicted", "Residual distribution"):
        assert text in html
    assert "rent: evaluation" in html
    assert "decided by MAE on the test part (lower is better)" in html
    path = write_evaluation_report(evaluation, tmp_path / "out" / "evaluation.html", title="T")
    assert path.is_file()
    assert "<title>T</title>" in path.read_text(encoding="utf-8")


def test_verdict_cards_and_callouts() -> None:
    passed = evaluation_page(make_evaluation("regression")).render()
    verdict = passed.split('<section id="verdict">')[1].split("</section>")[0]
    assert "MAE · winner" in verdict
    assert "random_forest" in verdict
    assert "MAE · best baseline" in verdict
    assert "required ≥ 2.0%" in verdict
    assert "callout sev-ok" in verdict
    assert "registered" in verdict
    failed = evaluation_page(make_evaluation("regression", passed=False)).render()
    verdict = failed.split('<section id="verdict">')[1].split("</section>")[0]
    assert "not registered" in verdict
    assert "callout sev-error" in verdict
    assert "Not registered." in verdict
    assert "below the 2% margin" in verdict
    assert "card sev-error" in verdict


def test_metric_tables_mark_the_winner_and_the_best() -> None:
    html = evaluation_page(make_evaluation("regression")).render()
    section = html.split('<section id="metrics-vs-baseline">')[1].split("</section>")[0]
    assert section.count("<table>") == 2  # test and validation
    assert '<td class="sev-info" title="the winner">random_forest</td>' in section
    assert "MAE ◆" in section
    assert "best baseline" in section
    # one best cell per metric and table (four metrics, ties aside)
    assert section.count('title="best"') >= 8
    assert section.count("<tr>") == 2 * (1 + 4)


def test_slices_worst_first_and_coloured() -> None:
    evaluation = make_evaluation("regression")
    html = evaluation_page(evaluation).render()
    section = html.split('<section id="slices">')[1].split("</section>")[0]
    order = evaluation.slices.sort_values("mae", ascending=False)["value"].tolist()
    assert order[0] == "Sevilla"  # the noisy city is the worst
    positions = [section.index(f"<td>{v}</td>") for v in order]
    assert positions == sorted(positions)
    assert "sev-error" in section or "sev-warning" in section
    assert "worst slice" in section


def test_binary_report() -> None:
    page = evaluation_page(make_evaluation("classification"))
    html = page.render()
    assert section_ids(html) == [*SECTIONS[:2], "classification-diagnostics", *SECTIONS[2:]]
    # metric bars, ROC, PR, confusion, calibration, importance, tuning
    assert page.n_figures == charts(html) == 7
    for text in ("ROC curve (AUC", "Precision-recall (AP", "Confusion matrix (threshold 0.42)"):
        assert text in html
    assert "Calibration (Brier" in html
    assert "positive class" in html
    assert "decided by ROC AUC" in html


def test_binary_with_a_single_test_class() -> None:
    evaluation = dataclasses.replace(make_evaluation("classification"))
    evaluation.y_test = np.full(len(evaluation.y_test), "yes", dtype=object)
    page = evaluation_page(evaluation)
    html = page.render()
    assert "ROC and precision-recall curves are undefined" in html
    assert page.n_figures == 5


def test_multiclass_report() -> None:
    page = evaluation_page(make_evaluation("classification", classes=4))
    html = page.render()
    assert "classification-diagnostics" in section_ids(html)
    # metric bars, confusion matrix, importance, tuning
    assert page.n_figures == charts(html) == 4
    assert "Confusion matrix (argmax)" in html
    section = html.split('<section id="classification-diagnostics">')[1].split("</section>")[0]
    assert "ROC AUC (ovr)" in section
    assert section.count("<tr>") == 1 + 4
    for c in range(4):
        assert f"<td>class {c}</td>" in section


def test_missing_parts_are_explained() -> None:
    evaluation = dataclasses.replace(make_evaluation("regression"))
    evaluation.importance = pd.DataFrame()
    evaluation.slices = pd.DataFrame()
    evaluation.trials = pd.DataFrame()
    page = evaluation_page(evaluation)
    html = page.render()
    assert page.n_figures == 4
    assert "Permutation importance was not computed" in html
    assert "No slices" in html
    assert "No tuning trials" in html


@pytest.mark.parametrize(
    ("task", "classes"), [("regression", 2), ("classification", 2), ("classification", 3)]
)
def test_user_text_is_escaped_and_page_is_offline(task: str, classes: int) -> None:
    html = evaluation_page(make_evaluation(task, classes=classes, evil=True)).render()
    assert "<script>alert" not in html
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in html
    tags = re.findall(r"<(?:script|link|img|iframe)\b[^>]*>", html, flags=re.IGNORECASE)
    assert tags
    for tag in tags:
        assert not re.search(r"(?:src|href)\s*=", tag, flags=re.IGNORECASE), tag
    outside_bundle = re.sub(
        r'<script type="text/javascript" id="plotlyjs">.*?</script>', "", html, flags=re.S
    )
    assert not re.search(r"https?://", outside_bundle)
    assert html.count('id="plotlyjs"') == 1


def test_scatter_sample_is_bounded_and_seeded() -> None:
    big = report._sample(12_000)
    assert big.size == report.MAX_POINTS
    assert np.array_equal(big, report._sample(12_000))
    assert np.all(np.diff(big) > 0)
    assert report._sample(10).tolist() == list(range(10))
    curve = np.linspace(0, 1, 10_000)
    thin = report._thin(curve)
    assert thin.size <= report.MAX_CURVE_POINTS
    assert (thin[0], thin[-1]) == (0.0, 1.0)


def test_large_regression_report_stays_small() -> None:
    evaluation = make_evaluation("regression", n=40_000)
    html = evaluation_page(evaluation).render()
    from plotly.offline import get_plotlyjs

    assert len(html) - len(get_plotlyjs()) < 1_000_000
