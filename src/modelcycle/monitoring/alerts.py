"""Alert rules over a monitoring report, their lifecycle in the store, and where they are sent.

:func:`evaluate_rules` is pure: a monitoring report (its JSON form) and the ``[monitoring.alerts]``
thresholds in, the firing :class:`Finding` s and the rules it could judge out. :func:`verdict`
turns findings into ``healthy`` / ``degraded`` / ``failing``.

:func:`apply_findings` keeps one active alert per rule and model (per feature for
``feature_drift``): a finding opens its alert, or updates the severity and message of the one
already active; an active alert whose rule was judged again and no longer fires is resolved.
Rules that could not be judged (too few rows or labels) leave their alerts as they are.

:class:`Notifier` sends every opened or resolved alert to the log and, when a webhook URL is
set, as a JSON POST with a Slack-compatible ``text`` — retried with backoff, and never raising:
a broken webhook must not break monitoring.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import sqlalchemy as sa
from loguru import logger
from sqlalchemy.engine import Connection

from modelcycle.config.spec import AlertsSpec
from modelcycle.store.alerts import open_alert, resolve_alerts
from modelcycle.store.schema import ACTIVE_ALERT, alerts

Severity = Literal["warning", "critical"]
Verdict = Literal["healthy", "degraded", "failing"]

RULES = (
    "no_traffic",
    "schema_break",
    "dataset_drift",
    "feature_drift",
    "prediction_drift",
    "ood_rate",
    "metric_drop",
    "estimated_metric_drop",
    "error_rate",
    "latency_p99",
)
"""Every monitoring rule, in the order findings are listed (critical findings first)."""
KEY_PREFIX = "monitor"


@dataclass(frozen=True)
class Finding:
    """One rule firing on one window.

    Attributes:
        rule: One of :data:`RULES`.
        severity: ``warning`` or ``critical``.
        message: One readable sentence with the numbers.
        feature: The feature concerned (``feature_drift``, ``schema_break``).
        value: The measured value.
        threshold: The threshold it reached.
    """

    rule: str
    severity: Severity
    message: str
    feature: str | None = None
    value: float | None = None
    threshold: float | None = None

    def dedup_key(self, model_name: str) -> str:
        """The alert's identity: one active alert per rule and model (and feature)."""
        return dedup_key(model_name, self.rule, self.feature)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready fields."""
        return asdict(self)


def dedup_key(model_name: str, rule: str, feature: str | None = None) -> str:
    """``monitor:<model>:<rule>[:<feature>]``."""
    return ":".join([KEY_PREFIX, model_name, rule] + ([feature] if feature else []))


@dataclass(frozen=True)
class Evaluation:
    """The rules' outcome on one report: what fired, and what could be judged at all."""

    findings: list[Finding]
    evaluated: frozenset[str]

    @property
    def verdict(self) -> Verdict:
        """The report's verdict from its findings."""
        return verdict(self.findings)


def verdict(findings: Iterable[Finding]) -> Verdict:
    """``failing`` with a critical finding, ``degraded`` with a warning, else ``healthy``."""
    severities = {finding.severity for finding in findings}
    if "critical" in severities:
        return "failing"
    return "degraded" if severities else "healthy"


def evaluate_rules(report: dict[str, Any], policy: AlertsSpec) -> Evaluation:
    """Judge a monitoring report (its JSON form) against the alert thresholds.

    Args:
        report: A monitoring report (:func:`modelcycle.monitoring.run.monitor`).
        policy: The ``[monitoring.alerts]`` thresholds.
    """
    found: list[Finding] = []
    judged: set[str] = set()
    operations = report.get("operations") or {}
    requests = int(operations.get("requests") or 0)
    judged.add("no_traffic")
    if requests < policy.min_requests:
        found.append(
            Finding(
                "no_traffic",
                "warning",
                f"{requests} predictions in {report['window']['description']} (least "
                f"{policy.min_requests}): is the model still called?",
                value=requests,
                threshold=policy.min_requests,
            )
        )
        return Evaluation(found, frozenset(judged))
    schema = report.get("schema") or {}
    judged.add("schema_break")
    found += _schema_findings(schema)
    drift = report.get("drift")
    if drift is not None:
        judged.update({"dataset_drift", "feature_drift", "prediction_drift"})
        found += _drift_findings(drift, schema, policy)
    judged.update({"ood_rate", "error_rate", "latency_p99"})
    found += _operational_findings(report, policy)
    perf = report.get("performance") or {}
    for rule, basis in (("metric_drop", "realised"), ("estimated_metric_drop", "estimated")):
        change = perf.get(f"{basis}_change")
        if change is None or (basis == "realised" and perf.get("labelled", 0) < policy.min_labels):
            continue
        judged.add(rule)
        if change >= policy.metric_drop:
            severity: Severity = "critical" if change >= policy.metric_drop_critical else "warning"
            metric = perf.get(f"{basis}_metric") or perf.get("metric")
            found.append(
                Finding(
                    rule,
                    severity,
                    f"{basis} {metric} is {change:.0%} worse than at training "
                    f"({_num(perf[basis].get(metric))} vs {_num(perf['reference'].get(metric))})",
                    value=change,
                    threshold=policy.metric_drop,
                )
            )
    order = {rule: index for index, rule in enumerate(RULES)}
    found.sort(key=lambda f: (f.severity != "critical", order[f.rule], f.feature or ""))
    return Evaluation(found, frozenset(judged))


