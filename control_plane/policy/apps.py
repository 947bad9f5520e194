"""Apps (virtual keys): who may call Switchyard, with which policies and models, how often.

Declared in the policies folder's `apps.yaml` (README: "Apps and keys"). Keys are kept only as
SHA-256 digests: a request's key is hashed and looked up, so the key itself is never stored,
logged or compared byte by byte. Without an `apps.yaml` every caller is let in (local use).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass

from control_plane.ledger import AppLimits

APPS_FILE_STEM = "apps"  # policies/apps.yaml; no policy may take this name


def key_digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def presented_key(headers: Mapping[str, str]) -> str | None:
    """The app's key: `Authorization: Bearer <key>` (OpenAI SDKs) or `x-api-key` (Anthropic's)."""
    authorization = headers.get("authorization", "")
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return headers.get("x-api-key") or None


@dataclass(frozen=True)
class App:
    name: str
    policies: frozenset[str] | None = None  # None: every policy
    models: frozenset[str] | None = None  # None: every model (and the router alias)
    requests_per_minute: int | None = None  # None: no limit
    limits: AppLimits = AppLimits()  # budgets and tokens per minute, kept by the ledger

    @property
    def spends_limited(self) -> bool:
        return self.limits.any

    def may_use_policy(self, policy: str) -> bool:
        return self.policies is None or policy in self.policies

    def may_use_model(self, model: str) -> bool:
        return self.models is None or model in self.models


@dataclass(frozen=True)
class Apps:
    """The declared apps; `by_digest` maps a key's SHA-256 to its app."""

    by_digest: Mapping[str, App]
    source: str
    version: str

    def authenticate(self, headers: Mapping[str, str]) -> App | None:
        key = presented_key(headers)
        return self.by_digest.get(key_digest(key)) if key else None

    @property
    def names(self) -> list[str]:
        return sorted(app.name for app in self.by_digest.values())
