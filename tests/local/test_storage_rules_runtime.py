"""The Storage rules runtime of the local stack (local_stack/storage_rules_runtime/), at its protocol.

It is started and spoken to exactly as firebase-tools' Storage emulator does (storage_rules_protocol
.py), without the emulators: compile issues, allow and deny on storage.rules, the firestore.get/
exists round trip through the "emulator", and fail-closed answers to anything malformed.

The protocol matrix below is the stack's storage access matrix (tests/integration/
test_storage_rules.py) at this level. Where firebase-tools' own cached runtime exists (a machine that
was online once; not these machines), test_official_runtime_gives_the_same_answers runs the same
matrix through both runtimes and requires the same answer in every cell; here it is skipped, with
the reason.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from storage_rules_protocol import RulesRuntime, stored_object

from local_stack import java as javamod

REPO = Path(__file__).resolve().parents[2]
STORAGE_RULES = (REPO / "storage.rules").read_text()
MIB = 1024 * 1024

OWNER, MEMBER, OUTSIDER = "owner-uid", "member-uid", "outsider-uid"
IDENTITIES = {"anonymous": None, "owner": OWNER, "member": MEMBER, "non_member": OUTSIDER}
CHAT = "chat-1"
CHAT_DOC = f"/databases/(default)/documents/chats/{CHAT}"
# The message the voice() objects are for (isNewMessage: no object for an id whose message exists).
MESSAGE_DOC = f"{CHAT_DOC}/messages/msg0123456789abcdefgh"
DOCUMENTS = {CHAT_DOC: {"members": [OWNER, MEMBER], "title": "a chat"}}


@pytest.fixture(scope="session")
def java() -> Path:
    return javamod.find_java().executable


@pytest.fixture(scope="session")
def engine_jar() -> Path:
    engine = javamod.debian_firestore_jar()
    if engine is None:
        pytest.skip(
            f"the Firebase rules engine ({javamod.DEBIAN_FIRESTORE_PACKAGE}) is not installed: "
            "there is no engine-backed runtime to test (the stack falls back to its permit-all stand-in)"
        )
    return javamod.storage_rules_engine_jar(engine)


@pytest.fixture(scope="module")
def runtime(java: Path, engine_jar: Path) -> Iterator[RulesRuntime]:
    with RulesRuntime(java, engine_jar) as running:
        yield running


@pytest.fixture(scope="module")
def storage_rules(runtime: RulesRuntime) -> str:
    ruleset, reply = runtime.load(STORAGE_RULES)
    assert reply["errors"] == [], reply
    return ruleset


# ── compile ─────────────────────────────────────────────────────────────────────────────────────


def test_storage_rules_compile_without_any_issue(runtime: RulesRuntime) -> None:
    """The engine's compiler, with cross-service rules: storage.rules has no error and no warning
    (an unknown function or method would be a warning here, and a deny at evaluation)."""
    _, reply = runtime.load(STORAGE_RULES)
    assert reply == {
        "id": reply["id"],
        "status": "ok",
        "errors": [],
        "warnings": [],
        "result": {"rulesVersion": 2},
    }


def test_compile_error_is_reported_as_firebase_tools_prints_it(runtime: RulesRuntime) -> None:
    """firebase-tools parses each error as JSON and logs "<description_> in <fileName_>:<line_>"
    (storage/rules/manager.js); a ruleset with errors is not loaded, so requests against it are
    denied."""
    broken = STORAGE_RULES.replace(
        "allow read: if isChatMember(chatId);", "allow read: if isChatMember(chatId) &&;"
    )
    assert broken != STORAGE_RULES
    broken_line = next(
        i for i, line in enumerate(broken.splitlines(), 1) if "allow read: if isChatMember" in line
    )
    ruleset, reply = runtime.load(broken, name="broken.rules")
    assert reply["status"] == "ok" and "result" not in reply
    issues = [json.loads(error) for error in reply["errors"]]
    assert issues and all(issue["sourcePosition_"]["fileName_"] == "broken.rules" for issue in issues)
    assert all(issue["description_"] for issue in issues)
    assert {issue["sourcePosition_"]["line_"] for issue in issues} & {broken_line, broken_line + 1}
    verdict = runtime.verify(ruleset, "get", f"voice/{OWNER}/{CHAT}/m.m4a", uid=OWNER, documents=DOCUMENTS)
    assert verdict.permit is None and verdict.reply["errors"]


# ── the protocol matrix ─────────────────────────────────────────────────────────────────────────


@dataclass(frozen=True)
class Call:
    method: str
    object_name: str
    after: dict[str, Any] | None = None
    before: dict[str, Any] | None = None


def voice(uid: str, ext: str = "m4a", chat: str = CHAT) -> str:
    return f"voice/{uid}/{chat}/msg0123456789abcdefgh.{ext}"


def audio(name: str, size: int = 4096, content_type: str = "audio/mp4", **metadata: str) -> dict[str, Any]:
    return stored_object(name, size=size, content_type=content_type, metadata=metadata)


def upload(ext: str = "m4a", chat: str = CHAT, **kwargs: Any) -> Callable[[str], Call]:
    """A new object in the caller's own folder."""
    return lambda me: Call("create", voice(me, ext, chat), after=audio(voice(me, ext, chat), **kwargs))


