"""Messages and chats in Firestore, with transactions where delivery races could double-write."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from google.api_core import exceptions as api_exceptions
from google.cloud import firestore

from emochat.domain import MessageStatus
from emochat.firestore_tx import account_open, read_chat_members, run_transaction
from emochat.pipeline.model import (
    Claim,
    DailyBudget,
    Holder,
    MessageState,
    UploadedObject,
    Usage,
    VoicePath,
    charge,
    decide_claim,
    is_abandoned,
    may_write,
)
from emochat.pipeline.ports import StoreUnavailable, TranscriptionUsage


def _message_state(snapshot: firestore.DocumentSnapshot) -> MessageState | None:
    if not snapshot.exists:
        return None
    data = snapshot.to_dict() or {}
    lease = data.get("leaseExpiresAt")
    try:
        status = MessageStatus(data.get("status"))
    except ValueError:
        status = MessageStatus.PROCESSING
    audio = data.get("audio") if isinstance(data.get("audio"), dict) else {}
    name, generation = audio.get("path"), audio.get("generation")
    sender, token = data.get("senderId"), data.get("claimToken")
    return MessageState(
        status=status,
        sender_id=sender if isinstance(sender, str) else None,
        object=UploadedObject(name, int(generation))
        if isinstance(name, str) and isinstance(generation, int)
        else None,
        lease_expires_at=lease.timestamp() if lease is not None else None,
        claim_token=token if isinstance(token, str) else None,
    )


@contextlib.contextmanager
def _unavailable_as_port_error() -> Iterator[None]:
    """Firestore's transient refusals (unavailable, deadline, contention that outlasted the
    transaction's rounds) become the port's StoreUnavailable, which the pipeline retries."""
    try:
        yield
    except (api_exceptions.GoogleAPICallError, api_exceptions.RetryError) as exc:
        raise StoreUnavailable(type(exc).__name__) from exc
    except ValueError as exc:
        if not isinstance(exc.__cause__, api_exceptions.GoogleAPICallError):
            raise
        raise StoreUnavailable(type(exc.__cause__).__name__) from exc


class FirestoreMessageStore:
    def __init__(self, db: firestore.Client) -> None:
        self._db = db

    def chat_members(self, chat_id: str) -> list[str] | None:
        with _unavailable_as_port_error():
            return read_chat_members(self._db, chat_id)

    def claim(self, path: VoicePath, obj: UploadedObject, fields: dict[str, Any]) -> Claim:
        ref = self._db.document(path.message_doc)

        @firestore.transactional
        def claim_in(transaction: firestore.Transaction) -> Claim:
            if not account_open(self._db, transaction, path.uid, needs_profile=False):
                return Claim.SKIP_DELETED
            existing = _message_state(ref.get(transaction=transaction))
            decision = decide_claim(existing, path, obj, time.time())
            if decision.proceeds:
                transaction.set(ref, fields)
            return decision

        with _unavailable_as_port_error():
            return run_transaction(self._db, claim_in)

    def finish(self, path: VoicePath, holder: Holder, fields: dict[str, Any]) -> bool:
        ref = self._db.document(path.message_doc)

        @firestore.transactional
        def finish_in(transaction: firestore.Transaction) -> bool:
            if not account_open(self._db, transaction, path.uid, needs_profile=False):
                # Claimed before its sender's account was deleted, and maybe missed by the deletion.
                transaction.delete(ref)
                return False
            if not may_write(_message_state(ref.get(transaction=transaction)), holder, time.time()):
                return False
            transaction.update(ref, fields)
            return True

        with _unavailable_as_port_error():
            return run_transaction(self._db, finish_in)

    def charge_usage(self, uid: str, day: str, audio_seconds: float, budget: DailyBudget) -> bool:
        ref = self._db.document(f"users/{uid}/usage/{day}")

        @firestore.transactional
        def charge_in(transaction: firestore.Transaction) -> bool:
            if not account_open(self._db, transaction, uid, needs_profile=False):
                return False  # a deleted account: no usage tree for it (finish then deletes the message)
            snapshot = ref.get(transaction=transaction)
            data = (snapshot.to_dict() or {}) if snapshot.exists else {}
            used = Usage(int(data.get("messages") or 0), float(data.get("audioSeconds") or 0.0))
            after = charge(used, audio_seconds, budget)
            if after is None:
                return False
            transaction.set(
                ref,
                {
                    "messages": after.messages,
                    "audioSeconds": after.audio_seconds,
                    "updatedAt": firestore.SERVER_TIMESTAMP,
                },
                merge=True,
            )
            return True

        with _unavailable_as_port_error():
            return run_transaction(self._db, charge_in)

    def record_stt_usage(self, path: VoicePath, day: str, usage: TranscriptionUsage) -> None:
        ref = self._db.document(
            f"users/{path.uid}/usage/{day}/transcriptions/{path.chat_id}:{path.message_id}"
        )
        fields = {
            **usage.as_field(),
            "chatId": path.chat_id,
            "messageId": path.message_id,
            "at": firestore.SERVER_TIMESTAMP,
        }

        @firestore.transactional
        def record_in(transaction: firestore.Transaction) -> None:
            if account_open(self._db, transaction, path.uid, needs_profile=False):
                transaction.set(ref, fields)

        with _unavailable_as_port_error():
            run_transaction(self._db, record_in)

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
