"""The OpenAI transcription stand-in, driven by the real ``openai`` client."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import httpx
import openai
import pytest
from local_stack_support import SPOKEN_WORDS, ThreadedServer

from local_stack.app_client import StandIn
from local_stack.stt_server import create_app

API_KEY = "sk-local-test-key"


@pytest.fixture(scope="module")
def stt_server() -> Iterator[ThreadedServer]:
    with ThreadedServer(create_app(api_key=API_KEY)) as server:
        yield server


@pytest.fixture
def stt_url(stt_server: ThreadedServer) -> str:
    StandIn(stt_server.base_url).clear()
    return stt_server.base_url


def client(base_url: str, **options: object) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{base_url}/v1", api_key=API_KEY, **options)  # type: ignore[arg-type]


def assert_spoken(text: str) -> None:
    words = set(re.findall(r"[a-z]+", text.lower()))
    assert set(SPOKEN_WORDS) <= words, text


def test_transcribes_m4a_speech_as_json(stt_url: str, speech_m4a: Path) -> None:
    with speech_m4a.open("rb") as audio:
        transcript = client(stt_url).audio.transcriptions.create(model="whisper-1", file=audio, language="en")
    assert_spoken(transcript.text)


def test_verbose_json_reports_the_language_used_for_a_non_english_hint(
    stt_url: str, speech_m4a: Path
) -> None:
    # tiny.en is English-only: a Korean hint is accepted and English is what was used.
    transcript = client(stt_url).audio.transcriptions.create(
        model="whisper-1", file=speech_m4a, language="ko", response_format="verbose_json"
    )
    assert transcript.language == "english"
    assert 3.0 < transcript.duration < 10.0
    assert transcript.segments and transcript.segments[0].end > transcript.segments[0].start
    assert_spoken(transcript.text)


def test_wrong_or_missing_api_key_is_401_in_openai_format(stt_url: str, speech_wav: Path) -> None:
    with pytest.raises(openai.AuthenticationError) as raised:
        openai.OpenAI(base_url=f"{stt_url}/v1", api_key="sk-wrong-key").audio.transcriptions.create(
            model="whisper-1", file=speech_wav
        )
    assert raised.value.code == "invalid_api_key"
    response = httpx.post(f"{stt_url}/v1/audio/transcriptions", files={"file": ("a.wav", b"x")})
    assert response.status_code == 401
    assert response.json()["error"]["type"] == "invalid_request_error"


def test_undecodable_audio_is_400_about_the_file(stt_url: str) -> None:
    with pytest.raises(openai.BadRequestError) as raised:
        client(stt_url).audio.transcriptions.create(
            model="whisper-1", file=("voice.m4a", b"not audio at all")
        )
    assert raised.value.status_code == 400
    assert raised.value.body["param"] == "file"  # type: ignore[index]
    assert raised.value.body["type"] == "invalid_request_error"  # type: ignore[index]


def test_client_retries_honour_scripted_429_retry_after_then_500(stt_url: str, speech_wav: Path) -> None:
    StandIn(stt_url).script([{"status": 429, "retry_after": 1}, {"status": 500, "retry_after": 0.1}])
    transcript = client(stt_url, max_retries=2).audio.transcriptions.create(
        model="whisper-1", file=speech_wav
    )
    assert_spoken(transcript.text)
    seen = StandIn(stt_url).requests()
    assert seen["count"] == 3
    assert [entry["status"] for entry in seen["requests"]] == [429, 500, 200]
    first, second = (datetime.fromisoformat(entry["at"]) for entry in seen["requests"][:2])
    assert (second - first).total_seconds() >= 0.9  # waited out Retry-After: 1, not its own ~0.5 s backoff


def test_client_gives_up_after_its_retries(stt_url: str, speech_wav: Path) -> None:
    StandIn(stt_url).script([{"status": 500, "retry_after": 0.05, "times": 3}])
    with pytest.raises(openai.InternalServerError):
        client(stt_url, max_retries=2).audio.transcriptions.create(model="whisper-1", file=speech_wav)
    assert StandIn(stt_url).requests()["count"] == 3


def test_client_timeout_against_a_scripted_delay(stt_url: str, speech_wav: Path) -> None:
    StandIn(stt_url).script([{"delay_s": 1.2}, {"delay_s": 0.2}])
    started = time.monotonic()
    impatient = client(stt_url, timeout=0.4, max_retries=0)
    with pytest.raises(openai.APITimeoutError):
        impatient.audio.transcriptions.create(model="whisper-1", file=speech_wav)
    assert time.monotonic() - started < 1.0
    # A delay shorter than the client's timeout only slows the answer down.
    assert_spoken(client(stt_url).audio.transcriptions.create(model="whisper-1", file=speech_wav).text)
    while StandIn(stt_url).requests()["count"] < 2 and time.monotonic() - started < 5:
        time.sleep(0.05)  # the abandoned request is logged once its client is seen gone
    statuses = sorted(entry["status"] for entry in StandIn(stt_url).requests()["requests"])
    assert statuses == [200, 499]  # the abandoned request was noticed and not transcribed


def test_scripted_empty_transcript_and_malformed_body(stt_url: str, speech_wav: Path) -> None:
    StandIn(stt_url).script([{"empty_transcript": True}, {"malformed": True}])
    assert client(stt_url).audio.transcriptions.create(model="whisper-1", file=speech_wav).text == ""
    with pytest.raises(ValueError):  # openai 3.57 lets the JSONDecodeError of a cut-short body through
        client(stt_url, max_retries=0).audio.transcriptions.create(model="whisper-1", file=speech_wav)


def test_fault_script_is_validated(stt_url: str) -> None:
    assert httpx.post(f"{stt_url}/_emochat/faults", json=[{"status": 200}]).status_code == 422
    assert httpx.post(f"{stt_url}/_emochat/faults", json=[{"times": 2}]).status_code == 422
    StandIn(stt_url).script([{"status": 503, "times": 2}])
    assert StandIn(stt_url).pending() == [{"status": 503, "times": 2}]
    StandIn(stt_url).clear()
    assert StandIn(stt_url).pending() == []


# ── Today's transcription models, each in its own wire format ─────────────────────────────────────

GPT_MODELS = ("gpt-4o-mini-transcribe", "gpt-4o-transcribe", "gpt-transcribe")


def raw_transcription(stt_url: str, audio: Path | bytes, **fields: str) -> httpx.Response:
    """The multipart request the openai client sends, without the client's parsing in between."""
    data = audio.read_bytes() if isinstance(audio, Path) else audio
    return httpx.post(
        f"{stt_url}/v1/audio/transcriptions",
        headers={"Authorization": f"Bearer {API_KEY}"},
        files={"file": ("speech.wav", data, "audio/wav")},
        data={"model": "whisper-1", **fields},
        timeout=60,
    )


