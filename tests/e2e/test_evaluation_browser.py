"""The evaluation report in a real headless Chromium: no console errors, every chart drawn, offline."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from modelcycle.metrics import compute_metrics, improvement
from modelcycle.training.evaluate import CandidateResult, Evaluation
from modelcycle.training.report import evaluation_page

pytestmark = pytest.mark.browser

CHARTS = {"regression": 6, "binary": 7, "multiclass": 4}


def make_evaluation(kind: str, n: int = 3_000, seed: int = 3) -> Evaluation:
    """A small but realistic evaluation: two baselines, two candidates, slices and trials."""
    rng = np.random.default_rng(seed)
    city = rng.choice(["Madrid", "Sevilla", "Bilbao"], n)
    classes: list[Any] | None = None
    threshold: float | None = None
    if kind == "regression":
        task, metric = "regression", "mae"
        y = rng.gamma(4.0, 300.0, n)

        def predict(skill: float) -> np.ndarray:
            return skill * y + (1 - skill) * y.mean() + rng.normal(0, 250 * (1.5 - skill), n)

    else:
        task, metric = "classification", "roc_auc"
        k = 2 if kind == "binary" else 4
        classes = ["no", "yes"] if k == 2 else ["1 room", "2 rooms", "3 rooms", "4+ rooms"]
        threshold = 0.4 if k == 2 else None
        z = rng.integers(0, k, n)
        y = np.asarray(classes, dtype=object)[z]

        def predict(skill: float) -> np.ndarray:
            logits = rng.normal(0, 1, (n, k)) + 3 * skill * np.eye(k)[z]
            probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
            return probs[:, 1] if k == 2 else probs

    def metrics(pred: np.ndarray, mask: Any = slice(None)) -> dict[str, float]:
        return compute_metrics(
            task,  # type: ignore[arg-type]
            y[mask],
            pred[mask],
            threshold=threshold or 0.5,
            classes=classes,
        )

    skills = {"dummy": 0.0, "ridge": 0.4, "random_forest": 0.8, "lightgbm": 0.75}
    preds = {name: predict(skill) for name, skill in skills.items()}
    results = [
        CandidateResult(
            name,
            "baseline" if name in ("dummy", "ridge") else "candidate",
            {},
            valid_metrics=metrics(predict(skill)),
            test_metrics=metrics(preds[name]),
            fit_seconds=skill * 3,
            trials=8 if skill > 0.5 else 0,
        )
        for name, skill in skills.items()
    ]
    best = preds["random_forest"]
    slices = pd.DataFrame(
        [
            {
                "feature": "city",
                "value": value,
                "count": int((city == value).sum()),
                **metrics(best, city == value),
            }
            for value in ("Madrid", "Sevilla", "Bilbao")
        ]
    )
    trials = pd.DataFrame(
        [
            {
                "candidate": cand,
                "number": i,
                "value": float(
                    rng.uniform(150, 300) if task == "regression" else rng.uniform(0.7, 0.9)
                ),
                "state": "complete",
                "params": {"max_depth": int(rng.integers(2, 12))},
                "seconds": 0.3,
            }
            for cand in ("random_forest", "lightgbm")
            for i in range(8)
        ]
    )
    return Evaluation(
        project="rent",
        task=task,  # type: ignore[arg-type]
        metric=metric,
        results=results,
        winner="random_forest",
        baseline="ridge",
        margin=0.02,
        improvement=improvement(
            metric, results[2].test_metrics[metric], results[1].test_metrics[metric]
        ),
        passed=True,
        reason="random_forest beats the best baseline ridge by more than the 2% margin.",
        y_test=y,
        test_prediction=best,
        threshold=threshold,
        classes=classes,
        slices=slices,
        importance=pd.DataFrame(
            {
                "feature": ["area", "rooms", "age", "floor"],
                "importance_mean": [0.31, 0.12, 0.03, -0.004],
                "importance_std": [0.03, 0.02, 0.01, 0.006],
            }
        ),
        trials=trials,
    )


@pytest.mark.parametrize("kind", ["regression", "binary", "multiclass"])
def test_report_renders_in_chromium(
    open_page: Any, drawn_charts: Any, tmp_path: Path, kind: str
) -> None:
    page_model = evaluation_page(make_evaluation(kind))
    assert page_model.n_figures == CHARTS[kind]
    path = page_model.write(tmp_path / f"{kind}.html")
    requests: list[str] = []
    page, errors = open_page(path.resolve().as_uri())
    page.on("request", lambda req: requests.append(req.url))
    assert page.locator(".js-plotly-plot").count() == CHARTS[kind]
    assert drawn_charts(page) == CHARTS[kind]
    assert errors == []
    assert [u for u in requests if not u.startswith(("file:", "data:", "blob:"))] == []

    verdict = page.locator("section#verdict")
    assert verdict.is_visible()
    assert verdict.get_by_text("Passed.").is_visible()
    cards = verdict.locator(".card").all_inner_texts()
    assert any("WINNER" in c.upper() and "random_forest" in c for c in cards)
    winner = page.locator("section#metrics-vs-baseline td.sev-info").first
    assert winner.inner_text() == "random_forest"
    # the worst slice comes first in the slice table
    first_slice = page.locator("section#slices tbody tr").first.locator("td").nth(1)
    assert first_slice.inner_text() in {"Madrid", "Sevilla", "Bilbao"}

    # charts have drawn data: markers, lines, bars or heatmap images
    traces = page.evaluate(
        "() => document.querySelectorAll('.js-plotly-plot .trace, .js-plotly-plot image').length"
    )
    assert traces >= CHARTS[kind]

    page.locator("nav.toc a", has_text="Tuning history").click()
    assert page.locator("section#tuning-history").is_visible()
