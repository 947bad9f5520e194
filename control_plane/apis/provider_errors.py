"""A provider's error body, read once for everyone who needs it: OpenAI's shape (`{"error":
{message, type, code}}`) and Anthropic's (`{"type": "error", "error": {type, message}}`) both
keep the error object under `error`. Translation, the guarded path's retry rules and the
pass-through of an error all read it here."""

from __future__ import annotations

import json
from dataclasses import dataclass

# How providers say "the conversation is longer than this model's context window".
CONTEXT_CODES = ("context_length_exceeded", "string_above_max_length")
CONTEXT_PHRASES = ("context length", "context window", "maximum context", "too many tokens",
                   "prompt is too long")  # (the last: Anthropic's wording)


@dataclass(frozen=True)
class ProviderError:
    message: str
    type: str | None = None
    code: str | None = None

    @property
    def context_length_exceeded(self) -> bool:
        lowered = self.message.lower()
        return self.code in CONTEXT_CODES or any(phrase in lowered for phrase in CONTEXT_PHRASES)


def read_error(raw: bytes) -> ProviderError | None:
    """The error object of a provider's error body; None when the body has none (not JSON, or
    another shape: an HTML page from a proxy, say)."""
    try:
        error = json.loads(raw).get("error")
    except (ValueError, AttributeError, RecursionError):
        return None
    if not isinstance(error, dict) or not isinstance(error.get("message"), str):
        return None
    kind, code = error.get("type"), error.get("code")
    return ProviderError(error["message"], kind if isinstance(kind, str) else None,
                         code if isinstance(code, str) else None)


def as_text(raw: bytes) -> str:
    """A body that is no error object, shortened for a message."""
    return f"provider error: {raw.decode('utf-8', 'replace')[:500]}"
