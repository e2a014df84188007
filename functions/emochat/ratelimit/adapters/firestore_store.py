"""Rate-limit counters in Firestore: users/{uid}/rateLimits/{callable}, one transaction per call."""

from __future__ import annotations

from datetime import datetime

from google.cloud import firestore

from emochat.firestore_tx import account_open, run_transaction
from emochat.ratelimit.model import Decision, Limit, Verdict, decide


class FirestoreCallCounter:
    def __init__(self, db: firestore.Client) -> None:
        self._db = db

    def count(self, uid: str, callable_name: str, now: datetime, limit: Limit) -> Decision:
        ref = self._db.collection("users", uid, "rateLimits").document(callable_name)

        @firestore.transactional
        def count_in(transaction: firestore.Transaction) -> Decision:
            if not account_open(self._db, transaction, uid, needs_profile=False):
                return Decision(Verdict.DELETED, None)
            snap = ref.get(transaction=transaction)
            decision = decide(snap.to_dict() if snap.exists else None, now, limit)
            if decision.counter is not None:
                transaction.set(ref, decision.counter)
            return decision

        return run_transaction(self._db, count_in)
