"""Firestore helpers every store shares: transactions that survive contention, and a chat's members.

The client retries an aborted transaction at once, up to `max_attempts`; under real contention (the
emulator settles each lock conflict with a multi-second timeout, production with aborts) those
attempts can all land in the same conflict. Rounds of attempts with randomised, growing pauses
between them get through. Used by every store whose races matter: message claims, alert markers,
baselines, recommendations, trends.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import Any, TypeVar

from google.api_core import exceptions as api_exceptions
from google.cloud import firestore

from emochat.accounts import model as accounts

ATTEMPTS_PER_ROUND = 5
BATCH_WRITES = 400  # under Firestore's 500 writes per batch
ROUNDS = 6

_T = TypeVar("_T")


def _contended(exc: Exception) -> bool:
    return isinstance(exc, api_exceptions.Aborted) or isinstance(exc.__cause__, api_exceptions.Aborted)


def run_transaction(
    db: firestore.Client, body: Callable[[firestore.Transaction], _T], rounds: int = ROUNDS
) -> _T:
    """Run a @firestore.transactional body, backing off between rounds of attempts under contention."""
    for round_ in range(rounds):
        try:
            return body(db.transaction(max_attempts=ATTEMPTS_PER_ROUND))
        except (ValueError, api_exceptions.Aborted) as exc:
            # ValueError: the client gave up after max_attempts (its cause is the Aborted).
            if not _contended(exc) or round_ == rounds - 1:
                raise
            time.sleep(random.uniform(0.5, 1.0) * min(0.05 * 2**round_, 2.0))
    raise AssertionError("unreachable")


def read_chat_members(db: firestore.Client, chat_id: str) -> list[str] | None:
    """chats/{chatId}.members (uids), or None when the chat does not exist."""
    snapshot = db.collection("chats").document(chat_id).get()
    if not snapshot.exists:
        return None
    members = (snapshot.to_dict() or {}).get("members")
    return [m for m in members if isinstance(m, str)] if isinstance(members, list) else []


def read_profile(db: firestore.Client, uid: str) -> dict[str, Any]:
    """users/{uid}, empty when missing."""
    snap = db.collection("users").document(uid).get()
    return (snap.to_dict() or {}) if snap.exists else {}


def account_open(
    db: firestore.Client, transaction: firestore.Transaction, uid: str, needs_profile: bool
) -> bool:
    """Whether a writer may create documents for `uid` (accounts.model.account_open), read inside
    the writer's own transaction: the one check every writer makes, so that a deleted account's
    tombstone stops triggers and callables still in flight (Firestore reruns a transaction whose
    reads changed before it commits)."""
    tombstoned = db.document(accounts.tombstone_path(uid)).get(transaction=transaction).exists
    profile = (
        db.collection("users").document(uid).get(transaction=transaction).exists if needs_profile else False
    )
    return accounts.account_open(profile, tombstoned, needs_profile)
