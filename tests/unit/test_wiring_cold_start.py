"""The voice path's wiring (emochat.wiring.voice_services): what a cold start builds and imports.

The figures live in bench/bench_import.py; these tests hold the properties the figures rest on.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from concurrent.futures import Future
from pathlib import Path

import pytest

from emochat.pipeline.budget import Deadline
from emochat.pipeline.ports import ServiceError, Transcript, VoiceClip

FUNCTIONS = Path(__file__).resolve().parents[2] / "functions"
EMULATED = {
    "GCLOUD_PROJECT": "demo-wiring",
    "FIREBASE_CONFIG": json.dumps({"projectId": "demo-wiring", "storageBucket": "demo-wiring.appspot.com"}),
    "FIRESTORE_EMULATOR_HOST": "127.0.0.1:1",
    "STORAGE_EMULATOR_HOST": "http://127.0.0.1:1",
    "OPENAI_API_KEY": "not-a-key",
    "STRESS_ENDPOINT_URL": "http://127.0.0.1:1",
    "METADATA_SERVER_DETECTION": "none",
}


def run_probe(probe: str) -> object:
    """Run `probe` in a fresh interpreter in functions/ (a new instance's imports) and return the
    JSON its last line prints."""
    run = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=FUNCTIONS,
        env={**os.environ, **EMULATED},
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return json.loads(run.stdout.strip().splitlines()[-1])


@pytest.fixture
def wiring(monkeypatch: pytest.MonkeyPatch):
    from emochat import wiring

    for name, value in EMULATED.items():
        monkeypatch.setenv(name, value)
    for cached in (wiring._voice_services, wiring.http_client, wiring.firestore_client):
        cached.cache_clear()
    yield wiring
    for cached in (wiring._voice_services, wiring.http_client, wiring.firestore_client):
        cached.cache_clear()


def test_stt_and_stress_share_one_http_client(wiring) -> None:
    services = wiring.voice_services()
    transcriber = services.transcriber._built.result(timeout=60)
    shared = wiring.http_client()
    assert transcriber._client._client is shared  # the openai client sends through it
    assert services.stress_scorer._built.result(timeout=60)._client is shared
    assert services.stress_scorer.model_name == "emochat-stress-demo"  # known before the build ends
    assert services.audio_store._built.result(timeout=60) is not None


def test_a_failed_background_build_reaches_the_first_call(wiring) -> None:
    def broken():
        raise ServiceError("stt_unavailable", "no client")

    pending = wiring.PendingTranscriber(wiring.build_in_background(broken))
    with pytest.raises(ServiceError, match="no client"):
        pending.transcribe(VoiceClip(b"", "m.wav", "audio/wav"), None)
    failed: Future = wiring.build_in_background(broken)
    with pytest.raises(ServiceError):
        wiring.PendingAudioStore(failed).download("b", "voice/u/c/m.wav", 1, timeout_s=5.0)


def test_the_pending_ports_forward_every_argument_the_adapters_take(wiring) -> None:
    """The event's deadline and the download's time limit reach the real adapter unchanged: a
    wrapper that dropped them would let a call outlive the function timeout."""
    calls: list[tuple] = []

    class Recorder:
        model_name = "recorded"

        def transcribe(self, clip, language, deadline=None):
            calls.append(("transcribe", clip, language, deadline))
            return Transcript("hi", language)

        def score_stress(self, clip, deadline=None):
            calls.append(("score_stress", clip, deadline))
            return 0.25

        def download(self, bucket, name, generation, timeout_s):
            calls.append(("download", bucket, name, generation, timeout_s))
            return b"audio"

    built = wiring.build_in_background(Recorder)
    clip, deadline = VoiceClip(b"x", "m.wav", "audio/wav"), Deadline(123.0)
    assert wiring.PendingTranscriber(built).transcribe(clip, "ko", deadline) == Transcript("hi", "ko")
    assert wiring.PendingStressScorer(built, "recorded").score_stress(clip, deadline) == 0.25
    assert wiring.PendingAudioStore(built).download("b", "voice/u/c/m.wav", 7, 12.5) == b"audio"
    wiring.PendingTranscriber(built).transcribe(clip, None)
    wiring.PendingStressScorer(built, "recorded").score_stress(clip)
    assert calls == [
        ("transcribe", clip, "ko", deadline),
        ("score_stress", clip, deadline),
        ("download", "b", "voice/u/c/m.wav", 7, 12.5),
        ("transcribe", clip, None, None),
        ("score_stress", clip, None),
    ]


def test_the_voice_path_imports_no_other_feature_and_no_torch() -> None:
    probe = (
        "import sys, json, main\n"
        "from emochat import wiring\n"
        "services = wiring.voice_services()\n"
        "for port in (services.transcriber, services.stress_scorer, services.audio_store):\n"
        "    port._built.result(timeout=60)\n"
        "prefixes = ('emochat', 'firebase_admin', 'torch')\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.startswith(prefixes))))"
    )
    loaded = set(run_probe(probe))
    assert "emochat.pipeline.adapters.openai_stt" in loaded  # the probe did build the voice path
    # Other features' pure models may be shared rules (the account tombstone every writer checks,
    # emochat.accounts.model); their services and adapters, FCM and torch stay out.
    features = ("emochat.alerts", "emochat.suggestions", "emochat.trends", "emochat.accounts")
    others = {m for m in loaded if m.startswith(features) and not m.endswith(".model")}
    others -= set(features)  # the packages themselves, imported on the way to a model
    others |= {m for m in loaded if m.startswith(("firebase_admin.messaging", "torch"))}
    assert not others


def test_the_trigger_imports_no_decoder_and_no_service_client_before_its_first_event() -> None:
    """What the trigger imports before wiring is PyAV-, numpy-, openai- and Storage-free: those are
    imported on background threads by voice_services(), which then has them (decoding included)."""
    probe = (
        "import sys, json, main\n"
        "from emochat import wiring\n"
        "from emochat.pipeline.service import Upload, process_upload\n"
        "heavy = ('av', 'numpy', 'openai', 'google.cloud.storage', 'emochat.pipeline.audio')\n"
        "before = [m for m in heavy if m in sys.modules]\n"
        "services = wiring.voice_services()\n"
        "for port in (services.transcriber, services.stress_scorer, services.audio_store):\n"
        "    port._built.result(timeout=60)\n"
        "import time\n"
        "deadline = time.monotonic() + 60\n"
        "while 'emochat.pipeline.audio' not in sys.modules and time.monotonic() < deadline:\n"
        "    time.sleep(0.05)\n"
        "print(json.dumps({'before': before, 'after': [m for m in heavy if m in sys.modules]}))"
    )
    loaded = run_probe(probe)
    assert loaded == {
        "before": [],
        "after": ["av", "numpy", "openai", "google.cloud.storage", "emochat.pipeline.audio"],
    }


def test_concurrent_first_events_share_one_build(wiring) -> None:
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=4) as pool:
        built = list(pool.map(lambda _: wiring.voice_services(), range(4)))
    assert all(services is built[0] for services in built)
