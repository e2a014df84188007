"""Wellbeing services: coping suggestions, their feedback, stress trends, and a user's data deletion.

The service layer of the callables `recommend_coping`, `rate_suggestion`, `stress_trends`,
`delete_my_data`, the trigger `update_stress_trends`, the alerts hook `recommend_for_alert`, and
the ops CLI. Decisions come from the pure modules `recommend` and `trends`; Firestore is behind the
narrow `WellbeingStore` interface (adapter: adapters/wellbeing_store.py; unit tests: a fake).
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
import re
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, tzinfo
from pathlib import Path
from typing import Any, Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from emochat.suggestions import bandit as recommend
from emochat.suggestions.bandit import Catalog, Context, Counts, PolicyParams, UserModel, Verdict
from emochat.trends import model as trends
from emochat.trends.model import Reading, TrendChange

log = logging.getLogger(__name__)

BUNDLED_CATALOG = Path(__file__).resolve().parent.parent.parent / "catalog" / "coping_suggestions.json"
LANGUAGES = ("ko", "en")
_RECOMMENDATION_ID = re.compile(r"^[A-Za-z0-9_-]{1,128}$")  # Firestore auto ids are 20 of [A-Za-z0-9]


class RequestError(Exception):
    """A caller's request cannot be served; `code` is a callable error code (invalid-argument, ...)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


# ── Ports ────────────────────────────────────────────────────────────────────────────────────────


@dataclass(frozen=True)
class RatingOutcome:
    verdict: Verdict
    suggestion_id: str | None = None


class WellbeingStore(Protocol):
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

    def save_recommendations(self, uid: str, records: list[dict[str, Any]]) -> list[str]:
        """Store each shown suggestion; returns the new recommendation ids, in order."""
        ...

    def rate(
        self, uid: str, recommendation_id: str, helpful: bool, suggestion_id: str | None, now: datetime
    ) -> RatingOutcome:
        """Atomically: judge (recommend.judge_rating), then mark the recommendation rated, update the
        user's model (recommend.feedback_update) and the population counts."""
        ...

    def recommendations(self, uid: str, limit: int) -> list[tuple[str, dict[str, Any]]]:
        """The user's latest recommendations, newest first."""
        ...

    def message(self, chat_id: str, message_id: str) -> dict[str, Any] | None: ...

    def apply_reading(self, change: TrendChange, time_zone: str) -> bool:
        """Atomically put or take out one message's reading in a day document (trends.with_reading)."""
        ...

    def day_docs(self, uid: str, days: Iterable[str]) -> dict[str, dict[str, Any]]: ...

    def sent_messages(self, uid: str) -> Iterator[tuple[str, dict[str, Any]]]:
        """(reading key, message) for every message the user sent."""
        ...

    def replace_days(self, uid: str, docs: Mapping[str, dict[str, Any] | None]) -> None: ...

    def delete_user(self, uid: str) -> int:
        """Delete users/{uid} and everything under it; returns how many documents went."""
        ...

    def user_ids(self) -> Iterator[str]:
        """Every uid with anything under users/ (also those whose profile document is gone)."""
        ...


class AccountDirectory(Protocol):
    def missing(self, uids: list[str]) -> set[str]:
        """Those of `uids` that have no Firebase Auth account (at most 100 per call)."""
        ...

    def delete_account(self, uid: str) -> bool:
        """Delete the Auth account (ops path); False when there was none."""
        ...


@dataclass
class WellbeingServices:
    store: WellbeingStore
    accounts: AccountDirectory | None = None
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
class WellbeingConfig:
    catalog_version: str = "v1"
    params: PolicyParams = field(default_factory=PolicyParams)
    default_time_zone: str = "Asia/Seoul"
    default_language: str = "ko"
    max_count: int = 5
    default_trend_days: int = 14
    max_trend_days: int = 90
    # A reading this recent sets the context's stress level when the caller gives none.
    recent_reading_s: float = 3 * 3600
    # Recommendations carry expireAt this far ahead (for a Firestore TTL policy on the collection).
    recommendation_ttl_days: int = 180
    cache_ttl_s: float = 300.0


# ── Catalog ──────────────────────────────────────────────────────────────────────────────────────


