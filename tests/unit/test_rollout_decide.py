"""The rollout gates and ``decide``: pure tables of arm statistics, states and times.

Predictions are deterministic (evenly spaced quantiles of a normal distribution), so the PSI of
two arms from one distribution is ~0 and the tables do not depend on random draws.
"""

from __future__ import annotations

import math
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pytest
from scipy.stats import norm

from modelcycle.config.spec import DeploymentSpec, GatesSpec
from modelcycle.deployment.rollout import (
    Gate,
    GatePolicy,
    decide,
    error_gate,
    excess_p_value,
    latency_gate,
    loss_p_value,
    metric_gate,
    ood_gate,
    psi_gate,
)
from modelcycle.deployment.state import DeploymentState, RolloutPlan
from modelcycle.deployment.stats import ArmStats, WindowStats

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
PLAN = RolloutPlan(steps=(5.0, 25.0, 50.0, 100.0), step_seconds=600, min_requests=200)
POLICY = GatePolicy.from_plan(PLAN)


def _values(n: int, shift: float = 0.0, scale: float = 100.0) -> np.ndarray:
    quantiles: np.ndarray = norm.ppf((np.arange(n) + 0.5) / n)
    return 1000.0 + shift + scale * quantiles


def arm(
    version: str,
    requests: int = 400,
    errors: int = 0,
    p99: float | None = 10.0,
    shift: float = 0.0,
    predictions: np.ndarray | None = None,
    ood: float | None = None,
    losses: np.ndarray | None = None,
) -> ArmStats:
    ok = requests - errors
    preds = _values(ok, shift) if predictions is None else predictions
    loss = np.empty(0) if losses is None else losses
    return ArmStats(
        version=version,
        requests=requests,
        errors=errors,
        latency_p99_ms=p99 if ok else None,
        predictions=preds,
        ood_rate=ood,
        ood_checked=ok if ood is not None else 0,
        losses=loss,
        labelled=loss.size,
    )


def window(stable: ArmStats, candidate: ArmStats, task: Any = "regression") -> WindowStats:
    return WindowStats(stable, candidate, since=T0, until=None, task=task)


def ramp(step: int = 0, failures: int = 0, **changes: Any) -> DeploymentState:
    values: dict[str, Any] = {
        "stable_version": "1",
        "candidate_version": "2",
        "strategy": "ramp",
        "weight": PLAN.steps[step],
        "step": step,
        "status": "ramping",
        "plan": PLAN,
        "failures": failures,
        "step_started_at": T0,
    }
    values.update(changes)
    return DeploymentState("rent", **values)


LATER = T0 + timedelta(seconds=PLAN.step_seconds + 1)
SOON = T0 + timedelta(seconds=60)


# --- error-rate gate ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cand", "stable", "passed"),
    [
        ((0, 400), (0, 4000), True),  # no errors anywhere
        ((1, 20), (0, 200), True),  # one error in 20: noise (Fisher p ~ 0.09)
        ((6, 20), (0, 380), False),  # 30% of a few requests: already decisive
        ((60, 200), (0, 2000), False),  # a broken candidate
        ((30, 400), (20, 4000), False),  # 7.5% vs 0.5%
        ((5, 400), (40, 4000), True),  # 1.25% vs 1%: within the allowed +1 point
        ((600, 20000), (200, 20000), False),  # 3% vs 1% on large samples
        ((210, 20000), (200, 20000), True),  # 1.05% vs 1%: not significant
        ((0, 300), (0, 0), True),  # no stable traffic: tested against the allowance
        ((60, 300), (0, 0), False),  # no stable traffic, 20% errors
    ],
)
def test_error_gate(cand: tuple[int, int], stable: tuple[int, int], passed: bool) -> None:
    gate = error_gate(arm("1", stable[1], stable[0]), arm("2", cand[1], cand[0]), POLICY)
    assert gate.name == "error_rate"
    assert gate.passed is passed, gate.detail
    assert gate.p_value is not None
    assert "error rate" in gate.detail


def test_error_gate_without_candidate_requests_has_no_verdict() -> None:
    gate = error_gate(arm("1", 400), arm("2", 0), POLICY)
    assert gate.passed is None
    assert gate.value is None


