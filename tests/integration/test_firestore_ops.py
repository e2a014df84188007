"""The Firestore reads, writes and deletes one voice message and one alert make, counted against the
emulator at the client's API (tests/firestore_ops.py) through the production adapters and services.

The expected numbers live in bench/cost_inputs.json, which bench/bench_cost.py turns into the cost
per message in the README: a change that adds or removes an operation fails here until that file
says so (and then the cost table follows). Update the numbers there, with what the new operation is.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fakes.alerts import FakeNotifier
from fakes.pipeline import FakeStressScorer, FakeTranscriber, InMemoryAudio
from firestore_ops import Counted, FirestoreOps
from wavs import make_wav

from emochat import wiring
from emochat.alerts.adapters.firestore_store import FirestoreAlertStore
from emochat.alerts.model import ReadyReading
from emochat.alerts.service import AlertServices, alert_on_reading
from emochat.domain import StressLevel
from emochat.pipeline.adapters.message_store import FirestoreMessageStore
from emochat.pipeline.service import Services, Upload, process_upload
from emochat.trends.service import record_message_change

pytestmark = pytest.mark.stack

INPUTS = Path(__file__).resolve().parents[2] / "bench" / "cost_inputs.json"
EXPECTED = json.loads(INPUTS.read_text())["firestore_ops"]["counted"]


def assert_counted(name: str, counted: Counted) -> None:
    expected = {k: EXPECTED[name][k] for k in ("reads", "writes", "deletes")}
    assert counted.other == [], f"uncounted Firestore calls: {counted.other}"
    assert counted.as_dict() == expected, (
        f"{name}: Firestore now makes {counted.as_dict()}, bench/cost_inputs.json says {expected}: "
        "update firestore_ops.counted there (the cost table in the README follows it)"
    )


@pytest.fixture
def db():
    # The wiring's own client: the suggestion hook of the alert goes through it too.
    return wiring.firestore_client()


@pytest.fixture
def ops(db) -> FirestoreOps:
    return FirestoreOps.attach(db)


def make_chat(db, unique: str) -> tuple[str, str, str]:
    sender, other, chat_id = f"mina-{unique}", f"joon-{unique}", f"ops-{unique}"
    db.document(f"chats/{chat_id}").set({"members": [sender, other]})
    for uid, name in ((sender, "Mina"), (other, "Joon")):
        db.document(f"users/{uid}").set({"displayName": name, "language": "en", "timeZone": "Asia/Seoul"})
        db.document(f"users/{uid}/devices/d1").set({"token": f"token-{uid}", "platform": "ios"})
    return chat_id, sender, other


@pytest.fixture
def chat(db, unique) -> tuple[str, str, str]:
    return make_chat(db, unique)


def send_voice_message(db, chat_id: str, sender: str, p_stressed: float) -> None:
    name = f"voice/{sender}/{chat_id}/m1.wav"
    audio = InMemoryAudio()
    audio.objects[("bucket", name)] = make_wav(seconds=10.0)
    messages = FirestoreMessageStore(db)
    services = Services(FakeTranscriber(), FakeStressScorer(p=p_stressed), audio, messages)
    upload = Upload("bucket", name, 1, "audio/wav", 320_044)
    outcome = process_upload(upload, services, wiring.pipeline_config())
    assert outcome.status is not None and outcome.status.value == "ready"


def test_a_voice_message_and_its_trend_update(db, ops, chat) -> None:
    chat_id, sender, _ = chat
    with ops.counting() as counted:
        send_voice_message(db, chat_id, sender, p_stressed=0.2)
    assert_counted("voice message", counted)
    after = db.document(f"chats/{chat_id}/messages/m1").get().to_dict()
    before = {**after, "status": "processing", "stress": None, "text": None}
    # The message's two writes (claim, finish) each start update_stress_trends; the first returns
    # before any I/O (the message is not ready), the second records the reading.
    with ops.counting() as counted:
        changes = record_message_change(
            wiring.trend_services(), wiring.trend_config(), chat_id, "m1", before, after
        )
    assert changes
    assert_counted("trend update", counted)


def test_a_ready_reading_without_an_alert(db, ops, chat) -> None:
    chat_id, sender, _ = chat
    services = AlertServices(FirestoreAlertStore(db), FakeNotifier(), suggest=wiring._suggestion_for_alert)
    with ops.counting() as counted:
        outcome = alert_on_reading(
            ReadyReading(chat_id, "m1", sender, 20.0, StressLevel.LOW), services, wiring.alert_config()
        )
    assert outcome.decision is not None and not outcome.decision.alert
    assert_counted("ready message, no alert", counted)


def test_an_alert_to_a_chat_of_two(db, ops, chat, unique) -> None:
    chat_id, sender, other = chat
    notifier = FakeNotifier()
    services = AlertServices(FirestoreAlertStore(db), notifier, suggest=wiring._suggestion_for_alert)
    # Counted on a warm instance: the coping catalog and the population prior are cached for 5 min
    # (suggestions.service), so a first alert on a new instance reads them once more.
    warm_chat, warm_sender, _ = make_chat(db, f"warm-{unique}")
    warm_up = AlertServices(FirestoreAlertStore(db), FakeNotifier(), suggest=wiring._suggestion_for_alert)
    alert_on_reading(
        ReadyReading(warm_chat, "m1", warm_sender, 85.0, StressLevel.HIGH), warm_up, wiring.alert_config()
    )
    with ops.counting() as counted:
        outcome = alert_on_reading(
            ReadyReading(chat_id, "m1", sender, 85.0, StressLevel.HIGH), services, wiring.alert_config()
        )
    assert set(outcome.deliveries) == {sender, other} and len(notifier.sent) == 2
    assert_counted("alert, chat of 2", counted)
