"""Coping suggestions: the service layer of the callables `recommend_coping` and `rate_suggestion`,
the alerts' hook `recommend_for_alert`, and the ops CLI's catalog seeding.

Decisions come from the pure modules `catalog` and `bandit`; Firestore is behind the narrow
`SuggestionStore` (ports.py; adapter: adapters/firestore_store.py; unit tests: tests/fakes).
"""

from __future__ import annotations

import logging
import random
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, tzinfo
from pathlib import Path
from typing import Any

from emochat.domain import RequestError, int_arg
from emochat.profile import user_language, user_zone
from emochat.suggestions import bandit as recommend
from emochat.suggestions.bandit import Context, PolicyParams, Verdict
from emochat.suggestions.catalog import BUNDLED_CATALOG, Catalog, load_catalog_file
from emochat.suggestions.ports import SuggestionStore
from emochat.trends import model as trends
from emochat.trends.ports import TrendStore

log = logging.getLogger(__name__)

_RECOMMENDATION_ID = re.compile(r"^[A-Za-z0-9_-]{1,128}$")  # Firestore auto ids are 20 of [A-Za-z0-9]


@dataclass
class SuggestionServices:
    store: SuggestionStore
    trends: TrendStore  # the recent readings set the context when the caller gives no stress level
    rng: random.Random = field(default_factory=random.Random)
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    _cache: dict[str, tuple[float, Any]] = field(default_factory=dict, repr=False)

    def cached(self, key: str, ttl_s: float, load: Callable[[], Any]) -> Any:
        hit = self._cache.get(key)
        if hit is not None and time.monotonic() - hit[0] < ttl_s:
            return hit[1]
        value = load()
        self._cache[key] = (time.monotonic(), value)
        return value


@dataclass(frozen=True)
class SuggestionConfig:
    catalog_version: str = "v1"
    params: PolicyParams = field(default_factory=PolicyParams)
    default_time_zone: str = "Asia/Seoul"
    max_count: int = 5
    # A reading this recent sets the context's stress level when the caller gives none.
    recent_reading_s: float = 3 * 3600
    # Recommendations carry expireAt this far ahead (for a Firestore TTL policy on the collection).
    recommendation_ttl_days: int = 180
    cache_ttl_s: float = 300.0


# ── Catalog ──────────────────────────────────────────────────────────────────────────────────────


def seed_catalog(store: SuggestionStore, path: Path = BUNDLED_CATALOG) -> Catalog:
    """Seed catalog/{version}/suggestions/{id} from the repo file (idempotent)."""
    catalog, source = load_catalog_file(path)
    store.seed_catalog(catalog, source)
    return catalog


def current_catalog(services: SuggestionServices, config: SuggestionConfig) -> Catalog:
    """The seeded catalog of the configured version; the bundled file until it is seeded."""

    def load() -> Catalog:
        catalog = services.store.catalog(config.catalog_version)
        if catalog is not None and catalog.suggestions:
            return catalog
        bundled, _ = load_catalog_file()
        if bundled.version != config.catalog_version:
            raise RequestError("failed-precondition", f"Catalog {config.catalog_version} is not seeded.")
        return bundled

    return services.cached(f"catalog:{config.catalog_version}", config.cache_ttl_s, load)


# ── Users ────────────────────────────────────────────────────────────────────────────────────────


def _recent_level(
    services: SuggestionServices, uid: str, zone: tzinfo, now: datetime, config: SuggestionConfig
) -> str | None:
    today = now.astimezone(zone).date()
    docs = services.trends.day_docs(uid, trends.day_range(today, 2))
    last = trends.latest_reading(docs.values())
    if last is None or (now - last.at).total_seconds() > config.recent_reading_s:
        return None
    return last.level


# ── Recommendations ──────────────────────────────────────────────────────────────────────────────


@dataclass(frozen=True)
class Shown:
    """One suggestion shown to a user, as the callable and the alert return it."""

    recommendation_id: str
    pick: recommend.Pick
    language: str

    def as_response(self) -> dict[str, Any]:
        return {
            "recommendationId": self.recommendation_id,
            **self.pick.suggestion.localized(self.language),
            "rank": self.pick.rank,
            "reason": self.pick.reason.value,
        }


def _show(
    services: SuggestionServices,
    config: SuggestionConfig,
    uid: str,
    count: int,
    stress_level: str | None,
    language: str | None,
    source: str,
    at: datetime | None = None,
    message_path: str | None = None,
) -> tuple[Context, list[Shown], Catalog]:
    now = services.clock()
    catalog = current_catalog(services, config)
    profile = services.store.profile(uid)
    _, zone = user_zone(profile, config.default_time_zone)
    lang = user_language(language, profile.get("language"))
    if stress_level is None:
        stress_level = _recent_level(services, uid, zone, now, config)
    context = recommend.context_at(stress_level, (at or now).astimezone(zone))
    population = services.cached("population", config.cache_ttl_s, services.store.population)
    picks = recommend.rank(
        catalog, services.store.model(uid), population, context, count, services.rng, config.params
    )
    records = [
        {
            "suggestionId": pick.suggestion.id,
            "kind": pick.suggestion.kind,
            "catalogVersion": catalog.version,
            "shownAt": now,
            "source": source,
            "messagePath": message_path,
            "context": context.as_field(),
            "rank": pick.rank,
            **pick.reason_field(),
            "language": lang,
            "feedback": None,
            "expireAt": now + timedelta(days=config.recommendation_ttl_days),
        }
        for pick in picks
    ]
    ids = services.store.save_recommendations(uid, records) if records else []
    if ids is None:
        raise RequestError("permission-denied", "This account was deleted.")
    return context, [Shown(i, p, lang) for i, p in zip(ids, picks, strict=True)], catalog