def on_seeded(method: str, **after: Any) -> Callable[[str], Call]:
    """A request on the owner's existing voice object."""
    seeded = voice(OWNER)
    return lambda me: Call(
        method, seeded, before=audio(seeded), after={**audio(seeded), **after} if after else None
    )


def at(name: str) -> Callable[[str], Call]:
    return lambda me: Call("create", name.format(me=me), after=audio(name.format(me=me)))


A, D = True, False
# operation -> (call for the caller's uid, expected for anonymous, owner, member, non_member)
MATRIX: dict[str, tuple[Callable[[str], Call], tuple[bool, bool, bool, bool]]] = {
    "upload_own_folder": (upload(), (D, A, A, D)),
    "upload_into_owners_folder": (lambda me: upload()(OWNER), (D, A, D, D)),
    "upload_video_mp4": (upload("mp4", content_type="video/mp4"), (D, A, A, D)),
    "upload_webm_opus_codecs": (upload("webm", content_type="audio/webm;codecs=opus"), (D, A, A, D)),
    "upload_uppercase_ext": (upload("M4A"), (D, D, D, D)),
    "upload_with_language": (upload(language="ko"), (D, A, A, D)),
    "upload_bad_language": (upload(language="<script>"), (D, D, D, D)),
    "upload_text_plain": (upload(content_type="text/plain"), (D, D, D, D)),
    "upload_html": (upload(content_type="text/html"), (D, D, D, D)),
    "upload_bad_extension": (upload("exe"), (D, D, D, D)),
    "upload_empty": (upload(size=0), (D, D, D, D)),
    "upload_exactly_25_mib": (upload(size=25 * MIB), (D, A, A, D)),
    "upload_over_25_mib": (upload(size=25 * MIB + 1), (D, D, D, D)),
    "upload_missing_chat": (upload(chat="no-such-chat"), (D, D, D, D)),
    "upload_nested_path": (at(f"voice/{{me}}/{CHAT}/extra/m.m4a"), (D, D, D, D)),
    "upload_shallow_path": (at("voice/{me}/m.m4a"), (D, D, D, D)),
    "upload_outside_voice": (at("uploads/{me}/m.m4a"), (D, D, D, D)),
    "overwrite_existing": (
        lambda me: Call("create", voice(OWNER), after=audio(voice(OWNER)), before=audio(voice(OWNER))),
        (D, D, D, D),
    ),
    "get": (on_seeded("get"), (D, A, A, D)),
    "list_chat_folder": (lambda me: Call("list", f"voice/{OWNER}/{CHAT}"), (D, D, D, D)),
    "update_metadata": (on_seeded("update", contentType="text/html"), (D, D, D, D)),
    "delete": (on_seeded("delete"), (D, D, D, D)),
}
CELLS = [
    pytest.param(operation, who, expected[i], id=f"{operation}-{who}")
    for operation, (_, expected) in MATRIX.items()
    for i, who in enumerate(IDENTITIES)
]


def ask(runtime: RulesRuntime, ruleset: str, operation: str, who: str) -> bool | None:
    uid = IDENTITIES[who]
    call = MATRIX[operation][0](uid or OWNER)  # anonymous aims at the owner's folder
    verdict = runtime.verify(
        ruleset,
        call.method,
        call.object_name,
        uid=uid,
        after=call.after,
        before=call.before,
        documents=DOCUMENTS,
    )
    return verdict.permit


@pytest.mark.parametrize(("operation", "identity", "expected"), CELLS)
def test_protocol_matrix(
    runtime: RulesRuntime, storage_rules: str, operation: str, identity: str, expected: bool
) -> None:
    assert ask(runtime, storage_rules, operation, identity) is expected


