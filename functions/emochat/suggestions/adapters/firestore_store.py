"""Coping-suggestion state in Firestore: catalog, shown suggestions, feedback models.

Documents (all per-user state lives under users/{uid}, so deleting that tree deletes the user):
- catalog/{version}                      {version, languages, count, suggestionIds, source, seededAt}
- catalog/{version}/suggestions/{id}     catalog.Suggestion.as_doc + seededAt
- suggestionStats/{suggestionId}         {helpful, notHelpful, updatedAt}: population counts
- users/{uid}/wellbeing/model            recommend.UserModel.to_doc + updatedAt
- users/{uid}/recommendations/{id}       one shown suggestion, its context and reason, its feedback
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from google.cloud import firestore

from emochat.firestore_tx import BATCH_WRITES, account_open, read_profile, run_transaction
from emochat.suggestions import bandit as recommend
from emochat.suggestions.bandit import Counts, PolicyParams, UserModel, Verdict
from emochat.suggestions.catalog import Catalog, catalog_from_docs
from emochat.suggestions.ports import RatingOutcome


# Several messages of one sender can become ready at once and share a day document; a user may tap
# "helpful" twice. The client retries an aborted transaction at once, so contenders can keep
# colliding: rounds of client attempts are separated by jittered, growing pauses (~6 s at most).
class FirestoreSuggestionStore:
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
        for start in range(0, len(writes), BATCH_WRITES):
            batch = self._db.batch()
            for ref, data, merge in writes[start : start + BATCH_WRITES]:
                batch.set(ref, data, merge=merge)
            batch.commit()
        return len(catalog.suggestions)

    def catalog(self, version: str) -> Catalog | None:
        docs = {
            snap.id: snap.to_dict() or {}
            for snap in self._db.collection("catalog").document(version).collection("suggestions").stream()
        }
        return catalog_from_docs(version, docs) if docs else None

    def population(self) -> dict[str, Counts]:
        return {
            snap.id: Counts.from_field(snap.to_dict())
            for snap in self._db.collection("suggestionStats").stream()
        }

    # ── Users and recommendations ────────────────────────────────────────────────────────────────

    def profile(self, uid: str) -> dict[str, Any]:
        return read_profile(self._db, uid)

    def model(self, uid: str) -> UserModel:
        snap = self._user(uid).collection("wellbeing").document("model").get()
        return UserModel.from_doc(snap.to_dict() if snap.exists else None)

    def save_recommendations(self, uid: str, records: list[dict[str, Any]]) -> list[str] | None:
        collection = self._user(uid).collection("recommendations")
        refs = [collection.document() for _ in records]

        @firestore.transactional
        def save_in(transaction: firestore.Transaction) -> list[str] | None:
            if not account_open(self._db, transaction, uid, needs_profile=False):
                return None
            for ref, record in zip(refs, records, strict=True):
                transaction.set(ref, record)
            return [ref.id for ref in refs]

        return run_transaction(self._db, save_in)

    def rate(
        self,
        uid: str,
        recommendation_id: str,
        helpful: bool,
        suggestion_id: str | None,
        now: datetime,
        params: PolicyParams,
    ) -> RatingOutcome:
        rec_ref = self._user(uid).collection("recommendations").document(recommendation_id)
        model_ref = self._user(uid).collection("wellbeing").document("model")

        @firestore.transactional
        def rate_in(transaction: firestore.Transaction) -> RatingOutcome:
            snap = rec_ref.get(transaction=transaction)
            record = snap.to_dict() if snap.exists else None
            if not account_open(self._db, transaction, uid, needs_profile=False):
                record = None  # the account is being deleted: its recommendations are as good as gone
            verdict = recommend.judge_rating(record, helpful, suggestion_id)
            shown = record.get("suggestionId") if record else None
            if verdict is not Verdict.RECORD:
                return RatingOutcome(verdict, shown)
            model_snap = model_ref.get(transaction=transaction)
            model = UserModel.from_doc(model_snap.to_dict() if model_snap.exists else None)
            updated, rated_id, _ = recommend.feedback_update(record, model, helpful)
            delta = recommend.population_delta(model, updated, rated_id, params)
            transaction.set(model_ref, {**updated.to_doc(), "updatedAt": now})
            transaction.update(rec_ref, {"feedback": {"helpful": helpful, "ratedAt": now}})
            transaction.set(
                self._db.collection("suggestionStats").document(rated_id),
                {
                    "helpful": firestore.Increment(delta.helpful),
                    "notHelpful": firestore.Increment(delta.not_helpful),
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
