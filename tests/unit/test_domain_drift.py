"""Domain-classifier drift: no false alarm on unchanged data, detection and attribution, the CI."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from modelcycle.data.examples import rent_apartments
from modelcycle.data.schema import FeatureSchema
from modelcycle.monitoring.domain import MIN_ROWS, DomainDrift, delong, domain_drift


@pytest.fixture(scope="module")
def schema() -> FeatureSchema:
    return FeatureSchema.infer(rent_apartments(5000, seed=0, messy=False), target="rent")


def frame(rows: int, seed: int, scenario: str = "baseline") -> pd.DataFrame:
    return rent_apartments(rows, seed=seed, scenario=scenario, messy=False)


def top_names(result: DomainDrift) -> list[str]:
    return [name for name, _ in result.top_features]


def test_unchanged_data_is_not_drift(schema: FeatureSchema) -> None:
    result = domain_drift(frame(2000, seed=1), frame(2000, seed=2), schema)
    assert abs(result.auc - 0.5) < 0.03
    assert result.ci_low <= 0.51
    assert result.ci_high >= 0.49
    assert result.ci_low < result.auc < result.ci_high
    assert not result.drifted
    assert (result.n_reference, result.n_current) == (2000, 2000)


def test_bigger_apartments_drift_and_blame_area(schema: FeatureSchema) -> None:
    result = domain_drift(frame(5000, seed=1), frame(5000, 2, "bigger_apartments"), schema)
    assert result.drifted
    assert result.ci_low > 0.6
    assert top_names(result)[0] == "area"
    assert result.top_features[0][1] > 0.1
    # The other features did not change: their importances are noise next to area's.
    assert all(value < 0.05 for _, value in result.top_features[1:])


def test_new_neighborhood_drift_and_blame_neighborhood(schema: FeatureSchema) -> None:
    # 10 % of the rows move to a new neighborhood and the rest are unchanged, so even a perfect
    # classifier reaches only AUC 0.1 * 1 + 0.9 * 0.5 = 0.55: a 0.52 threshold asks for it clearly.
    result = domain_drift(
        frame(5000, seed=1), frame(5000, 2, "new_neighborhood"), schema, threshold=0.52
    )
    assert result.drifted
    assert 0.53 < result.auc < 0.6
    assert top_names(result)[0] == "neighborhood"
    assert result.threshold == 0.52


def test_missing_column_counts_as_missing_everywhere(schema: FeatureSchema) -> None:
    current = frame(1000, seed=2).drop(columns=["area"])
    result = domain_drift(frame(1000, seed=1), current, schema)
    assert result.drifted
    assert result.auc > 0.99
    assert top_names(result)[0] == "area"


def test_interval_narrows_with_more_rows_and_max_rows_caps_the_sample(
    schema: FeatureSchema,
) -> None:
    reference, current = frame(2000, seed=3), frame(2000, 4, "bigger_apartments")
    small = domain_drift(reference, current, schema, max_rows=200)
    large = domain_drift(reference, current, schema, max_rows=2000)
    assert (small.n_reference, small.n_current) == (200, 200)
    assert (large.n_reference, large.n_current) == (2000, 2000)
    small_width, large_width = small.ci_high - small.ci_low, large.ci_high - large.ci_low
    # 10x the rows: the standard error shrinks by about sqrt(10) ~ 3.2.
    assert large_width < 0.5 * small_width
    assert small.ci_low <= small.auc <= small.ci_high


def test_same_seed_same_result_and_json_ready(schema: FeatureSchema) -> None:
    reference, current = frame(600, seed=5), frame(600, 6, "missing_spike")
    first = domain_drift(reference, current, schema, seed=7)
    assert domain_drift(reference, current, schema, seed=7) == first
    payload = json.loads(json.dumps(first.as_dict()))
    assert payload["auc"] == first.auc
    assert payload["drifted"] is first.drifted is True
    assert payload["top_features"][0] == ["area", first.top_features[0][1]]
    assert set(payload) == {
        "auc",
        "ci_low",
        "ci_high",
        "drifted",
        "n_reference",
        "n_current",
        "top_features",
        "threshold",
    }


@pytest.mark.parametrize(("ref_rows", "cur_rows"), [(MIN_ROWS - 1, 500), (500, 10)])
def test_too_few_rows_raise_naming_the_fix(
    schema: FeatureSchema, ref_rows: int, cur_rows: int
) -> None:
    with pytest.raises(ValueError, match=r"at least 50 rows on each side.*widen the monitoring"):
        domain_drift(frame(ref_rows, seed=1), frame(cur_rows, seed=2), schema)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"folds": 1}, "folds"), ({"threshold": 0.4}, "threshold"), ({"max_rows": 10}, "max_rows")],
)
def test_bad_parameters_raise(schema: FeatureSchema, kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        domain_drift(frame(100, seed=1), frame(100, seed=2), schema, **kwargs)


def test_delong_matches_the_definition_with_ties() -> None:
    rng = np.random.default_rng(0)
    labels = np.r_[np.zeros(40, int), np.ones(30, int)]
    scores = np.round(rng.normal(labels * 0.7, 1.0), 1)  # rounded: many ties
    auc, variance = delong(labels, scores)
    assert auc == pytest.approx(roc_auc_score(labels, scores), abs=1e-12)
    # Placement values straight from DeLong et al. (1988): O(m * n), ties count one half.
    x, y = scores[labels == 1], scores[labels == 0]
    kernel = (x[:, None] > y[None, :]) + 0.5 * (x[:, None] == y[None, :])
    v10, v01 = kernel.mean(axis=1), kernel.mean(axis=0)
    expected = v10.var(ddof=1) / len(x) + v01.var(ddof=1) / len(y)
    assert variance == pytest.approx(expected, rel=1e-12)
