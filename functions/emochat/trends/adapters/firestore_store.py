"""Stress aggregates in Firestore: users/{uid}/stressDaily/{YYYY-MM-DD} (trends.day_doc + updatedAt),
kept in step with chats/{chatId}/messages/{messageId}."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

from google.cloud import firestore

from emochat.firestore_tx import BATCH_WRITES, read_profile, run_transaction
from emochat.trends import model as trends
from emochat.trends.model import TrendChange


class FirestoreTrendStore:
    def __init__(self, db: firestore.Client) -> None:
        self._db = db

    def _user(self, uid: str) -> firestore.DocumentReference:
        return self._db.collection("users").document(uid)

    def profile(self, uid: str) -> dict[str, Any]:
        return read_profile(self._db, uid)

    def message(self, chat_id: str, message_id: str) -> dict[str, Any] | None:
        snap = self._db.document(f"chats/{chat_id}/messages/{message_id}").get()
        return (snap.to_dict() or {}) if snap.exists else None

    def apply_reading(self, change: TrendChange, time_zone: str) -> bool:
        ref = self._user(change.user_id).collection("stressDaily").document(change.day)

        @firestore.transactional
        def apply_in(transaction: firestore.Transaction) -> bool:
            snap = ref.get(transaction=transaction)
            update = trends.with_reading(
                snap.to_dict() if snap.exists else None, change.day, time_zone, change.key, change.reading
            )
            if not update.changed:
                return False
            if update.doc is None:
                transaction.delete(ref)
            else:
                transaction.set(ref, {**update.doc, "updatedAt": datetime.now(UTC)})
            return True

        return run_transaction(self._db, apply_in)

    def day_docs(self, uid: str, days: Iterable[str]) -> dict[str, dict[str, Any]]:
        collection = self._user(uid).collection("stressDaily")
        refs = [collection.document(day) for day in days]
        if not refs:
            return {}
        return {snap.id: snap.to_dict() or {} for snap in self._db.get_all(refs) if snap.exists}

    def sent_messages(self, uid: str) -> Iterator[tuple[str, dict[str, Any]]]:
        # Collection-group query on senderId: in production it needs the collection-group scope of
        # the single-field index on messages.senderId (firestore.indexes.json fieldOverrides).
        query = self._db.collection_group("messages").where(
            filter=firestore.FieldFilter("senderId", "==", uid)
        )
        for snap in query.stream():
            chat_id = snap.reference.parent.parent.id
            yield trends.reading_key(chat_id, snap.id), snap.to_dict() or {}

    def replace_days(self, uid: str, docs: Mapping[str, dict[str, Any] | None]) -> None:
        collection = self._user(uid).collection("stressDaily")
        now = datetime.now(UTC)
        writes: list[tuple[firestore.DocumentReference, dict[str, Any] | None]] = [
            (ref, None) for ref in collection.list_documents() if docs.get(ref.id) is None
        ]
        writes += [(collection.document(day), doc) for day, doc in docs.items() if doc is not None]
        for start in range(0, len(writes), BATCH_WRITES):
            batch = self._db.batch()
            for ref, doc in writes[start : start + BATCH_WRITES]:
                if doc is None:
                    batch.delete(ref)
                else:
                    batch.set(ref, {**doc, "updatedAt": now})
            batch.commit()