def test_whisper_json_usage_is_billed_by_duration(stt_url: str, speech_wav: Path) -> None:
    body = raw_transcription(stt_url, speech_wav).json()
    assert set(body) == {"text", "usage"}
    assert body["usage"]["type"] == "duration" and 3 <= body["usage"]["seconds"] <= 10
    assert_spoken(body["text"])


@pytest.mark.parametrize("model", ["gpt-4o-mini-transcribe", "gpt-4o-transcribe"])
def test_gpt_4o_models_answer_json_billed_in_tokens(stt_url: str, speech_wav: Path, model: str) -> None:
    transcript = client(stt_url).audio.transcriptions.create(model=model, file=speech_wav, language="en")
    assert_spoken(transcript.text)
    assert transcript.languages is None  # only gpt-transcribe reports languages
    usage = transcript.usage
    assert usage is not None and usage.type == "tokens"
    assert usage.input_tokens > 0 and usage.output_tokens > 0
    assert usage.total_tokens == usage.input_tokens + usage.output_tokens
    assert usage.input_token_details is not None and usage.input_token_details.audio_tokens > 0


def test_gpt_transcribe_reports_the_detected_languages(stt_url: str, speech_wav: Path) -> None:
    transcript = client(stt_url).audio.transcriptions.create(model="gpt-transcribe", file=speech_wav)
    assert_spoken(transcript.text)
    assert [language.code for language in transcript.languages or []] == ["en"]
    assert transcript.usage is not None and transcript.usage.type == "duration"


@pytest.mark.parametrize("model", GPT_MODELS)
@pytest.mark.parametrize("response_format", ["verbose_json", "srt", "vtt"])
def test_gpt_models_refuse_whisper_only_formats(
    stt_url: str, speech_wav: Path, model: str, response_format: str
) -> None:
    response = raw_transcription(stt_url, speech_wav, model=model, response_format=response_format)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["param"] == "response_format" and error["code"] == "unsupported_value"
    assert f"'{response_format}' is not compatible with model '{model}'" in error["message"]


@pytest.mark.parametrize("response_format", ["text", "srt", "vtt"])
def test_formats_no_adapter_asks_for_are_refused_not_faked(
    stt_url: str, speech_wav: Path, response_format: str
) -> None:
    # The stand-in serves the formats emochat's adapter requests (json, verbose_json); another one is
    # a 400 that says so, never an answer in a format it does not really produce.
    response = raw_transcription(stt_url, speech_wav, response_format=response_format)
    assert response.status_code == 400
    assert "serves json and verbose_json" in response.json()["error"]["message"]


def test_unknown_model_is_404_model_not_found(stt_url: str, speech_wav: Path) -> None:
    with pytest.raises(openai.NotFoundError) as raised:
        client(stt_url).audio.transcriptions.create(model="whisper-2", file=speech_wav)
    assert raised.value.code == "model_not_found"
    assert StandIn(stt_url).requests()["requests"][-1]["status"] == 404


# ── What OpenAI refuses, the stand-in refuses ─────────────────────────────────────────────────────


@pytest.mark.parametrize("language", ["en-US", "en_GB", "english", "eng", "xx"])
def test_a_language_that_is_not_iso_639_1_is_400(stt_url: str, speech_wav: Path, language: str) -> None:
    with pytest.raises(openai.BadRequestError) as raised:
        client(stt_url).audio.transcriptions.create(model="whisper-1", file=speech_wav, language=language)
    assert raised.value.body["param"] == "language"  # type: ignore[index]
    assert raised.value.code == "invalid_language_format"


def test_a_file_over_25_mb_is_413_even_under_25_mib(stt_url: str) -> None:
    too_big = b"RIFF" + bytes(25_000_001 - 4)
    assert len(too_big) < 25 * 2**20
    with pytest.raises(openai.APIStatusError) as raised:
        client(stt_url, max_retries=0).audio.transcriptions.create(
            model="gpt-4o-transcribe", file=("big.wav", too_big, "audio/wav")
        )
    assert raised.value.status_code == 413