def test_excess_p_value_uses_fisher_for_small_counts_and_z_for_large() -> None:
    from scipy.stats import fisher_exact

    fisher = fisher_exact([[1, 19], [0, 200]], alternative="greater").pvalue
    assert excess_p_value(1, 20, 0, 200) == pytest.approx(fisher)
    assert excess_p_value(1, 20, 0, 200) == pytest.approx(20 / 220)
    assert excess_p_value(600, 20000, 200, 20000) < 1e-20
    assert excess_p_value(0, 10, 0, 10) == 1.0
    assert excess_p_value(3, 10, 0, 0) == 1.0


# --- latency gate ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("stable_p99", "cand_p99", "passed"),
    [
        (10.0, 10.0, True),
        (10.0, 18.0, True),  # ×1.8
        (10.0, 25.0, False),  # ×2.5 and +15 ms
        (1.0, 3.0, True),  # ×3 but only +2 ms
        (0.0, 0.0, True),  # latency not recorded
        (0.0, 20.0, False),  # from nothing to 20 ms
    ],
)
def test_latency_gate(stable_p99: float, cand_p99: float, passed: bool) -> None:
    gate = latency_gate(arm("1", p99=stable_p99), arm("2", p99=cand_p99), POLICY)
    assert gate.passed is passed, gate.detail


def test_latency_gate_needs_min_requests_in_both_arms() -> None:
    slow = arm("2", requests=100, p99=100.0)
    assert latency_gate(arm("1"), slow, POLICY).passed is None
    assert latency_gate(arm("1", requests=50), arm("2", p99=100.0), POLICY).passed is None
    assert "200 per arm needed" in latency_gate(arm("1"), slow, POLICY).detail


# --- prediction PSI gate --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("shift", "passed"),
    [(0.0, True), (10.0, True), (100.0, False), (-150.0, False)],
)
def test_psi_gate_regression(shift: float, passed: bool) -> None:
    gate = psi_gate(window(arm("1", 2000), arm("2", 400, shift=shift)), POLICY)
    assert gate.passed is passed, gate.detail
    assert gate.value is not None
    assert gate.value >= 0


def test_psi_gate_of_identical_distributions_is_near_zero() -> None:
    gate = psi_gate(window(arm("1", 4000), arm("2", 400)), POLICY)
    assert gate.value is not None
    assert gate.value < 0.01


def _classes(n: int, share_yes: float) -> np.ndarray:
    yes = round(n * share_yes)
    return np.array(["yes"] * yes + ["no"] * (n - yes), dtype=object)


@pytest.mark.parametrize(("share", "passed"), [(0.3, True), (0.35, True), (0.8, False)])
def test_psi_gate_classification_compares_class_frequencies(share: float, passed: bool) -> None:
    stable = arm("1", 1000, predictions=_classes(1000, 0.3))
    candidate = arm("2", 400, predictions=_classes(400, share))
    gate = psi_gate(window(stable, candidate, "classification"), POLICY)
    assert gate.passed is passed, gate.detail
    assert "predicted classes" in gate.detail


def test_psi_gate_needs_min_requests() -> None:
    gate = psi_gate(window(arm("1", 2000), arm("2", 50, shift=500.0)), POLICY)
    assert gate.passed is None


# --- OOD gate -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("stable_rate", "cand_rate", "passed"),
    [
        (None, 0.5, None),  # stable logs no OOD flags
        (0.02, None, None),  # candidate logs none
        (0.02, 0.02, True),
        (0.02, 0.05, True),  # +3 points: allowed
        (0.02, 0.20, False),
    ],
)
def test_ood_gate(stable_rate: float | None, cand_rate: float | None, passed: bool | None) -> None:
    gate = ood_gate(arm("1", 2000, ood=stable_rate), arm("2", 400, ood=cand_rate), POLICY)
    assert gate.passed is passed, gate.detail


# --- metric gate ----------------------------------------------------------------------------


def _losses(n: int, mean: float) -> np.ndarray:
    return mean * (0.5 + (np.arange(n) + 0.5) / n)  # uniform on [0.5, 1.5] × mean


@pytest.mark.parametrize(
    ("n_labels", "cand_mean", "passed"),
    [
        (10, 500.0, None),  # too few labels
        (200, 100.0, True),  # same loss
        (200, 103.0, True),  # within the 5% margin
        (200, 80.0, True),  # better
        (200, 150.0, False),  # 50% worse
        (30, 300.0, False),  # much worse on few labels
    ],
)
def test_metric_gate(n_labels: int, cand_mean: float, passed: bool | None) -> None:
    stable = arm("1", losses=_losses(400, 100.0))
    candidate = arm("2", losses=_losses(n_labels, cand_mean))
    gate = metric_gate(stable, candidate, POLICY)
    assert gate.passed is passed, gate.detail


