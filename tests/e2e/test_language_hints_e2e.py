"""Language hints as apps send them (Expo locale tags), end to end: the upload's custom metadata
reaches the OpenAI stand-in as ISO-639-1, which refuses anything else with a 400 as OpenAI does."""

from __future__ import annotations

import pytest
from e2e_helpers import SEED_CHAT, espeak_m4a

from local_stack.app_client import AppClient

pytestmark = pytest.mark.stack

WAIT_S = 180.0


@pytest.fixture(scope="module")
def spoken(tmp_path_factory) -> bytes:
    return espeak_m4a("Please call me after lunch.", tmp_path_factory.mktemp("hints") / "hint.m4a")


@pytest.mark.parametrize("hint", ["en-US", "EN", "xx-YY"])
def test_a_locale_hint_gives_a_ready_message_in_iso_639_1(app: AppClient, spoken: bytes, hint: str) -> None:
    sent = app.send_voice_message(SEED_CHAT, spoken, content_type="audio/mp4", language=hint)
    doc = app.wait_for_message(SEED_CHAT, sent.message_id, timeout_s=WAIT_S).doc
    assert doc["status"] == "ready", doc.get("error")
    assert "lunch" in doc["text"].lower()
    # en-US and EN are normalised to en; xx-YY names no language: dropped, and the model's own
    # detection (gpt-transcribe reports it) gives en.
    assert doc["language"] == "en"
