"""The production adapters against the local stand-ins and the Storage emulator (real clients, real
wire formats): what runs in the Cloud Function is exactly what runs here."""

from __future__ import annotations

import os

import httpx
import openai
import pytest
from google.cloud import storage
from speech import espeak_m4a

from emochat.pipeline.adapters.hf_stress import HuggingFaceStressScorer
from emochat.pipeline.adapters.openai_stt import SUPPORTED_MODELS, OpenAITranscriber
from emochat.pipeline.adapters.storage_audio import CloudStorageAudio
from emochat.pipeline.audio import decode_audio
from emochat.pipeline.ports import ServiceError, VoiceClip
from local_stack.app_client import AppClient, StandIn

pytestmark = pytest.mark.stack

STT_URL = os.environ.get("STT_BASE_URL", "http://127.0.0.1:8711/v1")
STRESS_URL = os.environ.get("STRESS_ENDPOINT_URL", "http://127.0.0.1:8712")


@pytest.fixture(scope="module")
def speech(tmp_path_factory) -> bytes:
    return espeak_m4a("Please call me after lunch.", tmp_path_factory.mktemp("adapters") / "s.m4a")


@pytest.fixture
def faults():
    """Scripts faults on a stand-in and always clears them afterwards."""
    used: list[StandIn] = []

    def script(url: str, plan: list[dict]) -> None:
        used.append(StandIn(url))
        used[-1].script(plan)

    yield script
    for standin in used:
        standin.clear(requests=False)


def transcriber(model: str, max_retries: int = 0) -> OpenAITranscriber:
    return OpenAITranscriber(
        openai.OpenAI(api_key="local", base_url=STT_URL, max_retries=max_retries), model=model
    )


@pytest.mark.parametrize("model", SUPPORTED_MODELS)
def test_openai_transcriber_against_stand_in(speech: bytes, model: str) -> None:
    seconds = decode_audio(speech).duration_ms / 1000
    transcript = transcriber(model).transcribe(VoiceClip(speech, "s.m4a", "audio/mp4", seconds), "en")
    assert {"call", "lunch"} <= set(transcript.text.lower().replace(".", "").split())
    assert transcript.language == "en"
    usage = transcript.usage
    assert usage is not None and usage.model == model and usage.audio_seconds == seconds
    assert usage.api_usage is not None
    if model.startswith("gpt-4o"):
        assert usage.api_usage["type"] == "tokens" and usage.api_usage["input_tokens"] > 0
    else:
        assert usage.api_usage == {"type": "duration", "seconds": pytest.approx(seconds, abs=1.0)}


def test_a_locale_hint_sent_as_it_is_is_refused_as_openai_refuses_it(speech: bytes) -> None:
    # What production did before hints were normalised (emochat.language): every such message failed.
    with pytest.raises(ServiceError) as err:
        transcriber("gpt-transcribe").transcribe(VoiceClip(speech, "s.m4a", "audio/mp4"), "en-US")
    assert err.value.code == "stt_rejected" and "400" in err.value.message


def test_a_file_over_25_mb_is_refused_as_openai_refuses_it() -> None:
    with pytest.raises(ServiceError) as err:
        transcriber("whisper-1").transcribe(VoiceClip(bytes(25_000_001), "big.wav", "audio/wav"), None)
    assert err.value.code == "stt_rejected" and "413" in err.value.message


def test_openai_transcriber_recovers_from_429(speech: bytes, faults) -> None:
    faults(STT_URL, [{"status": 429, "retry_after": 1}])
    stt = transcriber("gpt-transcribe", max_retries=2)
    assert "lunch" in stt.transcribe(VoiceClip(speech, "s.m4a", "audio/mp4"), None).text.lower()


def test_hf_scorer_against_stand_in(speech: bytes, faults) -> None:
    wav = VoiceClip(decode_audio(speech).to_wav(), "s.wav", "audio/wav")
    scorer = HuggingFaceStressScorer(httpx.Client(timeout=30), STRESS_URL, token="local", backoff_s=0.1)
    p = scorer.score_stress(wav)
    assert 0.0 <= p <= 1.0
    # The same audio scores the same after an endpoint warm-up (503 with estimated_time).
    faults(STRESS_URL, [{"status": 503}])
    assert scorer.score_stress(wav) == pytest.approx(p, abs=1e-6)


def test_hf_scorer_reports_bad_audio_without_retrying() -> None:
    scorer = HuggingFaceStressScorer(httpx.Client(timeout=30), STRESS_URL, backoff_s=0.1)
    with pytest.raises(ServiceError) as err:
        scorer.score_stress(VoiceClip(b"not audio" * 50, "x.wav", "audio/wav"))
    assert err.value.code == "stress_rejected"


def test_storage_download_pins_the_generation(speech: bytes) -> None:
    with AppClient() as app:
        session = app.sign_in("mina@example.com", "mina-password")
        name = f"voice/{session.uid}/adapter-test/pinned.m4a"
        # The adapter is under test, not the rules: storage.rules refuse both uploads to the app (no
        # chat "adapter-test"; no overwrite), so they are made with the emulator's owner credential.
        first = app.upload(name, speech, content_type="audio/mp4", admin=True)
        audio = CloudStorageAudio(storage.Client(project=app.project_id))
        assert audio.download(app.bucket, name, int(first["generation"]), 30.0) == speech
        second = app.upload(name, speech[: len(speech) // 2], content_type="audio/mp4", admin=True)
        assert audio.download(app.bucket, name, int(second["generation"]), 30.0) == speech[: len(speech) // 2]
        with pytest.raises(ServiceError) as err:
            audio.download(app.bucket, f"voice/{session.uid}/adapter-test/missing.m4a", 1, 30.0)
        assert err.value.code == "audio_unavailable"