def load_catalog_file(path: Path = BUNDLED_CATALOG) -> tuple[Catalog, dict[str, Any]]:
    """The versioned repo file, validated, and where it came from (for catalog/{version})."""
    raw = path.read_bytes()
    catalog = recommend.parse_catalog(json.loads(raw))
    return catalog, {"file": path.name, "sha256": hashlib.sha256(raw).hexdigest()}


def seed_catalog(store: WellbeingStore, path: Path = BUNDLED_CATALOG) -> Catalog:
    """Seed catalog/{version}/suggestions/{id} from the repo file (idempotent)."""
    catalog, source = load_catalog_file(path)
    store.seed_catalog(catalog, source)
    return catalog


def current_catalog(services: WellbeingServices, config: WellbeingConfig) -> Catalog:
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


def _zone(name: Any) -> tzinfo | None:
    if not isinstance(name, str) or not name:
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None


def user_zone(profile: Mapping[str, Any], config: WellbeingConfig) -> tuple[str, tzinfo]:
    """The user's IANA time zone (users/{uid}.timeZone), else the configured default."""
    for name in (profile.get("timeZone"), config.default_time_zone):
        zone = _zone(name)
        if zone is not None:
            return name, zone
    return "UTC", UTC


def user_language(requested: Any, profile: Mapping[str, Any], config: WellbeingConfig) -> str:
    for candidate in (requested, profile.get("language"), config.default_language):
        if isinstance(candidate, str) and candidate.split("-")[0].lower() in LANGUAGES:
            return candidate.split("-")[0].lower()
    return "en"


def _recent_level(
    services: WellbeingServices, uid: str, zone: tzinfo, now: datetime, config: WellbeingConfig
) -> str | None:
    today = now.astimezone(zone).date()
    docs = services.store.day_docs(uid, trends.day_range(today, 2))
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
    services: WellbeingServices,
    config: WellbeingConfig,
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
    _, zone = user_zone(profile, config)
    lang = user_language(language, profile, config)
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
    return context, [Shown(i, p, lang) for i, p in zip(ids, picks, strict=True)], catalog


def _int_arg(data: Mapping[str, Any], name: str, default: int, low: int, high: int) -> int:
    value = data.get(name, default)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int | float) or int(value) != value:
        raise RequestError("invalid-argument", f"'{name}' must be a whole number.")
    if not low <= value <= high:
        raise RequestError("invalid-argument", f"'{name}' must be within {low}..{high}.")
    return int(value)


def recommend_coping(
    services: WellbeingServices, config: WellbeingConfig, uid: str, data: Mapping[str, Any] | None
) -> dict[str, Any]:
    """recommend_coping: {count?, stressLevel?, language?} → the signed-in user's top suggestions."""
    data = data or {}
    count = _int_arg(data, "count", 3, 1, config.max_count)
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
    services: WellbeingServices, config: WellbeingConfig, user_id: str, context: AlertContext
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
    services: WellbeingServices, config: WellbeingConfig, uid: str, data: Mapping[str, Any] | None
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
    outcome = services.store.rate(uid, rec_id, helpful, suggestion_id, services.clock())
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


# ── Trends ───────────────────────────────────────────────────────────────────────────────────────


def record_message_change(
    services: WellbeingServices,
    config: WellbeingConfig,
    chat_id: str,
    message_id: str,
    before: Mapping[str, Any] | None,
    after: Mapping[str, Any] | None,
) -> list[TrendChange]:
    """Keep the sender's daily aggregates in step with one message write. Idempotent.

    The event only says that something changed; what is written follows the message as it is now
    (read again), so redelivered or out-of-order events converge on the same aggregates.
    """
    if not trends.is_relevant(before, after):
        return []
    key = trends.reading_key(chat_id, message_id)
    current = services.store.message(chat_id, message_id)
    zones: dict[str, tuple[str, tzinfo]] = {}

    def zone_of(uid: str) -> tuple[str, tzinfo]:
        if uid not in zones:
            zones[uid] = user_zone(services.store.profile(uid), config)
        return zones[uid]

    def placed(message: Mapping[str, Any] | None) -> tuple[str, str, Reading] | None:
        uid, reading = trends.sender_of(message), trends.reading_of(message)
        if uid is None or reading is None:
            return None
        return uid, trends.day_of(reading.at, zone_of(uid)[1]), reading

    was = placed(before)
    changes = trends.plan_changes(key, (was[0], was[1]) if was else None, placed(current))
    return [c for c in changes if services.store.apply_reading(c, zone_of(c.user_id)[0])]


