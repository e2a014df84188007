"""FirestoreMessageStore against the Firestore emulator: transactions decide races for real."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest

from emochat.pipeline.adapters.message_store import FirestoreMessageStore
from emochat.pipeline.model import Claim, Holder, UploadedObject, VoicePath
from emochat.pipeline.service import sweep_abandoned

pytestmark = pytest.mark.stack


def fields(obj: UploadedObject, lease_s: float = 300, token: str = "run-1") -> dict:
    now = datetime.now(UTC)
    return {
        "kind": "voice",
        "senderId": "u1",
        "createdAt": now,
        "status": "processing",
        "audio": {"path": obj.name, "generation": obj.generation},
        "text": None,
        "claimToken": token,
        "leaseExpiresAt": now + timedelta(seconds=lease_s),
    }


def test_chat_members(db, unique) -> None:
    # Invitees (not accepted yet) cannot post: only `members` counts for the upload's membership check.
    db.document(f"chats/{unique}").set(
        {"members": ["a", "b"], "invited": ["c"], "createdAt": datetime.now(UTC)}
    )
    store = FirestoreMessageStore(db)
    assert store.chat_members(unique) == ["a", "b"]
    assert store.chat_members(f"missing-{unique}") is None


def test_claim_and_finish(db, unique) -> None:
    store = FirestoreMessageStore(db)
    path = VoicePath("u1", unique, "m1", "m4a")
    obj = UploadedObject(f"voice/u1/{unique}/m1.m4a", 10)
    assert store.claim(path, obj, fields(obj)) is Claim.START
    assert store.claim(path, obj, fields(obj)) is Claim.SKIP_DUPLICATE
    assert not store.finish(path, Holder(obj, "another-run"), {"status": "failed"})  # not its claim
    assert store.finish(path, Holder(obj, "run-1"), {"text": "hi"})  # a partial result: still processing
    assert store.finish(path, Holder(obj, "run-1"), {"status": "ready", "leaseExpiresAt": None})
    doc = db.document(path.message_doc).get().to_dict()
    assert doc["status"] == "ready" and doc["text"] == "hi" and doc["audio"]["generation"] == 10
    # Another object for the same id (same name again, another extension, another uid) changes nothing.
    again, other = UploadedObject(obj.name, 11), UploadedObject(f"voice/u1/{unique}/m1.wav", 12)
    assert store.claim(path, again, fields(again)) is Claim.SKIP_TAKEN
    assert store.claim(path, other, fields(other)) is Claim.SKIP_TAKEN
    member = VoicePath("u2", unique, "m1", "m4a")
    assert store.claim(member, obj, fields(obj)) is Claim.SKIP_NOT_SENDER
    assert not store.finish(path, Holder(obj, "run-1"), {"status": "failed"})  # finished: never again
    assert not store.finish(path, Holder(again, "run-1"), {"status": "failed"})
    assert db.document(path.message_doc).get().to_dict() == doc


def test_concurrent_claims_start_once(db, unique) -> None:
    store = FirestoreMessageStore(db)
    path = VoicePath("u1", unique, "m1", "m4a")
    obj = UploadedObject(f"voice/u1/{unique}/m1.m4a", 7)
    with ThreadPoolExecutor(max_workers=6) as pool:
        claims = list(pool.map(lambda _: store.claim(path, obj, fields(obj)), range(6)))
    assert claims.count(Claim.START) == 1 and claims.count(Claim.SKIP_DUPLICATE) == 5


def test_sweeper_query_and_transaction(db, unique) -> None:
    store = FirestoreMessageStore(db)
    stuck = VoicePath("u1", unique, "stuck", "m4a")
    alive = VoicePath("u1", unique, "alive", "m4a")
    stuck_obj, alive_obj = (
        UploadedObject("voice/u1/x/stuck.m4a", 1),
        UploadedObject("voice/u1/x/alive.m4a", 1),
    )
    store.claim(stuck, stuck_obj, fields(stuck_obj, lease_s=-5))
    store.claim(alive, alive_obj, fields(alive_obj, lease_s=300))
    swept = sweep_abandoned(store, now=time.time())
    assert stuck.message_doc in swept and alive.message_doc not in swept
    doc = db.document(stuck.message_doc).get().to_dict()
    assert doc["status"] == "failed" and doc["error"]["code"] == "processing_timeout"
    assert db.document(alive.message_doc).get().get("status") == "processing"


def test_a_run_past_its_lease_writes_nothing(db, unique) -> None:
    store = FirestoreMessageStore(db)
    path = VoicePath("u1", unique, "zombie", "m4a")
    obj = UploadedObject(f"voice/u1/{unique}/zombie.m4a", 3)
    assert store.claim(path, obj, fields(obj, lease_s=-1, token="zombie")) is Claim.START
    assert not store.finish(path, Holder(obj, "zombie"), {"status": "ready", "text": "late"})
    assert store.claim(path, obj, fields(obj, token="new-owner")) is Claim.RETAKE
    assert not store.finish(path, Holder(obj, "zombie"), {"status": "ready", "text": "late"})
    assert store.finish(path, Holder(obj, "new-owner"), {"status": "ready", "text": "mine"})
    assert db.document(path.message_doc).get().get("text") == "mine"


def test_a_deleted_senders_message_is_never_created_nor_finished(db, unique) -> None:
    """Issue 10 item 4: the pipeline still in flight when its sender's account is deleted."""
    store = FirestoreMessageStore(db)
    sender = f"gone-{unique}"
    early = VoicePath(sender, unique, "m1", "m4a")
    early_obj = UploadedObject(f"voice/{sender}/{unique}/m1.m4a", 1)
    assert store.claim(early, early_obj, {**fields(early_obj), "senderId": sender}) is Claim.START
    db.document(f"deletedUsers/{sender}").set({"deletedAt": datetime.now(UTC)})  # deletion starts
    # Claimed before the deletion, finished after it: the message goes instead of turning ready.
    assert store.finish(early, Holder(early_obj, "run-1"), {"status": "ready", "text": "late words"}) is False
    assert not db.document(early.message_doc).get().exists
    late = VoicePath(sender, unique, "m2", "m4a")
    late_obj = UploadedObject(f"voice/{sender}/{unique}/m2.m4a", 1)
    assert store.claim(late, late_obj, {**fields(late_obj), "senderId": sender}) is Claim.SKIP_DELETED
    assert not db.document(late.message_doc).get().exists
