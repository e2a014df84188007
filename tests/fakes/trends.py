"""In-memory fake of the trends' port (TrendStore), decided by the same pure code as the adapter."""

from __future__ import annotations

import copy
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from emochat.trends import model as trends
from emochat.trends.model import Reading, TrendChange
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
            stored = trends.Stored.parse(self._db.docs.get(index_path))
            days = {change.day, *([stored.day] if stored else [])}
            current = {day: self._db.docs.get(f"users/{change.user_id}/stressDaily/{day}") for day in days}
            writes = trends.day_writes(stored, change, current)
            for write in writes:
                latest = (
                    self._latest_other(change.user_id, write.day, change.key)
                    if trends.needs_latest_other(current[write.day], change.key, write)
                    else None
                )
                update = trends.with_reading(current[write.day], time_zone, change.key, write, latest)
                self._put(f"users/{change.user_id}/stressDaily/{write.day}", update.doc)
            index_update = trends.index_update(stored, change)
            if index_update.changed:
                self._put(index_path, index_update.doc)
            return bool(writes)

    def _put(self, path: str, doc: dict[str, Any] | None) -> None:
        if doc is None:
            self._db.docs.pop(path, None)
        else:
            self._db.docs[path] = doc

    def _latest_other(self, uid: str, day: str, key: str) -> trends.Latest | None:
        """The adapter's query (day ==, at desc, document id desc) over the index documents."""
        own = trends.index_id(key)
        found = [
            trends.Latest(reading.at, path.rsplit("/", 1)[1], reading)
            for path, doc in self._db.under(f"users/{uid}/stressIndex").items()
            if doc.get("day") == day
            and path.rsplit("/", 1)[1] != own
            and (reading := trends.Reading.parse(doc)) is not None
        ]
        return max(found) if found else None

    def day_docs(self, uid: str, days: Iterable[str]) -> dict[str, dict[str, Any]]:
        paths = {day: f"users/{uid}/stressDaily/{day}" for day in days}
        return {day: copy.deepcopy(self._db.docs[p]) for day, p in paths.items() if p in self._db.docs}

    def sent_messages(self, uid: str) -> Iterator[tuple[str, dict[str, Any]]]:
        for path, chat_id, message_id in self._db.sent_messages(uid):
            yield f"{chat_id}/{message_id}", copy.deepcopy(self._db.docs[path])

    def replace_days(
        self, uid: str, docs: Mapping[str, dict[str, Any]], placed: Mapping[str, tuple[str, Reading]]
    ) -> None:
        for path in {
            **self._db.under(f"users/{uid}/stressDaily"),
            **self._db.under(f"users/{uid}/stressIndex"),
        }:
            del self._db.docs[path]
        for day, doc in docs.items():
            self._db.docs[f"users/{uid}/stressDaily/{day}"] = doc
        for key, (day, reading) in placed.items():
            self._db.docs[f"users/{uid}/stressIndex/{trends.index_id(key)}"] = trends.index_doc(day, reading)
