"""storage.rules, cell by cell: identity × operation × path → allow or deny, on the Storage emulator.

Same style as test_firestore_rules.py: Auth-emulator users, the Firebase Storage REST API the SDKs
use (`Authorization: Firebase <ID token>`; anonymous = no header), a chat seeded in Firestore with
the Admin client (the rules read it through cross-service `firestore.get`), and a voice object
seeded with the emulator's admin credential (which bypasses rules).

The matrix runs only where the Storage emulator enforces rules. Offline, the local stack runs it
with a permit-all stand-in for the rules runtime, and the matrix is reported as skipped, with the
reason. Detection, both ways:
- the stack's `EMOCHAT_STORAGE_RULES_ENFORCED` (0 or 1, from local_stack/stack.py), and
- a probe: an anonymous upload outside voice/ that the rules must deny. If it is accepted, the rules
  are not enforced, whatever the environment says.
test_enforcement_detection_is_consistent fails if the two disagree (e.g. a runtime that claims to
enforce but permits everything), so a broken runtime cannot make the matrix silently skip.

Wherever the matrix cannot run, test_rules_compile still compiles storage.rules with the Firestore
emulator's rules compiler (same language): syntax errors and unknown functions or methods fail it.

Identities: `owner` uploads the seeded voice message and is a member of the seeded chat, `member`
is the other member, `non_member` is signed in and in no chat, `anonymous` is not signed in.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest

from local_stack.app_client import ADMIN_TOKEN, EmulatorRest  # ADMIN_TOKEN bypasses rules
from tests.integration.rules_helpers import (
    ALLOW,
    ANON,
    DENY,
    IDENTITIES,
    MEMBER,
    OUTSIDER,
    OWNER,
    StorageRest,
    User,
    compile_rules,
    sign_up,
    unique_id,
)

pytestmark = pytest.mark.stack

MIB = 1024 * 1024
REPO = Path(__file__).resolve().parents[2]
AUDIO = b"\x00\x00\x00\x18ftypM4A \x00\x00\x02\x00M4A isomiso2" + b"\x00" * 512


# ── compiles (runs everywhere: the one check of storage.rules the permit-all stand-in leaves) ──

# What the Firestore compiler cannot know about the Storage service: the `firestore` namespace of
# cross-service calls (`firestore.get(path)` looks to it like Firestore's one-argument `get`).
STORAGE_ONLY = {
    "Invalid variable name: firestore.",
    "Invalid function name: exists.",
    "Incorrect number of arguments supplied to function: get.",
}


def test_rules_compile(rest) -> None:
    """storage.rules parses, and every name it uses is known to the rules language except the
    cross-service `firestore.*` calls: a typo in a function or method name shows up here even where
    the Storage emulator cannot evaluate the rules."""
    source = (REPO / "storage.rules").read_text()
    lines = source.splitlines()
    issues = compile_rules(rest, "storage.rules", source)
    unexpected = [
        issue
        for issue in issues
        if issue.description not in STORAGE_ONLY or "firestore." not in lines[issue.line - 1]
    ]
    assert unexpected == []


# ── enforcement detection ───────────────────────────────────────────────────────────────────────


@dataclass(frozen=True)
class Enforcement:
    declared: str | None  # EMOCHAT_STORAGE_RULES_ENFORCED as the stack set it, None when unset
    probe_denied: bool

    @property
    def enforced(self) -> bool:
        return self.probe_denied

    def skip_reason(self) -> str:
        why = (
            "the local stack runs the Storage emulator with its permit-all rules stand-in "
            "(EMOCHAT_STORAGE_RULES_ENFORCED=0; the real rules runtime cannot be downloaded offline)"
            if self.declared == "0"
            else "the Storage emulator accepted an anonymous upload that storage.rules must deny"
        )
        return f"storage rules are not enforced here: {why}; the matrix needs the real rules runtime"


@pytest.fixture(scope="session")
def rest():
    with EmulatorRest(timeout_s=60) as client:
        yield client


@pytest.fixture(scope="session")
def enforcement(rest) -> Enforcement:
    name = f"rules-probe/{unique_id()}.txt"
    anonymous = StorageRest(rest, None)
    probe = anonymous.upload(name, b"probe", "text/plain")
    if probe == ALLOW:
        StorageRest(rest, ADMIN_TOKEN).delete(name)
    return Enforcement(declared=os.environ.get("EMOCHAT_STORAGE_RULES_ENFORCED"), probe_denied=probe == DENY)


def test_enforcement_detection_is_consistent(enforcement: Enforcement) -> None:
    if enforcement.declared is None:
        pytest.skip("EMOCHAT_STORAGE_RULES_ENFORCED unset (not the local stack): the probe alone decides")
    assert enforcement.declared in {"0", "1"}
    assert enforcement.probe_denied == (enforcement.declared == "1"), (
        f"the stack declares EMOCHAT_STORAGE_RULES_ENFORCED={enforcement.declared} but the probe "
        f"upload was {'denied' if enforcement.probe_denied else 'allowed'}"
    )


# ── the world the matrix acts on ────────────────────────────────────────────────────────────────


@dataclass
class World:
    users: dict[str, User]
    clients: dict[str, StorageRest]
    admin: StorageRest
    chat_id: str
    seeded: str  # an existing voice object uploaded by the owner

    def as_(self, identity: str) -> StorageRest:
        return self.clients[identity]

    def uid(self, identity: str) -> str:
        user = self.users.get(identity)
        return user.uid if user else self.users[OWNER].uid  # anonymous targets the owner's folder

    def voice(self, identity: str, ext: str = "m4a", chat_id: str | None = None) -> str:
        return f"voice/{self.uid(identity)}/{chat_id or self.chat_id}/{unique_id()}.{ext}"


@pytest.fixture(scope="session")
def world(rest, db, enforcement: Enforcement) -> World:
    if not enforcement.enforced:
        pytest.skip(enforcement.skip_reason())
    run = unique_id("srules-")[:16]
    users = {who: sign_up(rest, f"{run}-{who}@example.com") for who in (OWNER, MEMBER, OUTSIDER)}
    clients = {ANON: StorageRest(rest, None)}
    clients.update({who: StorageRest(rest, user.id_token) for who, user in users.items()})
    chat_id = unique_id(f"{run}-chat-")
    db.document(f"chats/{chat_id}").set(
        {"members": [users[OWNER].uid, users[MEMBER].uid], "createdAt": datetime.now(UTC)}
    )
    admin = StorageRest(rest, ADMIN_TOKEN)
    seeded = f"voice/{users[OWNER].uid}/{chat_id}/{unique_id()}.m4a"
    assert admin.upload(seeded, AUDIO, "audio/mp4") == ALLOW
    return World(users=users, clients=clients, admin=admin, chat_id=chat_id, seeded=seeded)


# ── the matrix ──────────────────────────────────────────────────────────────────────────────────

Op = Callable[[World, str], str]
OPS: dict[str, Op] = {}
EXPECTED: dict[str, dict[str, str]] = {}
A, D = ALLOW, DENY


def cell(operation: str, anonymous: str, owner: str, member: str, non_member: str):
    def register(op: Op) -> Op:
        assert operation not in OPS, operation
        OPS[operation] = op
        EXPECTED[operation] = {ANON: anonymous, OWNER: owner, MEMBER: member, OUTSIDER: non_member}
        return op

    return register


def _upload(ext: str = "m4a", content_type: str = "audio/mp4", data: bytes = AUDIO, **kwargs) -> Op:
    """An upload into the caller's own folder of the seeded chat."""
    return lambda w, me: w.as_(me).upload(w.voice(me, ext), data, content_type, **kwargs)


