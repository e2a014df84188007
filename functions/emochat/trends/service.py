"""Stress trends: the service layer of the trigger `update_stress_trends`, the callable
`stress_trends` and the ops CLI's verify/rebuild. Decisions come from trends.model."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from typing import Any

from emochat.domain import int_arg
from emochat.profile import user_zone
from emochat.trends import model as trends
from emochat.trends.model import Reading, TrendChange
from emochat.trends.ports import TrendStore


@dataclass
class TrendServices:
    store: TrendStore
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)


@dataclass(frozen=True)
class TrendConfig:
    default_time_zone: str = "Asia/Seoul"
    default_trend_days: int = 14
    max_trend_days: int = 90


def _zone(services: TrendServices, config: TrendConfig, uid: str) -> tuple[str, tzinfo]:
    return user_zone(services.store.profile(uid), config.default_time_zone)


def record_message_change(
    services: TrendServices,
    config: TrendConfig,
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
            zones[uid] = _zone(services, config, uid)
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
    services: TrendServices, config: TrendConfig, uid: str, data: Mapping[str, Any] | None
) -> dict[str, Any]:
    """stress_trends: {days?} → the last N local days of the user's readings, oldest first."""
    days = int_arg(data or {}, "days", config.default_trend_days, 1, config.max_trend_days)
    zone_name, zone = _zone(services, config, uid)
    today = services.clock().astimezone(zone).date()
    wanted = trends.day_range(today, days)
    series = trends.series(services.store.day_docs(uid, wanted), today, days)
    return {"timeZone": zone_name, "from": wanted[0], "to": wanted[-1], "days": series}


def recompute_trends(
    services: TrendServices, config: TrendConfig, uid: str
) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, Any]]]:
    """(stored aggregates, aggregates recomputed from the user's messages), both by day."""
    _, zone = _zone(services, config, uid)
    truth = trends.recompute(services.store.sent_messages(uid), zone)
    stored = services.store.day_docs(uid, truth.keys())
    return stored, truth


def rebuild_trends(services: TrendServices, config: TrendConfig, uid: str) -> int:
    """Rewrite a user's day documents from their messages (repair); returns the days written."""
    zone_name, zone = _zone(services, config, uid)
    by_day: dict[str, dict[str, Reading]] = {}
    for key, message in services.store.sent_messages(uid):
        reading = trends.reading_of(message)
        if reading is not None:
            by_day.setdefault(trends.day_of(reading.at, zone), {})[key] = reading
    docs = {day: trends.day_doc(day, zone_name, readings) for day, readings in by_day.items()}
    services.store.replace_days(uid, docs)
    return len(docs)
