"""firestore.rules, cell by cell: identity × operation × path → allow or deny, on the Firestore emulator.

Identities are real Auth-emulator users (ID tokens from the identitytoolkit REST API) talking to the
Firestore REST API as the app would, so the emulator evaluates the rules; `anonymous` sends no
Authorization header. The Admin client (google.cloud.firestore, which bypasses rules) only seeds
documents, under ids unique to the run.

The five identities, for every path:
- `anonymous`: not signed in;
- `owner`: the user whose users/{uid} tree is tested, the sender of the seeded message, and a
  member of the seeded chat;
- `member`: the other member of that chat (someone who shares a chat with the owner);
- `non_member`: signed in, shares nothing with the owner;
- `invitee`: invited to that chat, has not accepted (so is not a member yet).

Writes that succeed act on fresh documents (or a reset profile), so no cell depends on another's
side effects. A denial must be a 403; any other error fails the cell instead of passing as "deny".
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.integration.rules_helpers import (
    ALLOW,
    ANON,
    DENY,
    IDENTITIES,
    INVITEE,
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
    usage_day: str = ""
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
    def invitee(self) -> str:
        return self.users[INVITEE].uid

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
            {
                "members": [self.owner, self.member],
                "invited": [self.invitee],
                "createdAt": datetime.now(UTC),
                "title": "seed",
            },
        )

    def fresh_device(self) -> str:
        return self.seed(
            f"{self.user_doc}/devices/{unique_id('dev-')}",
            {"token": "fcm-seed-token", "platform": "ios", "updatedAt": datetime.now(UTC)},
        )

    def reset_profile(self) -> None:
        self.seed(self.user_doc, profile())


def profile() -> dict:
    """Every key the app may write to users/{uid}."""
    return {
        "displayName": "Owner",
        "email": "owner@example.com",
        "createdAt": datetime(2026, 1, 5, 9, 0, tzinfo=UTC),
        "language": "ko",
        "timeZone": "Asia/Seoul",
        "alertPrefs": {"enabled": True, "cooldownMinutes": 30},
    }


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
def world(rest, db) -> World:
    run = unique_id("rules-")[:16]
    users = {who: sign_up(rest, f"{run}-{who}@example.com") for who in (OWNER, MEMBER, OUTSIDER, INVITEE)}
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
    w.usage_day = datetime.now(UTC).date().isoformat()
    w.seed(f"{w.user_doc}/usage/{w.usage_day}", {"messages": 3, "audioSeconds": 41.5})
    w.seed(f"{w.user_doc}/stats/baseline", {"mean": 21.0, "count": 12})
    w.seed(f"{w.user_doc}/stats/daily/days/2024-01-01", {"mean": 18.0, "count": 3})
    w.seed(f"{w.user_doc}/secrets/s1", {"x": 1})
    w.seed(f"admin/{run}", {"x": 1})
    # Backend-only documents of other features (alerting, recommendations): no client access.
    w.seed(f"{w.chat}/alertMarkers/{w.message_id}", {"alertedAt": datetime.now(UTC)})
    w.seed(f"catalog/{run}/suggestions/breathing", {"title": {"en": "Breathe"}})
    w.seed(f"{w.user_doc}/wellbeing/model", {"feedbackCount": 1})
    day = datetime.now(UTC).date().isoformat()
    w.seed(f"{w.user_doc}/stressDaily/{day}", {"date": day, "count": 1, "scores": {"725": 1}})
    reading = {"day": day, "score": 72.5, "level": "high", "at": datetime.now(UTC)}
    w.seed(f"{w.user_doc}/stressIndex/{w.chat_id}|{w.message_id}", reading)
    return w


# ── the matrix ──────────────────────────────────────────────────────────────────────────────────

Op = Callable[[World, str], str]
OPS: dict[tuple[str, str], Op] = {}
EXPECTED: dict[tuple[str, str], dict[str, str]] = {}


def cell(
    resource: str, operation: str, anonymous: str, owner: str, member: str, non_member: str, invitee: str
):
    """Registers an operation with the outcome expected for each identity (a row of the matrix)."""

    def register(op: Op) -> Op:
        key = (resource, operation)
        assert key not in OPS, key
        OPS[key] = op
        EXPECTED[key] = {
            ANON: anonymous,
            OWNER: owner,
            MEMBER: member,
            OUTSIDER: non_member,
            INVITEE: invitee,
        }
        return op

    return register


A, D = ALLOW, DENY


def me_or_owner(w: World, me: str) -> str:
    """The caller's uid; anonymous, who has none, acts with the owner's."""
    return w.uid(me) or w.owner


def me_or_invitee(w: World, me: str) -> str:
    """The caller's uid; anonymous acts with the invitee's (the one move it might hope to make)."""
    return w.uid(me) or w.invitee


def others(w: World, me: str, count: int = 2) -> list[str]:
    """`count` uids that are not the caller's."""
    return [uid for uid in (w.owner, w.member, w.outsider, w.invitee) if uid != w.uid(me)][:count]


