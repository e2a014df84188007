"""The Firestore documents the in-memory fakes share: one dict of document paths, so that what one
feature's fake writes (a message, a profile) is what another's reads, as in Firestore."""

from __future__ import annotations

import copy
import threading
from typing import Any

from emochat.accounts import model as accounts


def mentions(value: Any, needle: str) -> bool:
    """Whether `needle` appears anywhere in a document's keys or values (the deletion tests' scan)."""
    if isinstance(value, str):
        return needle in value
    if isinstance(value, dict):
        return any(mentions(k, needle) or mentions(v, needle) for k, v in value.items())
    if isinstance(value, list | tuple):
        return any(mentions(v, needle) for v in value)
    return False


class Documents:
    def __init__(self) -> None:
        self.docs: dict[str, dict[str, Any]] = {}
        self.lock = threading.Lock()

    def under(self, prefix: str) -> dict[str, dict[str, Any]]:
        """The documents directly in the collection `prefix`."""
        return {
            p: d
            for p, d in self.docs.items()
            if p.startswith(prefix + "/") and "/" not in p[len(prefix) + 1 :]
        }

    def sent_messages(self, uid: str) -> list[tuple[str, str, str]]:
        """(path, chatId, messageId) of every message `uid` sent, in any chat."""
        found = []
        for path, doc in self.docs.items():
            parts = path.split("/")
            if (
                len(parts) == 4
                and parts[0] == "chats"
                and parts[2] == "messages"
                and doc.get("senderId") == uid
            ):
                found.append((path, parts[1], parts[3]))
        return found

    def profile(self, uid: str) -> dict[str, Any]:
        return copy.deepcopy(self.docs.get(f"users/{uid}", {}))

    def account_open(self, uid: str, needs_profile: bool) -> bool:
        """What firestore_tx.account_open reads in a writer's transaction, over these documents."""
        return accounts.account_open(
            f"users/{uid}" in self.docs, accounts.tombstone_path(uid) in self.docs, needs_profile
        )
