"""The Firestore reads, writes and deletes one voice message and one alert make, counted against the
emulator at the client's API (tests/firestore_ops.py) through the production adapters and services.

Each scenario's operations are listed below, one entry per billed operation with where it comes
from, and compared with the documents actually read and written. Their totals are the inputs of
bench/bench_cost.py (bench/cost_inputs.json, firestore_ops.counted), which turns them into the cost
per message in the README: a change that adds or removes an operation fails here until both say so.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

import pytest
from fakes.alerts import FakeNotifier
from fakes.pipeline import FakeStressScorer, FakeTranscriber, InMemoryAudio
from firestore_ops import Counted, FirestoreOps
from google.cloud import firestore
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


# One entry per billed operation: (kind, document), the document as a pattern over the scenario's
# {chat}, {message}, {sender}, {member} (the chat's other member), {day} (UTC) and {id} (generated).
Ops = list[tuple[str, str]]

VOICE_MESSAGE: Ops = [
    # The claim (FirestoreMessageStore.claim), one transaction:
    ("read", "deletedUsers/{sender}"),  # the tombstone check every writer makes (firestore_tx.account_open)
    ("read", "chats/{chat}/messages/{message}"),  # who holds the message (domain.decide_claim)
    ("write", "chats/{chat}/messages/{message}"),  # status processing, claim token, lease
    # The membership check (chat_members):
    ("read", "chats/{chat}"),
    # The daily voice budget (charge_usage), one transaction, before any paid call:
    ("read", "deletedUsers/{sender}"),
    ("read", "users/{sender}/usage/{day}"),
    ("write", "users/{sender}/usage/{day}"),  # messages + 1, audioSeconds + the clip's
    # The first result shown early (finish, partial: status stays processing), one transaction:
    ("read", "deletedUsers/{sender}"),
    ("read", "chats/{chat}/messages/{message}"),  # still this run's (claim token, lease: may_write)
    ("write", "chats/{chat}/messages/{message}"),  # text and language
    # What the transcription was billed on (record_stt_usage), one transaction:
    ("read", "deletedUsers/{sender}"),
    ("write", "users/{sender}/usage/{day}/transcriptions/{chat}:{message}"),
    # The final write (finish), one transaction:
    ("read", "deletedUsers/{sender}"),
    ("read", "chats/{chat}/messages/{message}"),
    ("write", "chats/{chat}/messages/{message}"),  # status ready, stress, timings
]

# update_stress_trends on the message's final write (trends.service.record_message_change). The
# trends' day documents are being reworked (bounded days): this list follows that change.
TREND_UPDATE: Ops = [
    ("read", "chats/{chat}/messages/{message}"),  # the message as it is now, not as the event says
    ("read", "users/{sender}"),  # the sender's time zone: which local day the reading is on
    # The day document and the reading's index (FirestoreTrendStore.apply_reading), one transaction:
    ("read", "deletedUsers/{sender}"),  # account_open, with the profile
    ("read", "users/{sender}"),
    ("read", "users/{sender}/stressIndex/{chat}|{message}"),  # the day the reading was stored on
    ("read", "users/{sender}/stressDaily/{day}"),
    ("write", "users/{sender}/stressDaily/{day}"),  # the reading in the day's aggregate
    ("write", "users/{sender}/stressIndex/{chat}|{message}"),
]

READY_NO_ALERT: Ops = [
    # The marker and the baseline (FirestoreAlertStore.record_ready), one transaction:
    ("read", "deletedUsers/{sender}"),  # account_open, with the profile: a made-up uid gets no tree
    ("read", "users/{sender}"),
    ("read", "chats/{chat}/alertMarkers/{message}"),  # each ready message acted on once
    ("read", "users/{sender}/stats/baseline"),
    ("write", "users/{sender}/stats/baseline"),  # the reading added to the running mean/variance
    ("write", "chats/{chat}/alertMarkers/{message}"),  # done: no alert
]

# A high reading, unusual for the sender, in a chat of two: a self-care alert to the sender and an
# empathy alert to the other member, each with a feed entry and a push to one device.
ALERT_CHAT_OF_TWO: Ops = [
    *READY_NO_ALERT[:-1],
    ("write", "chats/{chat}/alertMarkers/{message}"),  # claimed, with a lease (the sweeper's hold)
    ("read", "users/{sender}"),  # the sender's display name, for the members' texts
    ("read", "chats/{chat}"),  # the members (invitees get nothing)
    *[
        op
        for who in ("{sender}", "{member}")
        for op in (
            ("read", f"users/{who}"),  # the recipient's language, for the texts
            # The reservation (reserve), one transaction: account_open with the profile, then the
            # profile again for alertPrefs (the same document, read twice in one transaction),
            # the recipient's AlertLog (per-sender cooldown, hourly cap) and the feed entry's id.
            ("read", f"deletedUsers/{who}"),
            ("read", f"users/{who}"),
            ("read", f"users/{who}"),
            ("read", f"users/{who}/stats/alerts"),
            ("read", f"users/{who}/notifications/{{id}}"),
            ("write", f"users/{who}/notifications/{{id}}"),  # the feed entry, reserved
            ("write", f"users/{who}/stats/alerts"),  # the AlertLog with this push
            ("read", f"users/{who}/devices/d1"),  # the newest devices (query, one document)
            ("write", f"users/{who}/notifications/{{id}}"),  # the feed entry, delivered
        )
    ],
    # The sender's coping suggestion (suggestions.service.recommend_for_alert; the catalog and the
    # population prior come from its 5-minute cache on a warm instance):
    ("read", "users/{sender}"),  # language and time zone
    ("read", "users/{sender}/wellbeing/model"),  # the sender's own posterior
    ("read", "deletedUsers/{sender}"),  # the recommendation's writer checks the tombstone too
    ("write", "users/{sender}/recommendations/{id}"),
    ("write", "chats/{chat}/alertMarkers/{message}"),  # done, with each recipient's verdict
]


def pattern(path: str, names: dict[str, str]) -> str:
    """chats/ops-1f2e/messages/m1 -> chats/{chat}/messages/{message}"""
    parts = path.split("/")
    for i, part in enumerate(parts):
        if i and parts[i - 1] in ("notifications", "recommendations"):
            parts[i] = "{id}"
        elif re.fullmatch(r"\d{4}-\d{2}-\d{2}", part):
            parts[i] = "{day}"
        else:
            pieces = re.split(r"([:|])", part)  # {chat}:{message}, {chat}|{message}
            parts[i] = "".join(names.get(piece, piece) for piece in pieces)
    return "/".join(parts)


def assert_counted(name: str, counted: Counted, expected: Ops, names: dict[str, str]) -> None:
    assert counted.other == [], f"uncounted Firestore calls: {counted.other}"
    made = [(kind, pattern(path, names)) for kind, path in counted.paths]
    # Compared as multisets: an alert serves its recipients concurrently.
    assert Counter(made) == Counter(expected), f"{name}: Firestore now makes, in order: {made}"
    tally = Counter(kind for kind, _ in expected)
    listed = {"reads": tally["read"], "writes": tally["write"], "deletes": tally["delete"]}
    assert counted.as_dict() == listed
    assert EXPECTED[name] == listed, (
        f"{name}: bench/cost_inputs.json says {EXPECTED[name]}, counted {listed}: update "
        "firestore_ops.counted there (the cost table in the README follows it)"
    )


@pytest.fixture
def db():
    # The wiring's own client: the suggestion hook of the alert goes through it too.
    return wiring.firestore_client()


@pytest.fixture
def ops(db) -> FirestoreOps:
    return FirestoreOps.attach(db)


def names_of(chat: tuple[str, str, str]) -> dict[str, str]:
    chat_id, sender, other = chat
    return {chat_id: "{chat}", sender: "{sender}", other: "{member}", "m1": "{message}"}


def make_chat(db, unique: str) -> tuple[str, str, str]:
    sender, other, chat_id = f"mina-{unique}", f"joon-{unique}", f"ops-{unique}"
    db.document(f"chats/{chat_id}").set({"members": [sender, other]})
    for uid, name in ((sender, "Mina"), (other, "Joon")):
        db.document(f"users/{uid}").set({"displayName": name, "language": "en", "timeZone": "Asia/Seoul"})
        device = {"token": f"token-{uid}", "platform": "ios", "updatedAt": firestore.SERVER_TIMESTAMP}
        db.document(f"users/{uid}/devices/d1").set(device)
    return chat_id, sender, other


@pytest.fixture
def chat(db, unique) -> tuple[str, str, str]:
    return make_chat(db, unique)


def send_voice_message(db, chat_id: str, sender: str, p_stressed: float) -> None:
    name = f"voice/{sender}/{chat_id}/m1.wav"
    audio = InMemoryAudio()
    audio.objects[("bucket", name)] = make_wav(seconds=10.0)
    messages = FirestoreMessageStore(db)
    # The stress reading comes second, as it usually does against the real services: speech-to-text's
    # result is written early (the partial write), then the message is finished.
    stress = FakeStressScorer(p=p_stressed, delay_s=0.5)
    services = Services(FakeTranscriber(), stress, audio, messages)
    upload = Upload("bucket", name, 1, "audio/wav", 320_044)
    outcome = process_upload(upload, services, wiring.pipeline_config())
    assert outcome.status is not None and outcome.status.value == "ready"


def test_a_voice_message_and_its_trend_update(db, ops, chat) -> None:
    chat_id, sender, _ = chat
    with ops.counting() as counted:
        send_voice_message(db, chat_id, sender, p_stressed=0.2)
    assert_counted("voice message", counted, VOICE_MESSAGE, names_of(chat))
    # Each write of the message starts both message triggers: the invocations the cost table bills.
    message_writes = VOICE_MESSAGE.count(("write", "chats/{chat}/messages/{message}"))
    triggers = json.loads(INPUTS.read_text())["firestore_ops"]["invocations_per_message"]
    assert triggers == {
        "process_voice_message": 1,
        "alert_on_high_stress": message_writes,
        "update_stress_trends": message_writes,
    }
    after = db.document(f"chats/{chat_id}/messages/m1").get().to_dict()
    before = {**after, "status": "processing", "stress": None, "text": None}
    # The message's three writes (claim, partial, final) each start update_stress_trends; the first
    # two return before any I/O (the message is not ready), the last records the reading.
    with ops.counting() as counted:
        changes = record_message_change(
            wiring.trend_services(), wiring.trend_config(), chat_id, "m1", before, after
        )
    assert changes
    assert_counted("trend update", counted, TREND_UPDATE, names_of(chat))


def test_a_ready_reading_without_an_alert(db, ops, chat) -> None:
    chat_id, sender, _ = chat
    services = AlertServices(FirestoreAlertStore(db), FakeNotifier(), suggest=wiring._suggestion_for_alert)
    with ops.counting() as counted:
        outcome = alert_on_reading(
            ReadyReading(chat_id, "m1", sender, 20.0, StressLevel.LOW), services, wiring.alert_config()
        )
    assert outcome.decision is not None and not outcome.decision.alert
    assert_counted("ready message, no alert", counted, READY_NO_ALERT, names_of(chat))


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
    assert_counted("alert, chat of 2", counted, ALERT_CHAT_OF_TWO, names_of(chat))
