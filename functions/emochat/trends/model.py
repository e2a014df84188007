"""Daily stress aggregates per user. Pure: no I/O.

Each ready message's reading is stored in its own small document, users/{uid}/stressIndex/{id} (id:
`index_id` of the message's key `{chatId}/{messageId}`), which also records the day it is counted
on. A day document (users/{uid}/stressDaily/{YYYY-MM-DD}, the user's local date) keeps only bounded
aggregates of that day's readings (`DayTotals`): how many readings had each score, in tenths (the
contract's precision: at most 1,001 distinct scores from 0.0 to 100.0), how many had each level, and
the latest reading. Count, sum, mean, min, max and high are derived from those counts, so a day
document stays a few kilobytes however many readings it counts, and every change is exact integer
arithmetic: the reading stored for the message (its index document) comes out, its new reading goes
in. Applying the same reading twice changes nothing; re-scoring replaces it; taking it out removes
it; the aggregates are always what a recomputation from the readings gives.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta, tzinfo
from typing import Any

from emochat import domain
from emochat.domain import STRESS_LEVELS

LEVELS = STRESS_LEVELS
MAX_TENTHS = 1000  # a score of 100.0: the scores a day can hold are 0..1000 tenths


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

    @classmethod
    def parse(cls, value: Any) -> Reading | None:
        """A stored reading, or None when `value` holds none (e.g. an index document of old)."""
        if not isinstance(value, Mapping) or not isinstance(value.get("at"), datetime):
            return None
        score, level = domain.finite_number(value.get("score")), value.get("level")
        return cls(score, level, value["at"]) if score is not None and level in LEVELS else None


def tenths(score: float) -> int:
    return round(score * 10)


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


# ── Per-reading documents ────────────────────────────────────────────────────────────────────────


def index_id(key: str) -> str:
    """users/{uid}/stressIndex/{id}: one message's reading and its day. The key `{chatId}/{messageId}`
    cannot be an id ('/'), so it becomes `{chatId}|{messageId}` with '%' and '|' escaped in each part:
    both ids may hold any character (the pipeline processes odd message ids), and two messages must
    never share an index document."""
    chat_id, _, message_id = key.partition("/")
    return f"{_escape(chat_id)}|{_escape(message_id)}"


def _escape(part: str) -> str:
    return part.replace("%", "%25").replace("|", "%7C")


def _unescape(part: str) -> str:
    return part.replace("%7C", "|").replace("%25", "%")


@dataclass(frozen=True)
class DocUpdate:
    """What to do with a document: nothing, write `doc`, or delete it (`doc` None)."""

    changed: bool
    doc: dict[str, Any] | None


@dataclass(frozen=True)
class Stored:
    """What a message's index document says: the day its reading is counted on, and the reading
    (None in an index document written before readings were stored in it: see DayTotals.legacy)."""

    day: str
    reading: Reading | None

    @classmethod
    def parse(cls, doc: Mapping[str, Any] | None) -> Stored | None:
        day = (doc or {}).get("day")
        return cls(day, Reading.parse(doc)) if isinstance(day, str) else None


def key_of_index(doc_id: str) -> str:
    chat_id, _, message_id = doc_id.partition("|")
    return reading_key(_unescape(chat_id), _unescape(message_id))


def index_doc(day: str, reading: Reading) -> dict[str, Any]:
    return {"day": day, **reading.as_field()}


def index_update(stored: Stored | None, change: TrendChange) -> DocUpdate:
    """The message's index document after `change`: its reading and day, or gone."""
    if change.reading is None:
        return DocUpdate(changed=stored is not None, doc=None)
    changed = stored != Stored(change.day, change.reading)
    return DocUpdate(changed, index_doc(change.day, change.reading))


@dataclass(frozen=True, order=True)
class Latest:
    """A day's latest reading, and the message it belongs to (ties in time go to the larger
    index id, as Firestore orders documents of equal `at`)."""

    at: datetime
    id: str
    reading: Reading = field(compare=False)

    @classmethod
    def of(cls, key: str, reading: Reading) -> Latest:
        return cls(reading.at, index_id(key), reading)

    def as_field(self) -> dict[str, Any]:
        return {**self.reading.as_field(), "id": self.id}

    @classmethod
    def parse(cls, value: Any) -> Latest | None:
        reading = Reading.parse(value)
        if reading is None or not isinstance(value.get("id"), str):
            return None
        return cls(reading.at, value["id"], reading)


