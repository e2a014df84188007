"""Daily stress aggregates per user. Pure: no I/O.

A day document (users/{uid}/stressDaily/{YYYY-MM-DD}, the user's local date) keeps each ready
message's reading under the message's key (`{chatId}/{messageId}`) next to the aggregates derived
from them. The key is the idempotency marker: applying the same message twice changes nothing, a
re-processed message replaces its own reading, a deleted or no-longer-ready message takes its
reading out, and count/mean/max/high are always exactly what a recomputation from the messages
gives (they are recomputed from the readings on every change, never incremented blindly).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta, tzinfo
from typing import Any

from emochat import domain
from emochat.domain import STRESS_LEVELS

LEVELS = STRESS_LEVELS


@dataclass(frozen=True)
class Reading:
    """One ready message's stress reading, and when it was sent."""

    score: float
    level: str
    at: datetime

    def as_field(self) -> dict[str, Any]:
        return {"score": self.score, "level": self.level, "at": self.at}

    @classmethod
    def from_field(cls, value: Mapping[str, Any]) -> Reading:
        return cls(float(value["score"]), str(value["level"]), value["at"])


def reading_of(message: Mapping[str, Any] | None) -> Reading | None:
    """The reading a message contributes to its sender's trend: a ready message with a usable reading
    (`domain.reading_of`) and a createdAt to place it on a day."""
    parsed = domain.reading_of(message)
    if parsed is None or parsed.at is None:
        return None
    return Reading(parsed.score, parsed.level.value, parsed.at)


def sender_of(message: Mapping[str, Any] | None) -> str | None:
    sender = (message or {}).get("senderId")
    return sender if isinstance(sender, str) and sender else None


def reading_key(chat_id: str, message_id: str) -> str:
    return f"{chat_id}/{message_id}"


def day_of(at: datetime, tz: tzinfo) -> str:
    """The sender's local calendar date of a reading, as the day document's id."""
    return at.astimezone(tz).date().isoformat()


def is_relevant(before: Mapping[str, Any] | None, after: Mapping[str, Any] | None) -> bool:
    """Whether a message write can change any trend (most writes, e.g. processing, cannot)."""

    def placement(message: Mapping[str, Any] | None) -> tuple[str | None, Reading] | None:
        reading = reading_of(message)
        return (sender_of(message), reading) if reading is not None else None

    return placement(before) != placement(after)


# ── Day documents ────────────────────────────────────────────────────────────────────────────────


def summarize(readings: Mapping[str, Reading]) -> dict[str, Any]:
    """count, sum, mean, min, max, high, per-level counts and the latest reading."""
    scores = [r.score for r in readings.values()]
    levels = {level: sum(1 for r in readings.values() if r.level == level) for level in LEVELS}
    last = max(readings.values(), key=lambda r: r.at) if readings else None
    return {
        "count": len(scores),
        "sum": round(sum(scores), 4),
        "mean": round(sum(scores) / len(scores), 1) if scores else None,
        "min": min(scores) if scores else None,
        "max": max(scores) if scores else None,
        "high": levels["high"],
        "levels": levels,
        "last": last.as_field() if last else None,
    }


def readings_in(day_doc: Mapping[str, Any] | None) -> dict[str, Reading]:
    raw = (day_doc or {}).get("readings") or {}
    return {key: Reading.from_field(value) for key, value in raw.items() if isinstance(value, Mapping)}


@dataclass(frozen=True)
class DayUpdate:
    """What to do with a day document: nothing, write `doc`, or delete it (`doc` None)."""

    changed: bool
    doc: dict[str, Any] | None


def with_reading(
    current: Mapping[str, Any] | None, day: str, time_zone: str, key: str, reading: Reading | None
) -> DayUpdate:
    """The day document after putting (or, with None, taking out) one message's reading."""
    readings = readings_in(current)
    if readings.get(key) == reading:  # also: nothing to take out
        return DayUpdate(changed=False, doc=dict(current) if current else None)
    if reading is None:
        del readings[key]
    else:
        readings[key] = reading
    return DayUpdate(changed=True, doc=day_doc(day, time_zone, readings) if readings else None)


def day_doc(day: str, time_zone: str, readings: Mapping[str, Reading]) -> dict[str, Any]:
    """users/{uid}/stressDaily/{day}: the aggregates and the readings they come from."""
    return {
        "date": day,
        "timeZone": time_zone,
        **summarize(readings),
        "readings": {k: r.as_field() for k, r in readings.items()},
    }


@dataclass(frozen=True)
class TrendChange:
    """Put (reading) or take out (None) one message's reading in one user's day."""

    user_id: str
    day: str
    key: str
    reading: Reading | None


def index_id(key: str) -> str:
    """users/{uid}/stressIndex/{id}: which day holds a message's reading (key `{chatId}/{messageId}`;
    '/' cannot be in a document id, '|' cannot be in a chat id the app makes)."""
    return key.replace("/", "|", 1)


def day_writes(stored_day: str | None, change: TrendChange) -> list[tuple[str, Reading | None]]:
    """The (day, reading or None to take out) writes for one change, given the day the message's
    reading is stored on (its index doc). A reading is taken out of the day it was STORED on, not the
    day its timestamp falls on in the user's current time zone: a time-zone change in between would
    otherwise leave it counted twice."""
    writes: list[tuple[str, Reading | None]] = []
    if stored_day is not None and (change.reading is None or stored_day != change.day):
        writes.append((stored_day, None))
    if change.reading is not None:
        writes.append((change.day, change.reading))
    elif stored_day is None:
        writes.append((change.day, None))  # no index (a reading stored before the index existed)
    return writes


def plan_changes(
    key: str, old: tuple[str, str] | None, new: tuple[str, str, Reading] | None
) -> list[TrendChange]:
    """From where a message's reading was (user, day) to where it is now (user, day, reading)."""
    changes = []
    if old is not None and (new is None or (new[0], new[1]) != old):
        changes.append(TrendChange(old[0], old[1], key, None))
    if new is not None:
        changes.append(TrendChange(new[0], new[1], key, new[2]))
    return changes


# ── Reading back ─────────────────────────────────────────────────────────────────────────────────


def recompute(messages: Iterable[tuple[str, Mapping[str, Any]]], tz: tzinfo) -> dict[str, dict[str, Any]]:
    """Day → aggregates, straight from (key, message) pairs of one sender: the ground truth."""
    by_day: dict[str, dict[str, Reading]] = {}
    for key, message in messages:
        reading = reading_of(message)
        if reading is not None:
            by_day.setdefault(day_of(reading.at, tz), {})[key] = reading
    return {day: summarize(readings) for day, readings in sorted(by_day.items())}


def day_range(last_day: date, days: int) -> list[str]:
    return [(last_day - timedelta(days=offset)).isoformat() for offset in range(days - 1, -1, -1)]


def series(day_docs: Mapping[str, Mapping[str, Any]], last_day: date, days: int) -> list[dict[str, Any]]:
    """The last `days` days for the app's chart, oldest first, days without readings included."""
    out = []
    for day in day_range(last_day, days):
        doc = day_docs.get(day) or {}
        count = int(doc.get("count") or 0)
        out.append(
            {
                "date": day,
                "count": count,
                "mean": doc.get("mean") if count else None,
                "max": doc.get("max") if count else None,
                "high": int(doc.get("high") or 0),
            }
        )
    return out


def latest_reading(day_docs: Iterable[Mapping[str, Any]]) -> Reading | None:
    lasts = [Reading.from_field(d["last"]) for d in day_docs if isinstance(d.get("last"), Mapping)]
    return max(lasts, key=lambda r: r.at) if lasts else None
