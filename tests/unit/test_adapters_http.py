"""The HTTP adapters against fakes that speak each API's real wire format (fakes.pipeline.scripted)."""

from __future__ import annotations

import json

import httpx
import openai
import pytest
from fakes.pipeline import scripted

from emochat.pipeline.adapters.hf_stress import HuggingFaceStressScorer, parse_stressed_probability
from emochat.pipeline.adapters.openai_stt import OpenAITranscriber
from emochat.pipeline.ports import ServiceError, VoiceClip

CLIP = VoiceClip(b"RIFF....WAVE", "m1.wav", "audio/wav")
STRESSED = [{"label": "stressed", "score": 0.83}, {"label": "not_stressed", "score": 0.17}]


def scorer(responses, **kw) -> tuple[HuggingFaceStressScorer, list[httpx.Request], list[float]]:
    transport, seen = scripted(responses)
    sleeps: list[float] = []
    client = httpx.Client(transport=transport, timeout=5.0)
    kw.setdefault("sleep", sleeps.append)
    return HuggingFaceStressScorer(client, "https://endpoint.test/", token="hf_x", **kw), seen, sleeps


def test_hf_sends_raw_audio_with_token() -> None:
    stress, seen, _ = scorer([httpx.Response(200, json=STRESSED)])
    assert stress.score_stress(CLIP) == 0.83
    request = seen[0]
    assert request.method == "POST" and request.content == CLIP.data
    assert request.headers["content-type"] == "audio/wav"
    assert request.headers["authorization"] == "Bearer hf_x"


def test_hf_waits_out_warmup_and_rate_limits() -> None:
    stress, seen, sleeps = scorer(
        [
            httpx.Response(503, json={"error": "Model is currently loading", "estimated_time": 4.0}),
            httpx.Response(429, headers={"Retry-After": "2"}, json={"error": "rate limited"}),
            httpx.Response(500, text="oops"),
            httpx.Response(200, json=STRESSED),
        ]
    )
    assert stress.score_stress(CLIP) == 0.83
    assert len(seen) == 4 and sleeps[:2] == [4.0, 2.0] and sleeps[2] > 0


def test_hf_retries_are_bounded() -> None:
    stress, seen, _ = scorer(
        [httpx.Response(503, json={"error": "loading", "estimated_time": 1})], max_attempts=3
    )
    with pytest.raises(ServiceError) as err:
        stress.score_stress(CLIP)
    assert err.value.code == "stress_unavailable" and len(seen) == 3


def test_hf_deadline_stops_retries() -> None:
    stress, seen, _ = scorer([httpx.Response(429, headers={"Retry-After": "60"})], deadline_s=5)
    with pytest.raises(ServiceError) as err:
        stress.score_stress(CLIP)
    assert err.value.code == "stress_rate_limited" and len(seen) == 1


def test_hf_timeout_then_success() -> None:
    stress, seen, _ = scorer([httpx.ReadTimeout("slow"), httpx.Response(200, json=STRESSED)])
    assert stress.score_stress(CLIP) == 0.83 and len(seen) == 2


def test_hf_bad_audio_is_not_retried() -> None:
    stress, seen, _ = scorer([httpx.Response(400, json={"error": "Could not decode audio"})])
    with pytest.raises(ServiceError) as err:
        stress.score_stress(CLIP)
    assert err.value.code == "stress_rejected" and "decode" in err.value.message and len(seen) == 1


def test_hf_malformed_answer_is_retried_then_reported() -> None:
    stress, seen, _ = scorer([httpx.Response(200, text="<html>bad gateway</html>")], max_attempts=2)
    with pytest.raises(ServiceError) as err:
        stress.score_stress(CLIP)
    assert err.value.code == "stress_bad_response" and len(seen) == 2


@pytest.mark.parametrize(
    ("body", "p"),
    [
        (STRESSED, 0.83),
        ([STRESSED], 0.83),
        ([{"label": "not_stressed", "score": 1.0}, {"label": "stressed", "score": 0}], 0.0),
    ],
)
def test_parse_probability(body, p) -> None:
    assert parse_stressed_probability(body) == p