# ── Day documents ────────────────────────────────────────────────────────────────────────────────


@dataclass(frozen=True)
class DayTotals:
    """A day's aggregates, exact and bounded: readings per score (tenths → count) and per level,
    and the latest reading. `legacy` holds the readings of a day document written when days kept
    every reading in a map: they are counted here and have no reading in their index document, so
    they stay (only ever shrinking) until each is taken out or re-scored."""

    scores: Mapping[int, int] = field(default_factory=dict)
    levels: Mapping[str, int] = field(default_factory=dict)
    last: Latest | None = None
    legacy: Mapping[str, Reading] = field(default_factory=dict)

    @property
    def count(self) -> int:
        return sum(self.scores.values())

    @classmethod
    def of_readings(cls, readings: Mapping[str, Reading]) -> DayTotals:
        return cls(
            scores=dict(Counter(tenths(r.score) for r in readings.values())),
            levels=dict(Counter(r.level for r in readings.values())),
            last=max((Latest.of(k, r) for k, r in readings.items()), default=None),
        )

    @classmethod
    def parse(cls, doc: Mapping[str, Any] | None) -> DayTotals:
        doc = doc or {}
        raw = doc.get("readings")
        parsed = {k: Reading.parse(v) for k, v in raw.items()} if isinstance(raw, Mapping) else {}
        legacy = {k: r for k, r in parsed.items() if r is not None}
        if "scores" not in doc:  # written before day documents kept counts: count its map
            return replace(cls.of_readings(legacy), legacy=legacy)
        scores = doc.get("scores") if isinstance(doc.get("scores"), Mapping) else {}
        levels = doc.get("levels") if isinstance(doc.get("levels"), Mapping) else {}
        return cls(
            scores={int(t): int(n) for t, n in scores.items() if int(n) > 0},
            levels={lv: int(levels.get(lv) or 0) for lv in LEVELS},
            last=Latest.parse(doc.get("last")),
            legacy=legacy,
        )

    def plus(self, key: str, reading: Reading) -> DayTotals:
        t = tenths(reading.score)
        latest = Latest.of(key, reading)
        return replace(
            self,
            scores={**self.scores, t: self.scores.get(t, 0) + 1},
            levels={**self.levels, reading.level: self.levels.get(reading.level, 0) + 1},
            last=latest if self.last is None or latest > self.last else self.last,
        )

    def minus(self, key: str, reading: Reading, latest_other: Latest | None) -> DayTotals:
        """Without one of its readings; `latest_other` is the latest of the day's OTHER readings in
        index documents, needed when `reading` is the latest (`needs_latest_other`)."""
        t = tenths(reading.score)
        scores = {**self.scores, t: self.scores.get(t, 0) - 1}
        levels = {**self.levels, reading.level: self.levels.get(reading.level, 0) - 1}
        legacy = {k: r for k, r in self.legacy.items() if k != key}
        last = self.last
        if last is not None and last.id == index_id(key):
            candidates = [Latest.of(k, r) for k, r in legacy.items()]
            candidates += [latest_other] if latest_other is not None else []
            last = max(candidates) if candidates else None
        return DayTotals({s: n for s, n in scores.items() if n > 0}, levels, last, legacy)

    def summary(self) -> dict[str, Any]:
        """count, sum, mean, min, max, high, per-level counts and the latest reading."""
        count = self.count
        total = sum(t * n for t, n in self.scores.items())
        levels = {level: self.levels.get(level, 0) for level in LEVELS}
        return {
            "count": count,
            "sum": total / 10,
            "mean": round(total / count / 10, 1) if count else None,
            "min": min(self.scores) / 10 if count else None,
            "max": max(self.scores) / 10 if count else None,
            "high": levels["high"],
            "levels": levels,
            "last": self.last.as_field() if self.last else None,
        }

    def as_doc(self, day: str, time_zone: str) -> dict[str, Any]:
        """users/{uid}/stressDaily/{day}: the summary and the counts it is derived from."""
        doc = {
            "date": day,
            "timeZone": time_zone,
            **self.summary(),
            "scores": {str(t): n for t, n in sorted(self.scores.items())},
        }
        if self.legacy:
            doc["readings"] = {k: r.as_field() for k, r in self.legacy.items()}
        return doc


