"""alert_on_high_stress end to end, on the emulators (run under the stack: `make exec` / `make test`).

Each test makes its own users, devices and chat (unique ids), writes a message the way
process_voice_message does (processing, then ready with a stress reading) with the admin client,
and watches what the real trigger, running in the Functions emulator, writes to Firestore and sends
to the local FCM stand-in. Duplicate deliveries are made by POSTing the same Firestore CloudEvent to
the Functions emulator, as the Firestore emulator itself does (binary mode, protobuf
DocumentEventData, base64 body).
"""

from __future__ import annotations

import base64
import os
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from emochat.alerts import model as alerts
from local_stack.app_client import StandIn

pytestmark = [
    pytest.mark.stack,
    pytest.mark.skipif(
        not os.environ.get("FIRESTORE_EMULATOR_HOST"),
        reason="needs the emulator stack (FIRESTORE_EMULATOR_HOST unset): run through `make exec`",
    ),
]

PROJECT = os.environ.get("GCLOUD_PROJECT", "demo-emochat")
REGION = "us-central1"
TRIGGER = "alert_on_high_stress"
WAIT_S = 60.0  # the first event also starts the Python worker


@pytest.fixture(scope="module")
def db():
    from google.cloud import firestore

    return firestore.Client(project=PROJECT)


@pytest.fixture(scope="module")
def fcm_url() -> str:
    return StandIn.of("fcm").url


@pytest.fixture(scope="module")
def functions_origin() -> str:
    return os.environ.get("FUNCTIONS_EMULATOR_ORIGIN", "http://127.0.0.1:5001")


class World:
    """Two people in a chat, each with a phone; more devices on request."""

    def __init__(self, db, unique: str) -> None:
        self.db = db
        self.unique = unique
        self.chat = f"e2e-chat-{unique}"
        self.mina = f"e2e-mina-{unique}"
        self.joon = f"e2e-joon-{unique}"
        now = datetime.now(UTC)
        for uid, name in ((self.mina, "Mina"), (self.joon, "Joon")):
            db.document(f"users/{uid}").set(
                {
                    "displayName": name,
                    "alertPrefs": {"enabled": True, "cooldownMinutes": 30},
                    "createdAt": now,
                }
            )
            self.add_device(uid, "phone", f"e2e-{uid}-phone")
        db.document(f"chats/{self.chat}").set({"members": [self.mina, self.joon], "createdAt": now})

    def add_device(self, uid: str, device_id: str, token: str) -> None:
        self.db.document(f"users/{uid}/devices/{device_id}").set(
            {"token": token, "platform": "android", "updatedAt": datetime.now(UTC)}
        )

    def tokens(self) -> set[str]:
        return {f"e2e-{uid}-phone" for uid in (self.mina, self.joon)}

    def processing(
        self, message_id: str, sender: str | None = None, chat: str | None = None
    ) -> dict[str, Any]:
        return {
            "kind": "voice",
            "senderId": sender or self.mina,
            "createdAt": datetime.now(UTC),
            "status": "processing",
            "audio": {
                "path": f"voice/{sender or self.mina}/{chat or self.chat}/{message_id}.m4a",
                "contentType": "audio/mp4",
                "sizeBytes": 1234,
                "durationMs": None,
            },
            "text": None,
            "language": None,
            "stress": None,
            "error": None,
            "timings": None,
        }

    @staticmethod
    def ready_fields(score: float, level: str) -> dict[str, Any]:
        return {
            "status": "ready",
            "text": "I can't deal with this right now.",
            "language": "en",
            "stress": {"score": score, "level": level, "probability": round(score / 100, 4), "model": "e2e"},
            "error": None,
            "timings": {"sttMs": 400, "stressMs": 300, "totalMs": 800},
        }

    def send(self, score: float, level: str, sender: str | None = None, chat: str | None = None) -> str:
        """Write a message as the pipeline does: processing, then ready. Returns its id."""
        message_id = f"m-{uuid.uuid4().hex[:16]}"
        ref = self.db.document(f"chats/{chat or self.chat}/messages/{message_id}")
        ref.set(self.processing(message_id, sender, chat))
        ref.update(self.ready_fields(score, level))
        return message_id

    def marker(self, message_id: str, chat: str | None = None) -> dict[str, Any] | None:
        snapshot = self.db.document(f"chats/{chat or self.chat}/alertMarkers/{message_id}").get()
        return snapshot.to_dict() if snapshot.exists else None

    def wait_done(self, message_id: str, chat: str | None = None) -> dict[str, Any]:
        marker = wait_for(
            lambda: (m := self.marker(message_id, chat)) and m.get("state") == "done" and m,
            f"alert marker of {message_id} done",
        )
        return marker

    def add_user(self, name: str, display_name: str) -> str:
        uid = f"e2e-{name}-{self.unique}"
        self.db.document(f"users/{uid}").set({"displayName": display_name, "createdAt": datetime.now(UTC)})
        self.add_device(uid, "phone", f"e2e-{uid}-phone")
        return uid

    def notifications(self, uid: str) -> list[dict[str, Any]]:
        return [s.to_dict() for s in self.db.collection(f"users/{uid}/notifications").stream()]

    def device_tokens(self, uid: str) -> set[str]:
        return {s.get("token") for s in self.db.collection(f"users/{uid}/devices").stream()}

    def baseline_count(self, uid: str) -> int:
        snapshot = self.db.document(f"users/{uid}/stats/baseline").get()
        return snapshot.get("count") if snapshot.exists else 0


