"""Rollout gates, and the decision they lead to: promote, advance, hold or roll back.

:func:`decide` is a pure function of the deployment state, the window's statistics
(:class:`~modelcycle.deployment.stats.WindowStats`), the :class:`GatePolicy` and the time. Each
gate compares the candidate version with the stable version over the same window:

- ``error_rate``: the candidate's error rate is higher than stable's, significantly (one-sided
  two-proportion z-test, or Fisher's exact test for small counts: p < ``alpha``) *and* by more
  than ``max_error_rate_increase``; so 1 error in 20 requests against 0 in 200 is noise, while
  30% errors fails within a few dozen requests. Without stable traffic (blue-green, the last
  ramp step) the candidate's rate is tested against ``max_error_rate_increase`` itself.
- ``latency_p99``: candidate p99 / stable p99 above ``max_latency_ratio`` *and* more than
  ``min_latency_ms`` slower.
- ``prediction_psi``: PSI between the arms' predictions (regression: deciles of the pooled
  predictions; classification: class frequencies) above ``max_prediction_psi``.
- ``ood_rate``: the candidate flags more rows as out-of-distribution than stable, by more than
  ``max_ood_rate_increase`` and significantly (only when both arms report OOD flags).
- ``metric``: with at least ``min_labels`` labelled rows per arm, the candidate's mean loss is
  above stable's × (1 + ``metric_margin``) by a one-sided Welch t-test (p < ``alpha``).

A gate passes (``True``), fails (``False``) or has not enough data (``None``). The tested gates
(error rate, metric) may fail at any sample size, since their test accounts for it: a broken
candidate is stopped without waiting for the step to end. The others need ``min_requests`` rows
in both arms. A failed evaluation holds the rollout; ``failure_limit`` failed evaluations in a row
roll it back. When nothing fails, the candidate has ``min_requests`` rows and the step's time has
passed, a ramp advances (or is promoted after its last step) and blue-green is promoted; a canary
or a shadow deployment is never promoted automatically.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Literal

import numpy as np

from modelcycle.config.spec import DeploymentSpec, GatesSpec, parse_duration
from modelcycle.deployment.state import DeploymentState, RolloutPlan
from modelcycle.deployment.stats import (
    PSI_BINS,
    ArmStats,
    WindowStats,
    finite_or_none,
    prediction_psi,
)

DecisionKind = Literal["promote", "advance", "hold", "rollback"]
SMALL_EXPECTED = 5.0
"""Below this expected count in a cell of the 2×2 table, proportions use Fisher's exact test."""


@dataclass(frozen=True)
class GatePolicy:
    """Thresholds of the gates, and the rollout's pace.

    Attributes:
        alpha: Significance level of the tests.
        max_error_rate_increase: Allowed absolute excess of the candidate's error rate.
        max_latency_ratio: Allowed candidate p99 / stable p99.
        min_latency_ms: p99 differences below this never fail.
        max_prediction_psi: Allowed PSI between the arms' predictions.
        max_ood_rate_increase: Allowed absolute excess of the candidate's OOD rate.
        metric_margin: Allowed relative excess of the candidate's mean loss.
        min_labels: Labelled rows per arm before the metric gate counts.
        min_requests: Candidate rows per step before it can pass (and per arm before the
            latency, PSI and OOD gates count).
        failure_limit: Failed evaluations in a row that roll the candidate back.
        step_seconds: Least time per step.
    """

    alpha: float = 0.01
    max_error_rate_increase: float = 0.01
    max_latency_ratio: float = 2.0
    min_latency_ms: float = 5.0
    max_prediction_psi: float = 0.25
    max_ood_rate_increase: float = 0.05
    metric_margin: float = 0.05
    min_labels: int = 30
    min_requests: int = 200
    failure_limit: int = 2
    step_seconds: float = 600.0

    @classmethod
    def from_spec(cls, spec: DeploymentSpec) -> GatePolicy:
        """The policy of the spec's ``[deployment]`` and ``[deployment.gates]``."""
        return cls(
            **_gate_values(spec.gates),
            min_requests=spec.min_requests,
            failure_limit=spec.failure_limit,
            step_seconds=parse_duration(spec.step_duration),
        )

    @classmethod
    def from_plan(cls, plan: RolloutPlan, gates: GatesSpec | None = None) -> GatePolicy:
        """The gates' thresholds (defaults when ``gates`` is ``None``) with a plan's pace."""
        return cls(**_gate_values(gates or GatesSpec())).with_plan(plan)

    def with_plan(self, plan: RolloutPlan) -> GatePolicy:
        """This policy with the pace (step time, min requests, failure limit) of ``plan``."""
        return replace(
            self,
            min_requests=plan.min_requests,
            failure_limit=plan.failure_limit,
            step_seconds=plan.step_seconds,
        )


