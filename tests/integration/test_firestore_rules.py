"""firestore.rules, cell by cell: identity × operation × path → allow or deny, on the Firestore emulator.

Identities are real Auth-emulator users (ID tokens from the identitytoolkit REST API) talking to the
Firestore REST API as the app would, so the emulator evaluates the rules; `anonymous` sends no
Authorization header. The Admin client (google.cloud.firestore, which bypasses rules) only seeds
documents, under ids unique to the run.

The four identities, for every path:
- `anonymous`: not signed in;
- `owner`: the user whose users/{uid} tree is tested, the sender of the seeded message, and a
  member of the seeded chat;
- `member`: the other member of that chat (someone who shares a chat with the owner);
- `non_member`: signed in, shares nothing with the owner.

Writes that succeed act on fresh documents (or a reset profile), so no cell depends on another's
side effects. A denial must be a 403; any other error fails the cell instead of passing as "deny".
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from local_stack.app_client import EmulatorRest
from tests.integration.rules_helpers import (
    ALLOW,
    ANON,
    DENY,
    IDENTITIES,
    MEMBER,
    OUTSIDER,
    OWNER,
    REQUEST_TIME,
    FirestoreRest,
    User,
    array_contains,
    compile_rules,
    sign_up,
    token_claims,
    unique_id,
)

pytestmark = pytest.mark.stack

REPO = Path(__file__).resolve().parents[2]


# ── the world the matrix acts on ────────────────────────────────────────────────────────────────


@dataclass
class World:
    db: object  # google.cloud.firestore.Client (admin: bypasses rules)
    users: dict[str, User]
    clients: dict[str, FirestoreRest]
    run: str
    chat_id: str = ""
    message_id: str = ""
    device_id: str = ""
    notification_id: str = ""
    seeded_message: dict = field(default_factory=dict)

    def as_(self, identity: str) -> FirestoreRest:
        return self.clients[identity]

    def uid(self, identity: str) -> str | None:
        user = self.users.get(identity)
        return user.uid if user else None

    @property
    def owner(self) -> str:
        return self.users[OWNER].uid

    @property
    def member(self) -> str:
        return self.users[MEMBER].uid

    @property
    def outsider(self) -> str:
        return self.users[OUTSIDER].uid

    @property
    def chat(self) -> str:
        return f"chats/{self.chat_id}"

    @property
    def message(self) -> str:
        return f"chats/{self.chat_id}/messages/{self.message_id}"

    @property
    def user_doc(self) -> str:
        return f"users/{self.owner}"

    def seed(self, path: str, data: dict) -> str:
        self.db.document(path).set(data)
        return path

    def fresh_chat(self) -> str:
        return self.seed(
            f"chats/{unique_id(self.run + '-chat-')}",
            {"members": [self.owner, self.member], "createdAt": datetime.now(UTC), "title": "seed"},
        )

    def fresh_device(self) -> str:
        return self.seed(
            f"{self.user_doc}/devices/{unique_id('dev-')}",
            {"token": "fcm-seed-token", "platform": "ios", "updatedAt": datetime.now(UTC)},
        )

    def reset_profile(self) -> None:
        self.seed(self.user_doc, profile())


def profile() -> dict:
    return {"displayName": "Owner", "alertPrefs": {"enabled": True, "cooldownMinutes": 30}}


def voice_message(sender: str) -> dict:
    now = datetime.now(UTC)
    return {
        "kind": "voice",
        "senderId": sender,
        "createdAt": now,
        "status": "ready",
        "audio": {"path": f"voice/{sender}/c/m.m4a", "contentType": "audio/mp4", "sizeBytes": 1234},
        "text": "hello",
        "language": "en",
        "stress": {"score": 12.5, "level": "low", "probability": 0.125, "model": "studentnet"},
        "error": None,
        "timings": {"sttMs": 400, "stressMs": 120, "totalMs": 600},
    }


@pytest.fixture(scope="session")
def rest():
    with EmulatorRest(timeout_s=30) as client:
        yield client


@pytest.fixture(scope="session")
def world(rest, db) -> World:
    run = unique_id("rules-")[:16]
    users = {who: sign_up(rest, f"{run}-{who}@example.com") for who in (OWNER, MEMBER, OUTSIDER)}
    clients = {ANON: FirestoreRest(rest, None)}
    clients.update({who: FirestoreRest(rest, user.id_token) for who, user in users.items()})
    w = World(db=db, users=users, clients=clients, run=run)

    w.chat_id = w.fresh_chat().split("/")[1]
    w.message_id = unique_id()
    w.seeded_message = voice_message(w.owner)
    w.seed(w.message, w.seeded_message)
    w.reset_profile()
    w.device_id = w.fresh_device().rsplit("/", 1)[1]
    w.notification_id = unique_id("n-")
    w.seed(
        f"{w.user_doc}/notifications/{w.notification_id}",
        {"kind": "high_stress", "chatId": w.chat_id, "messageId": w.message_id, "sentAt": datetime.now(UTC)},
    )
    w.seed(f"{w.user_doc}/stats/baseline", {"mean": 21.0, "count": 12})
    w.seed(f"{w.user_doc}/stats/daily/days/2024-01-01", {"mean": 18.0, "count": 3})
    w.seed(f"{w.user_doc}/secrets/s1", {"x": 1})
    w.seed(f"admin/{run}", {"x": 1})
    # Backend-only documents of other features (alerting, recommendations): no client access.
    w.seed(f"{w.chat}/alertMarkers/{w.message_id}", {"alertedAt": datetime.now(UTC)})
    w.seed(f"catalog/{run}/suggestions/breathing", {"title": {"en": "Breathe"}})
    w.seed(f"{w.user_doc}/wellbeing/model", {"feedbackCount": 1})
    return w


# ── the matrix ──────────────────────────────────────────────────────────────────────────────────

Op = Callable[[World, str], str]
OPS: dict[tuple[str, str], Op] = {}
EXPECTED: dict[tuple[str, str], dict[str, str]] = {}


def cell(resource: str, operation: str, anonymous: str, owner: str, member: str, non_member: str):
    """Registers an operation with the outcome expected for each identity (a row of the matrix)."""

    def register(op: Op) -> Op:
        key = (resource, operation)
        assert key not in OPS, key
        OPS[key] = op
        EXPECTED[key] = {ANON: anonymous, OWNER: owner, MEMBER: member, OUTSIDER: non_member}
        return op

    return register


A, D = ALLOW, DENY


def others(w: World, me: str) -> list[str]:
    """Two uids that are not the caller's."""
    return [uid for uid in (w.owner, w.member, w.outsider) if uid != w.uid(me)][:2]


