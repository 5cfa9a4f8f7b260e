"""Which loaded model version answers a request: an immutable routing table, swapped whole.

The server keeps one :class:`RoutingTable` — the stable predictor, the candidate's (if a rollout
runs) and the deployment state they came from — and replaces it atomically when the state in the
store changes. A request reads the table once, so it is answered entirely by one consistent
table even while a new one is being built; no request waits for a version to load.

The choice itself is :func:`modelcycle.deployment.strategies.route`, a pure function; this module
only maps it to loaded predictors and arms: ``canary`` for the candidate of a canary or ramp,
``blue`` / ``green`` for the two slots of a blue-green switch, ``shadow`` for a candidate that
predicts beside the stable version without answering.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any

from modelcycle.data.records import Arm
from modelcycle.deployment.state import DeploymentState
from modelcycle.deployment.strategies import route, shadows
from modelcycle.serving.predictor import Predictor

SMOKE_LATENCY_MS = 1000.0
"""A candidate slower than this on one sample batch fails its smoke test."""


@dataclass(frozen=True)
class Routed:
    """The predictor that answers one request, its arm, and a shadow to run beside it.

    ``state`` is the request's ASGI state, where the answering version and arm are recorded (for
    metrics and response headers); a fallback to stable updates it.
    """

    predictor: Predictor
    arm: Arm
    shadow: Predictor | None = None
    state: dict[str, Any] | None = field(default=None, compare=False, repr=False)

    def record(self, predictor: Predictor, arm: Arm) -> None:
        """Note in the request's state which version and arm answer it."""
        if self.state is not None:
            self.state["model"], self.state["version"], self.state["arm"] = (
                predictor.name,
                predictor.version,
                arm,
            )


@dataclass(frozen=True)
class RoutingTable:
    """A consistent snapshot of what answers.

    Attributes:
        stable: The stable version's predictor.
        state: The deployment state the table was built from (``None``: no deployment yet, or a
            server pinned to one version).
        candidate: The candidate's predictor while a rollout runs and it is loaded.
    """

    stable: Predictor
    state: DeploymentState | None = None
    candidate: Predictor | None = None

    def pick(self, key: str | None, draw: float) -> Routed:
        """Route one request (see :func:`~modelcycle.deployment.strategies.route`)."""
        state, candidate = self.state, self.candidate
        if state is None or candidate is None or not state.active:
            return Routed(self.stable, "stable")
        if shadows(state):
            return Routed(self.stable, "stable", shadow=candidate)
        to_candidate = route(state, key, draw) == "candidate"
        if state.status == "blue_green":
            return Routed(candidate, "green") if to_candidate else Routed(self.stable, "blue")
        return Routed(candidate, "canary") if to_candidate else Routed(self.stable, "stable")

    def version(self, version: str) -> Predictor | None:
        """The loaded predictor of ``version``, if this table has it."""
        for predictor in (self.stable, self.candidate):
            if predictor is not None and predictor.version == version:
                return predictor
        return None

    def loaded(self) -> list[tuple[Predictor, Arm]]:
        """Every loaded predictor with the arm it answers for."""
        if self.candidate is None or self.state is None or not self.state.active:
            return [(self.stable, "stable")]
        if self.state.status == "blue_green":
            return [(self.stable, "blue"), (self.candidate, "green")]
        if self.state.status == "shadow":
            return [(self.stable, "stable"), (self.candidate, "shadow")]
        return [(self.stable, "stable"), (self.candidate, "canary")]

    @property
    def routing_key(self) -> str | None:
        """The feature whose value routes requests (the spec's ``routing_key``), if any."""
        return None if self.state is None else self.state.plan.routing_key


def smoke_test(candidate: Predictor, stable: Predictor | None) -> str | None:
    """Why ``candidate`` must not take traffic, or ``None`` if it may.

    Checks schema parity with the stable version (same inputs, same kinds), finite predictions
    on rows built from its schema, and the latency of that batch.
    """
    if stable is not None:
        ours = [(r.name, r.kind) for r in candidate.rules.features]
        theirs = [(r.name, r.kind) for r in stable.rules.features]
        if ours != theirs:
            missing = sorted({n for n, _ in theirs} - {n for n, _ in ours})
            extra = sorted({n for n, _ in ours} - {n for n, _ in theirs})
            return (
                f"v{candidate.version} takes different inputs than v{stable.version} "
                f"(missing {missing or 'none'}, extra {extra or 'none'}, or kinds differ)"
            )
    start = time.perf_counter()
    try:
        outputs = candidate.predict(candidate.check_columns())
    except Exception as err:
        return f"v{candidate.version} failed on sample rows: {type(err).__name__}: {err}"
    took = (time.perf_counter() - start) * 1000
    if candidate.model.task == "regression" and not all(
        math.isfinite(float(v)) for v in outputs.predictions
    ):
        return f"v{candidate.version} predicted non-finite values on sample rows"
    if took > SMOKE_LATENCY_MS:
        return (
            f"v{candidate.version} took {took:.0f} ms on sample rows (limit {SMOKE_LATENCY_MS:.0f})"
        )
    return None
