"""The bad-input corpus, end to end: each bad upload goes through the Storage emulator as the app
would send it (AppClient), and the real process_voice_message trigger must end it as status
rejected with its own error.code, ignore it when the object is not a voice message, or (odd but
valid message ids) process it normally. A valid upload after the whole corpus must still be ready.

What is tested is the function's own guard: path, extension, content type, size, chat membership,
decodability, duration and silence. storage.rules are enforced on the stack and refuse many of these
uploads to the app already (the matrix in tests/integration/test_storage_rules.py); those are checked
to be refused, then uploaded with the emulator's owner credential (e2e_helpers.past_the_rules), so
that the guard behind the rules is still exercised.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from e2e_helpers import (
    JOON,
    MINA_UID,
    SEED_CHAT,
    deliver_finalize_event,
    espeak_m4a,
    past_the_rules,
    storage_object,
)
from google.cloud.firestore_v1.base_query import FieldFilter
from hostile_audio import HOSTILE

from local_stack.app_client import AppClient, auto_id, voice_path

pytestmark = pytest.mark.stack

WAIT_S = 180.0  # the first upload of a run also starts the Python worker
MINA_ONLY_CHAT = "chat-bad-inputs-mina-only"  # made by the module fixture; Joon is not a member
MISSING_CHAT = "chat-that-does-not-exist"
MAX_UPLOAD_BYTES = 25 * 1024 * 1024


def ffmpeg(args: list[str], out: Path) -> bytes:
    subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", *args, str(out)], check=True)
    return out.read_bytes()


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    """Every file of the corpus, made at test time (espeak-ng, ffmpeg)."""
    folder = tmp_path_factory.mktemp("bad-inputs")
    speech = espeak_m4a("Hello, a short voice note about the weather.", folder / "speech.m4a")
    aac = ["-ac", "1", "-ar", "16000", "-c:a", "aac"]
    made = {
        "speech": speech,
        "empty": b"",
        # ffmpeg writes the moov atom at the end (as most phone recorders do): half a file has no index.
        "truncated": speech[: len(speech) // 2],
        "text": b"definitely not audio, just a text file named like one\n" * 20,
        "png": ffmpeg(["-f", "lavfi", "-i", "color=c=red:s=32x32", "-frames:v", "1"], folder / "red.png"),
        # A real m4a head padded past the 25 MiB limit; the size check comes before any download.
        "oversize": speech + bytes(MAX_UPLOAD_BYTES + 1024 - len(speech)),
        # 130 s of tone at 16 kbit/s: ~260 KB, well over MAX_AUDIO_SECONDS = 120.
        "long": ffmpeg(
            ["-f", "lavfi", "-i", "sine=frequency=220:duration=130", *aac, "-b:a", "16k"], folder / "long.m4a"
        ),
        "short": ffmpeg(
            ["-f", "lavfi", "-i", "sine=frequency=440:duration=0.15", *aac], folder / "short.m4a"
        ),
        "silence": ffmpeg(
            ["-f", "lavfi", "-i", "anullsrc=r=16000:cl=mono", "-t", "2", *aac, "-b:a", "16k"],
            folder / "silence.m4a",
        ),
    }
    assert made["png"].startswith(b"\x89PNG\r\n\x1a\n")
    assert len(made["oversize"]) > MAX_UPLOAD_BYTES
    return made


@pytest.fixture(scope="module")
def mina_only_chat() -> str:
    with AppClient() as admin:
        admin.set_doc(
            f"chats/{MINA_ONLY_CHAT}",
            {
                "members": [MINA_UID],
                "title": "Mina alone",
                "createdAt": {"$timestamp": "2026-01-05T09:00:00Z"},
            },
            admin=True,
        )
    return MINA_ONLY_CHAT


@pytest.fixture(scope="module")
def joon() -> AppClient:
    with AppClient(timeout_s=60.0) as client:
        client.sign_in(*JOON)
        yield client


# ── Rejections: each bad input gets its own error code ──────────────────────────────────────────


@dataclass(frozen=True)
class Bad:
    code: str  # the expected error.code
    media: str = "speech"
    ext: str = "m4a"
    content_type: str = "audio/mp4"
    chat: str = SEED_CHAT
    sender: str = "mina"
    refused_by_rules: bool = False  # storage.rules refuse it to the app: uploaded past them


REFUSED = {"refused_by_rules": True}
REJECTED = {
    "empty_file": Bad("empty_file", media="empty", **REFUSED),
    "truncated_m4a": Bad("undecodable_audio", media="truncated"),
    "text_named_m4a": Bad("undecodable_audio", media="text"),
    # FFmpeg recognises a PNG, as a format outside the allow-list (was undecodable_audio before the
    # allow-list: the decoder opened it with the image demuxer and found no audio track).
    "png_as_audio_mp4": Bad("unsupported_container", media="png"),
    "png_as_image_png": Bad("unsupported_content_type", media="png", content_type="image/png", **REFUSED),
    "audio_named_png": Bad("unsupported_extension", ext="png", **REFUSED),
    "audio_named_txt": Bad("unsupported_extension", ext="txt", content_type="audio/mpeg", **REFUSED),
    "oversize_25mib_plus": Bad("file_too_large", media="oversize", **REFUSED),
    "too_long_130s": Bad("audio_too_long", media="long"),
    "too_short_150ms": Bad("audio_too_short", media="short"),
    "silence_only": Bad("silent_audio", media="silence"),
    "chat_not_found": Bad("chat_not_found", chat=MISSING_CHAT, **REFUSED),
    "sender_not_member": Bad("not_a_member", chat=MINA_ONLY_CHAT, sender="joon", **REFUSED),
}


@pytest.mark.parametrize("case", list(REJECTED.values()), ids=list(REJECTED))
def test_bad_input_is_rejected_with_its_code(
    case: Bad, app: AppClient, joon: AppClient, media: dict[str, bytes], mina_only_chat: str
) -> None:
    sender = joon if case.sender == "joon" else app
    data = media[case.media]

    def send(admin: bool):
        return sender.send_voice_message(
            case.chat, data, ext=case.ext, content_type=case.content_type, admin=admin
        )

    sent = past_the_rules(send) if case.refused_by_rules else send(False)
    # Admin reads: the rules keep a non-member (or anyone, for a missing chat) from reading the result.
    doc = sender.wait_for_message(case.chat, sent.message_id, timeout_s=WAIT_S, admin=True).doc
    assert doc["status"] == "rejected", doc
    assert doc["error"]["code"] == case.code and doc["error"]["message"], doc["error"]
    assert doc["text"] is None and doc["stress"] is None
    assert doc["senderId"] == sender.session.uid and doc["kind"] == "voice"
    audio = doc["audio"]
    assert audio["path"] == sent.path and audio["sizeBytes"] == len(data)
    assert audio["contentType"] == case.content_type
    if case.code in {"audio_too_long", "audio_too_short", "silent_audio"}:
        assert audio["durationMs"] > 0  # it was decoded: the duration is known and kept
    assert doc["timings"]["totalMs"] >= 0 and "sttMs" not in doc["timings"]  # no paid call was made


# ── Hostile audio: refused by the decoder with its code, while a normal message beside it is ready ──


def test_hostile_audio_is_rejected_while_a_normal_message_beside_it_is_ready(
    app: AppClient, media: dict[str, bytes]
) -> None:
    """The whole hostile corpus (tests/hostile_audio.py) and one normal message, all in flight at
    once: each hostile upload ends rejected with its code, the normal one ends ready."""
    sent = {
        name: app.send_voice_message(SEED_CHAT, case.make(), ext="webm", content_type="audio/webm")
        for name, case in HOSTILE.items()
    }
    normal = app.send_voice_message(SEED_CHAT, media["speech"], language="en")
    for name, message in sent.items():
        doc = app.wait_for_message(SEED_CHAT, message.message_id, timeout_s=WAIT_S).doc
        assert doc["status"] == "rejected", (name, doc)
        assert doc["error"]["code"] == HOSTILE[name].code and doc["error"]["message"], (name, doc["error"])
        assert doc["text"] is None and doc["stress"] is None and "sttMs" not in doc["timings"]
    doc = app.wait_for_message(SEED_CHAT, normal.message_id, timeout_s=WAIT_S).doc
    assert doc["status"] == "ready", doc.get("error")
    assert "weather" in doc["text"].lower() and doc["stress"] is not None


# ── Not voice messages: ignored, no message document ──────────────────────────────────────────────

IGNORED: dict[str, Callable[[str], tuple[str, str, str, bool]]] = {
    # name -> message id -> (object name, content type, media, refused to the app by storage.rules)
    "voice_without_chat": lambda mid: (f"voice/{MINA_UID}/{mid}.m4a", "audio/mp4", "speech", True),
    "voice_too_deep": lambda mid: (
        f"voice/{MINA_UID}/{SEED_CHAT}/extra/{mid}.m4a",
        "audio/mp4",
        "speech",
        True,
    ),
    # A valid file name to the rules (they do not know Firestore's reserved ids): the app can send it.
    "reserved_doc_id": lambda mid: (
        f"voice/{MINA_UID}/{SEED_CHAT}/__{mid}__.m4a",
        "audio/mp4",
        "speech",
        False,
    ),
    "avatar_png": lambda mid: (f"avatars/{MINA_UID}/{mid}.png", "image/png", "png", True),
}
ignored_names: list[str] = []  # re-checked after the whole corpus, in the last test


def message_docs_for(db, object_name: str) -> list[str]:
    """Every message document (any chat) that stands for this object: none for an ignored one."""
    query = db.collection_group("messages").where(filter=FieldFilter("audio.path", "==", object_name))
    return [snapshot.reference.path for snapshot in query.stream()]


@pytest.mark.parametrize("make", list(IGNORED.values()), ids=list(IGNORED))
def test_object_outside_voice_pattern_is_ignored(
    make: Callable[[str], tuple[str, str, str, bool]], app: AppClient, media: dict[str, bytes], db
) -> None:
    name, content_type, kind, refused_by_rules = make(auto_id())

    def upload(admin: bool) -> dict:
        return app.upload(name, media[kind], content_type=content_type, admin=admin)

    past_the_rules(upload) if refused_by_rules else upload(False)
    ignored_names.append(name)
    # Deterministic: deliver the same finalize event again, synchronously. The Functions emulator
    # answers only when the function has returned, so by then it has decided about this object.
    response = deliver_finalize_event(storage_object(name))
    assert response.status_code < 300, response.text
    assert message_docs_for(db, name) == []


# ── Odd but valid message ids: processed normally ─────────────────────────────────────────────────
# storage.rules accept only [A-Za-z0-9_-]{1,64} as a message id from the app (client auto-ids); the
# function itself accepts any id Firestore does. These names reach it past the rules.

ODD_IDS = {
    "spaces": "voice memo from the bus",
    "korean": "음성메시지-안녕하세요",
    "emoji": "hi-🎤-😀-note",
    "punctuation": "it's (really) #1 + ok, 100%",
    "very_long": "m",  # stretched to the longest id whose object name fits, see odd_message_id
}


def odd_message_id(kind: str) -> str:
    """The kind's id plus a unique tail; Cloud Storage caps object names at 1024 bytes (Firestore
    ids at 1500), so the very long one fills the object name to exactly 1024."""
    tail = f" {auto_id()[:6]}"
    if kind != "very_long":
        return ODD_IDS[kind] + tail
    room = 1024 - len(voice_path(MINA_UID, SEED_CHAT, "").encode()) - len(tail)
    return "m" * room + tail


@pytest.mark.parametrize("kind", list(ODD_IDS))
def test_odd_message_id_is_processed(kind: str, app: AppClient, media: dict[str, bytes]) -> None:
    message_id = odd_message_id(kind)
    sent = past_the_rules(
        lambda admin: app.send_voice_message(
            SEED_CHAT, media["speech"], message_id=message_id, language="en", admin=admin
        )
    )
    assert len(sent.path.encode()) <= 1024
    doc = app.wait_for_message(SEED_CHAT, message_id, timeout_s=WAIT_S).doc
    assert doc["status"] == "ready", doc.get("error")
    assert doc["audio"]["path"] == voice_path(MINA_UID, SEED_CHAT, message_id)
    assert "weather" in doc["text"].lower() and doc["stress"] is not None


# ── After all of it ───────────────────────────────────────────────────────────────────────────────


def test_valid_upload_after_the_corpus_is_ready(app: AppClient, media: dict[str, bytes], db) -> None:
    """Runs last (file order): nothing in the corpus wedged the function or the stand-ins."""
    started = time.monotonic()
    sent = app.send_voice_message(SEED_CHAT, media["speech"], language="en")
    doc = app.wait_for_message(SEED_CHAT, sent.message_id, timeout_s=WAIT_S).doc
    assert doc["status"] == "ready", doc.get("error")
    assert doc["text"] and doc["stress"]["level"] in {"low", "moderate", "high"}
    assert time.monotonic() - started < 60
    # The ignored objects' own (asynchronous) finalize events were delivered long before this one.
    for name in ignored_names:
        assert message_docs_for(db, name) == [], name
