"""Behavioural tests of the rent model, trained as the rent example's spec says.

Directional: more area never lowers the predicted rent. Invariance: the address text does not
change the prediction. Minimum functionality: it beats the baseline by a clear margin.
Reproducibility: the same data, spec and seed give the same metrics.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from modelcycle.config.settings import Settings
from modelcycle.config.spec import load_project, parse_budget
from modelcycle.scaffold import init_project
from modelcycle.training.train import TrainOptions, TrainOutcome, train

pytestmark = pytest.mark.slow
ROWS = 2500
OPTIONS = {"budget": parse_budget("6 trials"), "candidates": ["hgb", "lgbm"], "track": False,
           "register": False}  # fmt: skip


def _train(root: Path) -> TrainOutcome:
    project = load_project(root)
    return train(project, Settings.load(root), TrainOptions(**OPTIONS))  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def rent(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, TrainOutcome]:
    root = tmp_path_factory.mktemp("rent")
    init_project(root, example="rent", rows=ROWS, seed=3)
    return root, _train(root)


@pytest.fixture(scope="module")
def sample(rent: tuple[Path, TrainOutcome]) -> pd.DataFrame:
    root, _ = rent
    frame = pd.read_csv(root / "data" / "rent_apartments.csv")
    frame = frame[pd.to_numeric(frame["area"], errors="coerce").between(20, 300)]
    return frame.sample(300, random_state=0)


def _predict(outcome: TrainOutcome, frame: pd.DataFrame) -> np.ndarray:
    return np.asarray(outcome.pipeline.predict(frame[outcome.schema.input_names]))


@pytest.mark.parametrize("extra", [5.0, 20.0, 60.0])
def test_more_area_never_lowers_the_rent(rent, sample, extra: float) -> None:
    _, outcome = rent
    bigger = sample.assign(area=sample["area"] + extra)
    before, after = _predict(outcome, sample), _predict(outcome, bigger)
    assert np.all(after >= before - 1e-9), f"{np.sum(after < before)} rows got cheaper"
    assert np.mean(after > before) > 0.5  # and it is not flat: area matters


def test_address_text_does_not_change_the_prediction(rent, sample) -> None:
    _, outcome = rent
    renamed = sample.assign(address=[f"Nowhere Street {i}" for i in range(len(sample))])
    np.testing.assert_array_equal(_predict(outcome, sample), _predict(outcome, renamed))
    assert "address" not in outcome.schema.input_names


def test_beats_the_baseline_by_a_clear_margin(rent) -> None:
    _, outcome = rent
    ev = outcome.evaluation
    assert ev.passed, ev.reason
    assert ev.improvement > 0.10, ev.reason  # at least 10% lower MAE than the best baseline
    dummy = ev.result("baseline_dummy").test_metrics["mae"]
    assert ev.winner_metrics["mae"] < 0.6 * dummy  # far better than predicting the median


def test_same_data_spec_and_seed_give_the_same_metrics(rent) -> None:
    root, outcome = rent
    again = _train(root)
    assert again.evaluation.winner == outcome.evaluation.winner
    assert again.evaluation.winner_metrics == pytest.approx(outcome.evaluation.winner_metrics)