def me_and_one(w: World, me: str) -> list[str]:
    uid = w.uid(me)
    if uid is None:  # anonymous: nothing to put first, use real members
        return [w.owner, w.member]
    return [uid, w.member if uid != w.member else w.owner]


def new_chat(members: list, **extra) -> dict:
    return {"members": members, "createdAt": REQUEST_TIME, "title": "new chat", **extra}


# chats/{chatId}: members [owner, member]

cell("chat", "get", D, A, A, D)(lambda w, me: w.as_(me).get(w.chat))


@cell("chat", "query_my_chats", D, A, A, A)
def _(w: World, me: str) -> str:
    # `where members array-contains <me>`: the app's chat list. Anonymous asks for the owner's.
    return w.as_(me).query("", "chats", array_contains("members", w.uid(me) or w.owner))


cell("chat", "query_owners_chats", D, A, D, D)(
    lambda w, me: w.as_(me).query("", "chats", array_contains("members", w.owner))
)
cell("chat", "list_all", D, D, D, D)(lambda w, me: w.as_(me).query("", "chats"))
cell("chat", "create_with_self", D, A, A, A)(
    lambda w, me: w.as_(me).create(f"chats/{unique_id()}", new_chat(me_and_one(w, me)))
)
cell("chat", "create_notes_to_self", D, A, A, A)(
    lambda w, me: w.as_(me).create(f"chats/{unique_id()}", new_chat([w.uid(me) or w.owner]))
)
cell("chat", "create_without_self", D, D, D, D)(
    lambda w, me: w.as_(me).create(f"chats/{unique_id()}", new_chat(others(w, me)))
)
cell("chat", "create_duplicate_members", D, D, D, D)(
    lambda w, me: w.as_(me).create(f"chats/{unique_id()}", new_chat([w.uid(me) or w.owner] * 2))
)
cell("chat", "create_too_many_members", D, D, D, D)(
    lambda w, me: w.as_(me).create(
        f"chats/{unique_id()}", new_chat(me_and_one(w, me) + [f"u{i}" for i in range(49)])
    )
)
cell("chat", "create_members_not_list", D, D, D, D)(
    lambda w, me: w.as_(me).create(f"chats/{unique_id()}", new_chat(w.uid(me) or w.owner))
)
cell("chat", "create_extra_field", D, D, D, D)(
    lambda w, me: w.as_(me).create(f"chats/{unique_id()}", new_chat(me_and_one(w, me), admins=[w.uid(me)]))
)
cell("chat", "create_client_timestamp", D, D, D, D)(
    lambda w, me: w.as_(me).create(
        f"chats/{unique_id()}", {**new_chat(me_and_one(w, me)), "createdAt": datetime.now(UTC)}
    )
)
cell("chat", "create_title_too_long", D, D, D, D)(
    lambda w, me: w.as_(me).create(f"chats/{unique_id()}", new_chat(me_and_one(w, me), title="x" * 101))
)
cell("chat", "update_title", D, A, A, D)(lambda w, me: w.as_(me).update(w.fresh_chat(), {"title": "renamed"}))
cell("chat", "update_title_not_string", D, D, D, D)(
    lambda w, me: w.as_(me).update(w.fresh_chat(), {"title": 42})
)
cell("chat", "update_members_add_self_or_other", D, D, D, D)(
    lambda w, me: w.as_(me).update(w.fresh_chat(), {"members": [w.owner, w.member, w.outsider]})
)
cell("chat", "update_members_remove_other", D, D, D, D)(
    lambda w, me: w.as_(me).update(w.fresh_chat(), {"members": [w.uid(me) or w.owner]})
)
cell("chat", "update_created_at", D, D, D, D)(
    lambda w, me: w.as_(me).update(w.fresh_chat(), {"createdAt": datetime(2000, 1, 1, tzinfo=UTC)})
)
cell("chat", "delete", D, D, D, D)(lambda w, me: w.as_(me).delete(w.fresh_chat()))

