"""FCM delivery policy: what each FCM answer means for a device token, and how long to wait before
re-sending. Pure: the notifier adapter (adapters/fcm_notifier.py) applies it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

# ── How FCM answered ─────────────────────────────────────────────────────────────────────────────


class TokenFate(StrEnum):
    STALE = "stale"  # the token will never work again: delete it
    TRANSIENT = "transient"  # throttled or a server hiccup: retry this token
    FAILED = "failed"  # anything else: count it, keep the token


STALE_CODES = frozenset({"UNREGISTERED", "SENDER_ID_MISMATCH"})
TRANSIENT_CODES = frozenset(
    {"QUOTA_EXCEEDED", "RESOURCE_EXHAUSTED", "UNAVAILABLE", "INTERNAL", "DEADLINE_EXCEEDED"}
)


def token_fate(code: str, http_status: int | None, message: str = "") -> TokenFate:
    """How to treat one token after FCM answered `code` (FCM's errorCode, else the platform code).

    INVALID_ARGUMENT means a bad token only when FCM says so: the same code also answers a malformed
    message, and that must not wipe every device of every recipient.
    """
    if code in STALE_CODES:
        return TokenFate.STALE
    if code == "INVALID_ARGUMENT":
        return TokenFate.STALE if "token" in message.lower() else TokenFate.FAILED
    if code in TRANSIENT_CODES or http_status == 429 or (http_status is not None and http_status >= 500):
        return TokenFate.TRANSIENT
    return TokenFate.FAILED


def backoff_s(retry: int, base_s: float, cap_s: float, retry_after_s: float | None = None) -> float:
    """Wait before retry number `retry` (0-based): exponential, or the server's Retry-After, capped."""
    wait = base_s * 2**retry
    if retry_after_s is not None and retry_after_s > wait:
        wait = retry_after_s
    return max(0.0, min(wait, cap_s))


def http_call_worst_s(
    timeout_s: float, connect: int, read: int, status: int, backoff_factor: float, backoff_max_s: float
) -> float:
    """The longest one HTTP call can take under a urllib3 Retry (firebase_admin's own retries beneath
    FcmNotifier): every attempt the retries allow, each spending its whole connect and read timeout,
    with urllib3's exponential backoff between them. Retry-After waits are not bounded by urllib3 and
    are not counted (FCM sends them with 429, which firebase_admin does not retry itself)."""
    attempts = 1 + connect + read + status
    # urllib3 waits nothing after the first error, then factor × 2^(n-1) after the n-th.
    backoffs = sum(min(backoff_max_s, backoff_factor * 2 ** (n - 1)) for n in range(2, attempts))
    return attempts * 2 * timeout_s + backoffs


@dataclass(frozen=True)
class Delivery:
    """What FCM made of one push to one recipient's tokens."""

    tokens: int = 0
    success: int = 0
    failure: int = 0
    stale_tokens: tuple[str, ...] = ()
    retries: int = 0  # rounds of re-sending the tokens that failed transiently
    errors: dict[str, int] = field(default_factory=dict)  # FCM error code → tokens that ended with it
    unsent: int = 0  # tokens not tried at all: the deadline left no room for a call

    @property
    def never_tried(self) -> bool:
        """Nothing was sent: the recipient is still to be served (by the sweeper)."""
        return self.tokens > 0 and self.unsent == self.tokens

    def as_fields(self, removed_tokens: int) -> dict[str, Any]:
        return {
            "tokens": self.tokens,
            "success": self.success,
            "failure": self.failure,
            "removedTokens": removed_tokens,
            "retries": self.retries,
            "errors": dict(self.errors),
        }
