"""Routing between the stable and the candidate version: pure functions of the state.

:func:`route` picks the arm that answers a request. With a routing key (an ``X-Routing-Key``
header, or the spec's ``routing_key`` feature) the choice is a stable hash of the key, so the
same key always lands on the same arm while the weight stays the same (and a key on the
candidate at 10% stays there at 25%); without one it is a uniform random draw.
"""

from __future__ import annotations

import hashlib
from typing import Literal

from modelcycle.deployment.state import DeploymentState

Route = Literal["stable", "candidate"]


def bucket(key: str) -> float:
    """A stable position in [0, 100) for a routing key."""
    digest = hashlib.blake2b(key.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64 * 100


def route(state: DeploymentState, key: str | None, draw: float) -> Route:
    """Which version answers a request.

    Args:
        state: The deployment state (only ``active``, ``weight`` and ``status`` are read).
        key: The routing key, or ``None`` for random routing.
        draw: A uniform random number in [0, 1), used when there is no key.

    Returns:
        ``candidate`` for the candidate's share of traffic, else ``stable``. Shadow never routes
        to the candidate (it predicts beside stable, see :func:`shadows`).
    """
    if not state.active or state.status == "shadow" or state.weight <= 0:
        return "stable"
    position = bucket(key) if key is not None else draw * 100
    return "candidate" if position < state.weight else "stable"


def shadows(state: DeploymentState) -> bool:
    """Whether the candidate should also predict every request, off the response path."""
    return state.active and state.status == "shadow"
