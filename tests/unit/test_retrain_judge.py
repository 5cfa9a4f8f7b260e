"""Retraining's pure parts: ``judge`` over tables of scores, ``weighted`` and ``RecentData.split``."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

from modelcycle.config.spec import RetrainingSpec
from modelcycle.retraining.loop import RecentData, Verdict, judge
from modelcycle.training.train import weighted


def both(champion: float, challenger: float) -> dict[str, float]:
    return {"champion": champion, "challenger": challenger}


def policy(**changes: Any) -> RetrainingSpec:
    return RetrainingSpec(**changes)


ROWS = {"test": 300, "recent": 600}

# Columns: metric, scores per part, policy changes, wins, expected gains, words in the reason.
JUDGE_CASES = [
    pytest.param(
        "mae",
        {"test": both(100, 95), "recent": both(200, 180)},
        {"min_improvement": 0.05},
        True,
        {"test": 0.05, "recent": 0.10},
        ["recent mae 180 vs champion 200 (+10.0%, 600 rows)", "test mae 95 vs champion 100"],
        id="mae-wins-on-recent-with-the-margin",
    ),
    pytest.param(
        "mae",
        {"test": both(100, 90), "recent": both(200, 196)},
        {"min_improvement": 0.05},
        False,
        {"test": 0.10, "recent": 0.02},
        ["recent mae 196 vs champion 200 (+2.0%, 600 rows)", "needs +5.0% on recent rows"],
        id="mae-recent-gain-below-the-margin",
    ),
    pytest.param(
        "mae",
        {"test": both(100, 90), "recent": both(200, 200)},
        {"min_improvement": 0.0},
        False,
        {"test": 0.10, "recent": 0.0},
        ["recent mae 200 vs champion 200 (+0.0%", "needs +0.0% on recent rows"],
        id="mae-no-gain-loses-even-without-a-margin",
    ),
    pytest.param(
        "mae",
        {"test": both(100, 90), "recent": both(200, 210)},
        {"min_improvement": 0.0},
        False,
        {"test": 0.10, "recent": -0.05},
        ["recent mae 210 vs champion 200 (-5.0%"],
        id="mae-worse-on-recent",
    ),
    pytest.param(
        "mae",
        {"test": both(100, 130), "recent": both(200, 150)},
        {"min_improvement": 0.05, "max_test_loss": 0.25},
        False,
        {"test": -0.30, "recent": 0.25},
        [
            "recent mae 150 vs champion 200 (+25.0%",
            "but test mae 130 vs champion 100 (-30.0%, 300 rows)",
            "worse than the allowed 25% on the original test part",
        ],
        id="mae-recent-wins-but-the-test-part-is-too-much-worse",
    ),
    pytest.param(
        "mae",
        {"test": both(100, 120), "recent": both(200, 150)},
        {"min_improvement": 0.05, "max_test_loss": 0.25},
        True,
        {"test": -0.20, "recent": 0.25},
        ["recent mae 150 vs champion 200 (+25.0%", "test mae 120 vs champion 100 (-20.0%"],
        id="mae-test-loss-within-the-allowance",
    ),
    pytest.param(
        "mae",
        {"test": both(100, 95)},
        {"min_improvement": 0.02},
        True,
        {"test": 0.05},
        ["test mae 95 vs champion 100 (+5.0%, 300 rows)"],
        id="no-recent-rows-wins-on-test",
    ),
    pytest.param(
        "mae",
        {"test": both(100, 97)},
        {"min_improvement": 0.05},
        False,
        {"test": 0.03},
        ["test mae 97 vs champion 100 (+3.0%", "needs +5.0% (no recent labels)"],
        id="no-recent-rows-test-gain-below-the-margin",
    ),
    pytest.param(
        "mae",
        {"test": both(100, 100)},
        {"min_improvement": 0.0},
        False,
        {"test": 0.0},
        ["(no recent labels)"],
        id="no-recent-rows-no-gain",
    ),
    pytest.param(
        "r2",
        {"test": both(0.80, 0.79), "recent": both(0.50, 0.60)},
        {"min_improvement": 0.1},
        True,
        {"test": -0.0125, "recent": 0.20},
        ["recent r2 0.6 vs champion 0.5 (+20.0%"],
        id="r2-higher-is-better-wins",
    ),
    pytest.param(
        "r2",
        {"test": both(0.80, 0.85), "recent": both(0.60, 0.50)},
        {"min_improvement": 0.0},
        False,
        {"test": 0.0625, "recent": -1 / 6},
        ["recent r2 0.5 vs champion 0.6 (-16.7%"],
        id="r2-lower-is-worse",
    ),
    pytest.param(
        "roc_auc",
        {"test": both(0.80, 0.82), "recent": both(0.80, 0.84)},
        {"min_improvement": 0.1},
        False,
        {"test": 0.025, "recent": 0.05},
        ["recent roc_auc 0.84 vs champion 0.8 (+5.0%", "needs +10.0% on recent rows"],
        id="roc_auc-gain-below-the-margin",
    ),
    pytest.param(
        "roc_auc",
        {"recent": both(0.70, 0.77)},
        {"min_improvement": 0.05},
        True,
        {"recent": 0.10},
        ["recent roc_auc 0.77 vs champion 0.7 (+10.0%, 600 rows)"],
        id="roc_auc-recent-only",
    ),
    pytest.param(
        "roc_auc",
        {"test": both(0.90, 0.60), "recent": both(0.70, 0.80)},
        {"min_improvement": 0.05, "max_test_loss": 0.1},
        False,
        {"test": -1 / 3, "recent": 1 / 7},
        ["but test roc_auc 0.6 vs champion 0.9 (-33.3%", "allowed 10%"],
        id="roc_auc-test-part-worse-than-allowed",
    ),
]


@pytest.mark.parametrize(("metric", "scores", "changes", "wins", "gains", "words"), JUDGE_CASES)
def test_judge(
    metric: str,
    scores: dict[str, dict[str, float]],
    changes: dict[str, Any],
    wins: bool,
    gains: dict[str, float],
    words: list[str],
) -> None:
    rows = {part: ROWS[part] for part in scores}
    verdict = judge(metric, scores, rows, policy(**changes))
    assert isinstance(verdict, Verdict)
    assert verdict.wins is wins, verdict.reason
    assert verdict.metric == metric
    assert verdict.scores == scores
    assert verdict.rows == rows
    assert verdict.gains == pytest.approx(gains)
    for word in words:
        assert word in verdict.reason, (word, verdict.reason)


def test_judge_without_any_part_does_not_win() -> None:
    verdict = judge("mae", {}, {}, policy())
    assert not verdict.wins
    assert verdict.reason == "no rows to compare on"


def test_judge_decides_on_recent_rows_not_on_the_test_part() -> None:
    """Better on the test part does not rescue a challenger that loses on recent rows."""
    scores = {"test": both(100, 50), "recent": both(100, 101)}
    verdict = judge("mae", scores, {"test": 10, "recent": 10}, policy())
    assert not verdict.wins
    assert verdict.gains["test"] == pytest.approx(0.5)


# ------------------------------------------------------------------------------- weighted


def frame(n: int) -> pd.DataFrame:
    return pd.DataFrame({"area": np.arange(n, dtype=float), "rent": np.arange(n) * 10.0})


def test_weight_one_keeps_the_rows() -> None:
    rows = frame(50)
    out = weighted(rows, 1.0, seed=0)
    pd.testing.assert_frame_equal(out, rows)


def test_weight_two_counts_every_row_twice() -> None:
    rows = frame(50)
    out = weighted(rows, 2.0, seed=0)
    assert len(out) == 100
    assert out["area"].value_counts().eq(2).all()
    assert set(out["area"]) == set(rows["area"])
    assert out.index.is_unique  # a fresh index, usable for concatenation


def test_weight_one_and_a_half_adds_half_the_rows_once_more() -> None:
    rows = frame(200)
    out = weighted(rows, 1.5, seed=3)
    assert len(out) == 300
    counts = out["area"].value_counts()
    assert set(counts.index) == set(rows["area"])  # every row at least once
    assert counts.max() == 2
    assert (counts == 2).sum() == 100
    assert len(out) / len(rows) == pytest.approx(1.5)
    # the sample is reproducible from the seed, and a different seed picks other rows
    pd.testing.assert_frame_equal(out, weighted(rows, 1.5, seed=3))
    assert not out.equals(weighted(rows, 1.5, seed=4))


def test_weight_below_one_samples() -> None:
    out = weighted(frame(100), 0.5, seed=0)
    assert len(out) == 50
    assert out["area"].is_unique


def test_weighting_nothing_gives_nothing() -> None:
    empty = frame(0)
    assert weighted(empty, 2.0, seed=0).empty


# ------------------------------------------------------------------------------- RecentData


def test_split_holds_out_the_newest_share_in_order() -> None:
    recent = RecentData(frame(10), "digest", "source")
    older, newest = recent.split(0.3)
    assert older["area"].tolist() == [0, 1, 2, 3, 4, 5, 6]
    assert newest["area"].tolist() == [7, 8, 9]


@pytest.mark.parametrize(("rows", "holdout", "held"), [(100, 0.3, 30), (7, 0.5, 4), (1, 0.3, 0)])
def test_split_sizes(rows: int, holdout: float, held: int) -> None:
    older, newest = RecentData(frame(rows), "d", "s").split(holdout)
    assert len(newest) == held
    assert len(older) + len(newest) == rows
    assert pd.concat([older, newest])["area"].tolist() == list(range(rows))


def test_split_of_no_rows() -> None:
    older, newest = RecentData(frame(0), "d", "s").split(0.3)
    assert older.empty
    assert newest.empty
