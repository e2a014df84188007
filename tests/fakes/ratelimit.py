"""In-memory fake of the rate limits' port (CallCounter), decided by the same pure code."""

from __future__ import annotations

from datetime import datetime

from emochat.ratelimit.model import Decision, Limit, Verdict, decide
from fakes.documents import Documents


class InMemoryCallCounter:
    def __init__(self, db: Documents) -> None:
        self._db = db

    def count(self, uid: str, callable_name: str, now: datetime, limit: Limit) -> Decision:
        with self._db.lock:
            if not self._db.account_open(uid, needs_profile=False):
                return Decision(Verdict.DELETED, None)
            path = f"users/{uid}/rateLimits/{callable_name}"
            decision = decide(self._db.docs.get(path), now, limit)
            if decision.counter is not None:
                self._db.docs[path] = decision.counter
            return decision
