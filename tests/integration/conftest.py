from __future__ import annotations

import os
import uuid

import pytest

pytestmark = pytest.mark.stack


@pytest.fixture(scope="session")
def db():
    from google.cloud import firestore

    return firestore.Client(project=os.environ.get("GCLOUD_PROJECT", "demo-emochat"))


@pytest.fixture
def unique() -> str:
    return uuid.uuid4().hex[:12]
