"""A message belongs to its sender and to the first upload made for it, end to end (issue 10, item 1).

The attacks: a fellow member (Joon) uploads under the id of Mina's message, with his own speech or
with junk; Mina re-uploads her finished message under another extension, an upper-case extension or
the same name. Each second object must leave the message exactly as it was: no write at all (so no
status change, no alert, no baseline or trend update, which all follow message writes), and no paid
call. A second object for a message that is still processing must not take it over either.

Every attack upload goes through `past_the_rules`: storage.rules refuse it to the attacker's own
client (no object for a message id that already has a message; lowercase extensions only), which is
checked first where the rules are enforced; then it is made with the emulators' owner credential,
because what is tested is the pipeline's own guard, which must hold whatever the rules did (an
admin or console upload, a rules mistake).
"""

from __future__ import annotations

import time

import pytest
from e2e_helpers import (
    JOON,
    JOON_UID,
    MINA_UID,
    SEED_CHAT,
    STRESS,
    STT,
    espeak_m4a,
    outcome_log_entry,
    past_the_rules,
)

from local_stack.app_client import FINAL_STATUSES, AppClient, voice_path

pytestmark = [
    pytest.mark.stack,
    pytest.mark.usefixtures("clean_faults"),
]

WAIT_S = 180.0
JUNK = b"definitely not audio, just text under someone else's message id\n" * 20


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    folder = tmp_path_factory.mktemp("ownership")
    return {
        "mina": espeak_m4a("Hello Joon, the garden looks lovely this morning.", folder / "mina.m4a"),
        "joon": espeak_m4a(
            "I am furious, nothing works and I cannot stand this any longer.",
            folder / "joon.m4a",
            speed=230,
            pitch=90,
        ),
        "junk": JUNK,
    }


@pytest.fixture(scope="module")
def joon() -> AppClient:
    with AppClient(timeout_s=60.0) as client:
        client.sign_in(*JOON)
        yield client


def upload_past_the_rules(client: AppClient, name: str, data: bytes) -> int:
    """The attacker's upload (see the module docstring); returns the object's generation."""
    meta = past_the_rules(lambda admin: client.upload(name, data, content_type="audio/mp4", admin=admin))
    return int(meta["generation"])


# ── A finished message: a second object never changes it ─────────────────────────────────────────

# name -> (uid of the path, extension, clip)
SECOND_OBJECTS = {
    "member_speech_under_senders_id": (JOON_UID, "m4a", "joon"),
    "member_junk_under_senders_id": (JOON_UID, "m4a", "junk"),
    "sender_other_extension": (MINA_UID, "mp4", "joon"),
    "sender_upper_case_extension": (MINA_UID, "M4A", "joon"),
    "sender_same_name_again": (MINA_UID, "m4a", "junk"),
}


@pytest.mark.parametrize("second", list(SECOND_OBJECTS.values()), ids=list(SECOND_OBJECTS))
def test_second_object_never_changes_a_finished_message(
    second: tuple[str, str, str], app: AppClient, joon: AppClient, clips: dict[str, bytes], db
) -> None:
    sent = app.send_voice_message(SEED_CHAT, clips["mina"], language="en")
    first = app.wait_for_message(SEED_CHAT, sent.message_id, timeout_s=WAIT_S).doc
    assert first["status"] == "ready", first.get("error")
    ref = db.document(app.message_path(SEED_CHAT, sent.message_id))
    before = ref.get()
    calls_before = STT.request_count(), STRESS.request_count()

    uid, ext, clip = second
    name = voice_path(uid, SEED_CHAT, sent.message_id, ext)
    generation = upload_past_the_rules(joon if uid == JOON_UID else app, name, clips[clip])
    outcome_log_entry(name, generation, timeout_s=WAIT_S)  # the function has decided about it

    after = ref.get()
    assert after.update_time == before.update_time, after.to_dict()  # not written at all
    assert after.to_dict()["audio"]["path"] == sent.path and after.to_dict()["senderId"] == MINA_UID
    assert (STT.request_count(), STRESS.request_count()) == calls_before  # no paid call


# ── A message still processing: a second object does not take it over ───────────────────────────


def test_member_junk_while_processing_does_not_take_the_message(
    app: AppClient, joon: AppClient, clips: dict[str, bytes], db
) -> None:
    # Speech-to-text answers after 4 s (below the local STT_TIMEOUT_S): Mina's message stays
    # processing while Joon's object arrives.
    STT.script([{"delay_s": 4}])
    sent = app.send_voice_message(SEED_CHAT, clips["mina"], language="en")
    ref = db.document(app.message_path(SEED_CHAT, sent.message_id))
    deadline = time.monotonic() + WAIT_S
    while not (ref.get().exists and ref.get().get("status") == "processing"):
        assert time.monotonic() < deadline, "Mina's message never showed as processing"
        time.sleep(0.1)

    name = voice_path(JOON_UID, SEED_CHAT, sent.message_id, "m4a")
    generation = upload_past_the_rules(joon, name, clips["junk"])
    outcome_log_entry(name, generation, timeout_s=WAIT_S)

    wait = app.wait_for_message(SEED_CHAT, sent.message_id, timeout_s=WAIT_S)
    assert [status for status, _ in wait.statuses if status in FINAL_STATUSES] == ["ready"]
    doc = wait.doc
    assert doc["senderId"] == MINA_UID and doc["audio"]["path"] == sent.path
    assert "garden" in doc["text"].lower() and doc["error"] is None


# ── Extensions are lowercase ──────────────────────────────────────────────────────────────────────


def test_upper_case_extension_is_rejected_visibly(app: AppClient, clips: dict[str, bytes]) -> None:
    """A fresh message id under `.M4A`: a message exists to show why, so it is rejected, not ignored."""
    sent = past_the_rules(
        lambda admin: app.send_voice_message(SEED_CHAT, clips["mina"], ext="M4A", admin=admin)
    )
    doc = app.wait_for_message(SEED_CHAT, sent.message_id, timeout_s=WAIT_S).doc
    assert doc["status"] == "rejected" and doc["error"]["code"] == "unsupported_extension", doc
    assert doc["text"] is None and doc["stress"] is None
