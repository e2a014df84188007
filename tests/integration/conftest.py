from __future__ import annotations

import os
import uuid

import pytest

pytestmark = pytest.mark.stack


@pytest.fixture(scope="session")
def db():
    from google.cloud import firestore

    return firestore.Client(project=os.environ.get("GCLOUD_PROJECT", "demo-emochat"))


@pytest.fixture(scope="session")
def rest():
    """The emulators' REST client (local_stack.app_client.EmulatorRest) the rules helpers take."""
    from local_stack.app_client import EmulatorRest

    with EmulatorRest(timeout_s=60) as client:
        yield client


@pytest.fixture(scope="session")
def http(rest):
    """The former name of `rest` (it was a bare httpx.Client; the helpers now take the REST client)."""
    return rest


@pytest.fixture
def unique() -> str:
    return uuid.uuid4().hex[:12]
