"""Wellbeing state in Firestore: catalog, shown suggestions, feedback models, stress aggregates.

Documents (all per-user state lives under users/{uid}, so deleting that tree deletes the user):
- catalog/{version}                      {version, languages, count, suggestionIds, source, seededAt}
- catalog/{version}/suggestions/{id}     recommend.Suggestion.as_doc + seededAt
- suggestionStats/{suggestionId}         {helpful, notHelpful, updatedAt}: population counts
- users/{uid}/wellbeing/model            recommend.UserModel.to_doc + updatedAt
- users/{uid}/recommendations/{id}       one shown suggestion, its context and reason, its feedback
- users/{uid}/stressDaily/{YYYY-MM-DD}   trends.day_doc + updatedAt
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

from google.cloud import firestore

from emochat.firestore_tx import run_transaction
from emochat.suggestions import bandit as recommend
from emochat.suggestions.bandit import Catalog, Counts, UserModel, Verdict
from emochat.suggestions.service import RatingOutcome
from emochat.trends import model as trends
from emochat.trends.model import TrendChange

_BATCH = 400  # under Firestore's 500 writes per batch


# Several messages of one sender can become ready at once and share a day document; a user may tap
# "helpful" twice. The client retries an aborted transaction at once, so contenders can keep
# colliding: rounds of client attempts are separated by jittered, growing pauses (~6 s at most).
class FirestoreWellbeingStore:
    def __init__(self, db: firestore.Client) -> None:
        self._db = db

    def _user(self, uid: str) -> firestore.DocumentReference:
        return self._db.collection("users").document(uid)

    # ── Catalog ──────────────────────────────────────────────────────────────────────────────────

    def seed_catalog(self, catalog: Catalog, source: Mapping[str, Any]) -> int:
        now = datetime.now(UTC)
        version_ref = self._db.collection("catalog").document(catalog.version)
        suggestions = version_ref.collection("suggestions")
        ids = {s.id for s in catalog.suggestions}
        writes: list[tuple[firestore.DocumentReference, dict[str, Any], bool]] = [
            (suggestions.document(s.id), {**s.as_doc(catalog.version), "seededAt": now}, False)
            for s in catalog.suggestions
        ]
        # A suggestion dropped from the file stays readable (old recommendations point at it) but is
        # no longer shown.
        writes += [
            (ref, {"active": False, "seededAt": now}, True)
            for ref in suggestions.list_documents()
            if ref.id not in ids
        ]
        writes.append(
            (
                version_ref,
                {
                    "version": catalog.version,
                    "languages": list(catalog.languages),
                    "count": len(catalog.suggestions),
                    "suggestionIds": [s.id for s in catalog.suggestions],
                    "source": dict(source),
                    "seededAt": now,
                },
                False,
            )
        )
        for start in range(0, len(writes), _BATCH):
            batch = self._db.batch()
            for ref, data, merge in writes[start : start + _BATCH]:
                batch.set(ref, data, merge=merge)
            batch.commit()
        return len(catalog.suggestions)

    def catalog(self, version: str) -> Catalog | None:
        docs = {
            snap.id: snap.to_dict() or {}
            for snap in self._db.collection("catalog").document(version).collection("suggestions").stream()
        }
        return recommend.catalog_from_docs(version, docs) if docs else None

    def population(self) -> dict[str, Counts]:
        return {
            snap.id: Counts.from_field(snap.to_dict())
            for snap in self._db.collection("suggestionStats").stream()
        }

    # ── Users and recommendations ────────────────────────────────────────────────────────────────

    def profile(self, uid: str) -> dict[str, Any]:
        snap = self._user(uid).get()
        return (snap.to_dict() or {}) if snap.exists else {}

    def model(self, uid: str) -> UserModel:
        snap = self._user(uid).collection("wellbeing").document("model").get()
        return UserModel.from_doc(snap.to_dict() if snap.exists else None)

    def save_recommendations(self, uid: str, records: list[dict[str, Any]]) -> list[str]:
        collection = self._user(uid).collection("recommendations")
        batch = self._db.batch()
        ids = []
        for record in records:
            ref = collection.document()
            batch.set(ref, record)
            ids.append(ref.id)
        batch.commit()
        return ids

    def rate(
        self, uid: str, recommendation_id: str, helpful: bool, suggestion_id: str | None, now: datetime
    ) -> RatingOutcome:
        rec_ref = self._user(uid).collection("recommendations").document(recommendation_id)
        model_ref = self._user(uid).collection("wellbeing").document("model")

        @firestore.transactional
        def rate_in(transaction: firestore.Transaction) -> RatingOutcome:
            snap = rec_ref.get(transaction=transaction)
            record = snap.to_dict() if snap.exists else None
            verdict = recommend.judge_rating(record, helpful, suggestion_id)
            shown = record.get("suggestionId") if record else None
            if verdict is not Verdict.RECORD:
                return RatingOutcome(verdict, shown)
            model_snap = model_ref.get(transaction=transaction)
            model = UserModel.from_doc(model_snap.to_dict() if model_snap.exists else None)
            updated, rated_id, _ = recommend.feedback_update(record, model, helpful)
            transaction.set(model_ref, {**updated.to_doc(), "updatedAt": now})
            transaction.update(rec_ref, {"feedback": {"helpful": helpful, "ratedAt": now}})
            transaction.set(
                self._db.collection("suggestionStats").document(rated_id),
                {
                    "helpful": firestore.Increment(1 if helpful else 0),
                    "notHelpful": firestore.Increment(0 if helpful else 1),
                    "updatedAt": now,
                },
                merge=True,
            )
            return RatingOutcome(verdict, rated_id)

        return run_transaction(self._db, rate_in)

    def recommendations(self, uid: str, limit: int) -> list[tuple[str, dict[str, Any]]]:
        query = (
            self._user(uid)
            .collection("recommendations")
            .order_by("shownAt", direction=firestore.Query.DESCENDING)
            .limit(limit)
        )
        return [(snap.id, snap.to_dict() or {}) for snap in query.stream()]

    # ── Trends ───────────────────────────────────────────────────────────────────────────────────

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
        for start in range(0, len(writes), _BATCH):
            batch = self._db.batch()
            for ref, doc in writes[start : start + _BATCH]:
                if doc is None:
                    batch.delete(ref)
                else:
                    batch.set(ref, {**doc, "updatedAt": now})
            batch.commit()

    # ── Deletion ─────────────────────────────────────────────────────────────────────────────────

    def delete_user(self, uid: str) -> int:
        return self._db.recursive_delete(self._user(uid))

    def user_ids(self) -> Iterator[str]:
        # list_documents also yields users/{uid} documents that are missing but have subcollections.
        for ref in self._db.collection("users").list_documents(page_size=300):
            yield ref.id


class FirebaseAccounts:
    """Which uids still have a Firebase Auth account (firebase_admin.auth.get_users)."""

    def __init__(self, app: Any = None) -> None:
        self._app = app

    def missing(self, uids: list[str]) -> set[str]:
        from firebase_admin import auth

        found: set[str] = set()
        for start in range(0, len(uids), 100):
            result = auth.get_users([auth.UidIdentifier(uid) for uid in uids[start : start + 100]], self._app)
            found.update(identifier.uid for identifier in result.not_found)
        return found

    def delete_account(self, uid: str) -> bool:
        """Delete the Auth account (ops path); False when there was none."""
        from firebase_admin import auth

        try:
            auth.delete_user(uid, self._app)
        except auth.UserNotFoundError:
            return False
        return True
