"""process_voice_message end to end: upload through the Storage emulator as the app does, and read
the Firestore message that the real trigger (Functions emulator) writes, with the real adapters
calling the local OpenAI-compatible STT server and the stress-model endpoint."""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from e2e_helpers import (
    JOON,
    SEED_CHAT,
    STT,
    deliver_finalize_event,
    espeak_m4a,
    storage_object,
)

from local_stack.app_client import AppClient

pytestmark = pytest.mark.stack

WAIT_S = 180.0  # the first upload also starts the Python worker and warms the models


def words(text: str) -> set[str]:
    return set(re.findall(r"[a-z']+", text.lower()))


@pytest.fixture(scope="module")
def spoken(tmp_path_factory) -> bytes:
    path = tmp_path_factory.mktemp("spoken") / "hello.m4a"
    return espeak_m4a("Hello Joon, the weather is nice today and I am going for a walk.", path)


def test_voice_message_becomes_ready_with_transcript_and_stress(app: AppClient, spoken: bytes) -> None:
    sent = app.send_voice_message(SEED_CHAT, spoken, content_type="audio/mp4", language="en")
    result = app.wait_for_message(SEED_CHAT, sent.message_id, timeout_s=WAIT_S)
    doc = result.doc
    assert doc["status"] == "ready", doc.get("error")
    assert [s for s, _ in result.statuses][-1] == "ready"
    assert {"weather", "walk"} <= words(doc["text"]), doc["text"]
    assert doc["kind"] == "voice" and doc["senderId"] == app.session.uid and doc["language"] == "en"
    stress = doc["stress"]
    assert 0.0 <= stress["score"] <= 100.0 and stress["score"] == round(100 * stress["probability"], 1)
    expected = "high" if stress["score"] >= 60 else "moderate" if stress["score"] >= 30 else "low"
    assert stress["level"] == expected and stress["model"]
    audio = doc["audio"]
    assert audio["path"] == sent.path and audio["contentType"] == "audio/mp4"
    assert audio["sizeBytes"] == len(spoken) and 2_000 < audio["durationMs"] < 8_000
    timings = doc["timings"]
    assert timings["sttMs"] > 0 and timings["stressMs"] > 0
    assert timings["totalMs"] >= max(timings["sttMs"], timings["stressMs"])
    assert doc["error"] is None

    # The other member reads it through the security rules, as the app would.
    with AppClient() as joon:
        joon.sign_in(*JOON)
        assert joon.get_doc(app.message_path(SEED_CHAT, sent.message_id))["status"] == "ready"


def test_text_named_m4a_is_rejected(app: AppClient) -> None:
    sent = app.send_voice_message(
        SEED_CHAT, b"definitely not audio, just text\n" * 20, content_type="audio/mp4"
    )
    doc = app.wait_for_message(SEED_CHAT, sent.message_id, timeout_s=WAIT_S).doc
    assert doc["status"] == "rejected"
    assert doc["error"]["code"] == "undecodable_audio" and doc["error"]["message"]
    assert doc["text"] is None and doc["stress"] is None


def test_duplicate_events_give_one_message_processed_once(app: AppClient, spoken: bytes, db) -> None:
    sent = app.send_voice_message(SEED_CHAT, spoken, content_type="audio/mp4")
    first = app.wait_for_message(SEED_CHAT, sent.message_id, timeout_s=WAIT_S).doc
    assert first["status"] == "ready"
    ref = db.document(app.message_path(SEED_CHAT, sent.message_id))
    before = ref.get()
    stt_before = STT.request_count()

    obj = storage_object(sent.path)
    # The same event redelivered, twice concurrently and once more after.
    with ThreadPoolExecutor(max_workers=2) as pool:
        responses = list(pool.map(lambda _: deliver_finalize_event(obj), range(2)))
    responses.append(deliver_finalize_event(obj))
    assert all(r.status_code < 300 for r in responses), [r.text for r in responses]

    after = ref.get()
    assert after.update_time == before.update_time  # not rewritten, never back to processing
    assert after.to_dict()["timings"] == first["timings"]
    assert STT.request_count() == stt_before  # no paid call repeated
    siblings = [
        d.id for d in db.collection(f"chats/{SEED_CHAT}/messages").stream() if d.id == sent.message_id
    ]
    assert siblings == [sent.message_id]


@pytest.mark.parametrize(("sample", "high"), [("voice-en.m4a", False), ("voice-stressed.m4a", True)])
def test_demo_samples_read_as_the_demo_shows_them(app: AppClient, sample: str, high: bool) -> None:
    """`make demo` relies on these: the calm sample stays below high; the alert sample, picked as the
    espeak-ng rendering the served model scores highest (Makefile `samples`), reads high."""
    audio = (Path(__file__).resolve().parents[2] / "samples" / sample).read_bytes()
    sent = app.send_voice_message(SEED_CHAT, audio, content_type="audio/mp4", language="en")
    doc = app.wait_for_message(SEED_CHAT, sent.message_id, timeout_s=WAIT_S).doc
    assert doc["status"] == "ready", doc.get("error")
    assert (doc["stress"]["level"] == "high") is high, doc["stress"]