def new_chat(members: list | str, **extra) -> dict:
    return {"members": members, "createdAt": REQUEST_TIME, "title": "new chat", **extra}


def create_chat(w: World, me: str, **fields) -> str:
    """Creates a chat as `me`: members [me] (the only allowed start) unless `fields` says otherwise."""
    return w.as_(me).create(f"chats/{unique_id()}", new_chat(**{"members": [me_or_owner(w, me)], **fields}))


def without(values: list[str], uid: str) -> list[str]:
    return [v for v in values if v != uid]


# chats/{chatId}: members [owner, member], invited [invitee] (fresh_chat() makes another like it)


cell("chat", "get", D, A, A, D, A)(lambda w, me: w.as_(me).get(w.chat))


@cell("chat", "query_my_chats", D, A, A, A, A)
def _(w: World, me: str) -> str:
    # `where members array-contains <me>`: the app's chat list. Anonymous asks for the owner's.
    return w.as_(me).query("", "chats", array_contains("members", me_or_owner(w, me)))


cell("chat", "query_owners_chats", D, A, D, D, D)(
    lambda w, me: w.as_(me).query("", "chats", array_contains("members", w.owner))
)
# `where invited array-contains <me>`: the app's list of invitations. Anonymous asks for the invitee's.
cell("chat", "query_my_invitations", D, A, A, A, A)(
    lambda w, me: w.as_(me).query("", "chats", array_contains("invited", me_or_invitee(w, me)))
)
cell("chat", "query_invitees_invitations", D, D, D, D, A)(
    lambda w, me: w.as_(me).query("", "chats", array_contains("invited", w.invitee))
)
cell("chat", "list_all", D, D, D, D, D)(lambda w, me: w.as_(me).query("", "chats"))

# create: members == [me]; others only as invitees, who must consent
cell("chat", "create_alone", D, A, A, A, A)(lambda w, me: create_chat(w, me))
cell("chat", "create_inviting_others", D, A, A, A, A)(lambda w, me: create_chat(w, me, invited=others(w, me)))
cell("chat", "create_inviting_49", D, A, A, A, A)(
    lambda w, me: create_chat(w, me, invited=[f"u{i}-{unique_id()}" for i in range(49)])
)
cell("chat", "create_with_empty_invited", D, A, A, A, A)(lambda w, me: create_chat(w, me, invited=[]))
cell("chat", "create_with_other_member", D, D, D, D, D)(
    lambda w, me: create_chat(w, me, members=[me_or_owner(w, me), *others(w, me, 1)])
)
cell("chat", "create_without_self", D, D, D, D, D)(lambda w, me: create_chat(w, me, members=others(w, me)))
cell("chat", "create_no_members", D, D, D, D, D)(lambda w, me: create_chat(w, me, members=[]))
cell("chat", "create_duplicate_members", D, D, D, D, D)(
    lambda w, me: create_chat(w, me, members=[me_or_owner(w, me)] * 2)
)
cell("chat", "create_members_not_list", D, D, D, D, D)(
    lambda w, me: create_chat(w, me, members=me_or_owner(w, me))
)
cell("chat", "create_inviting_self", D, D, D, D, D)(
    lambda w, me: create_chat(w, me, invited=[me_or_owner(w, me), *others(w, me, 1)])
)
cell("chat", "create_invited_duplicates", D, D, D, D, D)(
    lambda w, me: create_chat(w, me, invited=others(w, me, 1) * 2)
)
cell("chat", "create_inviting_50", D, D, D, D, D)(
    lambda w, me: create_chat(w, me, invited=[f"u{i}-{unique_id()}" for i in range(50)])
)
cell("chat", "create_invited_not_list", D, D, D, D, D)(
    lambda w, me: create_chat(w, me, invited=others(w, me, 1)[0])
)
cell("chat", "create_invited_not_strings", D, D, D, D, D)(
    lambda w, me: create_chat(w, me, invited=[*others(w, me, 1), 42])
)
cell("chat", "create_invited_map_entry", D, D, D, D, D)(
    lambda w, me: create_chat(w, me, invited=[{"uid": others(w, me, 1)[0]}])
)
cell("chat", "create_invited_empty_uid", D, D, D, D, D)(
    lambda w, me: create_chat(w, me, invited=[*others(w, me, 1), ""])
)
cell("chat", "create_invited_uid_too_long", D, D, D, D, D)(
    lambda w, me: create_chat(w, me, invited=["u" * 129])
)
cell("chat", "create_invited_uid_with_slash", D, D, D, D, D)(
    lambda w, me: create_chat(w, me, invited=[f"{others(w, me, 1)[0]}/x"])
)
cell("chat", "create_extra_field", D, D, D, D, D)(
    lambda w, me: create_chat(w, me, admins=[me_or_owner(w, me)])
)
cell("chat", "create_client_timestamp", D, D, D, D, D)(
    lambda w, me: create_chat(w, me, createdAt=datetime.now(UTC))
)
cell("chat", "create_title_too_long", D, D, D, D, D)(lambda w, me: create_chat(w, me, title="x" * 101))
cell("chat", "create_title_control_chars", D, D, D, D, D)(
    lambda w, me: create_chat(w, me, title="hi\u0000\nthere")
)

