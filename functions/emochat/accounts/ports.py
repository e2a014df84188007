"""The accounts feature's narrow interfaces: a user's stored data, and Firebase Auth's accounts
(adapters: adapters/firestore_store.py, adapters/firebase_accounts.py; tests/fakes/accounts.py)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol


class AccountStore(Protocol):
    def delete_user(self, uid: str) -> int:
        """Delete users/{uid} and everything under it; returns how many documents went."""
        ...

    def user_ids(self) -> Iterator[str]:
        """Every uid with anything under users/ (also those whose profile document is gone)."""
        ...


class AccountDirectory(Protocol):
    def missing(self, uids: list[str]) -> set[str]:
        """Those of `uids` that have no Firebase Auth account (at most 100 per call)."""
        ...

    def delete_account(self, uid: str) -> bool:
        """Delete the Auth account (ops path); False when there was none."""
        ...