def recommend_coping(
    services: SuggestionServices, config: SuggestionConfig, uid: str, data: Mapping[str, Any] | None
) -> dict[str, Any]:
    """recommend_coping: {count?, stressLevel?, language?} → the signed-in user's top suggestions."""
    data = data or {}
    count = int_arg(data, "count", 3, 1, config.max_count)
    stress = data.get("stressLevel")
    if stress is not None and stress not in recommend.STRESS_CONTEXTS:
        allowed = ", ".join(recommend.STRESS_CONTEXTS)
        raise RequestError("invalid-argument", f"'stressLevel' must be one of: {allowed}.")
    language = data.get("language")
    if language is not None and not isinstance(language, str):
        raise RequestError("invalid-argument", "'language' must be a language code such as 'ko'.")
    context, shown, catalog = _show(services, config, uid, count, stress, language, "on_demand")
    return {
        "recommendations": [s.as_response() for s in shown],
        "context": context.as_field(),
        "catalogVersion": catalog.version,
    }


@dataclass(frozen=True)
class AlertContext:
    """What the alerts code knows when it warns a sender about a high reading."""

    stress_level: str = "high"
    at: datetime | None = None  # the message's createdAt: sets the time-of-day context
    message_path: str | None = None  # chats/{chatId}/messages/{messageId}
    language: str | None = None


@dataclass(frozen=True)
class AlertSuggestion:
    recommendation_id: str
    suggestion_id: str
    kind: str
    title: str
    text: str
    language: str

    def as_field(self) -> dict[str, str]:
        """For the notification document and the push's data: the app rates it by recommendationId."""
        return {
            "recommendationId": self.recommendation_id,
            "suggestionId": self.suggestion_id,
            "kind": self.kind,
            "title": self.title,
            "text": self.text,
            "language": self.language,
        }


def recommend_for_alert(
    services: SuggestionServices, config: SuggestionConfig, user_id: str, context: AlertContext
) -> AlertSuggestion | None:
    """One suggestion for a sender's self-care alert, recorded like any other (source "alert")."""
    _, shown, _ = _show(
        services,
        config,
        user_id,
        1,
        context.stress_level if context.stress_level in recommend.STRESS_CONTEXTS else "high",
        context.language,
        "alert",
        at=context.at,
        message_path=context.message_path,
    )
    if not shown:
        return None
    first = shown[0].as_response()
    return AlertSuggestion(
        recommendation_id=first["recommendationId"],
        suggestion_id=first["suggestionId"],
        kind=first["kind"],
        title=first["title"],
        text=first["text"],
        language=first["language"],
    )


# ── Feedback ─────────────────────────────────────────────────────────────────────────────────────


def rate_suggestion(
    services: SuggestionServices, config: SuggestionConfig, uid: str, data: Mapping[str, Any] | None
) -> dict[str, Any]:
    """rate_suggestion: {recommendationId, helpful, suggestionId?} → counted once per showing."""
    data = data or {}
    rec_id = data.get("recommendationId")
    helpful = data.get("helpful")
    suggestion_id = data.get("suggestionId")
    if not isinstance(rec_id, str) or not _RECOMMENDATION_ID.match(rec_id):
        raise RequestError("invalid-argument", "'recommendationId' must be the id you were given.")
    if not isinstance(helpful, bool):
        raise RequestError("invalid-argument", "'helpful' must be true or false.")
    if suggestion_id is not None and not isinstance(suggestion_id, str):
        raise RequestError("invalid-argument", "'suggestionId' must be a string.")
    outcome = services.store.rate(uid, rec_id, helpful, suggestion_id, services.clock(), config.params)
    if outcome.verdict is Verdict.NOT_SHOWN:
        raise RequestError("not-found", "You can only rate a suggestion you were shown.")
    if outcome.verdict is Verdict.MISMATCH:
        raise RequestError("invalid-argument", "That recommendation showed a different suggestion.")
    if outcome.verdict is Verdict.ALREADY_RATED:
        raise RequestError("already-exists", "You already rated this suggestion.")
    return {
        "recommendationId": rec_id,
        "suggestionId": outcome.suggestion_id,
        "helpful": helpful,
        "recorded": outcome.verdict is Verdict.RECORD,
    }
