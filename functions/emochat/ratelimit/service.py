"""Rate-limit one callable call for the signed-in user, before the callable does any work."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from emochat.domain import RequestError
from emochat.ratelimit.model import Limit, Verdict
from emochat.ratelimit.ports import CallCounter


@dataclass
class RateLimitServices:
    counter: CallCounter
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)


def admit(
    services: RateLimitServices, uid: str, callable_name: str, limit: Limit, deleted_ok: bool = False
) -> None:
    """Raise RequestError resource-exhausted over the limit, permission-denied for a deleted account
    (unless `deleted_ok`: deleting again after a failure must stay possible)."""
    decision = services.counter.count(uid, callable_name, services.clock(), limit)
    if decision.verdict is Verdict.EXHAUSTED:
        raise RequestError(
            "resource-exhausted", f"Too many requests: try again in {int(decision.retry_after_s) + 1} s."
        )
    if decision.verdict is Verdict.DELETED and not deleted_ok:
        raise RequestError("permission-denied", "This account was deleted.")
