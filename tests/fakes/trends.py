"""In-memory fake of the trends' port (TrendStore), decided by the same pure code as the adapter."""

from __future__ import annotations

import copy
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from emochat.trends import model as trends
from emochat.trends.model import TrendChange
from fakes.documents import Documents


class InMemoryTrendStore:
    """The Firestore adapter's behaviour over the shared documents."""

    def __init__(self, db: Documents) -> None:
        self._db = db

    def profile(self, uid: str) -> dict[str, Any]:
        return self._db.profile(uid)

    def message(self, chat_id: str, message_id: str) -> dict[str, Any] | None:
        return copy.deepcopy(self._db.docs.get(f"chats/{chat_id}/messages/{message_id}"))

    def apply_reading(self, change: TrendChange, time_zone: str) -> bool:
        with self._db.lock:
            if not self._db.account_open(change.user_id, needs_profile=True):
                return False
            index_path = f"users/{change.user_id}/stressIndex/{trends.index_id(change.key)}"
            stored_day = self._db.docs.get(index_path, {}).get("day")
            changed = False
            for day, reading in trends.day_writes(stored_day, change):
                path = f"users/{change.user_id}/stressDaily/{day}"
                update = trends.with_reading(self._db.docs.get(path), day, time_zone, change.key, reading)
                changed = changed or update.changed
                if update.changed and update.doc is None:
                    self._db.docs.pop(path, None)
                elif update.changed:
                    self._db.docs[path] = update.doc
            if change.reading is None:
                self._db.docs.pop(index_path, None)
            else:
                self._db.docs[index_path] = {"day": change.day}
            return changed

    def day_docs(self, uid: str, days: Iterable[str]) -> dict[str, dict[str, Any]]:
        paths = {day: f"users/{uid}/stressDaily/{day}" for day in days}
        return {day: copy.deepcopy(self._db.docs[p]) for day, p in paths.items() if p in self._db.docs}

    def sent_messages(self, uid: str) -> Iterator[tuple[str, dict[str, Any]]]:
        for path, chat_id, message_id in self._db.sent_messages(uid):
            yield f"{chat_id}/{message_id}", copy.deepcopy(self._db.docs[path])

    def replace_days(self, uid: str, docs: Mapping[str, dict[str, Any] | None]) -> None:
        for path in {
            **self._db.under(f"users/{uid}/stressDaily"),
            **self._db.under(f"users/{uid}/stressIndex"),
        }:
            del self._db.docs[path]
        for day, doc in docs.items():
            if doc is not None:
                self._db.docs[f"users/{uid}/stressDaily/{day}"] = doc
                for key in doc.get("readings", {}):
                    self._db.docs[f"users/{uid}/stressIndex/{trends.index_id(key)}"] = {"day": day}
