"""Drift statistics: scipy parity (exact), binned error bounds, false alarms and detection."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from scipy.spatial.distance import jensenshannon

from modelcycle.config.spec import DriftSpec, MonitoringSpec
from modelcycle.data.examples import rent_apartments
from modelcycle.data.schema import FeatureSchema
from modelcycle.monitoring.drift import (
    DriftPolicy,
    adjust_p_values,
    chi_square,
    compare,
    compare_frames,
    js_distance,
    ks_binned,
    ks_exact,
    psi,
    wasserstein_binned,
    wasserstein_exact,
)
from modelcycle.monitoring.profile import (
    CategoricalProfile,
    NumericProfile,
    Profile,
    current_profile,
    reference_profile,
)

REFERENCE_ROWS = 20_000


@pytest.fixture(scope="module")
def reference() -> tuple[Profile, FeatureSchema]:
    frame = rent_apartments(REFERENCE_ROWS, seed=0, messy=False)
    schema = FeatureSchema.infer(frame, target="rent")
    return reference_profile(frame, schema, target=frame["rent"]), schema


def window(reference: Profile, rows: int, seed: int, scenario: str = "baseline") -> Profile:
    frame = rent_apartments(rows, seed=seed, scenario=scenario, messy=False)
    target = frame.get("rent", None)
    return current_profile(frame, reference, target=target)


# ------------------------------------------------------------------------------------------
# exact mode: parity with scipy to 1e-9


@pytest.mark.parametrize(
    ("n1", "n2", "shift", "discrete"),
    [(300, 500, 0.0, False), (20_000, 15_000, 0.05, False), (4_000, 6_000, 0.3, True)],
)
def test_exact_ks_and_wasserstein_match_scipy(
    n1: int, n2: int, shift: float, discrete: bool
) -> None:
    rng = np.random.default_rng(n1)
    a, b = rng.gamma(3.0, 10.0, n1), rng.gamma(3.0, 10.0, n2) * (1 + shift)
    if discrete:
        a, b = np.round(a / 10), np.round(b / 10)
    statistic, p_value = ks_exact(a, b)
    expected = stats.ks_2samp(a, b, method="asymp")
    assert statistic == pytest.approx(stats.ks_2samp(a, b).statistic, abs=1e-9)
    assert statistic == pytest.approx(expected.statistic, abs=1e-9)
    assert p_value == pytest.approx(expected.pvalue, abs=1e-9)
    assert wasserstein_exact(a, b) == pytest.approx(stats.wasserstein_distance(a, b), abs=1e-9)


@pytest.mark.parametrize("k", [2, 3, 8])
def test_chi_square_matches_chi2_contingency(k: int) -> None:
    rng = np.random.default_rng(k)
    table = rng.integers(5, 400, size=(2, k))
    table[:, -1] += 0  # keep every column non-empty
    statistic, p_value, dof = chi_square(table)
    expected = stats.chi2_contingency(table)
    assert statistic == pytest.approx(expected.statistic, abs=1e-9)
    assert p_value == pytest.approx(expected.pvalue, abs=1e-9)
    assert dof == expected.dof
    # columns empty in both rows (a reference category absent now and then) are dropped
    padded = np.concatenate([table, np.zeros((2, 1), dtype=table.dtype)], axis=1)
    assert chi_square(padded)[0] == pytest.approx(expected.statistic, abs=1e-9)


def test_js_psi_and_corrections() -> None:
    p, q = np.array([10, 20, 30, 40]), np.array([15, 25, 25, 35])
    assert js_distance(p, q) == pytest.approx(jensenshannon(p / 100, q / 100, base=2), abs=1e-12)
    shares_p, shares_q = p / p.sum(), q / q.sum()
    assert psi(p, q) == pytest.approx(np.sum((shares_q - shares_p) * np.log(shares_q / shares_p)))
    assert psi(p, p) == 0.0
    assert psi([10, 0], [10, 10]) > 1  # an empty bin is floored, not infinite
    raw = [0.01, 0.04, 0.03, 0.2]
    assert adjust_p_values(raw, "bonferroni") == pytest.approx([0.04, 0.16, 0.12, 0.8])
    assert adjust_p_values(raw, "benjamini-hochberg") == pytest.approx(
        stats.false_discovery_control(raw)
    )


def test_compare_frames_is_exact_and_keeps_the_report_shape() -> None:
    ref = rent_apartments(3_000, seed=1, messy=False)
    cur = rent_apartments(2_000, seed=2, scenario="bigger_apartments", messy=False)
    schema = FeatureSchema.infer(ref, target="rent")
    report = compare_frames(ref, cur, schema)
    area = report.feature("area")
    assert report.mode == "exact"
    assert area.statistics["ks"] == pytest.approx(stats.ks_2samp(ref.area, cur.area).statistic)
    assert area.statistics["wasserstein"] == pytest.approx(
        stats.wasserstein_distance(ref.area, cur.area), abs=1e-9
    )
    hood = report.feature("neighborhood")
    table = pd.crosstab(
        np.repeat(["r", "c"], [len(ref), len(cur)]),
        np.concatenate([ref.neighborhood, cur.neighborhood]),
    )
    assert hood.statistics["chi2"] == pytest.approx(stats.chi2_contingency(table).statistic)
    assert "area" in report.drifted


# ------------------------------------------------------------------------------------------
# binned mode: the approximation's error on 100,000 rows


@pytest.mark.parametrize("scale", [1.0, 1.03, 1.15])
def test_binned_ks_and_wasserstein_are_close_to_exact(scale: float) -> None:
    rng = np.random.default_rng(7)
    a = rng.lognormal(4.3, 0.35, 100_000)
    b = rng.lognormal(4.3, 0.35, 100_000) * scale
    schema = FeatureSchema.infer(pd.DataFrame({"x": a, "y": a}), target="y")
    ref = reference_profile(pd.DataFrame({"x": a}), schema)
    cur = current_profile(pd.DataFrame({"x": b}), ref)
    r, c = ref.columns["x"], cur.columns["x"]
    assert isinstance(r, NumericProfile)
    assert isinstance(c, NumericProfile)
    ks, ks_p = ks_binned(r, c)
    exact_ks, exact_p = ks_exact(a, b)
    assert ks <= exact_ks + 1e-12  # read at the edges: a lower bound
    assert exact_ks - ks < 0.01
    assert (ks_p < 0.01) == (exact_p < 0.01)
    std = float(np.std(a))
    assert abs(wasserstein_binned(r, c) - wasserstein_exact(a, b)) / std < 0.02


# ------------------------------------------------------------------------------------------
# false-alarm control


def test_no_false_alarms_on_100_unchanged_windows(
    reference: tuple[Profile, FeatureSchema],
) -> None:
    ref, _ = reference
    dataset_alarms = feature_drifts = 0
    for seed in range(1, 101):
        report = compare(ref, window(ref, 10_000, seed))
        dataset_alarms += report.dataset_drifted
        feature_drifts += len(report.drifted)
    assert dataset_alarms <= 1
    assert feature_drifts == 0


def test_small_windows_are_judged_above_their_sampling_noise(
    reference: tuple[Profile, FeatureSchema],
) -> None:
    # 300 rows over facilities' many categories: rare ones are pooled, the rest of PSI and JS
    # is mostly sampling noise, which the verdict subtracts
    ref, _ = reference
    drifted = 0
    for seed in range(1, 41):
        report = compare(ref, window(ref, 300, seed))
        facilities = report.feature("facilities")
        assert facilities.statistics["bins"] < len(ref.columns["facilities"].frequencies) + 1
        assert facilities.statistics["psi_noise"] > 0.02
        drifted += len(report.drifted)
    assert drifted <= 1
    changed = compare(ref, window(ref, 300, seed=3, scenario="new_neighborhood"))
    assert "neighborhood" in changed.drifted  # a real change still shows at 300 rows


def test_rare_categories_are_pooled_on_small_windows(
    reference: tuple[Profile, FeatureSchema],
) -> None:
    ref, _ = reference
    facilities = ref.columns["facilities"]
    assert isinstance(facilities, CategoricalProfile)
    unpooled_alarms = warnings = verdicts = 0
    for seed in range(1, 41):
        current = window(ref, 300, seed)
        cur = current.columns["facilities"]
        assert isinstance(cur, CategoricalProfile)
        every = [*facilities.frequencies.values(), facilities.other_count]
        seen = [*(cur.frequencies.get(k, 0) for k in facilities.frequencies), cur.other_count]
        unpooled_alarms += psi(every, seen) >= 0.25  # empty cells of rare categories
        report = compare(ref, current)
        warnings += sum(f.verdict == "warning" for f in report.features)
        verdicts += len(report.features)
    assert unpooled_alarms >= 20
    assert warnings / verdicts < 0.05


def test_a_million_unchanged_rows_are_not_drifted(reference: tuple[Profile, FeatureSchema]) -> None:
    ref, _ = reference
    current = window(ref, 1_000_000, seed=1234)
    for policy in (DriftPolicy(), DriftPolicy(use_p_values=True, correction="bonferroni")):
        report = compare(ref, current, policy)
        assert not report.dataset_drifted
        assert report.drifted == []
        assert report.target is not None
        assert report.target.verdict == "ok"


def test_p_values_need_an_effect_size() -> None:
    # a tiny but very significant shift: significant, yet below the PSI floor
    rng = np.random.default_rng(3)
    a, b = rng.normal(0, 1, 200_000), rng.normal(0.03, 1, 1_000_000)
    schema = FeatureSchema.infer(pd.DataFrame({"x": a, "y": a}), target="y")
    ref = reference_profile(pd.DataFrame({"x": a}), schema)
    report = compare(
        ref, current_profile(pd.DataFrame({"x": b}), ref), DriftPolicy(use_p_values=True)
    )
    x = report.feature("x")
    assert x.p_value is not None
    assert x.p_value < 1e-6
    assert x.verdict == "ok"
    assert DriftPolicy(use_p_values=True, p_value_effect_floor=0.0) is not None
    loose = compare(
        ref,
        current_profile(pd.DataFrame({"x": b}), ref),
        DriftPolicy(use_p_values=True, p_value_effect_floor=0.0),
    )
    assert loose.feature("x").verdict == "drift"


# ------------------------------------------------------------------------------------------
# detection at 5,000 rows


@pytest.mark.parametrize(
    ("scenario", "named"),
    [
        ("new_neighborhood", "neighborhood"),
        ("bigger_apartments", "area"),
        ("missing_spike", "area"),
        ("schema_break", "area"),
    ],
)
def test_scenarios_are_detected_with_the_right_feature(
    reference: tuple[Profile, FeatureSchema], scenario: str, named: str
) -> None:
    ref, _ = reference
    report = compare(ref, window(ref, 5_000, seed=11, scenario=scenario))
    assert named in report.drifted
    result = report.feature(named)
    if scenario == "new_neighborhood":
        assert result.new_categories == ["Nieuw-Zuid"]
        assert result.statistics["new_category_share"] == pytest.approx(0.1, abs=0.02)
        assert report.drifted == ["neighborhood"]
    if scenario in ("missing_spike", "schema_break"):
        assert result.null_rate_change >= 0.35
        assert any(reason.startswith("null_rate_change") for reason in result.reasons)


def test_inflation_moves_the_target_not_the_features(
    reference: tuple[Profile, FeatureSchema],
) -> None:
    # No model here: the target's profile stands in for the prediction's (same code path).
    ref, _ = reference
    report = compare(ref, window(ref, 5_000, seed=11, scenario="inflation"))
    assert report.drifted == []
    assert report.target is not None
    assert report.target.verdict != "ok"
    assert report.target.statistics["wasserstein_norm"] > 0.1
    assert report.target.p_value is not None
    assert report.target.p_value < 1e-6


# ------------------------------------------------------------------------------------------
# report and policy


def test_report_is_json_ready_and_policy_is_in_the_spec(
    reference: tuple[Profile, FeatureSchema],
) -> None:
    ref, _ = reference
    report = compare(ref, window(ref, 2_000, seed=5, scenario="new_neighborhood"))
    data = json.loads(json.dumps(report.as_dict()))
    assert data["drifted"] == ["neighborhood"]
    assert {"statistics", "effect_size", "p_value", "threshold", "verdict"} <= set(
        data["features"][0]
    )
    assert data["target"]["kind"] == "numeric"
    assert MonitoringSpec().drift == DriftPolicy()
    assert DriftSpec.model_validate({"psi_drift": 0.3}).psi_drift == 0.3
    with pytest.raises(ValueError, match="psi_warning"):
        DriftSpec(psi_warning=0.5, psi_drift=0.2)
    with pytest.raises(ValueError, match="extra"):
        DriftSpec.model_validate({"psi_drfit": 0.3})


def test_mismatched_profiles_are_refused(reference: tuple[Profile, FeatureSchema]) -> None:
    ref, _ = reference
    other = reference_profile(
        pd.DataFrame({"x": [1.0, 2.0], "y": [1, 2]}),
        FeatureSchema.infer(pd.DataFrame({"x": [1.0, 2.0], "y": [1, 2]}), target="y"),
    )
    with pytest.raises(ValueError, match="columns"):
        compare(ref, other)