def test_official_runtime_gives_the_same_answers(
    java: Path, runtime: RulesRuntime, storage_rules: str
) -> None:
    """The differential check: firebase-tools' own runtime and ours, cell by cell, on storage.rules."""
    official = javamod.cached_emulator_path("storage")
    if official is None:
        pytest.skip(
            "firebase-tools has no cached Cloud Storage rules runtime on this machine (it is downloaded "
            "on first use online; never offline), so there is nothing to compare ours with"
        )
    ours = {(op, who): bool(ask(runtime, storage_rules, op, who)) for op in MATRIX for who in IDENTITIES}
    with RulesRuntime(java, official) as theirs:
        ruleset, reply = theirs.load(STORAGE_RULES)
        assert reply["errors"] == [], reply
        official_answers = {
            (op, who): bool(ask(theirs, ruleset, op, who)) for op in MATRIX for who in IDENTITIES
        }
    assert {cell: v for cell, v in ours.items() if official_answers[cell] != v} == {}


# ── firestore.get / exists through the emulator ─────────────────────────────────────────────────


def test_firestore_reads_go_through_the_emulator(runtime: RulesRuntime, storage_rules: str) -> None:
    call = upload()(MEMBER)
    member = runtime.verify(
        storage_rules, "create", call.object_name, uid=MEMBER, after=call.after, documents=DOCUMENTS
    )
    # isNewMessage: firestore.exists of the message; isChatMember: exists, then get, of the chat.
    assert member.permit is True and member.fetched == [MESSAGE_DOC, CHAT_DOC, CHAT_DOC]

    others = {CHAT_DOC: {"members": [OWNER]}}
    not_member = runtime.verify(
        storage_rules, "create", call.object_name, uid=MEMBER, after=call.after, documents=others
    )
    assert not_member.permit is False and not_member.fetched == [MESSAGE_DOC, CHAT_DOC, CHAT_DOC]

    missing = runtime.verify(
        storage_rules, "create", call.object_name, uid=MEMBER, after=call.after, documents={}
    )
    assert missing.permit is False and missing.fetched == [MESSAGE_DOC, CHAT_DOC]  # no chat: no get()

    taken = runtime.verify(
        storage_rules,
        "create",
        call.object_name,
        uid=MEMBER,
        after=call.after,
        documents={**DOCUMENTS, MESSAGE_DOC: {"senderId": OWNER, "status": "ready"}},
    )
    assert taken.permit is False and taken.fetched == [MESSAGE_DOC]  # its message exists: refused


def test_firestore_read_failure_denies(runtime: RulesRuntime, storage_rules: str) -> None:
    """Neither ok nor not_found (e.g. the emulator's invalid_state): the evaluation fails, a deny."""
    call = upload()(OWNER)
    verdict = runtime.verify(
        storage_rules,
        "create",
        call.object_name,
        uid=OWNER,
        after=call.after,
        firestore_status="invalid_state",
    )
    assert verdict.permit is None and verdict.reply["errors"]


# ── request variables, as the engine sees them ──────────────────────────────────────────────────


def test_token_claims_and_resource_reach_the_rules(runtime: RulesRuntime) -> None:
    ruleset, reply = runtime.load(
        """rules_version = '2';
        service firebase.storage {
          match /b/{bucket}/o/{name=**} {
            allow get: if request.auth != null
              && request.auth.token.firebase.sign_in_provider == 'password'
              && request.auth.token.email == request.auth.uid + '@example.com'
              && resource.metadata.tag == 'x' && resource.size == 4096
              && bucket == 'demo-emochat.appspot.com';
          }
        }"""
    )
    assert reply["errors"] == [], reply
    seeded = voice(OWNER)
    assert runtime.verify(ruleset, "get", seeded, uid=MEMBER, before=audio(seeded, tag="x")).permit is True
    assert runtime.verify(ruleset, "get", seeded, uid=MEMBER, before=audio(seeded, tag="y")).permit is False
    assert runtime.verify(ruleset, "get", seeded, uid=None, before=audio(seeded, tag="x")).permit is False


def test_upload_onto_an_existing_object_is_an_update(runtime: RulesRuntime) -> None:
    """firebase-tools sends every upload as create, with the existing object as `resource`; the
    runtime evaluates it as update, as production does."""
    ruleset, reply = runtime.load(
        """rules_version = '2';
        service firebase.storage {
          match /b/{bucket}/o/{name=**} {
            allow create: if resource == null;
            allow update: if false;
          }
        }"""
    )
    assert reply["errors"] == [], reply
    name = voice(OWNER)
    assert runtime.verify(ruleset, "create", name, uid=OWNER, after=audio(name)).permit is True
    assert (
        runtime.verify(ruleset, "create", name, uid=OWNER, after=audio(name), before=audio(name)).permit
        is False
    )


