"""The OOD detector: per-feature checks, calibration, scenarios, and the single-row cost."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pytest

from modelcycle.data.examples import rent_apartments
from modelcycle.monitoring.ood import MULTIVARIATE, OODDetector

TARGET = "rent"


def features(rows: int, seed: int, scenario: str = "baseline") -> pd.DataFrame:
    return rent_apartments(rows, seed, scenario=scenario, messy=False).drop(columns=[TARGET])


def as_columns(frame: pd.DataFrame, numeric: list[str]) -> dict[str, np.ndarray]:
    """Input columns as the server builds them: floats for numbers, objects for the rest."""
    return {
        name: frame[name].to_numpy("float64") if name in numeric else frame[name].to_numpy(object)
        for name in frame.columns
    }


@pytest.fixture(scope="module")
def train() -> pd.DataFrame:
    return features(4000, seed=1)


@pytest.fixture(scope="module")
def detector(train: pd.DataFrame) -> OODDetector:
    return OODDetector(fpr=0.01).fit(train)


def test_learned_state(detector: OODDetector) -> None:
    assert detector.numeric_ == ["area", "construction_year", "rooms", "bedrooms", "bathrooms"]
    assert "neighborhood" in detector.checked_
    # High-cardinality features are never flagged for a new value.
    assert not {"address", "zip", "facilities"} & set(detector.checked_)
    assert 0 < detector.threshold_ < 1


def test_params_are_stored_unchanged() -> None:
    detector = OODDetector(fpr=0.05, margin=0.2)
    assert (detector.fpr, detector.margin) == (0.05, 0.2)
    assert not hasattr(detector, "threshold_")


def test_per_feature_flags(detector: OODDetector, train: pd.DataFrame) -> None:
    typical = train.iloc[[0]].copy()
    rows = pd.concat([typical] * 4, ignore_index=True)
    rows.loc[1, "area"] = float(train["area"].max()) * 3
    rows.loc[2, "neighborhood"] = "Atlantis"
    rows.loc[3, "bathrooms"] = np.nan
    result = detector.score(rows)
    reasons = result.reasons()
    assert "area: out of range" in reasons[1]
    assert "neighborhood: unseen category" in reasons[2]
    assert "bathrooms: missing" in reasons[3]
    assert result.flag[1:].all()
    assert not any(r.endswith(("out of range", "unseen category", "missing")) for r in reasons[0])


def test_just_inside_the_margin_is_not_flagged(detector: OODDetector, train: pd.DataFrame) -> None:
    low, high = train["area"].min(), train["area"].max()
    rows = pd.concat([train.iloc[[0]]] * 2, ignore_index=True)
    rows.loc[0, "area"] = high + 0.05 * (high - low)
    rows.loc[1, "area"] = high + 0.15 * (high - low)
    flagged = detector.score(rows).out_of_range[:, detector.numeric_.index("area")]
    assert flagged.tolist() == [False, True]


def test_columns_and_frames_agree(detector: OODDetector) -> None:
    live = features(300, seed=3, scenario="new_neighborhood")
    from_frame = detector.score(live)
    from_columns = detector.score(as_columns(live, detector.numeric_))
    np.testing.assert_array_equal(from_frame.flag, from_columns.flag)
    np.testing.assert_allclose(from_frame.score, from_columns.score)


def test_score_matches_scikit_learn(detector: OODDetector, train: pd.DataFrame) -> None:
    matrix = detector._encode(as_columns(train, detector.numeric_))
    fast = detector._isolation(matrix)
    np.testing.assert_allclose(fast, -detector.forest_.score_samples(matrix), rtol=0, atol=1e-12)


def test_calibrated_false_positive_rate(detector: OODDetector) -> None:
    held_out = detector.score(features(5000, seed=11))
    print(f"\nflag rate on held-out training-like rows: {held_out.rate:.2%} (target 1%)")
    assert held_out.rate <= 0.03


@pytest.mark.parametrize(
    ("scenario", "factor"), [("bigger_apartments", 2), ("new_neighborhood", 5)]
)
def test_shifted_scenarios_are_flagged_more(
    detector: OODDetector, scenario: str, factor: float
) -> None:
    base = detector.score(features(5000, seed=11)).rate
    shifted = detector.score(features(5000, seed=11, scenario=scenario)).rate
    print(f"\n{scenario}: flag rate {shifted:.2%} vs {base:.2%} on unchanged data")
    assert shifted >= factor * max(base, 0.005)


def test_check_row_and_its_cost(detector: OODDetector, train: pd.DataFrame) -> None:
    row = as_columns(train.iloc[[5]], detector.numeric_)
    verdict = detector.check_row(row)
    assert set(verdict) == {"flag", "score", "reasons"}
    assert isinstance(verdict["flag"], bool)
    assert isinstance(verdict["score"], float)
    odd = dict(row, area=np.array([10_000.0]))
    assert "area: out of range" in detector.check_row(odd)["reasons"]
    for _ in range(50):
        detector.check_row(row)
    runs = 500
    start = time.perf_counter()
    for _ in range(runs):
        detector.check_row(row)
    print(f"\ncheck_row: {(time.perf_counter() - start) / runs * 1e6:.0f} µs per row")


def test_multivariate_reason_and_no_forest(train: pd.DataFrame) -> None:
    detector = OODDetector(n_estimators=0).fit(train)
    result = detector.score(train.head(50))
    assert np.isnan(result.score).all()
    assert result.records()[0]["score"] is None
    forest = OODDetector(fpr=0.5, n_estimators=10).fit(train.head(500))
    assert any(MULTIVARIATE in r for r in forest.score(train.head(100)).reasons())


def test_missing_feature_and_bad_params(detector: OODDetector, train: pd.DataFrame) -> None:
    row = as_columns(train.iloc[[0]], detector.numeric_)
    del row["energy"]
    assert "energy: missing" in detector.check_row(row)["reasons"]
    with pytest.raises(ValueError, match="fpr"):
        OODDetector(fpr=1.5).fit(train)
    with pytest.raises(ValueError, match="row"):
        OODDetector().fit(train.head(0))
