"""Stress aggregates in Firestore: users/{uid}/stressDaily/{YYYY-MM-DD} (trends.day_doc + updatedAt),
kept in step with chats/{chatId}/messages/{messageId}."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

from google.cloud import firestore

from emochat.firestore_tx import BATCH_WRITES, account_open, read_profile, run_transaction
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
        user = self._user(change.user_id)
        index_ref = user.collection("stressIndex").document(trends.index_id(change.key))

        @firestore.transactional
        def apply_in(transaction: firestore.Transaction) -> bool:
            if not account_open(self._db, transaction, change.user_id, needs_profile=True):
                return False
            index = index_ref.get(transaction=transaction)
            stored_day = (index.to_dict() or {}).get("day") if index.exists else None
            writes = trends.day_writes(stored_day if isinstance(stored_day, str) else None, change)
            refs = {day: user.collection("stressDaily").document(day) for day, _ in writes}
            current = {day: ref.get(transaction=transaction) for day, ref in refs.items()}
            changed = False
            for day, reading in writes:
                snap = current[day]
                update = trends.with_reading(
                    snap.to_dict() if snap.exists else None, day, time_zone, change.key, reading
                )
                if not update.changed:
                    continue
                changed = True
                if update.doc is None:
                    transaction.delete(refs[day])
                else:
                    transaction.set(refs[day], {**update.doc, "updatedAt": datetime.now(UTC)})
            if change.reading is None:
                transaction.delete(index_ref)
            elif stored_day != change.day:
                transaction.set(index_ref, {"day": change.day})
            return changed

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
        index = self._user(uid).collection("stressIndex")
        now = datetime.now(UTC)
        writes: list[tuple[firestore.DocumentReference, dict[str, Any] | None]] = [
            (ref, None) for ref in collection.list_documents() if docs.get(ref.id) is None
        ]
        writes += [(ref, None) for ref in index.list_documents()]
        writes += [(collection.document(day), doc) for day, doc in docs.items() if doc is not None]
        writes += [
            (index.document(trends.index_id(key)), {"day": day})
            for day, doc in docs.items()
            for key in (doc or {}).get("readings", {})
        ]
        for start in range(0, len(writes), BATCH_WRITES):
            batch = self._db.batch()
            for ref, doc in writes[start : start + BATCH_WRITES]:
                if doc is None:
                    batch.delete(ref)
                else:
                    batch.set(ref, {**doc, "updatedAt": now})
            batch.commit()