# Uploads: voice/{uid}/{chatId}/{messageId}.{ext}
cell("upload_own_folder", D, A, A, D)(_upload())
cell("upload_into_owners_folder", D, A, D, D)(
    lambda w, me: w.as_(me).upload(w.voice(OWNER), AUDIO, "audio/mp4")
)
cell("upload_video_mp4", D, A, A, D)(_upload("mp4", "video/mp4"))
cell("upload_webm_opus_codecs", D, A, A, D)(_upload("webm", "audio/webm;codecs=opus"))
cell("upload_uppercase_ext", D, A, A, D)(_upload("M4A"))
cell("upload_each_allowed_ext", D, A, A, D)(
    lambda w, me: next(
        (
            result
            for ext in ("m4a", "mp4", "aac", "wav", "webm", "ogg", "opus", "mp3", "caf", "3gp")
            if (result := w.as_(me).upload(w.voice(me, ext), AUDIO, "audio/mp4")) != ALLOW
        ),
        ALLOW,
    )
)
cell("upload_with_language", D, A, A, D)(_upload(custom_metadata={"language": "ko"}))
cell("upload_bad_language", D, D, D, D)(_upload(custom_metadata={"language": "<script>"}))
cell("upload_text_plain", D, D, D, D)(_upload(content_type="text/plain"))
cell("upload_html", D, D, D, D)(_upload(content_type="text/html"))
cell("upload_video_webm", D, D, D, D)(_upload("webm", "video/webm"))
cell("upload_bad_extension", D, D, D, D)(_upload("exe"))
cell("upload_no_extension", D, D, D, D)(
    lambda w, me: w.as_(me).upload(w.voice(me).rsplit(".", 1)[0], AUDIO, "audio/mp4")
)
cell("upload_empty", D, D, D, D)(_upload(data=b""))
cell("upload_exactly_25_mib", D, A, A, D)(_upload(data=b"\x00" * (25 * MIB)))
cell("upload_over_25_mib", D, D, D, D)(_upload(data=b"\x00" * (25 * MIB + 1)))
cell("upload_missing_chat", D, D, D, D)(
    lambda w, me: w.as_(me).upload(w.voice(me, chat_id=unique_id("nochat-")), AUDIO, "audio/mp4")
)
cell("upload_nested_path", D, D, D, D)(
    lambda w, me: w.as_(me).upload(
        f"voice/{w.uid(me)}/{w.chat_id}/extra/{unique_id()}.m4a", AUDIO, "audio/mp4"
    )
)
cell("upload_shallow_path", D, D, D, D)(
    lambda w, me: w.as_(me).upload(f"voice/{w.uid(me)}/{unique_id()}.m4a", AUDIO, "audio/mp4")
)
cell("upload_outside_voice", D, D, D, D)(
    lambda w, me: w.as_(me).upload(f"uploads/{w.uid(me)}/{unique_id()}.m4a", AUDIO, "audio/mp4")
)
cell("overwrite_existing", D, D, D, D)(lambda w, me: w.as_(me).upload(w.seeded, AUDIO, "audio/mp4"))

# The seeded object: voice/{owner}/{chat}/{id}.m4a
cell("get_metadata", D, A, A, D)(lambda w, me: w.as_(me).get_metadata(w.seeded))
cell("download", D, A, A, D)(lambda w, me: w.as_(me).download(w.seeded))
cell("update_metadata", D, D, D, D)(
    lambda w, me: w.as_(me).update_metadata(w.seeded, {"contentType": "text/html"})
)
cell("delete", D, D, D, D)(lambda w, me: w.as_(me).delete(w.seeded))

CELLS = [
    pytest.param(operation, who, expected[who], id=f"voice-{operation}-{who}")
    for operation, expected in EXPECTED.items()
    for who in IDENTITIES
]


@pytest.mark.parametrize(("operation", "identity", "expected"), CELLS)
def test_access(world: World, operation: str, identity: str, expected: str) -> None:
    assert OPS[operation](world, identity) == expected


def test_seeded_object_survived_the_matrix(world: World) -> None:
    assert world.admin.get_metadata(world.seeded) == ALLOW