def stress_trends(
    services: WellbeingServices, config: WellbeingConfig, uid: str, data: Mapping[str, Any] | None
) -> dict[str, Any]:
    """stress_trends: {days?} → the last N local days of the user's readings, oldest first."""
    days = _int_arg(data or {}, "days", config.default_trend_days, 1, config.max_trend_days)
    zone_name, zone = user_zone(services.store.profile(uid), config)
    today = services.clock().astimezone(zone).date()
    wanted = trends.day_range(today, days)
    series = trends.series(services.store.day_docs(uid, wanted), today, days)
    return {"timeZone": zone_name, "from": wanted[0], "to": wanted[-1], "days": series}


def recompute_trends(
    services: WellbeingServices, config: WellbeingConfig, uid: str
) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, Any]]]:
    """(stored aggregates, aggregates recomputed from the user's messages), both by day."""
    _, zone = user_zone(services.store.profile(uid), config)
    truth = trends.recompute(services.store.sent_messages(uid), zone)
    stored = services.store.day_docs(uid, truth.keys())
    return stored, truth


def rebuild_trends(services: WellbeingServices, config: WellbeingConfig, uid: str) -> int:
    """Rewrite a user's day documents from their messages (repair); returns the days written."""
    zone_name, zone = user_zone(services.store.profile(uid), config)
    by_day: dict[str, dict[str, Reading]] = {}
    for key, message in services.store.sent_messages(uid):
        reading = trends.reading_of(message)
        if reading is not None:
            by_day.setdefault(trends.day_of(reading.at, zone), {})[key] = reading
    docs = {day: trends.day_doc(day, zone_name, readings) for day, readings in by_day.items()}
    services.store.replace_days(uid, docs)
    return len(docs)


# ── Deletion ─────────────────────────────────────────────────────────────────────────────────────


def delete_user_data(services: WellbeingServices, uid: str) -> int:
    """Everything kept for a user under users/{uid}: profile, devices, notifications, suggestions
    shown, feedback model, stress aggregates. Chat messages stay: they belong to the chat too."""
    return services.store.delete_user(uid)


def delete_my_data(
    services: WellbeingServices, config: WellbeingConfig, uid: str, data: Mapping[str, Any] | None
) -> dict[str, Any]:
    """delete_my_data: {confirm: true} → {deleted: <documents>}; the app then deletes the account."""
    if (data or {}).get("confirm") is not True:
        raise RequestError("invalid-argument", "Pass {confirm: true} to delete your data.")
    return {"deleted": delete_user_data(services, uid)}


def purge_deleted_users(
    services: WellbeingServices, apply: bool = True, limit: int = 1000, max_share: float = 0.5
) -> list[str]:
    """Delete the data of users whose Auth account is gone (the Python SDK has no user-deleted
    trigger). Returns the uids found (and, with `apply`, purged), at most `limit` per run.

    A safety valve: when more than `max_share` of the users checked (and more than 10) look deleted,
    the account look-up is more likely misconfigured (another project, another tenant) than that
    many people left, and nothing is deleted.
    """
    if services.accounts is None:
        raise RuntimeError("purging needs an account directory (Firebase Auth)")
    accounts = services.accounts
    orphans: list[str] = []
    batch: list[str] = []
    checked = 0

    def flush() -> None:
        nonlocal checked
        if batch:
            checked += len(batch)
            orphans.extend(sorted(accounts.missing(list(batch))))
            batch.clear()

    for uid in services.store.user_ids():
        batch.append(uid)
        if len(batch) == 100:
            flush()
        if len(orphans) >= limit:
            break
    flush()
    if len(orphans) > 10 and len(orphans) > max_share * checked:
        raise RuntimeError(
            f"{len(orphans)} of {checked} users have no Auth account: refusing to purge "
            "(check the project and credentials; the ops CLI's purge-deleted lists them)"
        )
    orphans = orphans[:limit]
    if apply:
        for uid in orphans:
            delete_user_data(services, uid)
    return orphans
