"""The trends' narrow interface to Firestore (adapter: adapters/firestore_store.py; unit tests:
tests/fakes/trends.py). Coping suggestions read the recent days through it too."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any, Protocol

from emochat.trends.model import TrendChange


class TrendStore(Protocol):
    def profile(self, uid: str) -> dict[str, Any]:
        """users/{uid} (empty when missing)."""
        ...

    def message(self, chat_id: str, message_id: str) -> dict[str, Any] | None: ...

    def apply_reading(self, change: TrendChange, time_zone: str) -> bool:
        """Atomically put or take out one message's reading in a day document (trends.with_reading);
        nothing for a uid the backend may not write for (accounts.model.account_open, with profile)."""
        ...

    def day_docs(self, uid: str, days: Iterable[str]) -> dict[str, dict[str, Any]]: ...

    def sent_messages(self, uid: str) -> Iterator[tuple[str, dict[str, Any]]]:
        """(reading key, message) for every message the user sent."""
        ...

    def replace_days(self, uid: str, docs: Mapping[str, dict[str, Any] | None]) -> None: ...