def summarize(readings: Mapping[str, Reading]) -> dict[str, Any]:
    return DayTotals.of_readings(readings).summary()


def day_doc(day: str, time_zone: str, readings: Mapping[str, Reading]) -> dict[str, Any]:
    return DayTotals.of_readings(readings).as_doc(day, time_zone)


@dataclass(frozen=True)
class TrendChange:
    """Put (reading) or take out (None) one message's reading in one user's day."""

    user_id: str
    day: str
    key: str
    reading: Reading | None


@dataclass(frozen=True)
class DayWrite:
    """One day document's part of a change: `old` (the reading counted there now) out, `new` in."""

    day: str
    old: Reading | None
    new: Reading | None


def day_writes(
    stored: Stored | None, change: TrendChange, days: Mapping[str, Mapping[str, Any] | None]
) -> list[DayWrite]:
    """What one change does to which day documents, given the message's index document (`stored`)
    and the day documents it names (`days`: stored.day and change.day, None when missing).

    The old reading comes out of the day it was STORED on, not the day its timestamp falls on in the
    user's current time zone (a time-zone change in between would leave it counted twice), and it is
    the reading stored there, not the one the event says was there (events come late and twice)."""

    def old_on(day: str) -> Reading | None:
        if stored is not None and stored.reading is not None:
            return stored.reading
        return DayTotals.parse(days.get(day)).legacy.get(change.key)

    writes = []
    if stored is not None and stored.day != change.day:
        writes.append(DayWrite(stored.day, old_on(stored.day), None))
        writes.append(DayWrite(change.day, None, change.reading))
    else:  # the same day, or no index document (a reading of old is looked for in change.day's map)
        writes.append(DayWrite(change.day, old_on(change.day), change.reading))
    return [w for w in writes if w.old != w.new]


def needs_latest_other(current: Mapping[str, Any] | None, key: str, write: DayWrite) -> bool:
    """Whether applying `write` needs the day's latest other reading (from the index documents): only
    when the reading taken out is the day's latest and nothing as late replaces it."""
    last = DayTotals.parse(current).last
    return (
        write.old is not None
        and last is not None
        and last.id == index_id(key)
        and (write.new is None or write.new.at < last.at)
    )


def with_reading(
    current: Mapping[str, Any] | None,
    time_zone: str,
    key: str,
    write: DayWrite,
    latest_other: Latest | None = None,
) -> DocUpdate:
    """The day document after taking `write.old` out and putting `write.new` in (either may be None);
    `latest_other` as `needs_latest_other` asks for it."""
    if write.old == write.new:
        return DocUpdate(changed=False, doc=dict(current) if current else None)
    totals = DayTotals.parse(current)
    if write.old is not None:
        totals = totals.minus(key, write.old, latest_other)
    if write.new is not None:
        totals = totals.plus(key, write.new)
    return DocUpdate(changed=True, doc=totals.as_doc(write.day, time_zone) if totals.count else None)


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


def readings_by_day(
    messages: Iterable[tuple[str, Mapping[str, Any]]], tz: tzinfo
) -> dict[str, dict[str, Reading]]:
    """Day → {key: reading}, straight from (key, message) pairs of one sender: the ground truth."""
    by_day: dict[str, dict[str, Reading]] = {}
    for key, message in messages:
        reading = reading_of(message)
        if reading is not None:
            by_day.setdefault(day_of(reading.at, tz), {})[key] = reading
    return dict(sorted(by_day.items()))


def recompute(messages: Iterable[tuple[str, Mapping[str, Any]]], tz: tzinfo) -> dict[str, dict[str, Any]]:
    """Day → aggregates, straight from (key, message) pairs of one sender."""
    return {day: summarize(readings) for day, readings in readings_by_day(messages, tz).items()}


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
    lasts = [r for r in (Reading.parse(d.get("last")) for d in day_docs) if r is not None]
    return max(lasts, key=lambda r: r.at) if lasts else None
