"""What deleting an account means, and who the backend may still write for. Pure: no I/O.

Deleting an account first writes its tombstone `deletedUsers/{uid}` ({deletedAt, expireAt}, no
content), then removes everything of it. Every writer that creates documents for a uid reads the
tombstone in its own transaction (`account_open`), so a trigger or callable still in flight when the
account went cannot recreate anything: Firestore aborts and reruns a transaction whose reads changed
before it commits. The tombstone expires (a TTL policy on `deletedUsers.expireAt`) well after any
trigger could still be running.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

TOMBSTONES = "deletedUsers"
TOMBSTONE_TTL = timedelta(days=30)


def tombstone_path(uid: str) -> str:
    return f"{TOMBSTONES}/{uid}"


def tombstone(now: datetime) -> dict[str, Any]:
    return {"deletedAt": now, "expireAt": now + TOMBSTONE_TTL}


def account_open(profile_exists: bool, tombstoned: bool, needs_profile: bool) -> bool:
    """Whether the backend may create documents for a uid.

    Never after the account was deleted (tombstoned). Writers acting for a uid that somebody else
    named (a chat's members, a message's sender) also need its profile users/{uid}: only the account
    itself can create that (firestore.rules), so a made-up uid in `members` gets no user tree and
    cannot make real accounts look like orphans to the purge's safety valve. Callables act for the
    signed-in caller, a real account, and need no profile.
    """
    return not tombstoned and (profile_exists or not needs_profile)


@dataclass(frozen=True)
class ChatLeave:
    """A chat after one account leaves it: the new membership lists, or delete the chat."""

    members: list[Any]
    invited: list[Any]
    delete_chat: bool


def leave_chat(chat: Mapping[str, Any], uid: str) -> ChatLeave | None:
    """The chat without `uid` in members and invited; None when it was in neither. A chat nobody is
    a member of any more is deleted with everything in it: nobody can read it (firestore.rules)."""

    def listed(field: str) -> list[Any]:
        value = chat.get(field)
        return list(value) if isinstance(value, Sequence) and not isinstance(value, str) else []

    members, invited = listed("members"), listed("invited")
    if uid not in members and uid not in invited:
        return None
    members = [m for m in members if m != uid]
    invited = [i for i in invited if i != uid]
    return ChatLeave(members, invited, delete_chat=not any(isinstance(m, str) and m for m in members))
