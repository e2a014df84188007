"""The stress stand-in scaling up from zero: a request with X-Scale-Up-Timeout is held until the
endpoint is ready, as HF's proxy does; without it, 503. The production adapter (HuggingFaceStressScorer)
gets through either way."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from local_stack_support import ThreadedServer
from stress_handler_double import EndpointHandler
from test_local_stress_server import wait_healthy

from emochat.pipeline.adapters.hf_stress import HuggingFaceStressScorer
from emochat.pipeline.ports import VoiceClip
from local_stack.app_client import StandIn
from local_stack.stress_server import StressSettings, create_app

WARM_UP_S = 1.5


@pytest.fixture
def cold_endpoint() -> Iterator[str]:
    """A fresh endpoint, warming up for WARM_UP_S from now (the handler itself loads at once)."""
    app = create_app(StressSettings(warmup_seconds=WARM_UP_S), loader=lambda: EndpointHandler())
    with ThreadedServer(app) as server:
        wait_healthy(server.base_url)
        yield server.base_url


def scorer(url: str, scale_up_timeout_s: float) -> HuggingFaceStressScorer:
    return HuggingFaceStressScorer(
        httpx.Client(timeout=10), url, deadline_s=30, scale_up_timeout_s=scale_up_timeout_s
    )


def test_a_request_asking_to_be_held_is_served_once_the_endpoint_is_up(
    cold_endpoint: str, speech_wav: Path
) -> None:
    started = time.monotonic()
    response = httpx.post(
        cold_endpoint,
        content=speech_wav.read_bytes(),
        headers={"Content-Type": "audio/wav", "X-Scale-Up-Timeout": "20"},
        timeout=30,
    )
    assert response.status_code == 200
    assert [entry["status"] for entry in StandIn(cold_endpoint).requests()["requests"]] == [200]
    assert time.monotonic() - started >= WARM_UP_S - 0.5  # it was held, not served cold


def test_the_adapter_gets_a_reading_from_a_cold_endpoint(cold_endpoint: str, speech_wav: Path) -> None:
    p = scorer(cold_endpoint, scale_up_timeout_s=20).score_stress(
        VoiceClip(speech_wav.read_bytes(), "s.wav", "audio/wav")
    )
    assert 0.0 <= p <= 1.0
    assert [entry["status"] for entry in StandIn(cold_endpoint).requests()["requests"]] == [503, 200]


def test_a_hold_shorter_than_the_warm_up_ends_in_503(cold_endpoint: str, speech_wav: Path) -> None:
    started = time.monotonic()
    response = httpx.post(
        cold_endpoint,
        content=speech_wav.read_bytes(),
        headers={"Content-Type": "audio/wav", "X-Scale-Up-Timeout": "0.3"},
    )
    assert response.status_code == 503 and "currently loading" in response.json()["error"]
    assert 0.25 <= time.monotonic() - started < WARM_UP_S


def test_a_scripted_503_ignores_the_header(cold_endpoint: str, speech_wav: Path) -> None:
    time.sleep(WARM_UP_S)
    StandIn(cold_endpoint).script([{"status": 503}])
    response = httpx.post(
        cold_endpoint,
        content=speech_wav.read_bytes(),
        headers={"Content-Type": "audio/wav", "X-Scale-Up-Timeout": "30"},
    )
    assert response.status_code == 503
