"""Daily stress aggregates: readings, idempotent day updates, recomputation, the chart series."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

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


def test_with_reading_is_idempotent_and_replaces() -> None:
    r1 = Reading(40.0, "moderate", T0)
    first = trends.with_reading(None, "2025-11-20", "UTC", "c/m1", r1)
    assert first.changed and first.doc["count"] == 1 and first.doc["mean"] == 40.0
    again = trends.with_reading(first.doc, "2025-11-20", "UTC", "c/m1", r1)
    assert not again.changed and again.doc == first.doc
    second = trends.with_reading(first.doc, "2025-11-20", "UTC", "c/m2", Reading(80.0, "high", T0))
    assert second.doc["count"] == 2 and second.doc["max"] == 80.0 and second.doc["high"] == 1
    rescored = trends.with_reading(second.doc, "2025-11-20", "UTC", "c/m1", Reading(70.0, "high", T0))
    assert rescored.doc["count"] == 2 and rescored.doc["mean"] == 75.0 and rescored.doc["high"] == 2
    removed = trends.with_reading(rescored.doc, "2025-11-20", "UTC", "c/m2", None)
    assert removed.doc["count"] == 1 and removed.doc["max"] == 70.0
    assert not trends.with_reading(removed.doc, "2025-11-20", "UTC", "c/nope", None).changed
    gone = trends.with_reading(removed.doc, "2025-11-20", "UTC", "c/m1", None)
    assert gone.changed and gone.doc is None


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
    """A random history of writes, redeliveries and deletions, applied one message at a time."""
    rng = random.Random(4)
    messages: dict[str, dict | None] = {}
    days: dict[str, dict] = {}

    def apply(key: str, msg: dict | None) -> None:
        old = trends.reading_of(messages.get(key))
        messages[key] = msg
        for reading, value in ((old, None), (trends.reading_of(msg), trends.reading_of(msg))):
            if reading is None:
                continue
            day = trends.day_of(reading.at, SEOUL)
            update = trends.with_reading(days.get(day), day, "Asia/Seoul", key, value)
            if update.changed:
                if update.doc is None:
                    days.pop(day)
                else:
                    days[day] = update.doc

    for _ in range(400):
        key = f"chat{rng.randrange(3)}/m{rng.randrange(60)}"
        at = T0 + timedelta(minutes=rng.randrange(60 * 24 * 6))
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

    truth = trends.recompute(((k, m) for k, m in messages.items() if m), SEOUL)
    assert set(days) == set(truth) and truth
    for day, doc in days.items():
        stored = {k: doc[k] for k in ("count", "mean", "max", "min", "high", "levels")}
        assert stored == {k: truth[day][k] for k in stored}, day


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