def wait_for(probe: Callable[[], Any], what: str, timeout_s: float = WAIT_S) -> Any:
    deadline = time.monotonic() + timeout_s
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s:.0f} s waiting for {what}")
        time.sleep(0.2)


@pytest.fixture
def world(db) -> World:
    return World(db, uuid.uuid4().hex[:10])


def fcm_requests(fcm_url: str, tokens: set[str]) -> list[dict[str, Any]]:
    return [r for r in StandIn(fcm_url).sent() if r.get("token") in tokens]


# ── a direct delivery of the same Firestore event ───────────────────────────────────────────────


def _value(value: Any):
    from google.events.cloud.firestore import ArrayValue, MapValue, Value
    from google.protobuf import timestamp_pb2

    if value is None:
        return Value(null_value=0)
    if isinstance(value, bool):
        return Value(boolean_value=value)
    if isinstance(value, int):
        return Value(integer_value=value)
    if isinstance(value, float):
        return Value(double_value=value)
    if isinstance(value, str):
        return Value(string_value=value)
    if isinstance(value, datetime):
        stamp = timestamp_pb2.Timestamp()
        stamp.FromDatetime(value)
        return Value(timestamp_value=stamp)
    if isinstance(value, dict):
        return Value(map_value=MapValue(fields={k: _value(v) for k, v in value.items()}))
    if isinstance(value, list):
        return Value(array_value=ArrayValue(values=[_value(v) for v in value]))
    raise TypeError(f"no Firestore value for {type(value)}")


def deliver_written_event(
    functions_origin: str, document: str, before: dict | None, after: dict | None
) -> None:
    """POST a document.written CloudEvent to the trigger, as the Firestore emulator would."""
    from google.events.cloud.firestore import Document, DocumentEventData

    name = f"projects/{PROJECT}/databases/(default)/documents/{document}"

    def doc(fields: dict | None):
        return Document(name=name, fields={k: _value(v) for k, v in fields.items()}) if fields else None

    data = DocumentEventData(value=doc(after), old_value=doc(before))
    headers = {
        "Content-Type": "application/protobuf",
        "ce-specversion": "1.0",
        "ce-id": uuid.uuid4().hex,
        "ce-source": f"//firestore.googleapis.com/projects/{PROJECT}/databases/(default)",
        "ce-type": "google.cloud.firestore.document.v1.written",
        "ce-time": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
        "ce-subject": f"documents/{document}",
        "ce-location": REGION,
        "ce-project": PROJECT,
        "ce-database": "(default)",
        "ce-namespace": "(default)",
        "ce-document": document,
    }
    url = f"{functions_origin}/functions/projects/{PROJECT}/triggers/{REGION}-{TRIGGER}-0"
    body = base64.b64encode(DocumentEventData.serialize(data))
    response = httpx.post(url, content=body, headers=headers, timeout=WAIT_S)
    assert response.status_code < 300, f"{response.status_code}: {response.text[:500]}"


