"""In-memory fake of the coping suggestions' port (SuggestionStore), decided by the same pure code as
the Firestore adapter."""

from __future__ import annotations

import copy
import itertools
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from emochat.suggestions import bandit as recommend
from emochat.suggestions.bandit import Counts, PolicyParams, UserModel, Verdict
from emochat.suggestions.catalog import Catalog, catalog_from_docs
from emochat.suggestions.ports import RatingOutcome
from fakes.documents import Documents


class InMemorySuggestionStore:
    """The Firestore adapter's behaviour over the shared documents."""

    def __init__(self, db: Documents) -> None:
        self._db = db
        self._ids = itertools.count(1)

    def seed_catalog(self, catalog: Catalog, source: Mapping[str, Any]) -> int:
        base = f"catalog/{catalog.version}"
        for path in self._db.under(f"{base}/suggestions"):
            self._db.docs[path]["active"] = False
        for s in catalog.suggestions:
            self._db.docs[f"{base}/suggestions/{s.id}"] = s.as_doc(catalog.version)
        self._db.docs[base] = {
            "version": catalog.version,
            "count": len(catalog.suggestions),
            "source": dict(source),
        }
        return len(catalog.suggestions)

    def catalog(self, version: str) -> Catalog | None:
        docs = {p.rsplit("/", 1)[1]: d for p, d in self._db.under(f"catalog/{version}/suggestions").items()}
        return catalog_from_docs(version, docs) if docs else None

    def population(self) -> dict[str, Counts]:
        return {
            p.rsplit("/", 1)[1]: Counts.from_field(d) for p, d in self._db.under("suggestionStats").items()
        }

    def profile(self, uid: str) -> dict[str, Any]:
        return self._db.profile(uid)

    def model(self, uid: str) -> UserModel:
        return UserModel.from_doc(self._db.docs.get(f"users/{uid}/wellbeing/model"))

    def save_recommendations(self, uid: str, records: list[dict[str, Any]]) -> list[str] | None:
        if not self._db.account_open(uid, needs_profile=False):
            return None
        ids = []
        for record in records:
            rec_id = f"rec{next(self._ids)}"
            self._db.docs[f"users/{uid}/recommendations/{rec_id}"] = copy.deepcopy(record)
            ids.append(rec_id)
        return ids

    def rate(
        self,
        uid: str,
        recommendation_id: str,
        helpful: bool,
        suggestion_id: str | None,
        now: datetime,
        params: PolicyParams,
    ) -> RatingOutcome:
        with self._db.lock:
            record = self._db.docs.get(f"users/{uid}/recommendations/{recommendation_id}")
            if not self._db.account_open(uid, needs_profile=False):
                record = None  # the account is being deleted: its recommendations are as good as gone
            verdict = recommend.judge_rating(record, helpful, suggestion_id)
            if verdict is not Verdict.RECORD:
                return RatingOutcome(verdict, record.get("suggestionId") if record else None)
            before = self.model(uid)
            model, sid, _ = recommend.feedback_update(record, before, helpful)
            delta = recommend.population_delta(before, model, sid, params)
            self._db.docs[f"users/{uid}/wellbeing/model"] = model.to_doc()
            record["feedback"] = {"helpful": helpful, "ratedAt": now}
            stats = self._db.docs.setdefault(f"suggestionStats/{sid}", {"helpful": 0, "notHelpful": 0})
            stats["helpful"] += delta.helpful
            stats["notHelpful"] += delta.not_helpful
            return RatingOutcome(verdict, sid)

    def recommendations(self, uid: str, limit: int) -> list[tuple[str, dict[str, Any]]]:
        recs = [(p.rsplit("/", 1)[1], d) for p, d in self._db.under(f"users/{uid}/recommendations").items()]
        return sorted(recs, key=lambda r: r[1]["shownAt"], reverse=True)[:limit]