def _schema_findings(schema: dict[str, Any]) -> list[Finding]:
    found = []
    for name, share in (schema.get("vanished") or {}).items():
        found.append(_broken(name, f"missing in {share:.0%} of rows"))
    for name, share in (schema.get("invalid") or {}).items():
        found.append(_broken(name, f"not a number in {share:.0%} of rows"))
    return found


def _broken(name: str, what: str) -> Finding:
    return Finding(
        "schema_break",
        "critical",
        f"feature {name!r} is {what}: the callers' data no longer matches the schema (a renamed "
        "or retyped column?); fix the data or the callers — retraining cannot",
        feature=name,
    )


def _drift_findings(
    drift: dict[str, Any], schema: dict[str, Any], policy: AlertsSpec
) -> list[Finding]:
    found: list[Finding] = []
    broken = {finding.feature for finding in _schema_findings(schema)}
    for feature in drift["features"]:
        name = feature["name"]
        if name in broken:
            continue
        statistics = feature.get("statistics") or {}
        psi = statistics.get("psi")
        if psi is not None:  # judged above its sampling noise, as the drift verdict is
            psi = max(0.0, psi - statistics.get("psi_noise", 0.0))
        if feature["verdict"] == "drift" or (psi is not None and psi >= policy.feature_psi):
            why = f"psi beyond noise {psi:.3f} >= {policy.feature_psi:g}"
            why = "; ".join(feature["reasons"]) or why
            found.append(
                Finding(
                    "feature_drift",
                    "warning",
                    f"feature {name!r} drifted: {why}",
                    feature=name,
                    value=psi,
                    threshold=policy.feature_psi,
                )
            )
    if drift["dataset_drifted"]:
        found.append(
            Finding(
                "dataset_drift",
                "critical",
                f"{drift['dataset_drift_share']:.0%} of the features drifted "
                f"({', '.join(drift['drifted'])})",
                value=drift["dataset_drift_share"],
            )
        )
    prediction = drift.get("prediction")
    if prediction is not None and prediction["verdict"] == "drift":
        found.append(
            Finding(
                "prediction_drift",
                "warning",
                f"the predictions' distribution moved: {'; '.join(prediction['reasons'])}",
                value=(prediction.get("statistics") or {}).get("psi"),
            )
        )
    return found


def _operational_findings(report: dict[str, Any], policy: AlertsSpec) -> list[Finding]:
    found: list[Finding] = []
    ood = report.get("ood") or {}
    rate = ood.get("rate")
    if rate is not None and rate >= policy.ood_rate:
        severity: Severity = "critical" if rate >= policy.ood_rate_critical else "warning"
        top = ", ".join(list((ood.get("by_reason") or {}).keys())[:3])
        found.append(
            Finding(
                "ood_rate",
                severity,
                f"{rate:.1%} of rows are out of distribution (limit {policy.ood_rate:.0%})"
                + (f"; most often {top}" if top else ""),
                value=rate,
                threshold=policy.ood_rate,
            )
        )
    operations = report.get("operations") or {}
    error_rate = operations.get("error_rate")
    if error_rate is not None and error_rate >= policy.error_rate:
        found.append(
            Finding(
                "error_rate",
                "warning",
                f"{error_rate:.1%} of predictions failed (limit {policy.error_rate:.1%})",
                value=error_rate,
                threshold=policy.error_rate,
            )
        )
    p99 = operations.get("p99_latency_ms")
    if p99 is not None and p99 >= policy.p99_latency_ms:
        found.append(
            Finding(
                "latency_p99",
                "warning",
                f"p99 latency {p99:.0f} ms (limit {policy.p99_latency_ms:g} ms)",
                value=p99,
                threshold=policy.p99_latency_ms,
            )
        )
    return found


def _num(value: Any) -> str:
    return "n/a" if value is None else f"{value:,.4g}"


@dataclass
class AlertChanges:
    """What :func:`apply_findings` did: alerts opened, updated, resolved (as table rows)."""

    opened: list[dict[str, Any]] = field(default_factory=list)
    updated: list[dict[str, Any]] = field(default_factory=list)
    resolved: list[dict[str, Any]] = field(default_factory=list)


