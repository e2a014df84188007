"""The Hugging Face endpoint stand-in, driven with httpx as the production adapter does.

Most tests host a test double of the project's handler (same interface); the last one hosts the
real ``stress_model`` handler and demo checkpoint when they exist.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from local_stack_support import ThreadedServer
from stress_handler_double import EndpointHandler

from local_stack.app_client import StandIn
from local_stack.stress_server import DEFAULT_MODEL_DIR, DEFAULT_PACKAGE_DIR, StressSettings, create_app

TOKEN = "hf_local_test_token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def wait_healthy(base_url: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while httpx.get(f"{base_url}/health").status_code != 200:
        assert time.monotonic() < deadline, "stress handler did not load"
        time.sleep(0.05)


def assert_stress_labels(body: object) -> float:
    assert isinstance(body, list) and [item["label"] for item in body] == ["stressed", "not_stressed"]
    stressed, calm = body[0]["score"], body[1]["score"]
    assert 0.0 <= stressed <= 1.0 and abs(stressed + calm - 1.0) < 1e-6
    return stressed


@pytest.fixture(scope="module")
def stress_server() -> Iterator[ThreadedServer]:
    app = create_app(StressSettings(token=TOKEN), loader=lambda: EndpointHandler("checkpoints/double"))
    with ThreadedServer(app) as server:
        wait_healthy(server.base_url)
        yield server


@pytest.fixture
def stress_url(stress_server: ThreadedServer) -> str:
    StandIn(stress_server.base_url).clear()
    return stress_server.base_url


def test_raw_audio_gets_the_handlers_reading(stress_url: str, speech_m4a: Path) -> None:
    raw = httpx.post(
        stress_url, content=speech_m4a.read_bytes(), headers={**AUTH, "Content-Type": "audio/mp4"}
    )
    assert raw.status_code == 200, raw.text
    assert_stress_labels(raw.json())


@pytest.mark.parametrize("content_type", ["video/mp4", "application/octet-stream", "audio/x-m4a"])
def test_other_raw_audio_content_types(stress_url: str, speech_m4a: Path, content_type: str) -> None:
    response = httpx.post(
        stress_url, content=speech_m4a.read_bytes(), headers={**AUTH, "Content-Type": content_type}
    )
    assert response.status_code == 200
    assert_stress_labels(response.json())


def test_bad_audio_is_400_in_hf_error_shape(stress_url: str) -> None:
    response = httpx.post(stress_url, content=b"not audio", headers={**AUTH, "Content-Type": "audio/wav"})
    assert response.status_code == 400
    assert set(response.json()) == {"error"} and "decode" in response.json()["error"]
    for content_type in ("text/plain", "application/json"):  # the adapter sends raw audio only
        unsupported = httpx.post(stress_url, content=b"{}", headers={**AUTH, "Content-Type": content_type})
        assert unsupported.status_code == 415 and "error" in unsupported.json()


def test_bearer_token_is_checked(stress_url: str, speech_wav: Path) -> None:
    headers = {"Content-Type": "audio/wav"}
    assert httpx.post(stress_url, content=speech_wav.read_bytes(), headers=headers).status_code == 401
    wrong = {**headers, "Authorization": "Bearer hf_wrong"}
    assert httpx.post(stress_url, content=speech_wav.read_bytes(), headers=wrong).status_code == 401


def test_scripted_faults_use_hf_shapes(stress_url: str, speech_wav: Path) -> None:
    StandIn(stress_url).script([{"status": 503}, {"status": 429, "retry_after": 2}, {"malformed": "shape"}])
    headers = {**AUTH, "Content-Type": "audio/wav"}
    loading = httpx.post(stress_url, content=speech_wav.read_bytes(), headers=headers)
    assert loading.status_code == 503
    assert "currently loading" in loading.json()["error"] and loading.json()["estimated_time"] > 0
    throttled = httpx.post(stress_url, content=speech_wav.read_bytes(), headers=headers)
    assert throttled.status_code == 429 and throttled.headers["Retry-After"] == "2"
    wrong_shape = httpx.post(stress_url, content=speech_wav.read_bytes(), headers=headers)
    assert wrong_shape.status_code == 200 and not isinstance(wrong_shape.json(), list)
    assert [entry["status"] for entry in StandIn(stress_url).requests()["requests"]] == [503, 429, 200]


def test_warm_up_answers_503_loading_then_serves(speech_wav: Path) -> None:
    app = create_app(StressSettings(warmup_seconds=1.0), loader=lambda: EndpointHandler())
    with ThreadedServer(app) as server:
        wait_healthy(server.base_url)
        headers = {"Content-Type": "audio/wav"}
        cold = httpx.post(server.base_url, content=speech_wav.read_bytes(), headers=headers)
        assert cold.status_code == 503
        assert "currently loading" in cold.json()["error"] and 0 < cold.json()["estimated_time"] <= 1.0
        time.sleep(cold.json()["estimated_time"] + 0.1)
        warm = httpx.post(server.base_url, content=speech_wav.read_bytes(), headers=headers)
        assert warm.status_code == 200
        assert_stress_labels(warm.json())


PROJECT_HANDLER = DEFAULT_PACKAGE_DIR / "stress_model" / "handler.py"


@pytest.mark.skipif(
    not (PROJECT_HANDLER.is_file() and DEFAULT_MODEL_DIR.is_dir()),
    reason=f"needs the project handler ({PROJECT_HANDLER}) and demo checkpoint ({DEFAULT_MODEL_DIR})",
)
def test_hosts_the_project_handler_and_demo_checkpoint(speech_m4a: Path) -> None:
    with ThreadedServer(create_app(StressSettings())) as server:
        wait_healthy(server.base_url, timeout=120)
        audio = speech_m4a.read_bytes()
        raw = httpx.post(server.base_url, content=audio, headers={"Content-Type": "audio/mp4"}, timeout=60)
        assert raw.status_code == 200, raw.text
        assert_stress_labels(raw.json())
        bad = httpx.post(
            server.base_url, content=b"not audio", headers={"Content-Type": "audio/wav"}, timeout=60
        )
        assert bad.status_code == 400 and "error" in bad.json()