def _gate_values(gates: GatesSpec) -> dict[str, Any]:
    return {
        "alpha": gates.alpha,
        "max_error_rate_increase": gates.max_error_rate_increase,
        "max_latency_ratio": gates.max_latency_ratio,
        "min_latency_ms": gates.min_latency_ms,
        "max_prediction_psi": gates.max_prediction_psi,
        "max_ood_rate_increase": gates.max_ood_rate_increase,
        "metric_margin": gates.metric_margin,
        "min_labels": gates.min_labels,
    }


@dataclass(frozen=True)
class Gate:
    """The outcome of one gate.

    Attributes:
        name: ``error_rate``, ``latency_p99``, ``prediction_psi``, ``ood_rate`` or ``metric``.
        value: The compared quantity (an excess, a ratio or a PSI; ``None`` without data).
        threshold: The limit it is compared with.
        passed: ``True``, ``False``, or ``None`` when there is not enough data to judge.
        detail: One clause with the numbers, for reasons and the history.
        p_value: The test's p-value, for tested gates.
    """

    name: str
    value: float | None
    threshold: float
    passed: bool | None
    detail: str
    p_value: float | None = None

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready values (non-finite numbers become ``None``)."""
        return {
            "value": finite_or_none(self.value),
            "threshold": self.threshold,
            "passed": self.passed,
            "p_value": finite_or_none(self.p_value),
            "detail": self.detail,
        }


@dataclass(frozen=True)
class Decision:
    """What the controller should do with a rollout.

    Attributes:
        kind: ``promote``, ``advance``, ``hold`` or ``rollback``.
        reason: One sentence with the numbers.
        gates: Every gate's outcome.
        failed: Whether a gate failed (a failed evaluation, counted towards the limit).
        failures: Failed evaluations in a row, this one included (0 when nothing failed).
        requests: Candidate requests in the window when a failure was counted.
    """

    kind: DecisionKind
    reason: str
    gates: list[Gate] = field(default_factory=list)
    failed: bool = False
    failures: int = 0
    requests: int = 0

    def gate_values(self) -> dict[str, dict[str, Any]]:
        """The gates by name, JSON-ready (for event and alert details)."""
        return {gate.name: gate.as_dict() for gate in self.gates}


# ----------------------------------------------------------------------------------- decide


def decide(
    state: DeploymentState, stats: WindowStats, policy: GatePolicy, now: datetime
) -> Decision:
    """Decide what to do with a running rollout, from the window since its step began.

    Args:
        state: The deployment state.
        stats: Both arms over the window since ``state.step_started_at``.
        policy: The gates' thresholds and the rollout's pace.
        now: The time of the evaluation.

    Returns:
        ``rollback`` when gates failed in ``failure_limit`` evaluations in a row; ``hold`` when a
        gate failed (``failed``), the step needs more requests or time, the rollout is paused,
        or a healthy canary / shadow waits for a person to promote it; ``advance`` to the next
        ramp step; ``promote`` after the last step (and for a healthy blue-green deployment).
    """
    name, candidate = state.model_name, state.candidate_version
    if not state.active:
        return Decision("hold", f"{name}: no rollout is running (status {state.status})")
    at = f"v{candidate} at {state.weight:g}%"
    if state.paused:
        return Decision(
            "hold",
            f"{at} is paused; resume it with `modelcycle rollout resume {name}`",
            failures=state.failures,
        )
    gates = evaluate_gates(stats, policy)
    failing = [gate for gate in gates if gate.passed is False]
    if failing:
        why = "; ".join(f"{gate.name}: {gate.detail}" for gate in failing)
        fresh = stats.candidate.requests - state.failed_requests
        needed = min(policy.min_requests, state.failed_requests)
        if state.failures and fresh < needed:
            # another controller (or an early re-evaluation) on nearly the same rows: a failure
            # counts again only once the window has grown by as many candidate requests as it
            # had (at most min_requests), so failure_limit means looks at more evidence
            return Decision(
                "hold",
                f"{at} still failing ({why}); failure {state.failures} of "
                f"{policy.failure_limit} counted, the next counts after {needed:,} fresh "
                f"candidate requests ({fresh:,} so far)",
                gates,
                failures=state.failures,
            )
        failures = state.failures + 1
        requests = stats.candidate.requests
        if failures >= policy.failure_limit:
            return Decision(
                "rollback",
                f"v{candidate} rolled back after {failures} failed evaluation"
                f"{'s' if failures > 1 else ''} in a row (limit {policy.failure_limit}): {why}",
                gates,
                failed=True,
                failures=failures,
                requests=requests,
            )
        return Decision(
            "hold",
            f"{at} held: {why} (failed evaluation {failures} of {policy.failure_limit})",
            gates,
            failed=True,
            failures=failures,
            requests=requests,
        )
    requests = stats.candidate.requests
    elapsed = _elapsed(state, now)
    missing_requests = max(policy.min_requests - requests, 0)
    missing_seconds = max(policy.step_seconds - elapsed, 0.0)
    if missing_requests or missing_seconds:
        waits = []
        if missing_requests:
            waits.append(
                f"{missing_requests:,} more candidate requests ({requests:,} of "
                f"{policy.min_requests:,})"
            )
        if missing_seconds:
            waits.append(
                f"{missing_seconds:.0f} s more of the step ({elapsed:.0f} of "
                f"{policy.step_seconds:.0f} s)"
            )
        return Decision("hold", f"{at}: no gate failed; waiting for {' and '.join(waits)}", gates)
    healthy = f"v{candidate} passed every gate over {requests:,} candidate requests"
    if state.strategy in ("canary", "shadow"):
        kind = "canary" if state.strategy == "canary" else "shadow"
        return Decision(
            "hold",
            f"{kind} healthy; promote with `modelcycle rollout promote {name}` ({healthy})",
            gates,
        )
    last = state.strategy != "ramp" or state.step >= len(state.plan.steps) - 1
    if last:
        return Decision("promote", f"{healthy} at {state.weight:g}%; promoting it to stable", gates)
    following = state.plan.steps[state.step + 1]
    return Decision(
        "advance", f"{healthy} at {state.weight:g}%; advancing to {following:g}%", gates
    )


def _elapsed(state: DeploymentState, now: datetime) -> float:
    if state.step_started_at is None:
        return math.inf
    return (now - state.step_started_at).total_seconds()


# ----------------------------------------------------------------------------------- gates


def evaluate_gates(stats: WindowStats, policy: GatePolicy) -> list[Gate]:
    """Every gate's outcome for the window, in a fixed order."""
    return [
        error_gate(stats.stable, stats.candidate, policy),
        latency_gate(stats.stable, stats.candidate, policy),
        psi_gate(stats, policy),
        ood_gate(stats.stable, stats.candidate, policy),
        metric_gate(stats.stable, stats.candidate, policy),
    ]