def test_metric_gate_on_classification_losses_without_spread() -> None:
    right = np.zeros(100)
    wrong = np.ones(100)
    assert metric_gate(arm("1", losses=right), arm("2", losses=wrong), POLICY).passed is False
    assert metric_gate(arm("1", losses=right), arm("2", losses=right), POLICY).passed is True
    assert loss_p_value(right, right, 1.05) == 1.0


# --- decide ---------------------------------------------------------------------------------

GOOD = window(arm("1", 4000), arm("2", 400))
BROKEN = window(arm("1", 380), arm("2", 40, errors=12))  # 30% errors, few requests
NOISE = window(arm("1", 200), arm("2", 20, errors=1))  # 1 error in 20 vs 0 in 200
SHIFTED = window(arm("1", 4000), arm("2", 400, shift=150.0))


@pytest.mark.parametrize(
    ("state", "stats", "now", "kind", "failed", "failures", "words"),
    [
        # every gate passes, the step is done: next step, or promotion after the last
        (ramp(0), GOOD, LATER, "advance", False, 0, "advancing to 25%"),
        (ramp(2), GOOD, LATER, "advance", False, 0, "advancing to 100%"),
        (ramp(3), GOOD, LATER, "promote", False, 0, "promoting"),
        # not enough requests, or time: wait without failing
        (ramp(0), window(arm("1"), arm("2", 150)), LATER, "hold", False, 0, "50 more"),
        (ramp(0), GOOD, SOON, "hold", False, 0, "540 s more"),
        # a failing gate: held, counted; at the limit rolled back
        (ramp(1), SHIFTED, LATER, "hold", True, 1, "failed evaluation 1 of 2"),
        (ramp(1, failures=1), SHIFTED, LATER, "rollback", True, 2, "2 failed evaluations"),
        # a broken candidate does not wait for requests or the step's end
        (ramp(0), BROKEN, SOON, "hold", True, 1, "error_rate"),
        (ramp(0, failures=1), BROKEN, SOON, "rollback", True, 2, "error_rate"),
        # noise is not a failure
        (ramp(0), NOISE, SOON, "hold", False, 0, "waiting"),
        # a passing evaluation ends a run of failures
        (ramp(0, failures=1), GOOD, SOON, "hold", False, 0, "waiting"),
        # canary and shadow never promote themselves
        (
            ramp(0, strategy="canary", status="canary", weight=10.0),
            GOOD,
            LATER,
            "hold",
            False,
            0,
            "canary healthy; promote with `modelcycle rollout promote rent`",
        ),
        (
            ramp(0, strategy="shadow", status="shadow", weight=0.0),
            GOOD,
            LATER,
            "hold",
            False,
            0,
            "shadow healthy; promote with",
        ),
        (
            ramp(0, strategy="shadow", status="shadow", weight=0.0, failures=1),
            BROKEN,
            SOON,
            "rollback",
            True,
            2,
            "rolled back",
        ),
        # blue-green: all traffic on green; promoted once its bake time passes
        (
            ramp(0, strategy="blue-green", status="blue_green", weight=100.0),
            window(arm("1", 0), arm("2", 400)),
            LATER,
            "promote",
            False,
            0,
            "promoting",
        ),
        # a failure counts again only on fresh evidence: a second controller looking at almost
        # the same rows seconds later does not double-count (the window must grow as much again)
        (ramp(0, failures=1, failed_requests=38), BROKEN, SOON, "hold", False, 1, "fresh"),
        (ramp(0, failures=1, failed_requests=20), BROKEN, SOON, "rollback", True, 2, "rolled back"),
        # paused: nothing moves
        (ramp(0, paused=True), GOOD, LATER, "hold", False, 0, "paused"),
        (ramp(0, paused=True), BROKEN, LATER, "hold", False, 0, "resume"),
    ],
)
def test_decide(
    state: DeploymentState,
    stats: WindowStats,
    now: datetime,
    kind: str,
    failed: bool,
    failures: int,
    words: str,
) -> None:
    decision = decide(state, stats, POLICY, now)
    assert (decision.kind, decision.failed, decision.failures) == (kind, failed, failures), (
        decision.reason
    )
    assert words in decision.reason


