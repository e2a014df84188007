"""FirestoreMessageStore against the Firestore emulator: transactions decide races for real."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest

from emochat.pipeline.adapters.message_store import FirestoreMessageStore
from emochat.pipeline.model import Claim, VoicePath
from emochat.pipeline.service import sweep_abandoned

pytestmark = pytest.mark.stack


def fields(lease_s: float = 300) -> dict:
    now = datetime.now(UTC)
    return {
        "kind": "voice",
        "senderId": "u1",
        "createdAt": now,
        "status": "processing",
        "text": None,
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
    assert store.claim(path, 10, fields()) is Claim.START
    assert store.claim(path, 10, fields()) is Claim.SKIP_DUPLICATE
    assert store.finish(path, 10, {"status": "ready", "text": "hi", "leaseExpiresAt": None})
    doc = db.document(path.message_doc).get().to_dict()
    assert doc["status"] == "ready" and doc["text"] == "hi" and doc["generation"] == 10
    assert store.claim(path, 9, fields()) is Claim.SKIP_STALE
    assert store.claim(path, 11, fields()) is Claim.REPLACE
    assert db.document(path.message_doc).get().get("status") == "ready"  # never back to processing
    assert not store.finish(path, 10, {"status": "failed"})  # older generation loses
    assert db.document(path.message_doc).get().get("status") == "ready"


def test_concurrent_claims_start_once(db, unique) -> None:
    store = FirestoreMessageStore(db)
    path = VoicePath("u1", unique, "m1", "m4a")
    with ThreadPoolExecutor(max_workers=6) as pool:
        claims = list(pool.map(lambda _: store.claim(path, 7, fields()), range(6)))
    assert claims.count(Claim.START) == 1 and claims.count(Claim.SKIP_DUPLICATE) == 5


def test_sweeper_query_and_transaction(db, unique) -> None:
    store = FirestoreMessageStore(db)
    stuck = VoicePath("u1", unique, "stuck", "m4a")
    alive = VoicePath("u1", unique, "alive", "m4a")
    store.claim(stuck, 1, fields(lease_s=-5))
    store.claim(alive, 1, fields(lease_s=300))
    swept = sweep_abandoned(store, now=time.time())
    assert stuck.message_doc in swept and alive.message_doc not in swept
    doc = db.document(stuck.message_doc).get().to_dict()
    assert doc["status"] == "failed" and doc["error"]["code"] == "processing_timeout"
    assert db.document(alive.message_doc).get().get("status") == "processing"