def apply_findings(
    conn: Connection,
    model_name: str,
    model_version: str | None,
    evaluation: Evaluation,
    *,
    run_id: int | None = None,
) -> AlertChanges:
    """Open, update and resolve the model's monitoring alerts after a run (caller commits).

    Args:
        conn: An open connection, in the transaction that saves the run.
        model_name: The registered model.
        model_version: The version the run judged.
        evaluation: The run's :class:`Evaluation`.
        run_id: The monitoring run, recorded in each alert's details.
    """
    changes = AlertChanges()
    firing: set[str] = set()
    for finding in evaluation.findings:
        key = finding.dedup_key(model_name)
        firing.add(key)
        details = {**finding.as_dict(), "run_id": run_id}
        alert_id, opened = open_alert(
            conn,
            finding.rule,
            model_name,
            model_version,
            finding.severity,
            finding.message,
            details,
            key,
        )
        row = _alert(conn, alert_id)
        if opened:
            changes.opened.append(row)
        elif (row["severity"], row["message"], row["model_version"]) != (
            finding.severity,
            finding.message,
            model_version,
        ):  # still firing: it now concerns the version judged (after a promotion, the new one)
            conn.execute(
                sa.update(alerts)
                .where(alerts.c.id == alert_id)
                .values(
                    severity=finding.severity,
                    message=finding.message,
                    details=details,
                    model_version=model_version,
                )
            )
            changes.updated.append(_alert(conn, alert_id))
    prefix = dedup_key(model_name, "")
    active = conn.execute(
        sa.select(alerts.c.dedup_key, alerts.c.rule)
        .where(alerts.c.model_name == model_name)
        .where(alerts.c.dedup_key.startswith(prefix))
        .where(ACTIVE_ALERT)
    ).all()
    stale = [key for key, rule in active if rule in evaluation.evaluated and key not in firing]
    changes.resolved = resolve_alerts(conn, stale)
    return changes


def _alert(conn: Connection, alert_id: int) -> dict[str, Any]:
    return dict(conn.execute(sa.select(alerts).where(alerts.c.id == alert_id)).one()._mapping)


class Notifier:
    """Sends alert changes to the log and, when configured, to a webhook.

    Args:
        webhook_url: Where to POST each change as JSON; the log only when None.
        retries: Attempts per change before giving up (and logging the failure).
        backoff: Seconds before the second attempt; doubled after each failure.
        timeout: Seconds per attempt.
    """

    def __init__(
        self,
        webhook_url: str | None = None,
        *,
        retries: int = 3,
        backoff: float = 0.5,
        timeout: float = 5.0,
    ) -> None:
        self.webhook_url = webhook_url
        self.retries = retries
        self.backoff = backoff
        self.timeout = timeout

    def send(self, changes: AlertChanges) -> int:
        """Send every opened, updated and resolved alert; returns the webhook posts delivered."""
        delivered = 0
        for event, rows in (
            ("opened", changes.opened),
            ("updated", changes.updated),
            ("resolved", changes.resolved),
        ):
            for row in rows:
                text = alert_text(event, row)
                if event == "resolved":
                    logger.info(text)
                elif row["severity"] == "critical":
                    logger.error(text)
                else:
                    logger.warning(text)
                if self.webhook_url and self._post(_payload(event, row, text)):
                    delivered += 1
        return delivered

    def _post(self, payload: dict[str, Any]) -> bool:
        import httpx

        assert self.webhook_url is not None
        delay = self.backoff
        problem = ""
        for attempt in range(1, self.retries + 1):
            try:
                response = httpx.post(self.webhook_url, json=payload, timeout=self.timeout)
                if response.status_code < 300:
                    return True
                problem = f"HTTP {response.status_code}"
            except httpx.HTTPError as err:
                problem = f"{type(err).__name__}: {err}"
            if attempt < self.retries:
                time.sleep(delay)
                delay *= 2
        logger.error(
            "could not deliver alert {} to the webhook after {} attempts ({}); it stays in "
            "the store: modelcycle alerts list",
            payload["alert"]["id"],
            self.retries,
            problem,
        )
        return False


def alert_text(event: str, row: dict[str, Any]) -> str:
    """One line for the log and chat: ``[critical] rent: dataset_drift opened — message``."""
    version = f" v{row['model_version']}" if row.get("model_version") else ""
    return (
        f"[{row['severity']}] {row['model_name']}{version}: alert {row['id']} {row['rule']} "
        f"{event} — {row['message']}"
    )


def _payload(event: str, row: dict[str, Any], text: str) -> dict[str, Any]:
    alert = {
        name: value.isoformat() if hasattr(value, "isoformat") else value
        for name, value in row.items()
    }
    return {"text": text, "event": event, "alert": alert}
