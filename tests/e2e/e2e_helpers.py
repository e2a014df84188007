"""Shared pieces of the end-to-end tests: speech made at test time, event delivery, stand-in counters."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

import httpx
import pytest
from speech import espeak_m4a  # noqa: F401  (re-exported for the e2e tests)

from local_stack.app_client import AppClient, AppClientError, EmulatorRest

PROJECT = os.environ.get("GCLOUD_PROJECT", "demo-emochat")
SEED_CHAT = "chat-mina-joon"
MINA = ("mina@example.com", "mina-password")
T = TypeVar("T")
JOON = ("joon@example.com", "joon-password")


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
    with AppClient.from_env(timeout_s=60.0) as client:
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


def standin_requests(port_env: str, default_port: int) -> int:
    """How many requests a stand-in server has answered (its /_emochat/requests count)."""
    url = os.environ.get(port_env) or f"http://127.0.0.1:{default_port}"
    base = url.removesuffix("/v1")
    return int(httpx.get(f"{base}/_emochat/requests", timeout=5).json()["count"])