def error_gate(stable: ArmStats, candidate: ArmStats, policy: GatePolicy) -> Gate:
    """Fails when the candidate's error rate is significantly and materially above stable's."""
    limit = policy.max_error_rate_increase
    if not candidate.requests:
        return Gate("error_rate", None, limit, None, "no candidate requests yet")
    rate = candidate.error_rate
    if stable.requests:
        excess = rate - stable.error_rate
        p = excess_p_value(candidate.errors, candidate.requests, stable.errors, stable.requests)
        base = f"{stable.error_rate:.1%} on stable ({stable.errors:,}/{stable.requests:,})"
    else:  # all traffic on the candidate: test its rate against the allowed excess itself
        from scipy.stats import binomtest

        excess = rate
        p = binomtest(candidate.errors, candidate.requests, limit, alternative="greater").pvalue
        base = "no stable requests to compare with"
    passed = not (p < policy.alpha and excess > limit)
    detail = (
        f"error rate {rate:.1%} ({candidate.errors:,}/{candidate.requests:,}) vs {base}: "
        f"{excess * 100:+.1f} points, allowed +{limit * 100:.1f}, p={p:.2g}"
    )
    return Gate("error_rate", excess, limit, passed, detail, p)


def latency_gate(stable: ArmStats, candidate: ArmStats, policy: GatePolicy) -> Gate:
    """Fails when the candidate p99 is both max_latency_ratio × and min_latency_ms above stable."""
    limit = policy.max_latency_ratio
    fast, slow = stable.latency_p99_ms, candidate.latency_p99_ms
    if not _enough(stable, candidate, policy) or fast is None or slow is None:
        return Gate("latency_p99", None, limit, None, _too_few(stable, candidate, policy))
    ratio = slow / fast if fast > 0 else (math.inf if slow > 0 else 1.0)
    passed = not (ratio > limit and slow - fast > policy.min_latency_ms)
    detail = (
        f"p99 latency {slow:.1f} ms vs {fast:.1f} ms on stable (×{ratio:.2f}, allowed "
        f"×{limit:g} or +{policy.min_latency_ms:g} ms)"
    )
    return Gate("latency_p99", ratio, limit, passed, detail)


