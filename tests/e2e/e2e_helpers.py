"""Shared pieces of the end-to-end tests: speech made at test time, event delivery, stand-in counters."""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from speech import espeak_m4a  # noqa: F401  (re-exported for the e2e tests)

from local_stack.app_client import AppClient, AppClientError, EmulatorRest, StandIn

PROJECT = os.environ.get("GCLOUD_PROJECT", "demo-emochat")
SEED_CHAT = "chat-mina-joon"
MINA = ("mina@example.com", "mina-password")
T = TypeVar("T")
JOON = ("joon@example.com", "joon-password")
MINA_UID = "mina-seed-uid"
JOON_UID = "joon-seed-uid"
# The stand-ins the functions call, at the URLs they are given (scripted faults, request counts).
STT = StandIn.of("stt")
STRESS = StandIn.of("stress")


def past_the_rules(upload: Callable[[bool], T]) -> T:
    """For an upload that storage.rules refuse to the app, made to test the function's own guard
    (what an admin, the console or a rules mistake could still let through).

    `upload(admin)` is tried as the app first and must be refused (403) wherever the rules are
    enforced; then it is made with the emulator's owner credential, which bypasses the rules."""
    if os.environ.get("EMOCHAT_STORAGE_RULES_ENFORCED") == "1":
        with pytest.raises(AppClientError) as refused:
            upload(False)
        assert refused.value.status == 403, refused.value
    return upload(True)


@pytest.fixture(scope="session")
def speech_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("speech")


@pytest.fixture
def app() -> AppClient:
    with AppClient(timeout_s=60.0) as client:
        client.sign_in(*MINA)
        yield client


@pytest.fixture(scope="session")
def db():
    from google.cloud import firestore

    return firestore.Client(project=PROJECT)


def storage_object(name: str, bucket: str | None = None) -> dict:
    """The object's GCS JSON resource, as the storage emulator describes it (the event's data).
    `bucket` defaults to the stack's (EMOCHAT_BUCKET)."""
    env = os.environ if bucket is None else {**os.environ, "EMOCHAT_BUCKET": bucket}
    with EmulatorRest(env, timeout_s=10) as rest:
        response = rest.gcs_object(name)
    response.raise_for_status()
    return response.json()


def deliver_finalize_event(obj: dict) -> httpx.Response:
    """Deliver a storage object-finalized CloudEvent straight to the Functions emulator: a redelivery.

    Cloud Storage triggers are at-least-once; this is how the tests make the duplicate happen.
    """
    origin = os.environ.get("FUNCTIONS_EMULATOR_ORIGIN", "http://127.0.0.1:5001")
    event = {
        "specversion": "1.0",
        "id": str(uuid.uuid4()),
        "source": f"//storage.googleapis.com/projects/_/buckets/{obj['bucket']}",
        "type": "google.cloud.storage.object.v1.finalized",
        "subject": f"objects/{obj['name']}",
        "time": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
        "datacontenttype": "application/json",
        "data": obj,
    }
    return httpx.post(
        f"{origin}/functions/projects/{PROJECT}/triggers/us-central1-process_voice_message-0",
        content=json.dumps(event),
        headers={"Content-Type": "application/cloudevents+json"},
        timeout=120,
    )


@pytest.fixture
def clean_faults():
    """No scripted fault before or after the test (the stand-ins' fault lists are global)."""
    for standin in (STT, STRESS):
        standin.clear(requests=False)
    yield
    for standin in (STT, STRESS):
        standin.clear(requests=False)


# ── The Functions emulator's log ──────────────────────────────────────────────────────────────────


def function_log() -> Path | None:
    from local_stack.stack import LOG_DIR

    path = LOG_DIR / "firebase.log"
    return path if path.exists() else None


def outcome_log_entry(
    object_name: str, generation: int | None = None, timeout_s: float = 15.0
) -> dict[str, Any]:
    """process_voice_message's outcome line for this object (and generation, when given), from the
    Functions emulator's log (worker stdout, one structured JSON entry a line after a '>  ' prefix).
    Its presence means the function has decided about that object."""
    path = function_log()
    if path is None:
        pytest.skip("no Functions emulator log file (the stack runs in the foreground?)")
    deadline = time.monotonic() + timeout_s
    while True:
        for line in path.read_text(errors="replace").splitlines():
            start = line.find("{")
            if start < 0 or "voice message processed" not in line:
                continue
            try:
                entry = json.loads(line[start:])
            except ValueError:
                continue
            if entry.get("object") == object_name and generation in (None, entry.get("generation")):
                return entry
        if time.monotonic() >= deadline:
            pytest.fail(f"no 'voice message processed' log line for {object_name} in {path}")
        time.sleep(0.3)
