"""Daily stress aggregates: readings, idempotent day updates, recomputation, the chart series."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from fakes.documents import Documents
from fakes.trends import InMemoryTrendStore

from emochat.trends import model as trends
from emochat.trends.model import Reading

SEOUL = ZoneInfo("Asia/Seoul")
T0 = datetime(2025, 11, 20, 1, 0, tzinfo=UTC)


def level(score: float) -> str:
    return "high" if score >= 60 else "moderate" if score >= 30 else "low"


def message(score: float | None, status: str = "ready", at: datetime = T0, sender: str = "u1") -> dict:
    stress = None if score is None else {"score": score, "level": level(score), "probability": score / 100}
    return {"kind": "voice", "senderId": sender, "status": status, "createdAt": at, "stress": stress}


@pytest.mark.parametrize(
    ("msg", "expected"),
    [
        (message(72.5), Reading(72.5, "high", T0)),
        (message(10), Reading(10.0, "low", T0)),
        (message(72.5, status="processing"), None),
        (message(72.5, status="failed"), None),
        (message(None), None),
        (None, None),
        ({**message(50), "stress": {"score": "50", "level": "moderate"}}, None),
        ({**message(50), "stress": {"score": 50, "level": "extreme"}}, None),
        ({**message(50), "createdAt": None}, None),
        # The shared parser's stricter checks (domain.reading_of, as the alerts always had them):
        ({**message(50), "stress": {"score": float("nan"), "level": "moderate"}}, None),
        ({**message(50), "stress": {"score": True, "level": "low"}}, None),
        ({**message(50), "senderId": ""}, None),
    ],
)
def test_reading_of(msg, expected) -> None:
    assert trends.reading_of(msg) == expected


def test_alerts_and_trends_read_a_message_through_one_parser() -> None:
    from emochat.alerts import model as alerts
    from emochat.domain import reading_of

    msg = message(72.5)
    parsed = reading_of(msg)
    assert parsed is not None and parsed.sender_id == "u1" and parsed.at == T0
    alert_reading = alerts.ready_reading("c", "m", None, msg)
    trend_reading = trends.reading_of(msg)
    assert alert_reading is not None and trend_reading is not None
    assert (alert_reading.score, alert_reading.level.value) == (trend_reading.score, trend_reading.level)


def test_day_is_the_senders_local_date() -> None:
    late_utc = datetime(2025, 11, 20, 16, 30, tzinfo=UTC)  # 01:30 on the 21st in Seoul
    assert trends.day_of(late_utc, SEOUL) == "2025-11-21"
    assert trends.day_of(late_utc, UTC) == "2025-11-20"


def test_relevance_ignores_writes_that_change_no_reading() -> None:
    assert not trends.is_relevant(None, message(None, status="processing"))
    assert not trends.is_relevant(message(40), {**message(40), "text": "edited"})
    assert trends.is_relevant(message(None, status="processing"), message(40))
    assert trends.is_relevant(message(40), message(70))
    assert trends.is_relevant(message(40), None)


def test_with_reading_takes_the_stored_reading_out_and_puts_the_new_one_in() -> None:
    day = "2025-11-20"

    def put(doc, key, old, new, latest=None):
        return trends.with_reading(doc, "UTC", key, trends.DayWrite(day, old, new), latest)

    r1 = Reading(40.0, "moderate", T0)
    first = put(None, "c/m1", None, r1)
    assert first.changed and first.doc["count"] == 1 and first.doc["mean"] == 40.0
    assert not put(first.doc, "c/m1", r1, r1).changed
    r2 = Reading(80.0, "high", T0 + timedelta(minutes=1))
    second = put(first.doc, "c/m2", None, r2)
    assert second.doc["count"] == 2 and second.doc["max"] == 80.0 and second.doc["high"] == 1
    assert second.doc["last"]["id"] == "c|m2"
    rescored = put(second.doc, "c/m1", r1, Reading(70.0, "high", T0))
    assert rescored.doc["count"] == 2 and rescored.doc["mean"] == 75.0 and rescored.doc["high"] == 2
    assert rescored.doc["scores"] == {"700": 1, "800": 1} and rescored.doc["sum"] == 150.0
    # Taking out the latest reading needs the latest of the others (the index documents know it).
    assert trends.needs_latest_other(rescored.doc, "c/m2", trends.DayWrite(day, r2, None))
    assert not trends.needs_latest_other(rescored.doc, "c/m1", trends.DayWrite(day, r1, None))
    m1 = trends.Latest.of("c/m1", Reading(70.0, "high", T0))
    removed = put(rescored.doc, "c/m2", r2, None, m1)
    assert removed.doc["count"] == 1 and removed.doc["max"] == 70.0 and removed.doc["last"]["id"] == "c|m1"
    gone = put(removed.doc, "c/m1", Reading(70.0, "high", T0), None)
    assert gone.changed and gone.doc is None


def test_day_writes_take_the_stored_reading_out_of_its_stored_day() -> None:
    r_old, r_new = Reading(40.0, "moderate", T0), Reading(90.0, "high", T0)
    change = trends.TrendChange("u1", "2025-11-21", "c/m", r_new)
    stored = trends.Stored("2025-11-20", r_old)
    assert trends.day_writes(stored, change, {}) == [
        trends.DayWrite("2025-11-20", r_old, None),
        trends.DayWrite("2025-11-21", None, r_new),
    ]
    same_day = trends.Stored("2025-11-21", r_old)
    assert trends.day_writes(same_day, change, {}) == [trends.DayWrite("2025-11-21", r_old, r_new)]
    assert trends.day_writes(trends.Stored("2025-11-21", r_new), change, {}) == []  # redelivered
    assert trends.day_writes(None, trends.TrendChange("u1", "2025-11-21", "c/m", None), {}) == []
    assert trends.index_update(None, change).doc == {"day": "2025-11-21", **r_new.as_field()}
    assert not trends.index_update(trends.Stored("2025-11-21", r_new), change).changed


def test_summary_fields() -> None:
    readings = {
        "a": Reading(10.0, "low", T0),
        "b": Reading(45.0, "moderate", T0 + timedelta(hours=2)),
        "c": Reading(90.0, "high", T0 + timedelta(hours=1)),
    }
    s = trends.summarize(readings)
    assert (s["count"], s["mean"], s["min"], s["max"], s["high"]) == (3, 48.3, 10.0, 90.0, 1)
    assert s["levels"] == {"low": 1, "moderate": 1, "high": 1}
    assert s["last"]["score"] == 45.0
    assert trends.summarize({})["mean"] is None


def test_plan_changes() -> None:
    r = Reading(50.0, "moderate", T0)
    assert trends.plan_changes("k", None, ("u1", "d1", r)) == [trends.TrendChange("u1", "d1", "k", r)]
    assert trends.plan_changes("k", ("u1", "d1"), None) == [trends.TrendChange("u1", "d1", "k", None)]
    assert trends.plan_changes("k", ("u1", "d1"), ("u1", "d1", r)) == [trends.TrendChange("u1", "d1", "k", r)]
    moved = trends.plan_changes("k", ("u1", "d1"), ("u1", "d2", r))
    assert moved == [trends.TrendChange("u1", "d1", "k", None), trends.TrendChange("u1", "d2", "k", r)]


def test_incremental_days_match_recomputation() -> None:
    """A random history of writes, redeliveries, re-scores, deletions and readings at the same
    instant, applied one message at a time through the deciders (the fake store calls the same ones
    as the Firestore adapter): every day's aggregates, the latest reading included, are what a
    recomputation from the messages gives, and the index documents hold exactly their readings."""
    rng = random.Random(4)
    db = Documents()
    db.docs["users/u1"] = {"timeZone": "Asia/Seoul"}
    store = InMemoryTrendStore(db)
    messages: dict[str, dict | None] = {}

    def placed(msg: dict | None) -> tuple[str, str, Reading] | None:
        reading = trends.reading_of(msg)
        return None if reading is None else ("u1", trends.day_of(reading.at, SEOUL), reading)

    def apply(key: str, msg: dict | None) -> None:
        was, messages[key] = placed(messages.get(key)), msg
        for change in trends.plan_changes(key, was[:2] if was else None, placed(msg)):
            store.apply_reading(change, "Asia/Seoul")

    def check() -> None:
        truth = trends.readings_by_day(((k, m) for k, m in messages.items() if m), SEOUL)
        days = {p.rsplit("/", 1)[1]: d for p, d in db.under("users/u1/stressDaily").items()}
        assert set(days) == set(truth)
        for day, doc in days.items():
            expected = trends.summarize(truth[day])
            assert {k: doc[k] for k in expected} == expected, day
        index = {
            trends.key_of_index(p.rsplit("/", 1)[1]): trends.Stored.parse(d)
            for p, d in db.under("users/u1/stressIndex").items()
        }
        assert index == {k: trends.Stored(day, r) for day, rs in truth.items() for k, r in rs.items()}

    for _ in range(600):
        key = f"chat{rng.randrange(3)}/m{rng.randrange(60)}"
        at = T0 + timedelta(hours=rng.randrange(24 * 6))  # whole hours: many readings at one instant
        roll = rng.random()
        if roll < 0.15:
            apply(key, None)
        elif roll < 0.3:
            apply(key, message(None, status=rng.choice(["processing", "failed", "rejected"]), at=at))
        else:
            previous = messages.get(key)
            when = previous["createdAt"] if previous else at
            msg = message(round(rng.uniform(0, 100), 1), at=when)
            apply(key, msg)
            if rng.random() < 0.3:
                apply(key, msg)  # redelivery
        check()
    assert db.under("users/u1/stressDaily")
    # Then every message goes, in random order: each time the latest goes, the next takes its place.
    for key in rng.sample(sorted(messages), len(messages)):
        apply(key, None)
        check()
    assert not db.under("users/u1/stressDaily") and not db.under("users/u1/stressIndex")


def test_a_day_document_of_old_is_converted_as_its_readings_change() -> None:
    """Day documents written before the bound kept every reading in `readings` (their index documents
    only the day, or nothing): they keep counting exactly, and their map only shrinks."""
    db = Documents()
    db.docs["users/u1"] = {}
    store = InMemoryTrendStore(db)
    old = {f"c/m{i}": Reading(float(10 * i), level(10 * i), T0 + timedelta(minutes=i)) for i in range(5)}
    doc = {
        "date": "2025-11-20",
        "timeZone": "UTC",
        "count": 5,
        "readings": {k: r.as_field() for k, r in old.items()},
    }
    db.docs["users/u1/stressDaily/2025-11-20"] = doc
    db.docs["users/u1/stressIndex/c|m1"] = {"day": "2025-11-20"}  # index documents held only the day
    day = "2025-11-20"
    store.apply_reading(trends.TrendChange("u1", day, "c/m9", Reading(55.0, "moderate", T0)), "UTC")
    store.apply_reading(trends.TrendChange("u1", day, "c/m1", Reading(95.0, "high", old["c/m1"].at)), "UTC")
    store.apply_reading(trends.TrendChange("u1", day, "c/m4", None), "UTC")  # the latest, of old
    store.apply_reading(trends.TrendChange("u1", day, "c/m0", None), "UTC")  # no index document
    now = {"c/m1": Reading(95.0, "high", old["c/m1"].at), "c/m2": old["c/m2"], "c/m3": old["c/m3"]}
    now["c/m9"] = Reading(55.0, "moderate", T0)
    stored = db.docs["users/u1/stressDaily/2025-11-20"]
    expected = trends.summarize(now)
    assert {k: stored[k] for k in expected} == expected
    assert set(stored["readings"]) == {"c/m2", "c/m3"}  # only ever shrinking
    assert stored["last"]["id"] == "c|m3"


def test_series_fills_missing_days_oldest_first() -> None:
    docs = {"2025-11-19": {"count": 2, "mean": 55.0, "max": 70.0, "high": 1}}
    out = trends.series(docs, date(2025, 11, 20), 3)
    assert [d["date"] for d in out] == ["2025-11-18", "2025-11-19", "2025-11-20"]
    assert out[0] == {"date": "2025-11-18", "count": 0, "mean": None, "max": None, "high": 0}
    assert out[1] == {"date": "2025-11-19", "count": 2, "mean": 55.0, "max": 70.0, "high": 1}


def test_latest_reading() -> None:
    early = trends.day_doc("d1", "UTC", {"a": Reading(10.0, "low", T0)})
    late = trends.day_doc("d2", "UTC", {"b": Reading(80.0, "high", T0 + timedelta(days=1))})
    assert trends.latest_reading([early, late]).score == 80.0
    assert trends.latest_reading([]) is None


ODD_ID_PAIRS = [
    ("c1", "m1"),
    ("a|b", "c"),
    ("a", "b|c"),
    ("a%7Cb", "c"),
    ("a%b|", "|%25"),
    ("채팅", "it's #1 🎤"),
]


@pytest.mark.parametrize(("chat_id", "message_id"), ODD_ID_PAIRS)
def test_a_reading_index_id_maps_back_to_its_message(chat_id: str, message_id: str) -> None:
    """Chat and message ids may hold any character ('|' and '%' included; the pipeline processes odd
    message ids). A rebuild keeps an index document only if its id maps back to its message."""
    key = trends.reading_key(chat_id, message_id)
    assert trends.key_of_index(trends.index_id(key)) == key


def test_two_messages_never_share_an_index_document() -> None:
    ids = {trends.index_id(trends.reading_key(chat, message)) for chat, message in ODD_ID_PAIRS}
    assert len(ids) == len(ODD_ID_PAIRS)
