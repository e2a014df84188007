"""In-memory fakes of the accounts' ports: the user data store and Firebase Auth's directory."""

from __future__ import annotations

from collections.abc import Iterator

from fakes.documents import Documents


class InMemoryAccountStore:
    """The Firestore adapter's behaviour over the shared documents."""

    def __init__(self, db: Documents) -> None:
        self._db = db

    def delete_user(self, uid: str) -> int:
        gone = [p for p in self._db.docs if p == f"users/{uid}" or p.startswith(f"users/{uid}/")]
        for path in gone:
            del self._db.docs[path]
        return len(gone)

    def user_ids(self) -> Iterator[str]:
        yield from sorted({p.split("/")[1] for p in self._db.docs if p.startswith("users/")})


class FakeAccounts:
    def __init__(self, existing: set[str]) -> None:
        self.existing = existing
        self.calls: list[list[str]] = []

    def missing(self, uids: list[str]) -> set[str]:
        assert len(uids) <= 100
        self.calls.append(uids)
        return {u for u in uids if u not in self.existing}

    def delete_account(self, uid: str) -> bool:
        present = uid in self.existing
        self.existing.discard(uid)
        return present
