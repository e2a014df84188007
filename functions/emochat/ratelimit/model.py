"""How many calls one user may make to one callable: a fixed window per callable. Pure: no I/O.

The counter lives at users/{uid}/rateLimits/{callable} ({windowStart, count}): in the user's tree,
so deleting the account deletes it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any


class Verdict(StrEnum):
    ALLOW = "allow"
    EXHAUSTED = "exhausted"  # over the limit until the window ends
    DELETED = "deleted"  # the account was deleted (accounts.model.account_open): nothing counted


@dataclass(frozen=True)
class Limit:
    calls: int  # at most this many calls
    window_s: float  # per this many seconds

    def __post_init__(self) -> None:
        if self.calls < 1 or self.window_s <= 0:
            raise ValueError("a rate limit needs at least one call per positive window")


@dataclass(frozen=True)
class Decision:
    verdict: Verdict
    counter: dict[str, Any] | None  # the counter document to write, None to write nothing
    retry_after_s: float = 0.0


def decide(counter: Mapping[str, Any] | None, now: datetime, limit: Limit) -> Decision:
    """Count one call against the user's counter for one callable."""
    start = (counter or {}).get("windowStart")
    count = (counter or {}).get("count")
    in_window = isinstance(start, datetime) and timedelta(0) <= now - start < timedelta(
        seconds=limit.window_s
    )
    if not in_window or not isinstance(count, int) or isinstance(count, bool):
        return Decision(Verdict.ALLOW, {"windowStart": now, "count": 1})
    if count >= limit.calls:
        left = limit.window_s - (now - start).total_seconds()
        return Decision(Verdict.EXHAUSTED, None, retry_after_s=max(left, 0.0))
    return Decision(Verdict.ALLOW, {"windowStart": start, "count": count + 1})
