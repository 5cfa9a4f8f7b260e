"""Deployment transitions and routing: pure functions, checked with tables."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from modelcycle.deployment import state as st
from modelcycle.deployment.state import DeploymentError, DeploymentState, RolloutPlan
from modelcycle.deployment.strategies import bucket, route, shadows

NOW = datetime(2026, 1, 1, tzinfo=UTC)
PLAN = RolloutPlan(canary_weight=10, steps=(5.0, 25.0, 100.0))
STABLE = DeploymentState("rent", stable_version="1", status="promoted", strategy="direct")


def started(strategy: st.Strategy, version: str = "2") -> DeploymentState:
    new, _ = st.start(STABLE, version, strategy, PLAN, actor="t", now=NOW)
    return new


@pytest.mark.parametrize(
    ("strategy", "status", "weight", "candidate"),
    [
        ("canary", "canary", 10.0, "2"),
        ("ramp", "ramping", 5.0, "2"),
        ("blue-green", "blue_green", 100.0, "2"),
        ("shadow", "shadow", 0.0, "2"),
        ("direct", "promoted", 0.0, None),
    ],
)
def test_start_sets_status_weight_and_candidate(
    strategy: st.Strategy, status: str, weight: float, candidate: str | None
) -> None:
    new = started(strategy)
    assert (new.status, new.weight, new.candidate_version) == (status, weight, candidate)
    if strategy == "direct":
        assert (new.stable_version, new.previous_version) == ("2", "1")
    else:
        assert new.stable_version == "1"


def test_the_first_deploy_of_a_model_is_direct_whatever_the_strategy() -> None:
    new, event = st.start(DeploymentState("rent"), "1", "ramp", PLAN, actor="t", now=NOW)
    assert (new.stable_version, new.status, new.candidate_version) == ("1", "promoted", None)
    assert event.action == "deploy"


@pytest.mark.parametrize(
    ("state", "version", "message"),
    [
        (started("canary"), "3", "being rolled out"),
        (STABLE, "1", "already the stable version"),
    ],
)
def test_start_refuses_what_would_lose_track(
    state: DeploymentState, version: str, message: str
) -> None:
    with pytest.raises(DeploymentError, match=message):
        st.start(state, version, "canary", PLAN, actor="t", now=NOW)


def test_a_ramp_advances_step_by_step_then_is_promoted() -> None:
    state = started("ramp")
    weights = [state.weight]
    for _ in range(len(PLAN.steps) - 1):
        state, event = st.advance(state, actor="c", now=NOW, reason="ok", gates={})
        weights.append(state.weight)
        assert event.action == "advance"
    assert weights == list(PLAN.steps)
    state, event = st.promote(state, actor="c", now=NOW)
    assert (state.stable_version, state.previous_version, state.candidate_version) == (
        "2",
        "1",
        None,
    )
    assert (state.status, event.from_version, event.to_version) == ("promoted", "1", "2")


def test_failed_holds_count_towards_the_limit_and_a_pass_keeps_the_count() -> None:
    state = started("ramp")
    state, event = st.hold(state, actor="c", reason="bad", failed=True, gates={})
    assert (state.failures, event.action) == (1, "gate_failed")
    state, event = st.hold(state, actor="c", reason="wait", failed=False, gates={})
    assert (state.failures, event.action) == (1, "hold")


def test_rollback_stops_a_candidate_or_restores_the_previous_version() -> None:
    stopped, event = st.rollback(started("canary"), actor="u", now=NOW)
    assert (stopped.status, stopped.stable_version, stopped.candidate_version) == (
        "rolled_back",
        "1",
        None,
    )
    assert (event.from_version, event.to_version) == ("2", "1")

    promoted, _ = st.promote(started("canary"), actor="u", now=NOW)
    restored, _ = st.rollback(promoted, actor="u", now=NOW)
    assert (restored.stable_version, restored.previous_version) == ("1", "2")

    with pytest.raises(DeploymentError, match="no previous version"):
        st.rollback(DeploymentState("rent", stable_version="1"), actor="u", now=NOW)


@pytest.mark.parametrize("verb", ["pause", "resume", "advance", "promote", "hold"])
def test_rollout_verbs_need_a_running_rollout(verb: str) -> None:
    calls = {
        "pause": lambda s: st.pause(s, actor="u"),
        "resume": lambda s: st.resume(s, actor="u", now=NOW),
        "advance": lambda s: st.advance(s, actor="u", now=NOW, reason="", gates={}),
        "promote": lambda s: st.promote(s, actor="u", now=NOW),
        "hold": lambda s: st.hold(s, actor="u", reason="", failed=False, gates={}),
    }
    with pytest.raises(DeploymentError, match="no rollout is running"):
        calls[verb](STABLE)


def test_a_stale_failure_does_not_cancel_a_newer_rollout() -> None:
    newer = started("canary", version="3")
    with pytest.raises(DeploymentError, match="no longer the candidate"):
        st.fail(newer, actor="server", reason="v2 did not load", version="2")
    failed, event = st.fail(newer, actor="server", reason="v3 did not load", version="3")
    assert (failed.status, failed.candidate_version, event.action) == ("failed", None, "failed")


@pytest.mark.parametrize(
    ("strategy", "draw", "expected"),
    [
        ("canary", 0.05, "candidate"),  # 5 < 10%
        ("canary", 0.5, "stable"),
        ("blue-green", 0.99, "candidate"),  # 100%
        ("shadow", 0.0, "stable"),  # a shadow never answers
        ("direct", 0.0, "stable"),
    ],
)
def test_route_by_weight(strategy: st.Strategy, draw: float, expected: str) -> None:
    assert route(started(strategy), None, draw) == expected


def test_sticky_keys_keep_their_arm_and_the_split_follows_the_weight() -> None:
    state = started("canary")
    keys = [f"apartment-{i}" for i in range(5000)]
    arms = [route(state, key, 0.99) for key in keys]
    assert arms == [route(state, key, 0.0) for key in keys]  # the draw is ignored with a key
    share = arms.count("candidate") / len(arms)
    assert 0.08 < share < 0.12
    # raising the weight only moves keys from stable to the candidate, never back
    wider = DeploymentState(**{**state.__dict__, "weight": 25.0})
    assert all(
        route(wider, k, 0.0) == "candidate"
        for k, a in zip(keys, arms, strict=True)
        if a == "candidate"
    )
    assert 0 <= bucket("x") < 100


def test_shadows_only_for_a_running_shadow() -> None:
    assert shadows(started("shadow"))
    assert not shadows(started("canary"))
    assert not shadows(STABLE)
