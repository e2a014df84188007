"""Messages and chats in Firestore, with transactions where delivery races could double-write."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from google.cloud import firestore

from emochat.domain import MessageStatus
from emochat.firestore_tx import read_chat_members, run_transaction
from emochat.pipeline.model import Claim, MessageState, VoicePath, decide_claim, is_abandoned, may_finish


def _message_state(snapshot: firestore.DocumentSnapshot) -> MessageState | None:
    if not snapshot.exists:
        return None
    data = snapshot.to_dict() or {}
    lease = data.get("leaseExpiresAt")
    try:
        status = MessageStatus(data.get("status"))
    except ValueError:
        status = MessageStatus.PROCESSING
    return MessageState(
        status=status,
        generation=int(data.get("generation") or 0),
        lease_expires_at=lease.timestamp() if lease is not None else None,
    )


class FirestoreMessageStore:
    def __init__(self, db: firestore.Client) -> None:
        self._db = db

    def chat_members(self, chat_id: str) -> list[str] | None:
        return read_chat_members(self._db, chat_id)

    def claim(self, path: VoicePath, generation: int, fields: dict[str, Any]) -> Claim:
        ref = self._db.document(path.message_doc)

        @firestore.transactional
        def claim_in(transaction: firestore.Transaction) -> Claim:
            decision = decide_claim(_message_state(ref.get(transaction=transaction)), generation, time.time())
            if decision in (Claim.START, Claim.RETAKE):
                transaction.set(ref, {**fields, "generation": generation})
            elif decision is Claim.REPLACE:
                # The newer upload takes the message, but what the app shows stays until its result.
                transaction.update(
                    ref, {"generation": generation, "leaseExpiresAt": fields.get("leaseExpiresAt")}
                )
            return decision

        return run_transaction(self._db, claim_in)

    def finish(self, path: VoicePath, generation: int, fields: dict[str, Any]) -> bool:
        ref = self._db.document(path.message_doc)

        @firestore.transactional
        def finish_in(transaction: firestore.Transaction) -> bool:
            if not may_finish(_message_state(ref.get(transaction=transaction)), generation):
                return False
            transaction.update(ref, fields)
            return True

        return run_transaction(self._db, finish_in)

    def abandoned(self, now: float, limit: int) -> list[str]:
        # A collection-group query over every chat's messages (index in firestore.indexes.json).
        query = (
            self._db.collection_group("messages")
            .where(filter=firestore.FieldFilter("status", "==", MessageStatus.PROCESSING.value))
            .where(filter=firestore.FieldFilter("leaseExpiresAt", "<=", datetime.fromtimestamp(now, UTC)))
            .limit(limit)
        )
        return [snapshot.reference.path for snapshot in query.stream()]

    def fail_if_abandoned(self, doc_path: str, now: float, error: dict[str, str]) -> bool:
        ref = self._db.document(doc_path)

        @firestore.transactional
        def fail_in(transaction: firestore.Transaction) -> bool:
            if not is_abandoned(_message_state(ref.get(transaction=transaction)), now):
                return False
            transaction.update(
                ref, {"status": MessageStatus.FAILED.value, "error": error, "leaseExpiresAt": None}
            )
            return True

        return run_transaction(self._db, fail_in)