# ── tests ────────────────────────────────────────────────────────────────────────────────────────


def test_high_stress_alerts_every_member_once(world: World, fcm_url: str) -> None:
    message_id = world.send(82.5, "high")
    marker = world.wait_done(message_id)
    assert marker["decision"] == {"alert": True, "reason": "fixed_threshold", "z": None}
    assert marker["recipients"] == {world.mina: "send", world.joon: "send"}

    nid = alerts.notification_id(world.chat, message_id)
    (own,) = world.notifications(world.mina)
    (other,) = world.notifications(world.joon)
    assert own["role"] == "self" and other["role"] == "member"
    assert other["title"] == "Mina sounds stressed"
    assert own["reason"] == "fixed_threshold" and own["baseline"] == {"count": 0, "mean": 0.0, "std": 0.0}
    assert not {"baseline", "z", "reason"} & set(other)  # nothing computed from Mina's history
    for entry in (own, other):
        assert entry["status"] == "sent"
        assert entry["chatId"] == world.chat and entry["messageId"] == message_id and entry["score"] == 82.5
        assert entry["delivery"] == {
            "tokens": 1,
            "success": 1,
            "failure": 0,
            "removedTokens": 0,
            "retries": 0,
            "errors": {},
        }
        assert entry["data"]["notificationId"] == nid

    requests = wait_for(lambda: len(r := fcm_requests(fcm_url, world.tokens())) >= 2 and r, "FCM requests")
    assert len(requests) == 2 and {r["outcome"] for r in requests} == {"sent"}
    by_token = {r["token"]: r for r in requests}
    to_joon = by_token[f"e2e-{world.joon}-phone"]
    assert to_joon["notification"]["title"] == "Mina sounds stressed"
    assert to_joon["data"] == {
        "type": "stress_alert",
        "role": "member",
        "chatId": world.chat,
        "messageId": message_id,
        "senderId": world.mina,
        "score": "82.5",
        "level": "high",
        "notificationId": nid,
    }
    # The sender's self-care alert carries one coping suggestion, recorded so it can be rated.
    to_mina = by_token[f"e2e-{world.mina}-phone"]
    suggestion = own["suggestion"]
    assert to_mina["data"]["recommendationId"] == suggestion["recommendationId"]
    assert to_mina["data"]["suggestionId"] == suggestion["suggestionId"] and suggestion["title"]
    assert suggestion["title"] in to_mina["notification"]["body"]
    shown = world.db.document(f"users/{world.mina}/recommendations/{suggestion['recommendationId']}").get()
    assert shown.exists and shown.get("source") == "alert"
    assert shown.get("suggestionId") == suggestion["suggestionId"]
    assert "suggestion" not in other
    assert world.baseline_count(world.mina) == 1


def test_invitees_get_no_alert_until_they_accept(world: World, fcm_url: str) -> None:
    ara = f"e2e-ara-{world.unique}"
    world.db.document(f"users/{ara}").set({"displayName": "Ara", "createdAt": datetime.now(UTC)})
    world.add_device(ara, "phone", f"e2e-{ara}-phone")
    world.db.document(f"chats/{world.chat}").update({"invited": [ara]})

    while_invited = world.wait_done(world.send(82.5, "high"))
    assert set(while_invited["recipients"]) == {world.mina, world.joon}
    assert world.notifications(ara) == []
    assert fcm_requests(fcm_url, {f"e2e-{ara}-phone"}) == []

    # Ara accepts (the one move firestore.rules lets her make): now she is a member like the others.
    world.db.document(f"chats/{world.chat}").update({"members": [world.mina, world.joon, ara], "invited": []})
    accepted = world.wait_done(world.send(85.0, "high", sender=world.joon))
    assert accepted["recipients"][ara] == "send"
    (entry,) = world.notifications(ara)
    assert entry["role"] == "member" and entry["status"] == "sent"
    assert len(wait_for(lambda: fcm_requests(fcm_url, {f"e2e-{ara}-phone"}), "Ara's push")) == 1