@pytest.mark.parametrize(
    "body", [{}, [], [{"label": "stressed", "score": 1.5}], [{"label": "x", "score": 1}], "stressed"]
)
def test_parse_probability_rejects_malformed(body) -> None:
    with pytest.raises(ValueError):
        parse_stressed_probability(body)


def openai_transcriber(responses, model: str = "whisper-1", max_retries: int = 2):
    transport, seen = scripted(responses)
    client = openai.OpenAI(
        api_key="sk-test",
        base_url="https://stt.test/v1",
        max_retries=max_retries,
        http_client=httpx.Client(transport=transport),
    )
    return OpenAITranscriber(client, model=model), seen


def test_openai_multipart_request_and_verbose_json() -> None:
    stt, seen = openai_transcriber(
        [
            httpx.Response(
                200,
                json={
                    "task": "transcribe",
                    "language": "english",
                    "duration": 1.0,
                    "text": " Hello there. ",
                    "segments": [],
                },
            )
        ]
    )
    transcript = stt.transcribe(CLIP, "en")
    assert transcript.text == "Hello there." and transcript.language == "en"
    request = seen[0]
    assert request.url.path == "/v1/audio/transcriptions"
    assert request.headers["authorization"] == "Bearer sk-test"
    body = request.read()
    assert b'name="model"' in body and b"whisper-1" in body and b'name="language"' in body
    assert b'filename="m1.wav"' in body and CLIP.data in body and b"verbose_json" in body


def test_openai_newer_models_use_json_and_keep_hint() -> None:
    stt, seen = openai_transcriber(
        [httpx.Response(200, json={"text": "안녕하세요"})], model="gpt-4o-transcribe"
    )
    assert stt.transcribe(CLIP, "ko").language == "ko"
    assert b"verbose_json" not in seen[0].read()


def test_openai_no_language_hint_is_omitted() -> None:
    stt, seen = openai_transcriber([httpx.Response(200, json={"text": "hi", "language": "english"})])
    stt.transcribe(CLIP, None)
    assert b'name="language"' not in seen[0].read()


def test_openai_one_garbled_answer_is_retried() -> None:
    stt, seen = openai_transcriber(
        [
            httpx.Response(200, text="{cut off", headers={"content-type": "application/json"}),
            httpx.Response(200, json={"text": "ok", "language": "english"}),
        ]
    )
    assert stt.transcribe(CLIP, None).text == "ok" and len(seen) == 2


def test_openai_retries_429_then_succeeds() -> None:
    stt, seen = openai_transcriber(
        [
            httpx.Response(429, headers={"retry-after": "0"}, json={"error": {"message": "slow down"}}),
            httpx.Response(200, json={"text": "ok", "language": "english"}),
        ]
    )
    assert stt.transcribe(CLIP, None).text == "ok" and len(seen) == 2


@pytest.mark.parametrize(
    ("response", "code"),
    [
        (
            httpx.Response(429, headers={"retry-after": "0"}, json={"error": {"message": "quota"}}),
            "stt_rate_limited",
        ),
        (
            httpx.Response(500, headers={"retry-after": "0"}, json={"error": {"message": "boom"}}),
            "stt_unavailable",
        ),
        (
            httpx.Response(400, json={"error": {"message": "bad file", "type": "invalid_request_error"}}),
            "stt_rejected",
        ),
        (
            httpx.Response(200, text="{not json", headers={"content-type": "application/json"}),
            "stt_bad_response",
        ),
        (httpx.ConnectError("refused"), "stt_unavailable"),
        (httpx.ReadTimeout("slow"), "stt_timeout"),
    ],
)
def test_openai_failures_map_to_codes(response, code) -> None:
    stt, seen = openai_transcriber([response], max_retries=1)
    with pytest.raises(ServiceError) as err:
        stt.transcribe(CLIP, None)
    assert err.value.code == code
    retried = code in {"stt_rate_limited", "stt_unavailable", "stt_timeout", "stt_bad_response"}
    assert len(seen) == (2 if retried else 1), json.dumps([str(r.url) for r in seen])