# chats/{chatId}/messages/{messageId}: sent by owner; every write is the backend's

cell("message", "get", D, A, A, D)(lambda w, me: w.as_(me).get(w.message))
cell("message", "list", D, A, A, D)(lambda w, me: w.as_(me).list(f"{w.chat}/messages"))
cell("message", "query_in_chat", D, A, A, D)(lambda w, me: w.as_(me).query(w.chat, "messages"))


@cell("message", "create_voice_placeholder", D, D, D, D)
def _(w: World, me: str) -> str:
    data = {**voice_message(w.uid(me) or w.owner), "status": "processing", "text": None, "stress": None}
    return w.as_(me).create(f"{w.chat}/messages/{unique_id()}", {**data, "createdAt": REQUEST_TIME})


cell("message", "create_text", D, D, D, D)(
    lambda w, me: w.as_(me).create(
        f"{w.chat}/messages/{unique_id()}",
        {"kind": "text", "senderId": w.uid(me) or w.owner, "createdAt": REQUEST_TIME, "text": "hi"},
    )
)

BACKEND_OWNED = {
    "status": "failed",
    "text": "forged transcript",
    "stress": {"score": 99.0, "level": "high", "probability": 0.99, "model": "forged"},
    "timings": {"sttMs": 1, "stressMs": 1, "totalMs": 1},
    "error": {"code": "forged", "message": "forged"},
    "audio": {"path": "voice/x/y/z.m4a", "contentType": "audio/mp4", "sizeBytes": 1},
    "language": "xx",
    "senderId": "someone-else",
    "kind": "text",
    "createdAt": datetime(2000, 1, 1, tzinfo=UTC),
}
for _field, _value in BACKEND_OWNED.items():
    cell("message", f"update_{_field}", D, D, D, D)(
        lambda w, me, f=_field, v=_value: w.as_(me).update(w.message, {f: v})
    )
cell("message", "update_add_field", D, D, D, D)(lambda w, me: w.as_(me).update(w.message, {"reaction": "+1"}))
cell("message", "delete", D, D, D, D)(lambda w, me: w.as_(me).delete(w.message))

# users/{uid}: the owner's profile


def _on_profile(op: Callable[[World, str], str]) -> Op:
    def run(w: World, me: str) -> str:
        w.reset_profile()
        return op(w, me)

    return run


cell("profile", "get", D, A, D, D)(_on_profile(lambda w, me: w.as_(me).get(w.user_doc)))
cell("profile", "list_users", D, D, D, D)(lambda w, me: w.as_(me).query("", "users"))


@cell("profile", "create", D, A, D, D)
def _(w: World, me: str) -> str:
    w.db.document(w.user_doc).delete()
    return w.as_(me).create(w.user_doc, profile())


