"""Optional API keys with two scopes: ``predict`` (predictions, labels) and ``admin``.

Keys come from the settings, as plain keys or as ``sha256:<hex>`` digests (so a deployment's
``.env`` need not hold the key itself); only digests are kept in memory and they are compared
in constant time. A request sends its key as ``Authorization: Bearer <key>`` or ``X-API-Key``.
With no predict keys configured, predictions are open; with no admin keys, the admin API is
closed (never open by default).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Literal

from pydantic import SecretStr

Scope = Literal["predict", "admin"]
DIGEST_PREFIX = "sha256:"


def digest(key: str) -> bytes:
    """The sha256 digest of a key."""
    return hashlib.sha256(key.encode()).digest()


def _stored(keys: Iterable[SecretStr]) -> tuple[bytes, ...]:
    out = []
    for secret in keys:
        value = secret.get_secret_value().strip()
        if value.startswith(DIGEST_PREFIX):
            out.append(bytes.fromhex(value.removeprefix(DIGEST_PREFIX)))
        elif value:
            out.append(digest(value))
    return tuple(out)


@dataclass(frozen=True)
class Denied:
    """Why a request may not go on: HTTP status and message."""

    status: int
    message: str


@dataclass(frozen=True)
class KeyRing:
    """The configured key digests by scope."""

    predict: tuple[bytes, ...]
    admin: tuple[bytes, ...]

    @classmethod
    def from_settings(cls, predict: Iterable[SecretStr], admin: Iterable[SecretStr]) -> KeyRing:
        """Digest the settings' keys (``sha256:<hex>`` values are digests already)."""
        return cls(_stored(predict), _stored(admin))

    def check(self, scope: Scope, headers: Mapping[str, str]) -> Denied | None:
        """``None`` if the request's key allows ``scope``, else why not.

        Admin keys may also predict.
        """
        allowed = self.admin if scope == "admin" else self.predict + self.admin
        if scope == "predict" and not self.predict:
            return None
        if scope == "admin" and not self.admin:
            return Denied(
                403,
                "the admin API is disabled: no admin key is configured "
                "(set MODELCYCLE_ADMIN_API_KEYS and restart the server)",
            )
        key = _presented(headers)
        if key is None:
            return Denied(
                401, f"this endpoint needs a {scope} API key: send 'Authorization: Bearer <key>'"
            )
        given = digest(key)
        if _matches(given, allowed):
            return None
        if scope == "admin" and _matches(given, self.predict):
            return Denied(403, "this key may predict but not use the admin API")
        return Denied(401, "the API key is not valid")


def _presented(headers: Mapping[str, str]) -> str | None:
    auth = headers.get("authorization")
    if auth and auth.lower().startswith("bearer "):
        return auth[7:].strip() or None
    return headers.get("x-api-key") or None


def _matches(given: bytes, allowed: tuple[bytes, ...]) -> bool:
    found = False
    for candidate in allowed:  # compare with every key so timing does not tell which matched
        found |= hmac.compare_digest(given, candidate)
    return found
