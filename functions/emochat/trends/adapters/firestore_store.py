"""Stress aggregates in Firestore: users/{uid}/stressDaily/{YYYY-MM-DD} (bounded aggregates:
trends.DayTotals + updatedAt) and users/{uid}/stressIndex/{chatId|messageId} (one reading and its
day), kept in step with chats/{chatId}/messages/{messageId}."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

from google.cloud import firestore
from google.cloud.firestore_v1.field_path import FieldPath

from emochat.firestore_tx import BATCH_WRITES, account_open, read_profile, run_transaction
from emochat.trends import model as trends
from emochat.trends.model import Reading, TrendChange


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
            stored = trends.Stored.parse(index.to_dict() if index.exists else None)
            refs = {
                day: user.collection("stressDaily").document(day)
                for day in {change.day, *([stored.day] if stored else [])}
            }
            current = {day: _doc(ref.get(transaction=transaction)) for day, ref in refs.items()}
            updates = []  # every read (the latest-reading queries too) before the first write
            for write in trends.day_writes(stored, change, current):
                latest = (
                    self._latest_other(transaction, change.user_id, write.day, change.key)
                    if trends.needs_latest_other(current[write.day], change.key, write)
                    else None
                )
                updates.append(
                    (write.day, trends.with_reading(current[write.day], time_zone, change.key, write, latest))
                )
            now = datetime.now(UTC)
            for day, update in updates:
                if update.doc is None:
                    transaction.delete(refs[day])
                else:
                    transaction.set(refs[day], {**update.doc, "updatedAt": now})
            index_update = trends.index_update(stored, change)
            if index_update.changed and index_update.doc is None:
                transaction.delete(index_ref)
            elif index_update.changed:
                transaction.set(index_ref, index_update.doc)
            return bool(updates)

        return run_transaction(self._db, apply_in)

    def _latest_other(
        self, transaction: firestore.Transaction, uid: str, day: str, key: str
    ) -> trends.Latest | None:
        """The latest reading of `day` other than `key`'s, from the index documents: the query
        firestore.indexes.json's stressIndex (day, at desc) index serves. Ties in `at` go to the
        larger document id, as trends.Latest orders them."""
        query = (
            self._user(uid)
            .collection("stressIndex")
            .where(filter=firestore.FieldFilter("day", "==", day))
            .order_by("at", direction=firestore.Query.DESCENDING)
            .order_by(FieldPath.document_id(), direction=firestore.Query.DESCENDING)
            .limit(2)
        )
        own = trends.index_id(key)
        for snap in transaction.get(query):
            reading = trends.Reading.parse(snap.to_dict())
            if snap.id != own and reading is not None:
                return trends.Latest(reading.at, snap.id, reading)
        return None

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

    def replace_days(
        self, uid: str, docs: Mapping[str, dict[str, Any]], placed: Mapping[str, tuple[str, Reading]]
    ) -> None:
        collection = self._user(uid).collection("stressDaily")
        index = self._user(uid).collection("stressIndex")
        now = datetime.now(UTC)
        writes: list[tuple[firestore.DocumentReference, dict[str, Any] | None]] = [
            (ref, None) for ref in collection.list_documents() if ref.id not in docs
        ]
        writes += [(ref, None) for ref in index.list_documents() if trends.key_of_index(ref.id) not in placed]
        writes += [(collection.document(day), {**doc, "updatedAt": now}) for day, doc in docs.items()]
        writes += [
            (index.document(trends.index_id(key)), trends.index_doc(day, reading))
            for key, (day, reading) in placed.items()
        ]
        for start in range(0, len(writes), BATCH_WRITES):
            batch = self._db.batch()
            for ref, doc in writes[start : start + BATCH_WRITES]:
                if doc is None:
                    batch.delete(ref)
                else:
                    batch.set(ref, doc)
            batch.commit()


def _doc(snap: firestore.DocumentSnapshot) -> dict[str, Any] | None:
    return (snap.to_dict() or {}) if snap.exists else None