cell("profile", "update_display_name", D, A, D, D)(
    _on_profile(lambda w, me: w.as_(me).update(w.user_doc, {"displayName": "New name"}))
)
cell("profile", "update_alert_prefs", D, A, D, D)(
    _on_profile(
        lambda w, me: w.as_(me).update(w.user_doc, {"alertPrefs": {"enabled": False, "cooldownMinutes": 60}})
    )
)
cell("profile", "update_alert_prefs_not_bool", D, D, D, D)(
    _on_profile(lambda w, me: w.as_(me).update(w.user_doc, {"alertPrefs": {"enabled": "yes"}}))
)
cell("profile", "update_alert_prefs_negative_cooldown", D, D, D, D)(
    _on_profile(lambda w, me: w.as_(me).update(w.user_doc, {"alertPrefs": {"cooldownMinutes": -1}}))
)
cell("profile", "update_alert_prefs_extra_key", D, D, D, D)(
    _on_profile(lambda w, me: w.as_(me).update(w.user_doc, {"alertPrefs": {"enabled": True, "threshold": 0}}))
)
cell("profile", "update_alert_prefs_not_map", D, D, D, D)(
    _on_profile(lambda w, me: w.as_(me).update(w.user_doc, {"alertPrefs": True}))
)
cell("profile", "delete", D, A, D, D)(_on_profile(lambda w, me: w.as_(me).delete(w.user_doc)))

# users/{uid}/devices/{deviceId}: {token, platform, updatedAt}


def device(**overrides) -> dict:
    return {
        "token": "fcm-token-" + unique_id(),
        "platform": "android",
        "updatedAt": REQUEST_TIME,
        **overrides,
    }


def _new_device_path(w: World) -> str:
    return f"{w.user_doc}/devices/{unique_id('dev-')}"


cell("device", "get", D, A, D, D)(lambda w, me: w.as_(me).get(f"{w.user_doc}/devices/{w.device_id}"))
cell("device", "list", D, A, D, D)(lambda w, me: w.as_(me).list(f"{w.user_doc}/devices"))
cell("device", "create", D, A, D, D)(lambda w, me: w.as_(me).create(_new_device_path(w), device()))
cell("device", "create_web_client_clock", D, A, D, D)(
    lambda w, me: w.as_(me).create(_new_device_path(w), device(platform="web", updatedAt=datetime.now(UTC)))
)
cell("device", "create_future_updated_at", D, D, D, D)(
    lambda w, me: w.as_(me).create(
        _new_device_path(w), device(updatedAt=datetime.now(UTC) + timedelta(days=1))
    )
)
cell("device", "create_bad_platform", D, D, D, D)(
    lambda w, me: w.as_(me).create(_new_device_path(w), device(platform="symbian"))
)
cell("device", "create_missing_token", D, D, D, D)(
    lambda w, me: w.as_(me).create(_new_device_path(w), {"platform": "ios", "updatedAt": REQUEST_TIME})
)
cell("device", "create_empty_token", D, D, D, D)(
    lambda w, me: w.as_(me).create(_new_device_path(w), device(token=""))
)
cell("device", "create_token_not_string", D, D, D, D)(
    lambda w, me: w.as_(me).create(_new_device_path(w), device(token=12345))
)
cell("device", "create_updated_at_not_timestamp", D, D, D, D)(
    lambda w, me: w.as_(me).create(_new_device_path(w), device(updatedAt="2024-01-01"))
)
cell("device", "create_extra_field", D, D, D, D)(
    lambda w, me: w.as_(me).create(_new_device_path(w), device(owner="someone"))
)
cell("device", "update_token", D, A, D, D)(
    lambda w, me: w.as_(me).update(w.fresh_device(), {"token": "fcm-rotated", "updatedAt": REQUEST_TIME})
)
cell("device", "update_bad_platform", D, D, D, D)(
    lambda w, me: w.as_(me).update(w.fresh_device(), {"platform": "symbian"})
)
cell("device", "delete", D, A, D, D)(lambda w, me: w.as_(me).delete(w.fresh_device()))

# users/{uid}/notifications/{id}: written by the backend only


def _notification(w: World) -> str:
    return f"{w.user_doc}/notifications/{w.notification_id}"


cell("notification", "get", D, A, D, D)(lambda w, me: w.as_(me).get(_notification(w)))
cell("notification", "list", D, A, D, D)(lambda w, me: w.as_(me).list(f"{w.user_doc}/notifications"))
cell("notification", "create", D, D, D, D)(
    lambda w, me: w.as_(me).create(
        f"{w.user_doc}/notifications/{unique_id()}", {"kind": "high_stress", "sentAt": REQUEST_TIME}
    )
)
cell("notification", "update_read_at", D, D, D, D)(
    lambda w, me: w.as_(me).update(_notification(w), {"readAt": REQUEST_TIME})
)
cell("notification", "delete", D, D, D, D)(lambda w, me: w.as_(me).delete(_notification(w)))

# users/{uid}/stats/**: the personal baseline, written by the backend only