def psi_gate(stats: WindowStats, policy: GatePolicy) -> Gate:
    """Fails when the arms' prediction distributions differ by a PSI above the limit."""
    stable, candidate, limit = stats.stable, stats.candidate, policy.max_prediction_psi
    if not _enough(stable, candidate, policy):
        return Gate("prediction_psi", None, limit, None, _too_few(stable, candidate, policy))
    psi = prediction_psi(stable, candidate, stats.task)
    if psi is None:
        return Gate("prediction_psi", None, limit, None, "an arm has no predictions")
    noise = psi_noise(stable, candidate, stats.task)
    what = "predictions" if stats.task == "regression" else "predicted classes"
    detail = (
        f"PSI of the {what} between the arms {psi:.3f} ({noise:.3f} expected from sampling "
        f"alone), allowed {limit:g} above that"
    )
    return Gate("prediction_psi", psi, limit, psi - noise <= limit, detail)


def psi_noise(stable: ArmStats, candidate: ArmStats, task: str) -> float:
    """The PSI two samples of these sizes show on average when nothing changed.

    PSI is a symmetrised chi-square divergence; between two samples of one distribution its
    expectation is about ``(bins - 1) * (1 / n1 + 1 / n2)`` — 0.26 for deciles at 38 and 400
    rows — so small windows are judged on the PSI above that, not on sampling noise.
    """
    n1, n2 = stable.predictions.size, candidate.predictions.size
    if not n1 or not n2:
        return 0.0
    if task == "regression":
        bins = PSI_BINS
    else:
        bins = len(set(stable.predictions.tolist()) | set(candidate.predictions.tolist()))
    return (max(bins, 2) - 1) * (1 / n1 + 1 / n2)


