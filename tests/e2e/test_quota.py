"""Per-user daily voice budget, end to end (issue 10, item 5): each voice message that reaches the
paid services is counted in users/{uid}/usage/{YYYY-MM-DD} (the UTC date) as one message and its
decoded audio seconds, atomically, before any paid call; over either budget the message is rejected
with quota_exceeded and neither stand-in sees a request.

The budgets are the functions' params (defaults far above what a test sends), so the over-budget
cases put the user at the limit by writing the usage document with the admin client, and restore it.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from e2e_helpers import MINA_UID, SEED_CHAT, STRESS, STT, espeak_m4a

from local_stack.app_client import AppClient, AppClientError

pytestmark = [
    pytest.mark.stack,
]

WAIT_S = 180.0


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    return espeak_m4a("A quick note before the bus leaves.", tmp_path_factory.mktemp("quota") / "q.m4a")


def today_utc() -> str:
    return datetime.now(UTC).date().isoformat()


@pytest.fixture
def usage_ref(db) -> Iterator:
    """Mina's usage document for today, restored to what it was after the test."""
    ref = db.document(f"users/{MINA_UID}/usage/{today_utc()}")
    saved = ref.get()
    yield ref
    if saved.exists:
        ref.set(saved.to_dict())
    else:
        ref.delete()


def usage(ref) -> dict:
    snapshot = ref.get()
    return snapshot.to_dict() if snapshot.exists else {"messages": 0, "audioSeconds": 0}


def test_each_voice_message_is_counted(app: AppClient, clip: bytes, usage_ref) -> None:
    before = usage(usage_ref)
    sent = app.send_voice_message(SEED_CHAT, clip, language="en")
    doc = app.wait_for_message(SEED_CHAT, sent.message_id, timeout_s=WAIT_S).doc
    assert doc["status"] == "ready", doc.get("error")
    after = usage(usage_ref)
    assert after["messages"] == before["messages"] + 1
    assert after["audioSeconds"] == pytest.approx(
        before["audioSeconds"] + doc["audio"]["durationMs"] / 1000, abs=0.01
    )
    # The app reads it, as its owner, through the security rules.
    own = app.get_doc(f"users/{MINA_UID}/usage/{today_utc()}")
    assert own is not None and own["messages"] == after["messages"]
    # What the transcription was billed on is kept per message, as backend bookkeeping only.
    billed = usage_ref.collection("transcriptions").document(f"{SEED_CHAT}:{sent.message_id}").get()
    assert billed.exists and billed.get("model") and billed.get("usage")
    assert billed.get("audioSeconds") == pytest.approx(doc["audio"]["durationMs"] / 1000, abs=0.01)
    with pytest.raises(AppClientError) as refused:
        app.get_doc(f"users/{MINA_UID}/usage/{today_utc()}/transcriptions/{SEED_CHAT}:{sent.message_id}")
    assert refused.value.status == 403


@pytest.mark.parametrize("spent", [{"messages": 1_000_000}, {"audioSeconds": 10_000_000.0}])
def test_over_budget_is_rejected_before_any_paid_call(
    spent: dict, app: AppClient, clip: bytes, usage_ref
) -> None:
    usage_ref.set({"messages": 0, "audioSeconds": 0.0, **spent})
    calls_before = STT.request_count(), STRESS.request_count()
    sent = app.send_voice_message(SEED_CHAT, clip, language="en")
    doc = app.wait_for_message(SEED_CHAT, sent.message_id, timeout_s=WAIT_S).doc
    assert doc["status"] == "rejected" and doc["error"]["code"] == "quota_exceeded", doc
    assert doc["error"]["message"] and doc["text"] is None and doc["stress"] is None
    assert (STT.request_count(), STRESS.request_count()) == calls_before
    assert usage(usage_ref) == {"messages": 0, "audioSeconds": 0.0, **spent}  # a refusal costs nothing