@pytest.mark.parametrize(("limit", "kind"), [(1, "rollback"), (2, "hold"), (3, "hold")])
def test_failure_limit_counts_failed_evaluations(limit: int, kind: str) -> None:
    policy = replace(POLICY, failure_limit=limit)
    assert decide(ramp(0), SHIFTED, policy, LATER).kind == kind
    second = decide(ramp(0, failures=1), SHIFTED, policy, LATER)
    assert second.kind == ("rollback" if limit <= 2 else "hold")


def test_reason_is_one_sentence_with_numbers() -> None:
    decision = decide(ramp(0), BROKEN, POLICY, SOON)
    assert "\n" not in decision.reason
    assert "30.0%" in decision.reason
    assert "(12/40)" in decision.reason
    assert decision.reason.startswith("v2 at 5% held: error_rate: error rate 30.0%")


def test_waiting_reason_names_requests_and_time() -> None:
    decision = decide(ramp(0), window(arm("1"), arm("2", 120)), POLICY, SOON)
    assert decision.reason == (
        "v2 at 5%: no gate failed; waiting for 80 more candidate requests (120 of 200) and "
        "540 s more of the step (60 of 600 s)"
    )


def test_no_rollout_holds() -> None:
    decision = decide(DeploymentState("rent", stable_version="1"), GOOD, POLICY, LATER)
    assert (decision.kind, decision.failed) == ("hold", False)
    assert "no rollout" in decision.reason


def test_every_gate_is_reported_in_order() -> None:
    decision = decide(ramp(0), GOOD, POLICY, LATER)
    assert [gate.name for gate in decision.gates] == [
        "error_rate",
        "latency_p99",
        "prediction_psi",
        "ood_rate",
        "metric",
    ]
    values = decision.gate_values()
    assert values["error_rate"]["passed"] is True
    assert values["ood_rate"]["passed"] is None  # no OOD flags logged
    assert values["metric"]["passed"] is None  # no labels


def test_gate_values_are_json_ready() -> None:
    gate = Gate("latency_p99", math.inf, 2.0, False, "from 0 ms", p_value=math.nan)
    assert gate.as_dict() == {
        "value": None,
        "threshold": 2.0,
        "passed": False,
        "p_value": None,
        "detail": "from 0 ms",
    }


def test_policy_from_spec_and_plan() -> None:
    spec = DeploymentSpec(
        step_duration="2m",
        min_requests=50,
        failure_limit=3,
        gates=GatesSpec(alpha=0.05, max_prediction_psi=0.1),
    )
    policy = GatePolicy.from_spec(spec)
    assert (policy.step_seconds, policy.min_requests, policy.failure_limit) == (120.0, 50, 3)
    assert (policy.alpha, policy.max_prediction_psi) == (0.05, 0.1)
    paced = policy.with_plan(RolloutPlan(step_seconds=30, min_requests=10, failure_limit=1))
    assert (paced.step_seconds, paced.min_requests, paced.failure_limit) == (30, 10, 1)
    assert paced.alpha == 0.05
    assert GatePolicy.from_plan(PLAN).max_latency_ratio == GatesSpec().max_latency_ratio


@pytest.mark.parametrize(
    ("shift", "least", "most"),
    [(0.0, 0.0, 0.05), (200.0, 0.95, 1.0)],  # the same distribution; two standard deviations apart
)
def test_psi_gate_judges_small_windows_above_their_sampling_noise(
    shift: float, least: float, most: float
) -> None:
    # 40 candidate rows against 400 stable ones, drawn from the same (or a shifted) normal: the
    # raw PSI of such samples exceeds 0.25 in about a third of the draws even when nothing
    # changed, so a gate on the raw value would fail healthy candidates on small windows
    policy = GatePolicy.from_plan(replace(PLAN, min_requests=40))
    failures = 0
    for seed in range(100):
        rng = np.random.default_rng(seed)
        stable = arm("1", predictions=rng.normal(1000, 100, 400))
        candidate = arm("2", requests=40, predictions=rng.normal(1000 + shift, 100, 40))
        gate = psi_gate(window(stable, candidate), policy)
        assert "expected from sampling" in gate.detail
        failures += gate.passed is False
    assert least <= failures / 100 <= most
