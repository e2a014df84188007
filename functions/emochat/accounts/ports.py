"""The accounts feature's narrow interfaces: a user's data in Firestore, their voice objects in Cloud
Storage, and Firebase Auth's accounts (adapters: adapters/firestore_store.py, adapters/voice_objects.py,
adapters/firebase_accounts.py; tests/fakes/accounts.py)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Protocol


class AccountStore(Protocol):
    def mark_deleted(self, uid: str, now: datetime) -> None:
        """Write the tombstone deletedUsers/{uid} (model.tombstone) before anything is deleted."""
        ...

    def leave_chats(self, uid: str) -> int:
        """Take the uid out of every chat's members and invited (model.leave_chat, in a transaction
        per chat); a chat left without members is deleted. Returns the chats changed."""
        ...

    def delete_sent_messages(self, uid: str) -> int:
        """Delete every message the uid sent, in any chat, with its alert marker."""
        ...

    def delete_traces(self, uid: str) -> int:
        """Delete what other places hold about the uid: alert markers and other users' feed entries
        whose senderId is the uid."""
        ...

    def delete_user(self, uid: str) -> int:
        """Delete users/{uid} and everything under it; returns how many documents went."""
        ...

    def user_ids(self) -> Iterator[str]:
        """Every uid with anything under users/ (also those whose profile document is gone)."""
        ...


class VoiceObjects(Protocol):
    def delete_prefix(self, prefix: str) -> int:
        """Delete every Cloud Storage object whose name starts with `prefix`; how many went."""
        ...


class AccountDirectory(Protocol):
    def missing(self, uids: list[str]) -> set[str]:
        """Those of `uids` that have no Firebase Auth account (at most 100 per call)."""
        ...

    def delete_account(self, uid: str) -> bool:
        """Delete the Auth account (ops path); False when there was none."""
        ...