def test_duplicate_events_still_alert_once(world: World, fcm_url: str, functions_origin: str) -> None:
    message_id = world.send(91.0, "high")
    world.wait_done(message_id)
    document = f"chats/{world.chat}/messages/{message_id}"
    before = world.processing(message_id)
    after = {**before, **World.ready_fields(91.0, "high")}
    for _ in range(2):  # at-least-once delivery: the same transition, twice more
        deliver_written_event(functions_origin, document, before, after)

    assert len(world.notifications(world.mina)) == 1 and len(world.notifications(world.joon)) == 1
    assert len(fcm_requests(fcm_url, world.tokens())) == 2
    assert world.baseline_count(world.mina) == 1
    # A later edit of the ready message is not a new transition either.
    world.db.document(document).update({"text": "edited"})
    deliver_written_event(functions_origin, document, after, {**after, "text": "edited"})
    assert len(world.notifications(world.joon)) == 1 and world.baseline_count(world.mina) == 1


def test_event_delivered_twice_at_once_alerts_once(world: World, fcm_url: str, functions_origin: str) -> None:
    # No Firestore write at all here: only the two deliveries, concurrently, reach the trigger.
    message_id = f"m-{uuid.uuid4().hex[:16]}"
    document = f"chats/{world.chat}/messages/{message_id}"
    before = world.processing(message_id)
    after = {**before, **World.ready_fields(88.0, "high")}
    with ThreadPoolExecutor(max_workers=2) as pool:
        list(pool.map(lambda _: deliver_written_event(functions_origin, document, before, after), range(2)))

    marker = world.wait_done(message_id)
    assert marker["recipients"] == {world.mina: "send", world.joon: "send"}
    assert len(world.notifications(world.mina)) == 1 and len(world.notifications(world.joon)) == 1
    assert len(fcm_requests(fcm_url, world.tokens())) == 2
    assert world.baseline_count(world.mina) == 1


def test_stale_tokens_are_removed(world: World, fcm_url: str) -> None:
    world.add_device(world.joon, "old-phone", f"unregistered-{world.unique}")
    world.add_device(world.joon, "garbled", f"invalid-{world.unique}")
    message_id = world.send(77.0, "high")
    world.wait_done(message_id)

    (entry,) = world.notifications(world.joon)
    assert entry["status"] == "sent"
    assert entry["delivery"]["tokens"] == 3 and entry["delivery"]["success"] == 1
    assert entry["delivery"]["removedTokens"] == 2
    assert entry["delivery"]["errors"] == {"UNREGISTERED": 1, "INVALID_ARGUMENT": 1}
    assert world.device_tokens(world.joon) == {f"e2e-{world.joon}-phone"}
    outcomes = {
        r["token"]: r["outcome"]
        for r in fcm_requests(fcm_url, {f"unregistered-{world.unique}", f"invalid-{world.unique}"})
    }
    assert outcomes == {
        f"unregistered-{world.unique}": "UNREGISTERED",
        f"invalid-{world.unique}": "INVALID_ARGUMENT",
    }


def test_low_and_moderate_only_feed_the_baseline(world: World, fcm_url: str) -> None:
    low = world.send(12.0, "low")
    moderate = world.send(45.0, "moderate")
    for message_id in (low, moderate):
        marker = world.wait_done(message_id)
        assert marker["decision"] == {"alert": False, "reason": "not_high", "z": None}
    assert world.notifications(world.mina) == [] and world.notifications(world.joon) == []
    assert fcm_requests(fcm_url, world.tokens()) == []
    baseline = world.db.document(f"users/{world.mina}/stats/baseline").get().to_dict()
    assert baseline["count"] == 2 and baseline["mean"] == pytest.approx(28.5)


