"""What the pipeline hands to speech-to-text: a language hint the API accepts and a file it accepts."""

from __future__ import annotations

import io
import logging
import wave

import pytest
from fakes.pipeline import FakeStressScorer, FakeTranscriber, InMemoryAudio, InMemoryMessages
from wavs import make_wav

from emochat.domain import MessageStatus
from emochat.pipeline.service import STT_MAX_UPLOAD_BYTES, PipelineConfig, Services, Upload, process_upload

BUCKET = "demo-emochat.appspot.com"
DOC = "chats/c1/messages/m1"


def services() -> Services:
    return Services(
        transcriber=FakeTranscriber(),
        stress_scorer=FakeStressScorer(),
        audio_store=InMemoryAudio(),
        messages=InMemoryMessages({"c1": ["u1"]}),
    )


def run(data: bytes, name: str = "voice/u1/c1/m1.wav", **metadata: str) -> Services:
    svc = services()
    svc.audio_store.objects[(BUCKET, name)] = data
    event = Upload(BUCKET, name, 1, "audio/wav", len(data), metadata)
    assert process_upload(event, svc, PipelineConfig()).status is MessageStatus.READY
    return svc


@pytest.mark.parametrize(
    ("hint", "sent"),
    [("en-US", "en"), ("en_GB", "en"), ("EN", "en"), ("ko-KR", "ko"), ("ko", "ko"), ("nb-NO", "no")],
)
def test_locale_hints_reach_speech_to_text_as_iso_639_1(hint: str, sent: str) -> None:
    svc = run(make_wav(), language=hint)
    assert svc.transcriber.calls[0][1] == sent
    assert svc.messages.docs[DOC]["language"] == sent


@pytest.mark.parametrize("hint", ["xx-YY", "klingon", "e", " ", "a" * 300])
def test_unknown_hint_becomes_no_hint_and_is_logged(hint: str, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="emochat.pipeline"):
        svc = run(make_wav(), language=hint)
    assert svc.transcriber.calls[0][1] is None
    assert any("language hint" in record.getMessage() for record in caplog.records)


def test_the_processing_placeholder_carries_the_normalised_hint() -> None:
    from emochat.pipeline.model import parse_voice_path
    from emochat.pipeline.service import _initial_fields

    event = Upload(BUCKET, "voice/u1/c1/m1.wav", 1, "audio/wav", 10, {"language": "en_US"})
    assert _initial_fields(parse_voice_path(event.name), event, "run-1", 300)["language"] == "en"


def test_a_file_between_25_mb_and_25_mib_is_reencoded_before_speech_to_text() -> None:
    # OpenAI's limit is 25 MB (25,000,000 bytes); the app may upload up to 25 MiB.
    data = make_wav(seconds=87.5, rate=48_000, channels=2, sample_bytes=3)  # 288 kB/s
    assert STT_MAX_UPLOAD_BYTES == 25_000_000 < len(data) <= 25 * 2**20
    svc = run(data)
    clip = svc.transcriber.calls[0][0]
    assert clip.content_type == "audio/wav" and clip.filename == "m1.wav"
    assert len(clip.data) < STT_MAX_UPLOAD_BYTES
    with wave.open(io.BytesIO(clip.data)) as sent:  # the canonical 16 kHz mono the stress model gets
        assert (sent.getframerate(), sent.getnchannels(), sent.getsampwidth()) == (16_000, 1, 2)
        assert sent.getnframes() == pytest.approx(87.5 * 16_000, abs=16)
    assert clip.data == svc.stress_scorer.calls[0].data


def test_a_native_file_within_25_mb_goes_as_it_is() -> None:
    data = make_wav(seconds=2.0, rate=44_100)
    svc = run(data)
    assert svc.transcriber.calls[0][0].data == data