# update by members: the title only
cell("chat", "update_title", D, A, A, D, D)(
    lambda w, me: w.as_(me).update(w.fresh_chat(), {"title": "renamed"})
)
cell("chat", "update_title_not_string", D, D, D, D, D)(
    lambda w, me: w.as_(me).update(w.fresh_chat(), {"title": 42})
)
cell("chat", "update_title_bidi_override", D, D, D, D, D)(
    lambda w, me: w.as_(me).update(w.fresh_chat(), {"title": "\u202eevil"})
)
cell("chat", "update_created_at", D, D, D, D, D)(
    lambda w, me: w.as_(me).update(w.fresh_chat(), {"createdAt": datetime(2000, 1, 1, tzinfo=UTC)})
)


# consent: an invitee moves only its own uid from invited to members (accept) or out of invited
# (decline); a member removes only its own uid from members (leave); nothing else changes membership


@cell("chat", "accept", D, D, D, D, A)
def _(w: World, me: str) -> str:
    uid = me_or_invitee(w, me)
    return w.as_(me).update(
        w.fresh_chat(), {"members": [*[w.owner, w.member], uid], "invited": without([w.invitee], uid)}
    )


@cell("chat", "accept_and_rename", D, D, D, D, D)
def _(w: World, me: str) -> str:
    uid = me_or_invitee(w, me)
    return w.as_(me).update(
        w.fresh_chat(),
        {"members": [*[w.owner, w.member], uid], "invited": without([w.invitee], uid), "title": "mine now"},
    )


cell("chat", "accept_keeping_invitation", D, D, D, D, D)(
    lambda w, me: w.as_(me).update(w.fresh_chat(), {"members": [*[w.owner, w.member], me_or_invitee(w, me)]})
)


@cell("chat", "accept_bringing_a_friend", D, D, D, D, D)
def _(w: World, me: str) -> str:
    uid = me_or_invitee(w, me)
    return w.as_(me).update(
        w.fresh_chat(),
        {"members": [*[w.owner, w.member], uid, w.outsider], "invited": without([w.invitee], uid)},
    )


@cell("chat", "accept_removing_a_member", D, D, D, D, D)
def _(w: World, me: str) -> str:
    uid = me_or_invitee(w, me)
    return w.as_(me).update(w.fresh_chat(), {"members": [uid], "invited": without([w.invitee], uid)})