def test_personal_baseline_decides_once_it_has_enough_samples(world: World) -> None:
    for score in (15.0, 20.0, 25.0, 18.0, 22.0):
        world.wait_done(world.send(score, "low"))
    message_id = world.send(75.0, "high")
    marker = world.wait_done(message_id)
    assert marker["decision"]["reason"] == "personal_baseline" and marker["decision"]["z"] > 1.0
    (own,) = world.notifications(world.mina)
    assert own["reason"] == "personal_baseline" and own["z"] == marker["decision"]["z"]
    assert own["baseline"]["count"] == 5 and own["baseline"]["mean"] == pytest.approx(20.0)
    # Joon's entry says who, which message, when and the score the chat shows: none of her baseline.
    (other,) = world.notifications(world.joon)
    assert not {"baseline", "z", "reason"} & set(other) and "reason" not in other["data"]
    assert other["score"] == 75.0 and other["messageId"] == message_id and other["createdAt"]


def test_a_strangers_alerts_do_not_suppress_a_real_one(world: World, fcm_url: str) -> None:
    """Issue 10 item 2: Eve's chat with Joon alerts him first; Mina's real alert still reaches him."""
    eve = world.add_user("eve", "Eve")
    spam = f"e2e-spam-{world.unique}"
    world.db.document(f"chats/{spam}").set({"members": [eve, world.joon], "createdAt": datetime.now(UTC)})
    first = world.send(93.0, "high", sender=eve, chat=spam)
    assert world.wait_done(first, spam)["recipients"] == {eve: "send", world.joon: "send"}
    again = world.send(94.0, "high", sender=eve, chat=spam)
    assert world.wait_done(again, spam)["recipients"][world.joon] == "cooldown"

    real = world.send(88.0, "high")
    assert world.wait_done(real)["recipients"] == {world.mina: "send", world.joon: "send"}
    titles = {n["messageId"]: n["title"] for n in world.notifications(world.joon)}
    assert titles == {first: "Eve sounds stressed", real: "Mina sounds stressed"}
    log = world.db.document(f"users/{world.joon}/stats/alerts").get().to_dict()
    assert set(log["lastBySender"]) == {eve, world.mina} and len(log["recentAlerts"]) == 2


def test_invitees_get_no_alerts_and_a_bad_name_is_never_a_title(world: World, fcm_url: str) -> None:
    ivy = world.add_user("ivy", "Ivy")
    world.db.document(f"chats/{world.chat}").update({"invited": [ivy]})
    world.db.document(f"users/{world.mina}").update({"displayName": "Mina\nURGENT: your account is locked"})
    message_id = world.send(86.0, "high")
    assert world.wait_done(message_id)["recipients"] == {world.mina: "send", world.joon: "send"}
    assert world.notifications(ivy) == []
    (entry,) = world.notifications(world.joon)
    assert entry["title"] == "Someone in your chat sounds stressed"
    requests = wait_for(lambda: len(r := fcm_requests(fcm_url, world.tokens())) >= 2 and r, "FCM requests")
    assert all("URGENT" not in r["notification"]["title"] + r["notification"]["body"] for r in requests)
    assert fcm_requests(fcm_url, {f"e2e-{ivy}-phone"}) == []


def test_pushes_go_to_the_most_recent_devices_only(world: World, fcm_url: str) -> None:
    """Issue 11 item 5: one account registering many tokens gets pushes on its newest few (5)."""
    base = datetime.now(UTC)
    for i in range(9):
        world.db.document(f"users/{world.joon}/devices/extra{i}").set(
            {
                "token": f"e2e-{world.joon}-extra{i}",
                "platform": "ios",
                "updatedAt": base + timedelta(minutes=i + 1),
            }
        )
    message_id = world.send(84.0, "high")
    world.wait_done(message_id)
    (entry,) = world.notifications(world.joon)
    assert entry["delivery"]["tokens"] == 5 and entry["delivery"]["success"] == 5
    every = {f"e2e-{world.joon}-extra{i}" for i in range(9)} | {f"e2e-{world.joon}-phone"}
    pushed = {r["token"] for r in fcm_requests(fcm_url, every)}
    assert pushed == {f"e2e-{world.joon}-extra{i}" for i in range(4, 9)}
