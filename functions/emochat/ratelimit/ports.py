"""The rate limits' narrow interface (adapter: adapters/firestore_store.py; tests/fakes/ratelimit.py)."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from emochat.ratelimit.model import Decision, Limit


class CallCounter(Protocol):
    def count(self, uid: str, callable_name: str, now: datetime, limit: Limit) -> Decision:
        """In one transaction: DELETED (writing nothing) for a deleted account, else model.decide on
        users/{uid}/rateLimits/{callable_name}, writing the decision's counter."""
        ...
