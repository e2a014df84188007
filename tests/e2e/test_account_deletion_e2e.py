"""Deleting an account leaves nothing of it anywhere (issue 10 item 4), end to end: real voice
uploads through the Storage emulator (storage.rules enforced), the real pipeline, alerts and trends
triggers, the delete_my_data callable, and then a scan of every Firestore document and every object
in the bucket for the account's uid and display name."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from e2e_helpers import PROJECT, deliver_finalize_event, storage_object
from fakes.documents import mentions

from local_stack.app_client import AppClient, Session

pytestmark = pytest.mark.stack

FUNCTIONS = os.environ.get("FUNCTIONS_EMULATOR_ORIGIN", "http://127.0.0.1:5001")
STORAGE = os.environ.get("STORAGE_EMULATOR_HOST", "http://127.0.0.1:9199")
BUCKET = "demo-emochat.appspot.com"
STRESSED = Path(__file__).resolve().parents[2] / "samples" / "voice-stressed.m4a"


def _person(app: AppClient, db, name: str) -> Session:
    uid = f"{name}-{uuid.uuid4().hex[:10]}"
    app.create_user(uid=uid, email=f"{uid}@example.com", password="deletion-pw", display_name=name)
    db.document(f"users/{uid}").set({"displayName": name, "timeZone": "Asia/Seoul", "language": "en"})
    return app.sign_in(f"{uid}@example.com", "deletion-pw")


def _call(name: str, data: Any, session: Session) -> dict[str, Any]:
    response = httpx.post(
        f"{FUNCTIONS}/{PROJECT}/us-central1/{name}",
        json={"data": data},
        headers={"Authorization": f"Bearer {session.id_token}"},
        timeout=120,
    )
    assert response.status_code == 200, response.text
    return response.json()["result"]


def _documents(db) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every document in the database, with every subcollection's, also under missing parents."""

    def walk(collections) -> Iterator[tuple[str, dict[str, Any]]]:
        for collection in collections:
            for ref in collection.list_documents():
                snap = ref.get()
                if snap.exists:
                    yield ref.path, snap.to_dict() or {}
                yield from walk(ref.collections())

    yield from walk(db.collections())


def _objects() -> list[str]:
    names, token = [], None
    while True:
        params = {"pageToken": token} if token else {}
        page = httpx.get(f"{STORAGE}/storage/v1/b/{BUCKET}/o", params=params, timeout=30).json()
        names += [item["name"] for item in page.get("items", [])]
        token = page.get("nextPageToken")
        if not token:
            return names


def _wait(check, what: str, timeout_s: float = 180) -> Any:
    deadline = time.monotonic() + timeout_s
    while not (result := check()):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.5)
    return result


def test_deleting_an_account_leaves_nothing_of_it_in_firestore_or_storage(db) -> None:
    name = f"Del{uuid.uuid4().hex[:8]}"  # the display name: in pushes, feeds and the uid itself
    with AppClient(timeout_s=120.0) as app:
        gone, stays = _person(app, db, name), _person(app, db, "Stays")
        now = datetime.now(UTC)
        shared, invited_to = f"del-shared-{uuid.uuid4().hex}", f"del-invite-{uuid.uuid4().hex}"
        db.document(f"chats/{shared}").set({"members": [gone.uid, stays.uid], "createdAt": now})
        db.document(f"chats/{invited_to}").set(
            {"members": [stays.uid], "invited": [gone.uid], "createdAt": now}
        )
        db.document(f"users/{gone.uid}/usage/{now.date().isoformat()}").set(
            {"messages": 1, "audioSeconds": 3}
        )
        for who in (gone, stays):
            db.document(f"users/{who.uid}/devices/phone").set({"token": f"del-{who.uid}", "platform": "ios"})

        app.session = gone
        sent = app.send_voice_message(shared, STRESSED.read_bytes())
        done = app.wait_for_message(shared, sent.message_id, timeout_s=180, admin=True)
        assert done.doc["status"] == "ready" and done.doc["stress"]["level"] == "high", done.doc
        # What the reproduction found left behind: the other member's feed entry about it, the
        # transcript and reading in the shared chat, the voice file, the trend day (and, since day
        # documents keep only aggregates, the reading's own index document).
        _wait(lambda: list(db.collection(f"users/{stays.uid}/notifications").stream()), "the alert")
        _wait(lambda: list(db.collection(f"users/{gone.uid}/stressDaily").stream()), "the trend day")
        reading = db.document(f"users/{gone.uid}/stressIndex/{shared}|{sent.message_id}").get()
        assert reading.get("score") == done.doc["stress"]["score"]  # the reading's own document
        _call("recommend_coping", {"count": 1}, gone)
        event_object = storage_object(sent.path)
        app.session = stays
        assert app.get_doc(f"chats/{shared}/messages/{sent.message_id}") is not None  # readable by Stays

        assert _call("delete_my_data", {"confirm": True}, gone)["deleted"] >= 1

        # A redelivered upload event for the account's voice message, after the deletion: the
        # pipeline must not recreate the message (nor the triggers anything after it).
        deliver_finalize_event(event_object)
        time.sleep(5)  # let any trigger the redelivery could cause finish

        leftovers = [path for path, doc in _documents(db) if mentions(path, name) or mentions(doc, name)]
        assert leftovers == [f"deletedUsers/{gone.uid}"], leftovers
        assert set(db.document(f"deletedUsers/{gone.uid}").get().to_dict()) <= {"deletedAt", "expireAt"}
        assert [n for n in _objects() if name in n] == []
        voice = httpx.get(f"{STORAGE}/storage/v1/b/{BUCKET}/o/{quote(sent.path, safe='')}", timeout=10)
        assert voice.status_code == 404  # nobody can fetch the voice file any more
        assert db.document(f"chats/{shared}").get().get("members") == [stays.uid]
        assert db.document(f"chats/{invited_to}").get().get("invited") == []
        assert not db.document(f"chats/{shared}/messages/{sent.message_id}").get().exists
        assert list(db.collection(f"users/{stays.uid}/devices").stream())  # the other account's data stays