def ood_gate(stable: ArmStats, candidate: ArmStats, policy: GatePolicy) -> Gate:
    """Fails when the candidate flags significantly and materially more rows as OOD."""
    limit = policy.max_ood_rate_increase
    if stable.ood_rate is None or candidate.ood_rate is None:
        return Gate("ood_rate", None, limit, None, "OOD flags are not logged for both arms")
    if min(stable.ood_checked, candidate.ood_checked) < policy.min_requests:
        return Gate("ood_rate", None, limit, None, _too_few(stable, candidate, policy))
    excess = candidate.ood_rate - stable.ood_rate
    flagged_c = round(candidate.ood_rate * candidate.ood_checked)
    flagged_s = round(stable.ood_rate * stable.ood_checked)
    p = excess_p_value(flagged_c, candidate.ood_checked, flagged_s, stable.ood_checked)
    passed = not (p < policy.alpha and excess > limit)
    detail = (
        f"OOD rate {candidate.ood_rate:.1%} vs {stable.ood_rate:.1%} on stable "
        f"({excess * 100:+.1f} points, allowed +{limit * 100:.1f}, p={p:.2g})"
    )
    return Gate("ood_rate", excess, limit, passed, detail, p)


def metric_gate(stable: ArmStats, candidate: ArmStats, policy: GatePolicy) -> Gate:
    """Fails when the candidate's mean loss is significantly above stable's × (1 + margin)."""
    limit = 1 + policy.metric_margin
    if min(stable.labelled, candidate.labelled) < policy.min_labels:
        return Gate(
            "metric",
            None,
            limit,
            None,
            f"{candidate.labelled:,} and {stable.labelled:,} labelled rows (candidate, stable); "
            f"{policy.min_labels:,} per arm needed",
        )
    mean_c, mean_s = float(candidate.losses.mean()), float(stable.losses.mean())
    p = loss_p_value(candidate.losses, stable.losses, limit)
    ratio = mean_c / mean_s if mean_s > 0 else (math.inf if mean_c > 0 else 1.0)
    detail = (
        f"mean loss {mean_c:.4g} vs {mean_s:.4g} on stable (×{ratio:.2f}, allowed ×{limit:g}, "
        f"p={p:.2g}, {candidate.labelled:,} and {stable.labelled:,} labels)"
    )
    return Gate("metric", ratio, limit, p >= policy.alpha, detail, p)


# ----------------------------------------------------------------------------------- tests


def excess_p_value(k1: int, n1: int, k0: int, n0: int) -> float:
    """One-sided p-value that rate ``k1/n1`` is above rate ``k0/n0``.

    A pooled two-proportion z-test, or Fisher's exact test when an expected cell count is
    below :data:`SMALL_EXPECTED`. 1 when either group is empty or no event happened.
    """
    from scipy.stats import fisher_exact, norm

    if not n1 or not n0 or not k1 + k0:
        return 1.0
    pooled = (k1 + k0) / (n1 + n0)
    expected = min(n1, n0) * min(pooled, 1 - pooled)
    if expected < SMALL_EXPECTED:
        table = [[k1, n1 - k1], [k0, n0 - k0]]
        return float(fisher_exact(table, alternative="greater").pvalue)
    spread = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n0))
    return float(norm.sf((k1 / n1 - k0 / n0) / spread))


def loss_p_value(candidate: np.ndarray, stable: np.ndarray, factor: float) -> float:
    """One-sided Welch t-test p-value that mean(candidate) > factor × mean(stable).

    With no spread in either sample the comparison of the means is certain: 0 when the candidate
    is above, 1 when not.
    """
    from scipy.stats import ttest_ind

    scaled = factor * np.asarray(stable, dtype="float64")
    losses = np.asarray(candidate, dtype="float64")
    if np.ptp(losses) == 0 and np.ptp(scaled) == 0:
        return 0.0 if losses[0] > scaled[0] else 1.0
    result = ttest_ind(losses, scaled, equal_var=False, alternative="greater")
    p = float(result.pvalue)
    return p if math.isfinite(p) else 1.0


def _enough(stable: ArmStats, candidate: ArmStats, policy: GatePolicy) -> bool:
    return min(stable.requests, candidate.requests) >= policy.min_requests


def _too_few(stable: ArmStats, candidate: ArmStats, policy: GatePolicy) -> str:
    return (
        f"{candidate.requests:,} and {stable.requests:,} requests (candidate, stable); "
        f"{policy.min_requests:,} per arm needed"
    )
