"""Retraining triggers: whether the project should retrain now, and why (not).

:func:`should_retrain` is a pure function of the :class:`RetrainState` (what the store knows:
trainings, running retrains, open alerts, new labels, a manual request), the ``[retraining]``
policy and the time. It returns a :class:`RetrainDecision` whose ``reason`` is always one readable
sentence, also when nothing happens.

Triggers, first to last (when several fire, the first is reported and the others are named):

- ``manual``: someone asked for a retrain (``manual_reason``).
- ``metric_drop``: an open ``metric_drop`` or ``estimated_metric_drop`` alert
  (``on_metric_drop``).
- ``drift``: an open ``dataset_drift``, ``feature_drift`` or ``prediction_drift`` alert
  (``on_drift``).
- ``new_labels``: at least ``min_new_labels`` labels arrived since the last training.
- ``schedule``: the schedule's next time after the last training has passed (or there was no
  training yet).

Alerts trigger on their *opening*, not on being open: only an alert opened after
``last_trained_at`` counts. An alert that stays open after a retrain was already acted on — the
retrain had the drifted production data (``recent_window``) to learn from — and counting it again
would retrain every cooldown for as long as the alert stays open, each time on much the same data,
whether or not the retrain helps. If the problem persists, the alert stays visible, and the
monitor opens a new one once it resolved and fires again; the schedule and the label trigger keep
working meanwhile. A retrain that *failed* does not move ``last_trained_at``, so its alert still
counts and the retrain is retried once the cooldown has passed.

Blocks, from the most lasting to the most passing (the first that applies is reported):

- ``schema_break``: an open ``schema_break`` alert (or ``schema_broken``) blocks every retrain,
  a manual one too: training on data of the wrong shape cannot help, a person must fix the data
  (or accept the new schema) first. Its age does not matter.
- ``disabled``: ``auto = false``: automatic triggers are reported but do not retrain.
- ``rollout``: a rollout is in progress: its candidate is being judged, and a second challenger
  could not be deployed beside it (manual requests too).
- ``concurrency``: ``running`` retrains already reach ``max_concurrent`` (manual ones too).
- ``cooldown``: less than ``cooldown`` since the last retrain attempt (the champion's own
  training does not count). A manual request skips it, as it skips ``auto = false``.

``retrain`` is true exactly when a trigger fired and nothing blocked it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from modelcycle.config.schedule import parse_schedule
from modelcycle.config.spec import RetrainingSpec, parse_duration
from modelcycle.data.records import as_utc

Trigger = Literal["manual", "schedule", "drift", "metric_drop", "new_labels"]
Block = Literal["schema_break", "cooldown", "concurrency", "disabled", "rollout"]

DRIFT_RULES: tuple[str, ...] = ("dataset_drift", "feature_drift", "prediction_drift")
"""Alert rules that count as drift."""
METRIC_DROP_RULES: tuple[str, ...] = ("metric_drop", "estimated_metric_drop")
"""Alert rules that count as a metric drop."""
SCHEMA_BREAK_RULE = "schema_break"
"""The alert rule of a schema break, which blocks every retrain."""
AUTOMATIC_TRIGGERS: tuple[Trigger, ...] = ("metric_drop", "drift", "new_labels", "schedule")
"""Automatic triggers in the order they are reported when several fire."""


@dataclass(frozen=True)
class AlertInfo:
    """An open alert, as far as triggers care.

    Attributes:
        rule: The alert's rule, e.g. ``feature_drift`` or ``metric_drop``.
        severity: ``warning``, ``critical``, ...
        opened_at: When the alert opened.
        model_version: The model version it concerns, if any.
    """

    rule: str
    severity: str
    opened_at: datetime
    model_version: str | None = None


@dataclass(frozen=True)
class RetrainState:
    """What is known about the project's trainings, alerts and labels.

    Attributes:
        last_trained_at: When the current champion was trained or the last retrain finished
            (whether its challenger won or not); ``None`` when unknown.
        last_attempt_at: When the last retrain started, whatever its outcome.
        running: Retrains running now.
        open_alerts: The project's open alerts.
        new_labels: Labels received since ``last_trained_at``.
        manual_reason: Someone asked for a retrain, with this reason.
        schema_broken: The data's schema is broken (an open ``schema_break`` alert counts too).
        rollout: A rollout in progress (e.g. ``"v3 ramping at 50%"``), or ``None``.
    """

    last_trained_at: datetime | None = None
    last_attempt_at: datetime | None = None
    running: int = 0
    open_alerts: tuple[AlertInfo, ...] = ()
    new_labels: int = 0
    manual_reason: str | None = None
    schema_broken: bool = False
    rollout: str | None = None


@dataclass(frozen=True)
class RetrainDecision:
    """Whether to retrain now, and why (not).

    Attributes:
        retrain: Start a retrain now.
        reason: One sentence with the numbers, also when not retraining.
        trigger: The (first) trigger that fired, or ``None`` when none did.
        blocked_by: What kept a fired trigger from retraining, or ``None``.
    """

    retrain: bool
    reason: str
    trigger: Trigger | None = None
    blocked_by: Block | None = None


def should_retrain(state: RetrainState, policy: RetrainingSpec, now: datetime) -> RetrainDecision:
    """Decide whether to retrain now.

    Args:
        state: Trainings, running retrains, open alerts, new labels and a manual request.
        policy: The spec's ``[retraining]`` section.
        now: The time of the decision; naive datetimes are taken to be UTC.

    Returns:
        ``retrain`` with the first trigger that fired when nothing blocks it; otherwise the
        trigger (if any) and the block, with a reason that says what would unblock it.
    """
    now = as_utc(now)
    fired = _fired(state, policy, now)
    if state.manual_reason is not None:
        why = state.manual_reason.strip()
        fired.insert(0, ("manual", f"manual request ({why or 'no reason given'})"))
    schema = _schema_break(state, now)
    if not fired:
        quiet = f"no trigger: {_quiet(state, policy, now)}"
        if schema:
            quiet += f"; a schema break ({schema}) would block any retrain until a person fixes it"
        return RetrainDecision(False, quiet)
    trigger, detail = fired[0]
    others = [name for name, _ in fired[1:]]
    what = f"{detail}; also firing: {', '.join(others)}" if others else detail
    manual = trigger == "manual"
    if schema:
        return RetrainDecision(
            False,
            f"schema break ({schema}): no retrain, not even a manual one, until a person fixes "
            f"the data (or accepts the new schema) and resolves the alert; {trigger} waits: "
            f"{what}",
            trigger,
            "schema_break",
        )
    if not manual and not policy.auto:
        return RetrainDecision(
            False,
            f"disabled: retraining.auto is false, so {trigger} does not retrain by itself "
            f"(run `modelcycle retrain` to retrain by hand): {what}",
            trigger,
            "disabled",
        )
    if state.rollout is not None:
        return RetrainDecision(
            False,
            f"rollout: {state.rollout}; a new challenger waits until it is promoted or rolled "
            f"back (or `modelcycle rollout abort`); {trigger} waits: {what}",
            trigger,
            "rollout",
        )
    if state.running >= policy.max_concurrent:
        return RetrainDecision(
            False,
            f"concurrency: {state.running} retrain{'s' if state.running != 1 else ''} running, "
            f"max_concurrent {policy.max_concurrent}; {trigger} waits: {what}",
            trigger,
            "concurrency",
        )
    if not manual:
        cooling = _cooldown(state, policy, now)
        if cooling:
            return RetrainDecision(
                False, f"{cooling}; {trigger} waits: {what}", trigger, "cooldown"
            )
    return RetrainDecision(True, f"retrain on {trigger}: {what}", trigger)


# ----------------------------------------------------------------------------------- triggers


def _fired(state: RetrainState, policy: RetrainingSpec, now: datetime) -> list[tuple[Trigger, str]]:
    """The automatic triggers that fire, in :data:`AUTOMATIC_TRIGGERS` order, with details."""
    fired: list[tuple[Trigger, str]] = []
    if policy.on_metric_drop and (alerts := _fresh(state, METRIC_DROP_RULES)):
        fired.append(("metric_drop", _alerts_detail(alerts, "metric-drop", now)))
    if policy.on_drift and (alerts := _fresh(state, DRIFT_RULES)):
        fired.append(("drift", _alerts_detail(alerts, "drift", now)))
    if policy.min_new_labels is not None and state.new_labels >= policy.min_new_labels:
        fired.append(
            (
                "new_labels",
                f"{state.new_labels:,} new labels since the last training (threshold "
                f"{policy.min_new_labels:,})",
            )
        )
    if policy.schedule is not None:
        schedule = parse_schedule(policy.schedule)
        if state.last_trained_at is None:
            fired.append(("schedule", f"schedule {schedule.text!r} with no training recorded yet"))
        else:
            due = schedule.next_after(state.last_trained_at)
            if due <= now:
                fired.append(
                    (
                        "schedule",
                        f"schedule {schedule.text!r} was due at {_when(due)} "
                        f"({_span(now - due)} ago)",
                    )
                )
    return fired


def _fresh(state: RetrainState, rules: tuple[str, ...]) -> list[AlertInfo]:
    """Open alerts of ``rules`` opened after the last training, oldest first."""
    since = state.last_trained_at
    return sorted(
        (
            alert
            for alert in state.open_alerts
            if alert.rule in rules and (since is None or as_utc(alert.opened_at) > as_utc(since))
        ),
        key=lambda alert: as_utc(alert.opened_at),
    )


def _alerts_detail(alerts: list[AlertInfo], kind: str, now: datetime) -> str:
    first = alerts[0]
    age = _span(now - as_utc(first.opened_at))
    if len(alerts) == 1:
        version = f", v{first.model_version}" if first.model_version else ""
        return f"{first.rule} alert ({first.severity}{version}) opened {age} ago"
    rules = ", ".join(sorted({alert.rule for alert in alerts}))
    return f"{len(alerts)} open {kind} alerts ({rules}), the oldest opened {age} ago"


def _quiet(state: RetrainState, policy: RetrainingSpec, now: datetime) -> str:
    """Why no trigger fired: the state of each configured trigger."""
    parts: list[str] = []
    missing: list[str] = []
    for kind, rules, on in (
        ("metric-drop", METRIC_DROP_RULES, policy.on_metric_drop),
        ("drift", DRIFT_RULES, policy.on_drift),
    ):
        stale = sum(alert.rule in rules for alert in state.open_alerts)
        if not on:
            parts.append(f"{kind} trigger off")
        elif stale:
            parts.append(
                f"{stale} {kind} alert{'s' if stale > 1 else ''} opened before the last training "
                "(an alert triggers one retrain)"
            )
        else:
            missing.append(kind)
    if missing:
        parts.insert(0, f"no {' or '.join(missing)} alert since the last training")
    if policy.min_new_labels is not None:
        parts.append(f"{state.new_labels:,} of {policy.min_new_labels:,} new labels")
    if policy.schedule is not None and state.last_trained_at is not None:
        due = parse_schedule(policy.schedule).next_after(state.last_trained_at)
        parts.append(
            f"schedule {policy.schedule.strip()!r} next due {_when(due)} (in {_span(due - now)})"
        )
    return ", ".join(parts)


# ----------------------------------------------------------------------------------- blocks


def _schema_break(state: RetrainState, now: datetime) -> str | None:
    """What shows the schema is broken, or ``None`` when it is not."""
    alerts = sorted(
        (alert for alert in state.open_alerts if alert.rule == SCHEMA_BREAK_RULE),
        key=lambda alert: as_utc(alert.opened_at),
    )
    if alerts:
        return f"a schema_break alert open for {_span(now - as_utc(alerts[0].opened_at))}"
    if state.schema_broken:
        return "the data's schema is marked broken"
    return None


def _cooldown(state: RetrainState, policy: RetrainingSpec, now: datetime) -> str | None:
    """Why the cooldown still runs, or ``None`` when it has passed.

    It counts from the last retrain *attempt* only: the champion's own training does not start
    one, so drift found right after a manual ``train`` can still retrain on production data.
    """
    if state.last_attempt_at is None:
        return None
    since = as_utc(state.last_attempt_at)
    cooldown = parse_duration(policy.cooldown)
    elapsed = (now - since).total_seconds()
    if elapsed >= cooldown:
        return None
    return (
        f"cooldown: last retrain {_span(now - since)} ago, cooldown {policy.cooldown.strip()}, "
        f"{_seconds(cooldown - elapsed)} to go"
    )


# ----------------------------------------------------------------------------------- wording


def _when(moment: datetime) -> str:
    return f"{as_utc(moment):%Y-%m-%d %H:%M} UTC"


def _span(delta: timedelta) -> str:
    return _seconds(delta.total_seconds())


def _seconds(seconds: float) -> str:
    """A duration in its largest unit and the next: ``'45 s'``, ``'12 min'``, ``'2 d 3 h'``."""
    left = max(int(seconds), 0)
    units = (("d", 86400), ("h", 3600), ("min", 60), ("s", 1))
    for index, (unit, size) in enumerate(units):
        if left >= size or unit == "s":
            count, rest = divmod(left, size)
            text = f"{count} {unit}"
            if index + 1 < len(units):
                smaller, smaller_size = units[index + 1]
                if rest // smaller_size:
                    text += f" {rest // smaller_size} {smaller}"
            return text
    raise AssertionError("unreachable")  # pragma: no cover
