"""In-memory fakes of the accounts' ports: the user data store and Firebase Auth's directory."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

from emochat.accounts import model as accounts
from fakes.documents import Documents


class InMemoryAccountStore:
    """The Firestore adapter's behaviour over the shared documents."""

    def __init__(self, db: Documents) -> None:
        self._db = db

    def mark_deleted(self, uid: str, now: datetime) -> None:
        self._db.docs[accounts.tombstone_path(uid)] = accounts.tombstone(now)

    def _delete_tree(self, path: str) -> int:
        gone = [p for p in self._db.docs if p == path or p.startswith(path + "/")]
        for p in gone:
            del self._db.docs[p]
        return len(gone)

    def leave_chats(self, uid: str) -> int:
        changed = 0
        for path in list(self._db.under("chats")):
            leave = accounts.leave_chat(self._db.docs[path], uid)
            if leave is None:
                continue
            changed += 1
            if leave.delete_chat:
                self._delete_tree(path)
            else:
                self._db.docs[path].update(members=leave.members, invited=leave.invited)
        return changed

    def delete_sent_messages(self, uid: str) -> int:
        deleted = 0
        for path, chat_id, message_id in self._db.sent_messages(uid):
            deleted += self._delete_tree(path)
            deleted += self._delete_tree(f"chats/{chat_id}/alertMarkers/{message_id}")
        return deleted

    def delete_traces(self, uid: str) -> int:
        traced = [
            path
            for path, doc in self._db.docs.items()
            if path.split("/")[-2:-1] in (["alertMarkers"], ["notifications"]) and doc.get("senderId") == uid
        ]
        forgotten = 0
        for path, doc in self._db.docs.items():  # the per-sender cooldowns of other people's alert logs
            if path.endswith("/stats/alerts") and uid in doc.get("lastBySender", {}):
                del doc["lastBySender"][uid]
                forgotten += 1
        return sum(self._delete_tree(path) for path in traced) + forgotten

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


class InMemoryVoiceObjects:
    """Cloud Storage's voice objects, by name."""

    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}

    def delete_prefix(self, prefix: str) -> int:
        gone = [name for name in self.objects if name.startswith(prefix)]
        for name in gone:
            del self.objects[name]
        return len(gone)
