"""storage.rules, cell by cell: identity × operation × path → allow or deny, on the Storage emulator.

Same style as test_firestore_rules.py: Auth-emulator users, the Firebase Storage REST API the SDKs
use (`Authorization: Firebase <ID token>`; anonymous = no header), a chat seeded in Firestore with
the Admin client (the rules read it through cross-service `firestore.get`), and a voice object
seeded with the emulator's admin credential (which bypasses rules).

The Storage emulator enforces storage.rules with a real Firebase rules engine: firebase-tools' own
runtime where it is cached, else the local stack's runtime on the engine of the Debian
firestore-emulator jar (local_stack/storage_rules_runtime). Only where neither exists does the stack
run a permit-all stand-in (EMOCHAT_STORAGE_RULES_ENFORCED=0, with a loud warning); the matrix then
reports itself skipped, with the reason. Detection, both ways:
- the stack's `EMOCHAT_STORAGE_RULES_ENFORCED` (0 or 1, from local_stack/stack.py), and
- a probe: an anonymous upload outside voice/ that the rules must deny.
test_enforcement_detection_is_consistent fails if the two disagree (e.g. a runtime that claims to
enforce but permits everything), so a broken runtime cannot make the matrix silently skip.

test_broken_rule_flips_a_cell loads deliberately broken copies of storage.rules into the running
emulator (its /internal/setRules, as @firebase/rules-unit-testing does) and shows that the matrix
catches each one; the real rules are loaded back afterwards.

Identities: `owner` uploads the seeded voice message and is a member of the seeded chat, `member`
is the other member, `non_member` is signed in and in no chat, `anonymous` is not signed in.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx
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
    sign_up,
    unique_id,
)

pytestmark = pytest.mark.stack

MIB = 1024 * 1024
REPO = Path(__file__).resolve().parents[2]
AUDIO = b"\x00\x00\x00\x18ftypM4A \x00\x00\x02\x00M4A isomiso2" + b"\x00" * 512


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
            "(EMOCHAT_STORAGE_RULES_ENFORCED=0: neither firebase-tools' cached runtime nor the Firebase "
            "rules engine of google-cloud-cli-firestore-emulator is on this machine)"
            if self.declared == "0"
            else "the Storage emulator accepted an anonymous upload that storage.rules must deny"
        )
        return f"storage rules are not enforced here: {why}; the matrix needs the real rules runtime"


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
    seeded: str  # an existing voice object uploaded by the owner, with its message

    @property
    def seeded_message_id(self) -> str:
        return self.seeded.rsplit("/", 1)[1].rsplit(".", 1)[0]

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
    message_id = seeded.rsplit("/", 1)[1].rsplit(".", 1)[0]
    db.document(f"chats/{chat_id}/messages/{message_id}").set(
        {"kind": "voice", "senderId": users[OWNER].uid, "status": "ready", "createdAt": datetime.now(UTC)}
    )
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
cell("upload_uppercase_ext", D, D, D, D)(_upload("M4A"))
# Another object for a message id that has a message: the caller's own folder, another extension.
cell("upload_for_existing_message", D, D, D, D)(
    lambda w, me: w.as_(me).upload(
        f"voice/{w.uid(me)}/{w.chat_id}/{w.seeded_message_id}.wav", AUDIO, "audio/mp4"
    )
)
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
# Listing the seeded chat's folder of the owner: evaluated at the folder's path, which no voice rule
# matches (the app never lists).
cell("list_chat_folder", D, D, D, D)(lambda w, me: w.as_(me).list(f"voice/{w.uid(OWNER)}/{w.chat_id}/"))

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


# ── a broken rule makes the matrix fail ─────────────────────────────────────────────────────────

# (what storage.rules says, a deliberately broken replacement, a cell of the matrix that must flip)
MUTANTS = {
    "upload_into_anyones_folder": (
        "&& request.auth.uid == uid\n",
        "\n",
        ("upload_into_owners_folder", MEMBER),
    ),
    "no_size_limit": ("request.resource.size <= 25 * 1024 * 1024", "true", ("upload_over_25_mib", OWNER)),
    "overwrite_allowed": (
        "allow update, delete: if false;",
        "allow update: if true;",
        ("overwrite_existing", OWNER),
    ),
    "existing_message_ignored": (
        "&& isNewMessage(chatId, fileName)\n",
        "\n",
        ("upload_for_existing_message", MEMBER),
    ),
    "members_check_dropped": (
        "&& isChatMember(chatId);",
        "&& request.auth != null;",
        ("upload_own_folder", OUTSIDER),
    ),
}


def set_storage_rules(rest: EmulatorRest, source: str) -> httpx.Response:
    return rest.http.put(
        f"{rest.storage_url}/internal/setRules",
        json={"rules": {"files": [{"name": "storage.rules", "content": source}]}},
    )


@pytest.fixture
def scratch_rules(rest) -> Iterator[Callable[[str], httpx.Response]]:
    """Loads a scratch copy of the rules into the emulator; storage.rules is loaded back after."""
    yield lambda source: set_storage_rules(rest, source)
    restored = set_storage_rules(rest, (REPO / "storage.rules").read_text())
    assert restored.status_code == 200, restored.text


@pytest.mark.parametrize("mutant", list(MUTANTS))
def test_broken_rule_flips_a_cell(world: World, scratch_rules, mutant: str) -> None:
    """The named cell is run under the real rules, then under the broken copy: it must now disagree
    with the matrix."""
    original, broken, (operation, identity) = MUTANTS[mutant]
    source = (REPO / "storage.rules").read_text()
    assert source.count(original) == 1, f"{mutant}: storage.rules no longer says {original!r}"
    assert OPS[operation](world, identity) == EXPECTED[operation][identity]  # the real rules hold it
    loaded = scratch_rules(source.replace(original, broken))
    assert loaded.status_code == 200, loaded.text
    assert OPS[operation](world, identity) != EXPECTED[operation][identity]


def test_ruleset_that_does_not_compile_is_refused_and_denies_all(world: World, scratch_rules) -> None:
    """A compile error comes back to the caller (firebase-tools logs it as "<description> in
    storage.rules:<line>"); the emulator is then left without a ruleset and denies every request,
    even those storage.rules allows: fail closed."""
    source = (REPO / "storage.rules").read_text().replace("allow create: if", "allow create: if &&", 1)
    assert scratch_rules(source).status_code == 400
    assert OPS["upload_own_folder"](world, MEMBER) == DENY
    assert OPS["get_metadata"](world, OWNER) == DENY
