"""The coping suggestions' narrow interface to Firestore (adapter: adapters/firestore_store.py;
unit tests: tests/fakes/suggestions.py)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from emochat.suggestions.bandit import Counts, PolicyParams, UserModel, Verdict
from emochat.suggestions.catalog import Catalog


@dataclass(frozen=True)
class RatingOutcome:
    verdict: Verdict
    suggestion_id: str | None = None


class SuggestionStore(Protocol):
    def seed_catalog(self, catalog: Catalog, source: Mapping[str, Any]) -> int:
        """Write catalog/{version} and its suggestions; suggestions missing from it turn inactive."""
        ...

    def catalog(self, version: str) -> Catalog | None: ...

    def population(self) -> dict[str, Counts]:
        """Helpful / not-helpful counts per suggestion over all users."""
        ...

    def profile(self, uid: str) -> dict[str, Any]:
        """users/{uid} (empty when missing)."""
        ...

    def model(self, uid: str) -> UserModel: ...

    def save_recommendations(self, uid: str, records: list[dict[str, Any]]) -> list[str] | None:
        """Store each shown suggestion; returns the new recommendation ids, in order, or None (and
        stores nothing) when the account was deleted (accounts.model.account_open)."""
        ...

    def rate(
        self,
        uid: str,
        recommendation_id: str,
        helpful: bool,
        suggestion_id: str | None,
        now: datetime,
        params: PolicyParams,
    ) -> RatingOutcome:
        """Atomically: judge (recommend.judge_rating; a deleted account's recommendation counts as
        not shown), then mark the recommendation rated, update the
        user's model (recommend.feedback_update) and the population counts by the user's capped
        share (recommend.population_delta)."""
        ...

    def recommendations(self, uid: str, limit: int) -> list[tuple[str, dict[str, Any]]]:
        """The user's latest recommendations, newest first."""
        ...
