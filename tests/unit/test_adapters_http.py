"""The HTTP adapters against fakes that speak each API's real wire format (fakes.pipeline.scripted)."""

from __future__ import annotations

import json

import httpx
import openai
import pytest
from fakes.pipeline import scripted

from emochat.pipeline.adapters.hf_stress import (
    HuggingFaceStressScorer,
    parse_stressed_probability,
    scale_up_hold_s,
)
from emochat.pipeline.adapters.openai_stt import SUPPORTED_MODELS, OpenAITranscriber
from emochat.pipeline.ports import ServiceError, TranscriptionUsage, VoiceClip

CLIP = VoiceClip(b"RIFF....WAVE", "m1.wav", "audio/wav")
TIMED_CLIP = VoiceClip(b"RIFF....WAVE", "m1.wav", "audio/wav", duration_s=3.4)
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


LOADING = {"error": "Model emochat/stress-student is currently loading", "estimated_time": 40.0}


def scaled_to_zero_endpoint(cold_start_s: float, honours_header: bool):
    """An endpoint with no replica: its proxy holds a request carrying X-Scale-Up-Timeout until the
    replica is up (if it may wait that long), and answers 503 otherwise, as HF's proxy does."""
    state = {"waited_s": 0.0}

    def answer(request: httpx.Request) -> httpx.Response:
        hold = request.headers.get("x-scale-up-timeout")
        if honours_header and hold is not None and float(hold) >= cold_start_s - state["waited_s"]:
            return httpx.Response(200, json=STRESSED)
        if state["waited_s"] >= cold_start_s:
            return httpx.Response(200, json=STRESSED)
        return httpx.Response(503, json=LOADING)

    return answer, state


def test_hf_asks_a_scaled_to_zero_endpoint_to_hold_the_request() -> None:
    answer, _ = scaled_to_zero_endpoint(cold_start_s=40.0, honours_header=True)
    stress, seen, sleeps = scorer([], deadline_s=150, scale_up_timeout_s=120)
    stress._client = httpx.Client(
        transport=httpx.MockTransport(lambda r: seen.append(r) or answer(r)), timeout=30
    )
    assert stress.score_stress(CLIP) == 0.83
    # The 503 says it is scaling up; after the usual short wait, one request it holds until ready.
    # (The fake sleep takes no time, so the deadline still leaves the whole configured hold.)
    assert [r.headers.get("x-scale-up-timeout") for r in seen] == [None, "120"]
    assert sleeps == [10.0]
    # The held request may take the hold plus the model's own read timeout, within the deadline.
    assert seen[1].extensions["timeout"]["read"] == pytest.approx(150, abs=0.5)


def test_hf_a_stalled_request_on_a_warm_endpoint_is_still_cut_at_the_read_timeout() -> None:
    stress, seen, _ = scorer([httpx.ReadTimeout("stalled"), httpx.Response(200, json=STRESSED)])
    assert stress.score_stress(CLIP) == 0.83
    assert "x-scale-up-timeout" not in seen[0].headers
    assert seen[0].extensions["timeout"]["read"] == pytest.approx(5.0)
    assert len(seen) == 2


def test_hf_still_retries_503_from_an_endpoint_that_ignores_the_header() -> None:
    answer, state = scaled_to_zero_endpoint(cold_start_s=15.0, honours_header=False)
    seen: list[httpx.Request] = []
    sleeps: list[float] = []

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        state["waited_s"] += seconds

    stress = HuggingFaceStressScorer(
        httpx.Client(transport=httpx.MockTransport(lambda r: seen.append(r) or answer(r)), timeout=30),
        "https://endpoint.test/",
        deadline_s=150,
        sleep=sleep,
    )
    assert stress.score_stress(CLIP) == 0.83
    assert len(seen) == 3 and sleeps == [10.0, 10.0]  # estimated_time 40, polled every 10 s at most
    assert [("x-scale-up-timeout" in r.headers) for r in seen] == [False, True, True]


def test_hf_default_scale_up_hold_plus_model_time_fits_the_stress_deadline() -> None:
    from emochat import config

    hold, read = config.STRESS_SCALE_UP_TIMEOUT_S.default, config.STRESS_TIMEOUT_S.default
    assert hold > 0 and hold + read <= config.STRESS_DEADLINE_S.default
    assert scale_up_hold_s(hold, config.STRESS_DEADLINE_S.default, read) == hold


def test_stt_default_model_is_one_the_adapter_is_tested_with() -> None:
    from emochat import config

    assert config.STT_MODEL.default in SUPPORTED_MODELS


def test_hf_scale_up_header_can_be_turned_off() -> None:
    stress, seen, _ = scorer(
        [httpx.Response(503, json=LOADING), httpx.Response(200, json=STRESSED)], scale_up_timeout_s=0
    )
    stress.score_stress(CLIP)
    assert len(seen) == 2 and not any("x-scale-up-timeout" in r.headers for r in seen)


