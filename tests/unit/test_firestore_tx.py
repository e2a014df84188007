"""The shared transaction runner: rounds of attempts with backoff under contention, and only then."""

from __future__ import annotations

import pytest


def test_store_transactions_back_off_between_rounds_of_aborts(monkeypatch: pytest.MonkeyPatch) -> None:
    from google.api_core import exceptions as api_exceptions

    from emochat import firestore_tx

    sleeps: list[float] = []
    monkeypatch.setattr(firestore_tx.time, "sleep", sleeps.append)

    class Db:
        def transaction(self, max_attempts: int) -> str:
            assert max_attempts == firestore_tx.ATTEMPTS_PER_ROUND
            return "tx"

    outcomes: list[Exception | str] = []

    def body(transaction: str) -> str:
        outcome = outcomes.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    exhausted = ValueError("Failed to commit transaction in 5 attempts.")
    exhausted.__cause__ = api_exceptions.Aborted("Transaction lock timeout.")
    outcomes[:] = [exhausted, api_exceptions.Aborted("lock"), "done"]
    assert firestore_tx.run_transaction(Db(), body) == "done" and len(sleeps) == 2

    outcomes[:] = [ValueError("a bug, not contention")]
    with pytest.raises(ValueError, match="a bug"):
        firestore_tx.run_transaction(Db(), body)

    outcomes[:] = [api_exceptions.Aborted("lock")] * firestore_tx.ROUNDS
    with pytest.raises(api_exceptions.Aborted):
        firestore_tx.run_transaction(Db(), body)