# ── fail closed ─────────────────────────────────────────────────────────────────────────────────


def test_evaluation_error_denies_unless_another_allow_grants(runtime: RulesRuntime) -> None:
    """request.auth.uid on an anonymous request is an error: alone it is a deny (reported to the
    emulator as an error), but an allow that holds still grants, as in production."""
    head = "rules_version = '2'; service firebase.storage { match /b/{bucket}/o/{n=**} {"
    erroring = "allow get: if request.auth.uid == 'x';"
    name = voice(OWNER)
    answers = {}
    for extra in ("", "allow get: if true;"):
        ruleset, reply = runtime.load(f"{head} {erroring} {extra} }} }}")
        assert reply["errors"] == [], reply
        answers[extra] = runtime.verify(ruleset, "get", name, uid=None, before=audio(name))
    assert answers[""].permit is None and "Null value error" in answers[""].reply["errors"][0]
    assert answers["allow get: if true;"].permit is True


@pytest.mark.parametrize(
    "broken",
    [
        {"method": "write"},  # not a method the emulator sends
        {"service": "cloud.firestore"},
        {"rulesetName": "never-loaded"},
        {"path": "/b/bucket/o//double-slash"},
        {"variables": {"resource": {"null_value": None}}},  # no request
        {"variables": {"resource": {"null_value": None}, "request": {"string_value": "not a map"}}},
        {"variables": {"resource": {"no_such_kind": 1}, "request": {"map_value": {"fields": {}}}}},
    ],
    ids=[
        "unknown-method",
        "other-service",
        "unknown-ruleset",
        "empty-segment",
        "no-request",
        "request-not-map",
        "unknown-kind",
    ],
)
def test_malformed_verify_is_denied_with_an_error(
    runtime: RulesRuntime, storage_rules: str, broken: dict
) -> None:
    call = upload()(OWNER)
    context = {
        "rulesetName": storage_rules,
        "service": "firebase.storage",
        "path": f"/b/bucket/o/{call.object_name}",
        "method": "create",
        "variables": {"resource": {"null_value": None}, "request": {"map_value": {"fields": {}}}},
        **broken,
    }
    runtime.send({"action": "verify", "context": context, "id": 10_000})
    reply = runtime.receive()
    assert reply["id"] == 10_000 and reply["status"] == "ok", reply
    assert reply["errors"] and "result" not in reply


# ── which runtime the stack runs ────────────────────────────────────────────────────────────────


@pytest.mark.parametrize(
    ("user", "cached", "engine", "expected"),
    [
        ("/x/mine.jar", "/c/official.jar", "/e/engine.jar", ("/x/mine.jar", True)),
        (None, "/c/official.jar", "/e/engine.jar", (None, True)),  # firebase-tools' own, unchanged
        (None, None, "/e/engine.jar", ("engine", True)),
        (None, None, None, ("standin", False)),  # only without the engine: permit-all, said loudly
    ],
    ids=["environment", "firebase-tools-cache", "debian-engine", "stand-in"],
)
def test_runtime_selection(monkeypatch, user, cached, engine, expected) -> None:
    built = {"engine": javamod.BUILD_DIR / "engine.jar", "standin": javamod.BUILD_DIR / "standin.jar"}
    if user:
        monkeypatch.setenv("STORAGE_EMULATOR_BINARY_PATH", user)
    else:
        monkeypatch.delenv("STORAGE_EMULATOR_BINARY_PATH", raising=False)
    monkeypatch.setattr(javamod, "cached_emulator_path", lambda name: Path(cached) if cached else None)
    monkeypatch.setattr(javamod, "debian_firestore_jar", lambda: Path(engine) if engine else None)
    monkeypatch.setattr(javamod, "storage_rules_engine_jar", lambda jar: built["engine"])
    monkeypatch.setattr(javamod, "storage_rules_standin_jar", lambda: built["standin"])
    chosen = javamod.storage_rules_runtime()
    binary, enforced = expected
    assert chosen.binary == (str(built[binary]) if binary in built else binary)
    assert chosen.enforced is enforced
    assert ("PERMIT-ALL" in chosen.description) is (not enforced)
