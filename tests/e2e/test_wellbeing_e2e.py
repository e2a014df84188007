"""Wellbeing end to end: the app's callables on the Functions emulator with Auth-emulator identities,
and the update_stress_trends trigger reacting to message writes in the Firestore emulator.

Messages are written as process_voice_message writes them (processing, then ready with a stress
reading), so these tests do not depend on the speech and stress stand-ins.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from emochat.accounts.adapters.firestore_store import FirestoreAccountStore
from emochat.suggestions import service as suggestions
from emochat.suggestions.adapters.firestore_store import FirestoreSuggestionStore
from emochat.trends import service as trend_service
from emochat.trends.adapters.firestore_store import FirestoreTrendStore
from emochat.trends.model import Reading, TrendChange
from emochat.trends.service import TrendConfig, TrendServices
from local_stack.app_client import AppClient, Session

pytestmark = pytest.mark.stack

PROJECT = os.environ.get("GCLOUD_PROJECT", "demo-emochat")
FUNCTIONS = os.environ.get("FUNCTIONS_EMULATOR_ORIGIN", "http://127.0.0.1:5001")
CALLABLES = ("recommend_coping", "rate_suggestion", "stress_trends", "delete_my_data")


@pytest.fixture(scope="module")
def db():
    from google.cloud import firestore

    return firestore.Client(project=PROJECT)


@pytest.fixture(scope="module")
def store(db) -> FirestoreSuggestionStore:
    suggestions.seed_catalog(FirestoreSuggestionStore(db))  # as `tools/ops.py seed-catalog` does
    return FirestoreSuggestionStore(db)


@pytest.fixture(scope="module")
def app():
    with AppClient() as client:
        yield client


@pytest.fixture(scope="module")
def http():
    with httpx.Client(timeout=90) as client:
        yield client


@pytest.fixture
def person(app, db) -> Callable[[str], Session]:
    def make(name: str, time_zone: str = "Asia/Seoul") -> Session:
        uid = f"{name}-{uuid.uuid4().hex[:10]}"
        app.create_user(uid=uid, email=f"{uid}@example.com", password="wellbeing-pw", display_name=name)
        db.document(f"users/{uid}").set({"displayName": name, "timeZone": time_zone, "language": "en"})
        return app.sign_in(f"{uid}@example.com", "wellbeing-pw")

    return make


def call(http: httpx.Client, name: str, data: Any, session: Session | None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {session.id_token}"} if session else {}
    return http.post(f"{FUNCTIONS}/{PROJECT}/us-central1/{name}", json={"data": data}, headers=headers)


def ok(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    return response.json()["result"]


def refused(response: httpx.Response, status: str) -> str:
    assert response.json().get("error", {}).get("status") == status, response.text
    return response.json()["error"]["message"]


def eventually(check: Callable[[], Any], timeout_s: float = 90, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout_s
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.5)


def test_callables_require_sign_in(http) -> None:
    for name in CALLABLES:
        response = call(http, name, {}, None)
        assert response.status_code == 401, (name, response.text)
        refused(response, "UNAUTHENTICATED")


def test_recommend_then_rate_once(http, store, db, person) -> None:
    mina, joon = person("mina"), person("joon")
    out = ok(call(http, "recommend_coping", {"count": 3, "stressLevel": "high"}, mina))
    assert out["catalogVersion"] == "v1" and out["context"]["stressLevel"] == "high"
    recs = out["recommendations"]
    assert len(recs) == 3 and len({r["suggestionId"] for r in recs}) == 3
    assert all(r["title"] and r["text"] and r["language"] == "en" for r in recs)
    for rec in recs:
        doc = db.document(f"users/{mina.uid}/recommendations/{rec['recommendationId']}").get().to_dict()
        assert doc["suggestionId"] == rec["suggestionId"] and doc["reason"] == rec["reason"]
        assert doc["source"] == "on_demand" and 0 < doc["sampledValue"] < 1 and doc["feedback"] is None

    first = recs[0]
    rating = {"recommendationId": first["recommendationId"], "helpful": True}
    assert ok(call(http, "rate_suggestion", rating, mina))["recorded"] is True
    assert ok(call(http, "rate_suggestion", rating, mina))["recorded"] is False  # a retried call
    refused(call(http, "rate_suggestion", {**rating, "helpful": False}, mina), "ALREADY_EXISTS")
    refused(
        call(http, "rate_suggestion", {"recommendationId": "made-up", "helpful": True}, mina), "NOT_FOUND"
    )
    refused(call(http, "rate_suggestion", rating, joon), "NOT_FOUND")  # not shown to Joon
    mismatch = {"recommendationId": recs[1]["recommendationId"], "suggestionId": first["suggestionId"]}
    refused(call(http, "rate_suggestion", {**mismatch, "helpful": True}, mina), "INVALID_ARGUMENT")
    refused(call(http, "recommend_coping", {"count": 99}, mina), "INVALID_ARGUMENT")

    model = store.model(mina.uid)
    assert model.feedback_count == 1
    assert model.arms[first["suggestionId"]].overall.helpful == 1
    assert store.model(joon.uid).feedback_count == 0


def _level(score: float) -> str:
    return "high" if score >= 60 else "moderate" if score >= 30 else "low"


def test_trends_follow_messages_through_the_trigger(http, store, db, person, tmp_path: Path) -> None:
    mina, joon = person("mina"), person("joon")
    chat = f"chat-{uuid.uuid4().hex[:10]}"
    db.document(f"chats/{chat}").set({"members": [mina.uid, joon.uid], "createdAt": datetime.now(UTC)})
    now = datetime.now(UTC).replace(microsecond=0)
    scores = [22.5, 48.0, 71.5, 35.0, 64.0]
    for i, score in enumerate(scores):
        ref = db.document(f"chats/{chat}/messages/m{i}")
        at = now - timedelta(hours=6 * (len(scores) - 1 - i))  # spans two or three local days
        ref.set(
            {"kind": "voice", "senderId": mina.uid, "status": "processing", "createdAt": at, "stress": None}
        )
        ref.update({"status": "ready", "stress": {"score": score, "level": _level(score), "model": "e2e"}})
    failed = db.document(f"chats/{chat}/messages/failed")
    failed.set({"kind": "voice", "senderId": mina.uid, "status": "failed", "createdAt": now, "stress": None})
    db.document(f"chats/{chat}/messages/m4").update({"timings": {"totalMs": 1}})  # an irrelevant write

    def trend_complete() -> dict | None:
        out = ok(call(http, "stress_trends", {"days": 3}, mina))
        return out if sum(d["count"] for d in out["days"]) == len(scores) else None

    out = eventually(trend_complete, what="the trigger to aggregate every ready message")
    assert out["timeZone"] == "Asia/Seoul" and len(out["days"]) == 3
    assert sum(d["high"] for d in out["days"]) == 2
    assert max(d["max"] or 0 for d in out["days"]) == 71.5

    services = TrendServices(store=FirestoreTrendStore(db))
    config = TrendConfig()
    stored, truth = trend_service.recompute_trends(services, config, mina.uid)
    assert set(stored) == set(truth)
    for day in truth:
        for key in ("count", "mean", "max", "high"):
            assert stored[day][key] == truth[day][key], (day, key)
    by_date = {d["date"]: d for d in out["days"]}
    for day, agg in truth.items():
        assert (by_date[day]["count"], by_date[day]["mean"]) == (agg["count"], agg["mean"])

    # A re-scored message replaces its reading; a deleted one takes it out.
    db.document(f"chats/{chat}/messages/m0").update(
        {"stress": {"score": 90.0, "level": "high", "model": "e2e"}}
    )
    db.document(f"chats/{chat}/messages/m1").delete()

    def rescored() -> dict | None:
        days = ok(call(http, "stress_trends", {"days": 3}, mina))["days"]
        total, high = sum(d["count"] for d in days), sum(d["high"] for d in days)
        return days if (total, high) == (len(scores) - 1, 3) else None

    eventually(rescored, what="the re-score and the deletion to reach the aggregates")
    stored, truth = trend_service.recompute_trends(services, config, mina.uid)
    assert {d: (s["count"], s["max"]) for d, s in stored.items()} == {
        d: (t["count"], t["max"]) for d, t in truth.items()
    }
    assert ok(call(http, "stress_trends", {}, joon))["days"][-1]["count"] == 0  # Joon sent nothing

    # The latest reading (64, high, just now) sets the context of an on-demand recommendation.
    assert ok(call(http, "recommend_coping", {"count": 1}, mina))["context"]["stressLevel"] == "high"

    # The ops CLI renders the same trend from the emulator.
    from typer.testing import CliRunner

    from tools import ops

    png = tmp_path / "trend.png"
    result = CliRunner().invoke(ops.app, ["trend", mina.uid, "--days", "3", "--out", str(png)])
    assert result.exit_code == 0, result.output
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and "Stress trend" in result.output
    verify = CliRunner().invoke(ops.app, ["verify-trends", mina.uid])
    assert verify.exit_code == 0, verify.output


def test_delete_my_data_leaves_nothing_behind(http, store, db, person) -> None:
    mina, joon = person("mina"), person("joon")
    for who in (mina, joon):
        db.document(f"users/{who.uid}/devices/phone").set({"token": f"tok-{who.uid}", "platform": "ios"})
        db.document(f"users/{who.uid}/notifications/n1").set({"type": "stress_alert", "read": False})
        rec = ok(call(http, "recommend_coping", {"count": 2}, who))["recommendations"][0]
        ok(
            call(
                http, "rate_suggestion", {"recommendationId": rec["recommendationId"], "helpful": False}, who
            )
        )
        reading = Reading(70.0, "high", datetime.now(UTC))
        FirestoreTrendStore(db).apply_reading(TrendChange(who.uid, "2025-11-20", "c/m", reading), "UTC")
    mina_collections = {c.id for c in db.document(f"users/{mina.uid}").collections()}
    assert mina_collections == {
        "devices",
        "notifications",
        "recommendations",
        "wellbeing",
        "stressDaily",
        "stressIndex",
        "rateLimits",
    }

    refused(call(http, "delete_my_data", {}, mina), "INVALID_ARGUMENT")
    out = ok(call(http, "delete_my_data", {"confirm": True}, mina))
    assert out["deleted"] >= 7
    assert not db.document(f"users/{mina.uid}").get().exists
    assert list(db.document(f"users/{mina.uid}").collections()) == []
    assert mina.uid not in set(FirestoreAccountStore(db).user_ids())
    joon_collections = {c.id for c in db.document(f"users/{joon.uid}").collections()}
    assert joon_collections == mina_collections  # Joon's data untouched


def _local_param(name: str) -> int:
    env = Path(__file__).resolve().parents[2] / "functions" / ".env.local"
    for line in env.read_text().splitlines():
        if line.startswith(f"{name}="):
            return int(line.split("=", 1)[1])
    raise AssertionError(f"{name} is not set in {env}")


def test_each_callable_is_rate_limited_per_user(http, person) -> None:
    """Issue 10 item 5: one account hammering a callable is refused once over its per-minute limit.

    The window (emochat.ratelimit) opens at a window's first call and lasts 60 s; a slow machine may
    take longer than that for `limit` calls, and then a new window opens. So the refusal must come
    after exactly `limit` allowed calls in its window: the first of them is either the first call
    or one that reached the server at least 60 s after the first call was sent."""
    limit, window_s = _local_param("CALLABLE_CALLS_PER_MINUTE"), 60.0
    hammer, bystander = person("hammer"), person("bystander")
    statuses: list[str] = []
    sent: list[float] = []
    answered: list[float] = []
    for _ in range(3 * limit):
        sent.append(time.monotonic())
        response = call(http, "stress_trends", {"days": 1}, hammer)
        answered.append(time.monotonic())
        statuses.append(response.json().get("error", {}).get("status", "OK"))
        if statuses[-1] != "OK":
            break
    assert statuses[-1] == "RESOURCE_EXHAUSTED", statuses[-3:]
    assert set(statuses[:-1]) <= {"OK"}
    allowed = len(statuses) - 1
    assert allowed >= limit  # never refused early
    window_opened_by = allowed - limit  # the call that opened the refusing window
    assert window_opened_by == 0 or answered[window_opened_by] - sent[0] >= window_s, (
        f"{allowed} calls allowed before the refusal, but the window could not have turned "
        f"({answered[window_opened_by] - sent[0]:.1f} s after the first call)"
    )
    ok(call(http, "stress_trends", {"days": 1}, bystander))  # another account is not affected
    ok(call(http, "recommend_coping", {"count": 1}, hammer))  # nor another callable