# A member cannot pull the invitee in: only the invitee's own move (which this is, for the invitee).
cell("chat", "move_invitee_into_members", D, D, D, D, A)(
    lambda w, me: w.as_(me).update(
        w.fresh_chat(), {"members": [*[w.owner, w.member], w.invitee], "invited": []}
    )
)
# For the invitee this is declining; for anyone else, withdrawing someone's invitation, which is
# the invitee's decision alone.
cell("chat", "decline_or_withdraw_invitation", D, D, D, D, A)(
    lambda w, me: w.as_(me).update(w.fresh_chat(), {"invited": []})
)
cell("chat", "decline_and_rename", D, D, D, D, D)(
    lambda w, me: w.as_(me).update(w.fresh_chat(), {"invited": [], "title": "declined"})
)
# Invitations are made when the chat is created, never later: not to others, not to oneself (which
# would let a stranger invite itself and accept).
cell("chat", "invite_another", D, D, D, D, D)(
    lambda w, me: w.as_(me).update(w.fresh_chat(), {"invited": [*[w.invitee], w.outsider]})
)
cell("chat", "invite_self", D, D, D, D, D)(
    lambda w, me: w.as_(me).update(w.fresh_chat(), {"invited": [*[w.invitee], me_or_owner(w, me)]})
)
cell("chat", "leave", D, A, A, D, D)(
    lambda w, me: w.as_(me).update(
        w.fresh_chat(), {"members": without([w.owner, w.member], me_or_owner(w, me))}
    )
)
cell("chat", "leave_and_rename", D, D, D, D, D)(
    lambda w, me: w.as_(me).update(
        w.fresh_chat(), {"members": without([w.owner, w.member], me_or_owner(w, me)), "title": "left"}
    )
)
# (For the invitee, who is not in members, this is its decline.)
cell("chat", "leave_taking_invitations_along", D, D, D, D, A)(
    lambda w, me: w.as_(me).update(
        w.fresh_chat(), {"members": without([w.owner, w.member], me_or_owner(w, me)), "invited": []}
    )
)
cell("chat", "remove_everyone", D, D, D, D, D)(
    lambda w, me: w.as_(me).update(w.fresh_chat(), {"members": []})
)
cell("chat", "remove_other_member", D, D, D, D, D)(
    lambda w, me: w.as_(me).update(w.fresh_chat(), {"members": [me_or_owner(w, me)]})
)
cell("chat", "add_member", D, D, D, D, D)(
    lambda w, me: w.as_(me).update(w.fresh_chat(), {"members": [*[w.owner, w.member], w.outsider]})
)
cell("chat", "add_self_as_member", D, D, D, D, D)(
    lambda w, me: w.as_(me).update(w.fresh_chat(), {"members": [*[w.owner, w.member], me_or_owner(w, me)]})
)
cell("chat", "delete", D, D, D, D, D)(lambda w, me: w.as_(me).delete(w.fresh_chat()))

# chats/{chatId}/messages/{messageId}: sent by owner; every write is the backend's

cell("message", "get", D, A, A, D, D)(lambda w, me: w.as_(me).get(w.message))
cell("message", "list", D, A, A, D, D)(lambda w, me: w.as_(me).list(f"{w.chat}/messages"))
cell("message", "query_in_chat", D, A, A, D, D)(lambda w, me: w.as_(me).query(w.chat, "messages"))


@cell("message", "create_voice_placeholder", D, D, D, D, D)
def _(w: World, me: str) -> str:
    data = {**voice_message(w.uid(me) or w.owner), "status": "processing", "text": None, "stress": None}
    return w.as_(me).create(f"{w.chat}/messages/{unique_id()}", {**data, "createdAt": REQUEST_TIME})


