"""Retraining triggers: ``should_retrain`` over tables of states, policies and times.

``NOW`` is Monday 2025-03-03 12:00 UTC; the champion was trained two days earlier unless a row
says otherwise.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from modelcycle.config.spec import RetrainingSpec
from modelcycle.retraining.triggers import (
    AUTOMATIC_TRIGGERS,
    DRIFT_RULES,
    METRIC_DROP_RULES,
    AlertInfo,
    RetrainDecision,
    RetrainState,
    should_retrain,
)

NOW = datetime(2025, 3, 3, 12, 0, tzinfo=UTC)
TRAINED = NOW - timedelta(days=2)


def ago(minutes: float = 0, hours: float = 0, days: float = 0) -> datetime:
    return NOW - timedelta(minutes=minutes, hours=hours, days=days)


def alert(
    rule: str, opened: datetime, severity: str = "warning", version: str | None = "3"
) -> AlertInfo:
    return AlertInfo(rule=rule, severity=severity, opened_at=opened, model_version=version)


def state(*alerts: AlertInfo, **changes: Any) -> RetrainState:
    values: dict[str, Any] = {"last_trained_at": TRAINED, "last_attempt_at": TRAINED}
    values.update(changes)
    return RetrainState(open_alerts=alerts, **values)


def policy(**changes: Any) -> RetrainingSpec:
    return RetrainingSpec(**changes)


DRIFT = alert("feature_drift", ago(minutes=30))
DATASET_DRIFT = alert("dataset_drift", ago(hours=1), severity="critical")
PREDICTION_DRIFT = alert("prediction_drift", ago(hours=3))
OLD_DRIFT = alert("feature_drift", ago(days=3))  # opened before the champion's training
DROP = alert("metric_drop", ago(minutes=45), severity="critical")
ESTIMATED_DROP = alert("estimated_metric_drop", ago(hours=2))
OLD_DROP = alert("metric_drop", ago(days=5))
SCHEMA = alert("schema_break", ago(hours=3), severity="critical", version=None)
OLD_SCHEMA = alert("schema_break", ago(days=4), severity="critical", version=None)
TRAFFIC = alert("no_traffic", ago(minutes=10))
ERRORS = alert("error_rate", ago(minutes=10))
LABELS = policy(min_new_labels=1000)
WEEKLY = policy(schedule="7d")

ROWS: list[tuple[str, RetrainState, RetrainingSpec, bool, str | None, str | None, str]] = [
    # --- nothing fires
    ("quiet", state(), policy(), False, None, None, "no trigger: no metric-drop or drift alert"),
    ("other rules", state(TRAFFIC, ERRORS), policy(), False, None, None, "no trigger"),
    # --- each trigger alone
    ("drift", state(DRIFT), policy(),
     True, "drift", None, "retrain on drift: feature_drift alert (warning, v3) opened 30 min ago"),
    ("dataset drift", state(DATASET_DRIFT), policy(),
     True, "drift", None, "dataset_drift alert (critical, v3) opened 1 h ago"),
    ("prediction drift", state(PREDICTION_DRIFT), policy(),
     True, "drift", None, "prediction_drift"),
    ("metric drop", state(DROP), policy(),
     True, "metric_drop", None, "retrain on metric_drop: metric_drop alert (critical, v3) opened 45 min ago"),
    ("estimated drop", state(ESTIMATED_DROP), policy(),
     True, "metric_drop", None, "estimated_metric_drop alert"),
    ("labels reached", state(new_labels=1000), LABELS,
     True, "new_labels", None, "1,000 new labels since the last training (threshold 1,000)"),
    ("labels above", state(new_labels=2500), LABELS, True, "new_labels", None, "2,500 new labels"),
    ("schedule due", state(last_trained_at=ago(days=8), last_attempt_at=None), WEEKLY,
     True, "schedule", None, "schedule '7d' was due at 2025-03-02 12:00 UTC (1 d ago)"),
    ("cron due", state(last_trained_at=datetime(2025, 2, 24, 3, 30, tzinfo=UTC)), policy(schedule="0 3 * * 1"),
     True, "schedule", None, "schedule '0 3 * * 1' was due at 2025-03-03 03:00 UTC (9 h ago)"),
    ("never trained", state(last_trained_at=None, last_attempt_at=None), WEEKLY,
     True, "schedule", None, "schedule '7d' with no training recorded yet"),
    ("manual", state(manual_reason="new pricing rules"), policy(),
     True, "manual", None, "retrain on manual: manual request (new pricing rules)"),
    ("manual without reason", state(manual_reason="  "), policy(),
     True, "manual", None, "manual request (no reason given)"),
    # --- triggers that do not fire
    ("labels below", state(new_labels=120), LABELS, False, None, None, "120 of 1,000 new labels"),
    ("labels unset", state(new_labels=10**6), policy(), False, None, None, "no trigger"),
    ("schedule not due", state(), WEEKLY,
     False, None, None, "schedule '7d' next due 2025-03-08 12:00 UTC (in 5 d)"),
    ("cron not due", state(last_trained_at=ago(hours=8)), policy(schedule="0 3 * * 1"),
     False, None, None, "schedule '0 3 * * 1' next due 2025-03-10 03:00 UTC (in 6 d 15 h)"),
    ("drift off", state(DRIFT), policy(on_drift=False), False, None, None, "drift trigger off"),
    ("metric drop off", state(DROP), policy(on_metric_drop=False),
     False, None, None, "metric-drop trigger off"),
    ("metric drop off, drift on", state(DROP, DRIFT), policy(on_metric_drop=False),
     True, "drift", None, "retrain on drift"),
    # --- alert age: only alerts opened after the last training count
    ("old drift", state(OLD_DRIFT), policy(),
     False, None, None, "1 drift alert opened before the last training (an alert triggers one retrain)"),
    ("old drop", state(OLD_DROP, OLD_DRIFT), policy(),
     False, None, None, "1 metric-drop alert opened before"),
    ("old and new drift", state(OLD_DRIFT, DRIFT), policy(),
     True, "drift", None, "feature_drift alert (warning, v3) opened 30 min ago"),
    ("opened at the training", state(alert("metric_drop", TRAINED)), policy(),
     False, None, None, "no trigger"),
    ("never trained: every alert counts", state(OLD_DRIFT, last_trained_at=None, last_attempt_at=None), policy(),
     True, "drift", None, "opened 3 d ago"),
    ("failed retrain retries", state(PREDICTION_DRIFT, last_attempt_at=ago(hours=2)), policy(),
     True, "drift", None, "prediction_drift"),
    # --- several triggers: metric_drop, drift, new_labels, schedule
    ("drop before drift", state(DRIFT, DROP), policy(),
     True, "metric_drop", None, "; also firing: drift"),
    ("drift before labels and schedule", state(DRIFT, new_labels=5000, last_trained_at=ago(days=9)), policy(min_new_labels=1000, schedule="7d"),
     True, "drift", None, "also firing: new_labels, schedule"),
    ("labels before schedule", state(new_labels=5000, last_trained_at=ago(days=9)), policy(min_new_labels=1000, schedule="7d"),
     True, "new_labels", None, "also firing: schedule"),
    ("manual first", state(DROP, manual_reason="audit"), policy(),
     True, "manual", None, "manual request (audit); also firing: metric_drop"),
    # --- schema break blocks everything, manual too, whatever its age
    ("schema blocks drift", state(SCHEMA, DRIFT), policy(),
     False, "drift", "schema_break", "schema break (a schema_break alert open for 3 h): no retrain, not even a manual one"),
    ("schema blocks manual", state(SCHEMA, manual_reason="please"), policy(),
     False, "manual", "schema_break", "until a person fixes the data (or accepts the new schema) and resolves the alert; manual waits: manual request (please)"),
    ("old schema blocks", state(OLD_SCHEMA, DROP), policy(),
     False, "metric_drop", "schema_break", "open for 4 d"),
    ("schema flag blocks", state(DRIFT, schema_broken=True), policy(),
     False, "drift", "schema_break", "schema break (the data's schema is marked broken)"),
    ("schema before everything", state(SCHEMA, DRIFT, running=3, last_attempt_at=ago(minutes=1)), policy(auto=False),
     False, "drift", "schema_break", "schema break"),
    ("schema, no trigger", state(SCHEMA), policy(),
     False, None, None, "; a schema break (a schema_break alert open for 3 h) would block any retrain until a person fixes it"),
    # --- auto = false: automatic triggers are reported, manual ones still run
    ("disabled", state(DRIFT), policy(auto=False),
     False, "drift", "disabled", "disabled: retraining.auto is false, so drift does not retrain by itself"),
    ("disabled schedule", state(last_trained_at=ago(days=8)), policy(auto=False, schedule="7d"),
     False, "schedule", "disabled", "run `modelcycle retrain`"),
    ("disabled, manual runs", state(DRIFT, manual_reason="fix"), policy(auto=False),
     True, "manual", None, "manual request (fix)"),
    ("disabled before concurrency", state(DRIFT, running=1), policy(auto=False),
     False, "drift", "disabled", "disabled"),
    ("disabled before cooldown", state(DRIFT, last_attempt_at=ago(minutes=5)), policy(auto=False),
     False, "drift", "disabled", "disabled"),
    # --- concurrency: blocks automatic and manual retrains
    ("running", state(DRIFT, running=1), policy(),
     False, "drift", "concurrency", "concurrency: 1 retrain running, max_concurrent 1; drift waits"),
    ("running, manual", state(running=2, manual_reason="now"), policy(max_concurrent=2),
     False, "manual", "concurrency", "2 retrains running, max_concurrent 2"),
    ("below the limit", state(DRIFT, running=1), policy(max_concurrent=2),
     True, "drift", None, "retrain on drift"),
    ("concurrency before cooldown", state(DRIFT, running=1, last_attempt_at=ago(minutes=1)), policy(),
     False, "drift", "concurrency", "concurrency"),
    # --- cooldown: from the last attempt (not the champion's own training); manual skips it
    ("cooldown after an attempt", state(DRIFT, last_attempt_at=ago(minutes=12)), policy(),
     False, "drift", "cooldown", "cooldown: last retrain 12 min ago, cooldown 1h, 48 min to go; drift waits"),
    ("no cooldown after a training", state(alert("metric_drop", ago(minutes=10)), last_trained_at=ago(minutes=30), last_attempt_at=ago(hours=2)), policy(),
     True, "metric_drop", None, "retrain on metric_drop"),
    ("cooldown counts from the attempt", state(PREDICTION_DRIFT, last_trained_at=ago(hours=5), last_attempt_at=ago(minutes=20)), policy(cooldown="1h"),
     False, "drift", "cooldown", "last retrain 20 min ago"),
    ("long cooldown", state(PREDICTION_DRIFT, last_attempt_at=ago(hours=2)), policy(cooldown="1d"),
     False, "drift", "cooldown", "last retrain 2 h ago, cooldown 1d, 22 h to go"),
    ("cooldown over", state(DRIFT, last_attempt_at=ago(hours=1)), policy(cooldown="1h"),
     True, "drift", None, "retrain on drift"),
    ("cooldown blocks schedule", state(last_trained_at=ago(days=8), last_attempt_at=ago(minutes=5)), WEEKLY,
     False, "schedule", "cooldown", "5 min ago"),
    ("cooldown blocks labels", state(new_labels=2000, last_attempt_at=ago(minutes=5)), LABELS,
     False, "new_labels", "cooldown", "55 min to go; new_labels waits"),
    ("a rollout blocks", state(DRIFT, rollout="v3 ramping at 50%"), policy(),
     False, "drift", "rollout", "rollout: v3 ramping at 50%"),
    ("a rollout blocks manual too", state(manual_reason="now", rollout="v3 canary at 10%"), policy(),
     False, "manual", "rollout", "rollout: v3 canary at 10%"),
    ("manual skips cooldown", state(DRIFT, manual_reason="now", last_attempt_at=ago(minutes=1)), policy(),
     True, "manual", None, "also firing: drift"),
    ("no cooldown without history", state(DRIFT, last_trained_at=None, last_attempt_at=None), policy(),
     True, "drift", None, "retrain on drift"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("state_", "policy_", "retrain", "trigger", "blocked_by", "words"),
    [pytest.param(*row[1:], id=row[0]) for row in ROWS],
)
def test_should_retrain(
    state_: RetrainState,
    policy_: RetrainingSpec,
    retrain: bool,
    trigger: str | None,
    blocked_by: str | None,
    words: str,
) -> None:
    decision = should_retrain(state_, policy_, NOW)
    assert (decision.retrain, decision.trigger, decision.blocked_by) == (
        retrain,
        trigger,
        blocked_by,
    ), decision.reason
    assert words in decision.reason


@pytest.mark.parametrize(("row"), [pytest.param(row, id=row[0]) for row in ROWS])
def test_decision_invariants(row: tuple[Any, ...]) -> None:
    decision = should_retrain(row[1], row[2], NOW)
    # retrain exactly when a trigger fired and nothing blocked it; a block needs a trigger
    assert decision.retrain is (decision.trigger is not None and decision.blocked_by is None)
    assert decision.blocked_by is None or decision.trigger is not None
    # the reason is one readable sentence that starts with what happened
    assert decision.reason
    assert "\n" not in decision.reason
    starts = {
        "schema_break": "schema break (",
        "disabled": "disabled: ",
        "concurrency": "concurrency: ",
        "cooldown": "cooldown: ",
        "rollout": "rollout: ",
        None: "retrain on " if decision.retrain else "no trigger: ",
    }
    assert decision.reason.startswith(starts[decision.blocked_by])


def test_quiet_reason_names_every_configured_trigger() -> None:
    decision = should_retrain(
        state(OLD_DRIFT, new_labels=120),
        policy(min_new_labels=1000, schedule="7d", on_metric_drop=False),
        NOW,
    )
    assert decision == RetrainDecision(
        False,
        "no trigger: metric-drop trigger off, 1 drift alert opened before the last training (an "
        "alert triggers one retrain), 120 of 1,000 new labels, schedule '7d' next due "
        "2025-03-08 12:00 UTC (in 5 d)",
    )


def test_several_alerts_of_a_kind_are_summed_up() -> None:
    decision = should_retrain(state(DRIFT, DATASET_DRIFT, PREDICTION_DRIFT), policy(), NOW)
    assert decision.reason == (
        "retrain on drift: 3 open drift alerts (dataset_drift, feature_drift, prediction_drift), "
        "the oldest opened 3 h ago"
    )


def test_cooldown_reason_in_full() -> None:
    decision = should_retrain(state(DROP, last_attempt_at=ago(minutes=12)), policy(), NOW)
    assert decision.reason == (
        "cooldown: last retrain 12 min ago, cooldown 1h, 48 min to go; metric_drop waits: "
        "metric_drop alert (critical, v3) opened 45 min ago"
    )


def test_alert_without_a_version() -> None:
    decision = should_retrain(state(replace(DRIFT, model_version=None)), policy(), NOW)
    assert decision.reason == "retrain on drift: feature_drift alert (warning) opened 30 min ago"


def test_naive_times_are_utc() -> None:
    naive = state(
        alert("metric_drop", datetime(2025, 3, 3, 11, 0)),
        last_trained_at=datetime(2025, 3, 1, 12, 0),
        last_attempt_at=datetime(2025, 3, 1, 12, 0),
    )
    decision = should_retrain(naive, policy(), datetime(2025, 3, 3, 12, 0))
    assert (decision.retrain, decision.trigger) == (True, "metric_drop")
    assert "opened 1 h ago" in decision.reason


def test_rule_constants() -> None:
    assert DRIFT_RULES == ("dataset_drift", "feature_drift", "prediction_drift")
    assert METRIC_DROP_RULES == ("metric_drop", "estimated_metric_drop")
    assert AUTOMATIC_TRIGGERS == ("metric_drop", "drift", "new_labels", "schedule")


def test_decisions_are_frozen() -> None:
    decision = should_retrain(state(), policy(), NOW)
    with pytest.raises(AttributeError):
        decision.retrain = True  # type: ignore[misc]