cell("stats", "get", D, A, D, D)(lambda w, me: w.as_(me).get(f"{w.user_doc}/stats/baseline"))
cell("stats", "get_nested", D, A, D, D)(
    lambda w, me: w.as_(me).get(f"{w.user_doc}/stats/daily/days/2024-01-01")
)
cell("stats", "list", D, A, D, D)(lambda w, me: w.as_(me).list(f"{w.user_doc}/stats"))
cell("stats", "create", D, D, D, D)(
    lambda w, me: w.as_(me).create(f"{w.user_doc}/stats/{unique_id()}", {"mean": 0.0})
)
cell("stats", "update", D, D, D, D)(
    lambda w, me: w.as_(me).update(f"{w.user_doc}/stats/baseline", {"mean": 0.0})
)
cell("stats", "delete", D, D, D, D)(lambda w, me: w.as_(me).delete(f"{w.user_doc}/stats/baseline"))

# everything else

cell("other", "get_unknown_user_subcollection", D, D, D, D)(
    lambda w, me: w.as_(me).get(f"{w.user_doc}/secrets/s1")
)
cell("other", "create_unknown_user_subcollection", D, D, D, D)(
    lambda w, me: w.as_(me).create(f"{w.user_doc}/secrets/{unique_id()}", {"x": 1})
)
cell("other", "get_top_level", D, D, D, D)(lambda w, me: w.as_(me).get(f"admin/{w.run}"))
cell("other", "create_top_level", D, D, D, D)(
    lambda w, me: w.as_(me).create(f"admin/{unique_id()}", {"x": 1})
)
cell("other", "get_chat_alert_marker", D, D, D, D)(
    lambda w, me: w.as_(me).get(f"{w.chat}/alertMarkers/{w.message_id}")
)
cell("other", "create_chat_alert_marker", D, D, D, D)(
    lambda w, me: w.as_(me).create(f"{w.chat}/alertMarkers/{unique_id()}", {"alertedAt": REQUEST_TIME})
)
cell("other", "get_catalog_suggestion", D, D, D, D)(
    lambda w, me: w.as_(me).get(f"catalog/{w.run}/suggestions/breathing")
)
cell("other", "get_own_wellbeing_model", D, D, D, D)(
    lambda w, me: w.as_(me).get(f"{w.user_doc}/wellbeing/model")
)
cell("other", "update_own_wellbeing_model", D, D, D, D)(
    lambda w, me: w.as_(me).update(f"{w.user_doc}/wellbeing/model", {"feedbackCount": 99})
)
cell("other", "query_collection_group_messages", D, D, D, D)(
    lambda w, me: w.as_(me).query("", "messages", all_descendants=True)
)

CELLS = [
    pytest.param(resource, operation, who, expected[who], id=f"{resource}-{operation}-{who}")
    for (resource, operation), expected in EXPECTED.items()
    for who in IDENTITIES
]


@pytest.mark.parametrize(("resource", "operation", "identity", "expected"), CELLS)
def test_access(world: World, resource: str, operation: str, identity: str, expected: str) -> None:
    assert OPS[(resource, operation)](world, identity) == expected


# ── checks around the matrix ─────────────────────────────────────────────────────────────────────


def test_rules_compile_without_issues(rest) -> None:
    source = (REPO / "firestore.rules").read_text()
    assert compile_rules(rest, "firestore.rules", source) == []


def test_identities_are_auth_emulator_users(world: World) -> None:
    for who, user in world.users.items():
        claims = token_claims(user.id_token)
        assert claims["sub"] == claims["user_id"] == user.uid, who
        assert claims["firebase"]["sign_in_provider"] == "password", who
    assert len({u.uid for u in world.users.values()}) == 3


def test_allowed_writes_take_effect(world: World) -> None:
    chat = world.fresh_chat()
    assert world.as_(MEMBER).update(chat, {"title": "renamed by member"}) == ALLOW
    doc = world.db.document(chat).get().to_dict()
    assert doc["title"] == "renamed by member"
    assert doc["members"] == [world.owner, world.member]

    chat = f"chats/{unique_id()}"
    assert world.as_(OUTSIDER).create(chat, new_chat([world.outsider, world.owner])) == ALLOW
    created = world.db.document(chat).get().to_dict()
    assert created["members"] == [world.outsider, world.owner]
    assert abs(created["createdAt"] - datetime.now(UTC)) < timedelta(minutes=1)


def test_denied_writes_left_the_message_untouched(world: World) -> None:
    for field_name, value in BACKEND_OWNED.items():
        assert world.as_(OWNER).update(world.message, {field_name: value}) == DENY
    assert world.db.document(world.message).get().to_dict() == world.seeded_message
