"""The Firestore documents the in-memory fakes share: one dict of document paths, so that what one
feature's fake writes (a message, a profile) is what another's reads, as in Firestore."""

from __future__ import annotations

import copy
import threading
from typing import Any


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

    def profile(self, uid: str) -> dict[str, Any]:
        return copy.deepcopy(self.docs.get(f"users/{uid}", {}))