@pytest.mark.parametrize(
    ("configured", "remaining", "read", "hold"),
    [
        (120, 150, 30, 120),  # the defaults: hold plus read fill the stress deadline exactly
        (120, 100, 30, 70),  # later attempts hold only what the deadline leaves
        (120, 30.5, 30, 0),  # no time left to hold: no header
        (120, 10, 30, 0),
        (0, 150, 30, 0),  # turned off
        (600, 150, 30, 120),
        (45.9, 150, 30, 45),  # whole seconds, never more than configured
    ],
)
def test_hf_scale_up_hold_fits_the_deadline(configured, remaining, read, hold) -> None:
    assert scale_up_hold_s(configured, remaining, read) == hold
    assert hold == 0 or hold + read <= remaining + 0.5


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


# The bodies each model answers with (OpenAI's wire format; the stand-in's tests check the same shapes).
WHISPER_VERBOSE = {
    "task": "transcribe",
    "language": "korean",
    "duration": 3.4,
    "text": "안녕하세요",
    "segments": [],
    "usage": {"type": "duration", "seconds": 4},
}
GPT_4O_JSON = {
    "text": "hello",
    "usage": {
        "type": "tokens",
        "input_tokens": 40,
        "input_token_details": {"text_tokens": 0, "audio_tokens": 40},
        "output_tokens": 3,
        "total_tokens": 43,
    },
}
GPT_TRANSCRIBE_JSON = {
    "text": "안녕",
    "languages": [{"code": "ko"}],
    "usage": {"type": "duration", "seconds": 2},
}


@pytest.mark.parametrize(
    ("model", "response_format"),
    [
        ("whisper-1", b"verbose_json"),
        ("gpt-4o-mini-transcribe", b"json"),
        ("gpt-4o-transcribe", b"json"),
        ("gpt-transcribe", b"json"),
        ("gpt-4o-mini-transcribe-2025-12-15", b"json"),
    ],
)
def test_openai_each_model_is_asked_for_the_format_it_gives(model: str, response_format: bytes) -> None:
    stt, seen = openai_transcriber([httpx.Response(200, json={"text": "hi"})], model=model)
    stt.transcribe(CLIP, "en")
    body = seen[0].read()
    assert b'name="response_format"\r\n\r\n' + response_format + b"\r\n" in body
    assert model.encode() in body


def test_openai_supported_models_are_the_four_of_issue_14() -> None:
    assert set(SUPPORTED_MODELS) == {
        "whisper-1",
        "gpt-4o-mini-transcribe",
        "gpt-4o-transcribe",
        "gpt-transcribe",
    }


def test_openai_whisper_reports_the_detected_language_and_duration_usage() -> None:
    stt, _ = openai_transcriber([httpx.Response(200, json=WHISPER_VERBOSE)])
    transcript = stt.transcribe(TIMED_CLIP, "en")
    assert transcript.language == "ko"  # detected beats the hint
    assert transcript.usage == TranscriptionUsage(
        model="whisper-1", audio_seconds=3.4, api_usage={"type": "duration", "seconds": 4.0}
    )
    assert transcript.usage.as_field() == {
        "model": "whisper-1",
        "audioSeconds": 3.4,
        "usage": {"type": "duration", "seconds": 4.0},
    }


@pytest.mark.parametrize("model", ["gpt-4o-mini-transcribe", "gpt-4o-transcribe"])
def test_openai_gpt_4o_models_keep_the_hint_and_report_token_usage(model: str) -> None:
    stt, _ = openai_transcriber([httpx.Response(200, json=GPT_4O_JSON)], model=model)
    transcript = stt.transcribe(TIMED_CLIP, "en")
    assert transcript.text == "hello" and transcript.language == "en"
    assert transcript.usage is not None and transcript.usage.model == model
    assert transcript.usage.audio_seconds == 3.4
    assert transcript.usage.api_usage == GPT_4O_JSON["usage"]


def test_openai_gpt_transcribe_reports_detected_languages() -> None:
    stt, _ = openai_transcriber([httpx.Response(200, json=GPT_TRANSCRIBE_JSON)], model="gpt-transcribe")
    transcript = stt.transcribe(TIMED_CLIP, "en")
    assert transcript.language == "ko"
    assert transcript.usage is not None and transcript.usage.api_usage == {"type": "duration", "seconds": 2.0}


def test_openai_gpt_transcribe_without_a_reliable_language_keeps_the_hint() -> None:
    body = {"text": "", "languages": [], "usage": {"type": "duration", "seconds": 1}}
    stt, _ = openai_transcriber([httpx.Response(200, json=body)], model="gpt-transcribe")
    assert stt.transcribe(TIMED_CLIP, "ja").language == "ja"
    stt, _ = openai_transcriber([httpx.Response(200, json=body)], model="gpt-transcribe")
    assert stt.transcribe(TIMED_CLIP, None).language is None


def test_openai_answer_without_usage_records_the_seconds_sent() -> None:
    stt, _ = openai_transcriber([httpx.Response(200, json={"text": "hi"})], model="gpt-4o-transcribe")
    usage = stt.transcribe(TIMED_CLIP, None).usage
    assert usage == TranscriptionUsage(model="gpt-4o-transcribe", audio_seconds=3.4, api_usage=None)


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