cell("message", "create_text", D, D, D, D, D)(
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
    cell("message", f"update_{_field}", D, D, D, D, D)(
        lambda w, me, f=_field, v=_value: w.as_(me).update(w.message, {f: v})
    )
cell("message", "update_add_field", D, D, D, D, D)(
    lambda w, me: w.as_(me).update(w.message, {"reaction": "+1"})
)
cell("message", "delete", D, D, D, D, D)(lambda w, me: w.as_(me).delete(w.message))

# users/{uid}: the owner's profile


def _on_profile(op: Callable[[World, str], str]) -> Op:
    def run(w: World, me: str) -> str:
        w.reset_profile()
        return op(w, me)

    return run


cell("profile", "get", D, A, D, D, D)(_on_profile(lambda w, me: w.as_(me).get(w.user_doc)))
cell("profile", "list_users", D, D, D, D, D)(lambda w, me: w.as_(me).query("", "users"))


@cell("profile", "create", D, A, D, D, D)
def _(w: World, me: str) -> str:
    w.db.document(w.user_doc).delete()
    return w.as_(me).create(w.user_doc, profile())


cell("profile", "update_display_name", D, A, D, D, D)(
    _on_profile(lambda w, me: w.as_(me).update(w.user_doc, {"displayName": "New name"}))
)
cell("profile", "update_alert_prefs", D, A, D, D, D)(
    _on_profile(
        lambda w, me: w.as_(me).update(w.user_doc, {"alertPrefs": {"enabled": False, "cooldownMinutes": 60}})
    )
)
cell("profile", "update_alert_prefs_not_bool", D, D, D, D, D)(
    _on_profile(lambda w, me: w.as_(me).update(w.user_doc, {"alertPrefs": {"enabled": "yes"}}))
)
cell("profile", "update_alert_prefs_negative_cooldown", D, D, D, D, D)(
    _on_profile(lambda w, me: w.as_(me).update(w.user_doc, {"alertPrefs": {"cooldownMinutes": -1}}))
)
cell("profile", "update_alert_prefs_extra_key", D, D, D, D, D)(
    _on_profile(lambda w, me: w.as_(me).update(w.user_doc, {"alertPrefs": {"enabled": True, "threshold": 0}}))
)
cell("profile", "update_alert_prefs_not_map", D, D, D, D, D)(
    _on_profile(lambda w, me: w.as_(me).update(w.user_doc, {"alertPrefs": True}))
)


def _profile_update(**fields) -> Op:
    return _on_profile(lambda w, me: w.as_(me).update(w.user_doc, fields))


@cell("profile", "create_with_unknown_key", D, D, D, D, D)
def _(w: World, me: str) -> str:
    w.db.document(w.user_doc).delete()
    return w.as_(me).create(w.user_doc, {**profile(), "role": "admin"})


@cell("profile", "create_with_bad_display_name", D, D, D, D, D)
def _(w: World, me: str) -> str:
    w.db.document(w.user_doc).delete()
    return w.as_(me).create(w.user_doc, {**profile(), "displayName": "Mina\nURGENT: call me"})


# Keys the backend does not read, and that nothing bounds, are refused: the profile is not a store.
cell("profile", "update_unknown_key", D, D, D, D, D)(_profile_update(role="admin"))
cell("profile", "update_huge_unknown_key", D, D, D, D, D)(_profile_update(notes="x" * 500_000))
# The profile's fields, each with values the owner may write (A) and values refused to everyone (D):
# - displayName becomes a push title ("Mina sounds stressed"): 1..50 characters, not blank, no
#   control or line-breaking characters, no bidi overrides;
# - timeZone decides the user's trend days: an IANA name (Area/City[/City]) of at most 64
#   characters, or UTC;
# - language: ISO-639-1, or a locale tag built on one (the backend normalises it).
PROFILE_VALUES: dict[str, dict[str, tuple[object, str]]] = {
    "displayName": {
        "korean": ("김민아", A),
        "emoji_zwj": ("Mina \U0001f469\u200d\U0001f4bb", A),
        "50_chars": ("가" * 50, A),
        "51_chars": ("가" * 51, D),
        "empty": ("", D),
        "blank": ("   ", D),
        "newline": ("Mina\nURGENT", D),
        "nul": ("Mina\u0000", D),
        "c1_control": ("Mina\u0085x", D),
        "line_separator": ("Mina\u2028URGENT", D),
        "bidi_override": ("\u202eanim", D),
        "not_string": (42, D),
    },
    "timeZone": {
        "three_parts": ("America/Argentina/Buenos_Aires", A),
        "etc_offset": ("Etc/GMT+9", A),
        "utc": ("UTC", A),
        "area_only": ("America", D),
        "300_chars": ("Asia/" + "x" * 295, D),
        "65_chars": ("Asia/" + "x" * 60, D),
        "path_traversal": ("../../etc/passwd", D),
        "offset": ("+09:00", D),
        "not_string": (9, D),
    },
    "language": {
        "iso_639_1": ("en", A),
        "locale_tag": ("ko-KR", A),
        "underscore_tag": ("zh_Hant_TW", A),
        "word": ("korean", D),
        "300_chars": ("en-" + "x" * 297, D),
        "not_string": (["ko"], D),
    },
    "email": {"not_string": (True, D)},
    "createdAt": {"not_timestamp": ("yesterday", D)},
}
for _key, _cases in PROFILE_VALUES.items():
    for _case, (_value, _owner) in _cases.items():
        cell("profile", f"update_{_key}_{_case}", D, _owner, D, D, D)(_profile_update(**{_key: _value}))
cell("profile", "delete", D, A, D, D, D)(_on_profile(lambda w, me: w.as_(me).delete(w.user_doc)))

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


cell("device", "get", D, A, D, D, D)(lambda w, me: w.as_(me).get(f"{w.user_doc}/devices/{w.device_id}"))
cell("device", "list", D, A, D, D, D)(lambda w, me: w.as_(me).list(f"{w.user_doc}/devices"))
cell("device", "create", D, A, D, D, D)(lambda w, me: w.as_(me).create(_new_device_path(w), device()))
cell("device", "create_web_client_clock", D, A, D, D, D)(
    lambda w, me: w.as_(me).create(_new_device_path(w), device(platform="web", updatedAt=datetime.now(UTC)))
)
cell("device", "create_future_updated_at", D, D, D, D, D)(
    lambda w, me: w.as_(me).create(
        _new_device_path(w), device(updatedAt=datetime.now(UTC) + timedelta(days=1))
    )
)
cell("device", "create_bad_platform", D, D, D, D, D)(
    lambda w, me: w.as_(me).create(_new_device_path(w), device(platform="symbian"))
)
cell("device", "create_missing_token", D, D, D, D, D)(
    lambda w, me: w.as_(me).create(_new_device_path(w), {"platform": "ios", "updatedAt": REQUEST_TIME})
)
cell("device", "create_empty_token", D, D, D, D, D)(
    lambda w, me: w.as_(me).create(_new_device_path(w), device(token=""))
)
cell("device", "create_token_not_string", D, D, D, D, D)(
    lambda w, me: w.as_(me).create(_new_device_path(w), device(token=12345))
)
cell("device", "create_updated_at_not_timestamp", D, D, D, D, D)(
    lambda w, me: w.as_(me).create(_new_device_path(w), device(updatedAt="2024-01-01"))
)
cell("device", "create_extra_field", D, D, D, D, D)(
    lambda w, me: w.as_(me).create(_new_device_path(w), device(owner="someone"))
)
# The id is the app's own (an installation id, or the FCM token itself): a token-safe name of at most
# 256 characters. Rules cannot count a user's devices; the backend pushes to the most recent few.
cell("device", "create_fcm_token_as_id", D, A, D, D, D)(
    lambda w, me: w.as_(me).create(
        f"{w.user_doc}/devices/{unique_id('c')}:APA91b{'x' * 140}-_{unique_id()}", device()
    )
)
cell("device", "create_id_too_long", D, D, D, D, D)(
    lambda w, me: w.as_(me).create(f"{w.user_doc}/devices/{unique_id()}{'x' * 237}", device())
)
cell("device", "create_id_odd_characters", D, D, D, D, D)(
    lambda w, me: w.as_(me).create(f"{w.user_doc}/devices/{unique_id()} ünï{{code}}", device())
)
cell("device", "update_token", D, A, D, D, D)(
    lambda w, me: w.as_(me).update(w.fresh_device(), {"token": "fcm-rotated", "updatedAt": REQUEST_TIME})
)
cell("device", "update_bad_platform", D, D, D, D, D)(
    lambda w, me: w.as_(me).update(w.fresh_device(), {"platform": "symbian"})
)
cell("device", "delete", D, A, D, D, D)(lambda w, me: w.as_(me).delete(w.fresh_device()))

# users/{uid}/notifications/{id}: written by the backend only


def _notification(w: World) -> str:
    return f"{w.user_doc}/notifications/{w.notification_id}"


cell("notification", "get", D, A, D, D, D)(lambda w, me: w.as_(me).get(_notification(w)))
cell("notification", "list", D, A, D, D, D)(lambda w, me: w.as_(me).list(f"{w.user_doc}/notifications"))
cell("notification", "create", D, D, D, D, D)(
    lambda w, me: w.as_(me).create(
        f"{w.user_doc}/notifications/{unique_id()}", {"kind": "high_stress", "sentAt": REQUEST_TIME}
    )
)
cell("notification", "update_read_at", D, D, D, D, D)(
    lambda w, me: w.as_(me).update(_notification(w), {"readAt": REQUEST_TIME})
)
cell("notification", "delete", D, D, D, D, D)(lambda w, me: w.as_(me).delete(_notification(w)))

# users/{uid}/stats/**: the personal baseline, written by the backend only

cell("stats", "get", D, A, D, D, D)(lambda w, me: w.as_(me).get(f"{w.user_doc}/stats/baseline"))
cell("stats", "get_nested", D, A, D, D, D)(
    lambda w, me: w.as_(me).get(f"{w.user_doc}/stats/daily/days/2024-01-01")
)
cell("stats", "list", D, A, D, D, D)(lambda w, me: w.as_(me).list(f"{w.user_doc}/stats"))
cell("stats", "create", D, D, D, D, D)(
    lambda w, me: w.as_(me).create(f"{w.user_doc}/stats/{unique_id()}", {"mean": 0.0})
)
cell("stats", "update", D, D, D, D, D)(
    lambda w, me: w.as_(me).update(f"{w.user_doc}/stats/baseline", {"mean": 0.0})
)
cell("stats", "delete", D, D, D, D, D)(lambda w, me: w.as_(me).delete(f"{w.user_doc}/stats/baseline"))

# users/{uid}/usage/{YYYY-MM-DD}: the daily voice budget the backend counts; its owner reads it


def _usage(w: World) -> str:
    return f"{w.user_doc}/usage/{w.usage_day}"


cell("usage", "get", D, A, D, D, D)(lambda w, me: w.as_(me).get(_usage(w)))
cell("usage", "list", D, A, D, D, D)(lambda w, me: w.as_(me).list(f"{w.user_doc}/usage"))
cell("usage", "create", D, D, D, D, D)(
    lambda w, me: w.as_(me).create(f"{w.user_doc}/usage/2099-01-01", {"messages": 0, "audioSeconds": 0})
)
cell("usage", "update_reset_count", D, D, D, D, D)(lambda w, me: w.as_(me).update(_usage(w), {"messages": 0}))
cell("usage", "delete", D, D, D, D, D)(lambda w, me: w.as_(me).delete(_usage(w)))

# users/{uid}/stressDaily/{date} and stressIndex/{chatId|messageId}: the trend aggregates and each
# reading's own document, backend only; the app reads its trend through the stress_trends callable


def _trend_day(w: World) -> str:
    return f"{w.user_doc}/stressDaily/{datetime.now(UTC).date().isoformat()}"


def _trend_reading(w: World) -> str:
    return f"{w.user_doc}/stressIndex/{w.chat_id}|{w.message_id}"


cell("trends", "get_day", D, D, D, D, D)(lambda w, me: w.as_(me).get(_trend_day(w)))
cell("trends", "list_days", D, D, D, D, D)(lambda w, me: w.as_(me).list(f"{w.user_doc}/stressDaily"))
cell("trends", "update_day", D, D, D, D, D)(lambda w, me: w.as_(me).update(_trend_day(w), {"count": 0}))
cell("trends", "create_day", D, D, D, D, D)(
    lambda w, me: w.as_(me).create(f"{w.user_doc}/stressDaily/2099-01-01", {"count": 1})
)
cell("trends", "get_reading", D, D, D, D, D)(lambda w, me: w.as_(me).get(_trend_reading(w)))
cell("trends", "list_readings", D, D, D, D, D)(lambda w, me: w.as_(me).list(f"{w.user_doc}/stressIndex"))
cell("trends", "create_reading", D, D, D, D, D)(
    lambda w, me: w.as_(me).create(
        f"{w.user_doc}/stressIndex/{unique_id()}|m", {"day": "2099-01-01", "score": 0.0, "level": "low"}
    )
)
cell("trends", "delete_reading", D, D, D, D, D)(lambda w, me: w.as_(me).delete(_trend_reading(w)))
cell("trends", "query_collection_group_readings", D, D, D, D, D)(
    lambda w, me: w.as_(me).query("", "stressIndex", all_descendants=True)
)

# everything else

cell("other", "get_unknown_user_subcollection", D, D, D, D, D)(
    lambda w, me: w.as_(me).get(f"{w.user_doc}/secrets/s1")
)
cell("other", "create_unknown_user_subcollection", D, D, D, D, D)(
    lambda w, me: w.as_(me).create(f"{w.user_doc}/secrets/{unique_id()}", {"x": 1})
)
cell("other", "get_top_level", D, D, D, D, D)(lambda w, me: w.as_(me).get(f"admin/{w.run}"))
cell("other", "create_top_level", D, D, D, D, D)(
    lambda w, me: w.as_(me).create(f"admin/{unique_id()}", {"x": 1})
)
cell("other", "get_chat_alert_marker", D, D, D, D, D)(
    lambda w, me: w.as_(me).get(f"{w.chat}/alertMarkers/{w.message_id}")
)
cell("other", "create_chat_alert_marker", D, D, D, D, D)(
    lambda w, me: w.as_(me).create(f"{w.chat}/alertMarkers/{unique_id()}", {"alertedAt": REQUEST_TIME})
)
cell("other", "get_catalog_suggestion", D, D, D, D, D)(
    lambda w, me: w.as_(me).get(f"catalog/{w.run}/suggestions/breathing")
)
cell("other", "get_own_wellbeing_model", D, D, D, D, D)(
    lambda w, me: w.as_(me).get(f"{w.user_doc}/wellbeing/model")
)
cell("other", "update_own_wellbeing_model", D, D, D, D, D)(
    lambda w, me: w.as_(me).update(f"{w.user_doc}/wellbeing/model", {"feedbackCount": 99})
)
cell("other", "query_collection_group_messages", D, D, D, D, D)(
    lambda w, me: w.as_(me).query("", "messages", all_descendants=True)
)
cell("other", "query_collection_group_devices", D, D, D, D, D)(
    lambda w, me: w.as_(me).query("", "devices", all_descendants=True)
)
cell("other", "query_collection_group_usage", D, D, D, D, D)(
    lambda w, me: w.as_(me).query("", "usage", all_descendants=True)
)

CELLS = [
    pytest.param(resource, operation, who, expected[who], id=f"{resource}-{operation}-{who}")
    for (resource, operation), expected in EXPECTED.items()
    for who in (*IDENTITIES, INVITEE)
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
    assert len({u.uid for u in world.users.values()}) == 4


def test_allowed_writes_take_effect(world: World) -> None:
    chat = world.fresh_chat()
    assert world.as_(MEMBER).update(chat, {"title": "renamed by member"}) == ALLOW
    doc = world.db.document(chat).get().to_dict()
    assert doc["title"] == "renamed by member"
    assert doc["members"] == [world.owner, world.member]
    assert doc["invited"] == [world.invitee]

    chat = f"chats/{unique_id()}"
    assert world.as_(OUTSIDER).create(chat, new_chat([world.outsider], invited=[world.owner])) == ALLOW
    created = world.db.document(chat).get().to_dict()
    assert created["members"] == [world.outsider]
    assert created["invited"] == [world.owner]
    assert abs(created["createdAt"] - datetime.now(UTC)) < timedelta(minutes=1)


def test_denied_writes_left_the_message_untouched(world: World) -> None:
    for field_name, value in BACKEND_OWNED.items():
        assert world.as_(OWNER).update(world.message, {field_name: value}) == DENY
    assert world.db.document(world.message).get().to_dict() == world.seeded_message


def test_denied_membership_changes_left_the_chat_untouched(world: World) -> None:
    chat = world.fresh_chat()
    before = world.db.document(chat).get().to_dict()
    attempts = {
        MEMBER: (
            {"members": [world.owner, world.member, world.outsider]},
            {"members": [world.member]},
            {"members": [world.owner, world.member, world.invitee], "invited": []},
            {"invited": [world.invitee, world.outsider]},
            {"invited": []},
        ),
        INVITEE: (
            {"members": [world.owner, world.member, world.invitee, world.outsider], "invited": []},
            {"members": [world.invitee], "invited": []},
            {"members": [world.owner, world.member, world.invitee], "invited": [], "title": "mine"},
        ),
        OUTSIDER: (
            {"invited": [world.invitee, world.outsider]},
            {"members": [world.owner, world.member, world.outsider]},
        ),
    }
    for who, changes in attempts.items():
        for change in changes:
            assert world.as_(who).update(chat, change) == DENY, (who, change)
    assert world.db.document(chat).get().to_dict() == before


# ── the consent flow as the app runs it (local_stack.app_client: array transforms) ───────────────


@pytest.fixture
def people(http, world: World):
    """Three fresh accounts, each signed in through its own app client."""
    from local_stack.app_client import AppClient

    clients = []
    for name in ("ara", "bo", "cy"):
        user = sign_up(http, f"{world.run}-{name}-{unique_id()}@example.com")
        client = AppClient()
        client.sign_in(user.email, "rules-test-pw")
        clients.append(client)
    yield clients
    for client in clients:
        client.close()


def test_consent_flow_through_the_app_client(world: World, http, people) -> None:
    from local_stack.app_client import AppClientError

    ara, bo, cy = people
    uid = {c: c.session.uid for c in people}
    rest = {c: FirestoreRest(http, c.session.id_token) for c in people}

    chat_id = ara.create_chat([uid[bo], uid[cy]], title="weekend")
    chat = f"chats/{chat_id}"
    created = world.db.document(chat).get().to_dict()
    assert created["members"] == [uid[ara]] and created["invited"] == [uid[bo], uid[cy]]
    message = world.seed(f"{chat}/messages/{unique_id()}", voice_message(uid[ara]))  # as the backend writes

    # Invited: sees the invitation, reads nothing of the chat.
    assert set(bo.invitations()) == {chat_id} and bo.invitations()[chat_id]["title"] == "weekend"
    assert rest[bo].get(chat) == ALLOW
    assert rest[bo].get(message) == DENY
    assert rest[bo].list(f"{chat}/messages") == DENY

    bo.accept_invitation(chat_id)
    after_accept = world.db.document(chat).get().to_dict()
    assert after_accept["members"] == [uid[ara], uid[bo]] and after_accept["invited"] == [uid[cy]]
    assert after_accept["title"] == "weekend" and after_accept["createdAt"] == created["createdAt"]
    assert rest[bo].get(message) == ALLOW
    assert bo.invitations() == {}

    cy.decline_invitation(chat_id)
    assert world.db.document(chat).get().to_dict()["invited"] == []
    assert rest[cy].get(chat) == DENY
    with pytest.raises(AppClientError) as refused:
        cy.accept_invitation(chat_id)  # a declined invitation is gone
    assert refused.value.status == 403

    # A member who left reads nothing any more (not the chat, not its messages) and cannot return.
    bo.leave_chat(chat_id)
    assert world.db.document(chat).get().to_dict()["members"] == [uid[ara]]
    assert rest[bo].get(chat) == DENY
    assert rest[bo].get(message) == DENY
    assert rest[bo].query(chat, "messages") == DENY
    with pytest.raises(AppClientError) as refused:
        bo.accept_invitation(chat_id)
    assert refused.value.status == 403
    assert world.db.document(chat).get().to_dict()["members"] == [uid[ara]]

    ara.leave_chat(chat_id)  # the last member may leave too
    assert world.db.document(chat).get().to_dict()["members"] == []
