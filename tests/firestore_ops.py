"""Count the Firestore operations a piece of code makes, as Firestore bills them, at the one place
every read and write of google.cloud.firestore passes: the client's generated API (`_firestore_api`).

Counting there, not in our adapters, sees every call the adapters make now or will make (a new
transaction, a query, a batch) without knowing about it. Billing rules applied (Firestore pricing):
a document read for each document a get returns, found or missing; a query bills the documents it
returns, at least one; a write for each set/update/transform in a commit, a delete for each delete.
Starting, committing or rolling back a transaction costs nothing by itself. Any other RPC is listed
in `other`, so a new kind of call is noticed rather than silently not counted.

    ops = FirestoreOps.attach(db)         # once per client
    with ops.counting() as counted: ...   # counted.reads, counted.writes, counted.deletes
    counted.paths                         # which document each one was: ("read", "chats/c1"), ...
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

FREE = frozenset({"begin_transaction", "rollback"})


@dataclass
class Counted:
    reads: int = 0
    writes: int = 0
    deletes: int = 0
    other: list[str] = field(default_factory=list)
    # (kind, document path) of each operation, in order: where each count comes from.
    paths: list[tuple[str, str]] = field(default_factory=list)

    def as_dict(self) -> dict[str, int]:
        return {"reads": self.reads, "writes": self.writes, "deletes": self.deletes}


class _CountingApi:
    """Stands in for the client's generated Firestore API and counts what passes through."""

    def __init__(self, api: Any, ops: FirestoreOps) -> None:
        self._api, self._ops = api, ops

    def __getattr__(self, name: str) -> Any:
        target = getattr(self._api, name)
        if not callable(target) or name.startswith("_"):
            return target
        if name == "commit":
            return self._commit
        if name == "batch_get_documents":
            return lambda *a, **kw: self._ops.count_stream(target(*a, **kw), per_item=True)
        if name in ("run_query", "run_aggregation_query"):
            return lambda *a, **kw: self._ops.count_stream(target(*a, **kw), per_item=False)
        if name not in FREE:
            self._ops.add(other=name)
        return target

    def _commit(self, *args: Any, request: Any = None, **kwargs: Any) -> Any:
        writes = request["writes"] if isinstance(request, dict) else request.writes
        for write in writes:
            pb = getattr(write, "_pb", write)
            if pb.WhichOneof("operation") == "delete":
                self._ops.add(deletes=1, path=_relative(pb.delete))
            else:
                self._ops.add(writes=1, path=_relative(pb.update.name or pb.transform.document))
        return self._api.commit(*args, request=request, **kwargs)


class FirestoreOps:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._current: Counted | None = None

    @classmethod
    def attach(cls, db: Any) -> FirestoreOps:
        """Count db's operations from now on (idempotent: the same counter for the same client)."""
        api = db._firestore_api
        if isinstance(api, _CountingApi):
            return api._ops
        ops = cls()
        db._firestore_api_internal = _CountingApi(api, ops)
        return ops

    @contextlib.contextmanager
    def counting(self) -> Iterator[Counted]:
        counted = Counted()
        self._current = counted
        try:
            yield counted
        finally:
            self._current = None

    def add(
        self, reads: int = 0, writes: int = 0, deletes: int = 0, other: str | None = None, path: str = ""
    ) -> None:
        with self._lock:
            if self._current is None:
                return
            self._current.reads += reads
            self._current.writes += writes
            self._current.deletes += deletes
            if other:
                self._current.other.append(other)
            kind = "read" if reads else "write" if writes else "delete" if deletes else ""
            if kind:
                self._current.paths.append((kind, path))

    def count_stream(self, responses: Any, per_item: bool) -> Iterator[Any]:
        """A get bills each document answered (found or missing); a query its documents, at least 1.
        Counted as each answer arrives: a caller may stop reading after the first."""
        documents = 0
        for response in responses:
            pb = getattr(response, "_pb", response)
            if per_item or not hasattr(pb, "document") or pb.HasField("document"):
                documents += 1
                self.add(reads=1, path=_relative(_read_name(pb)))
            yield response
        if not per_item and documents == 0:
            self.add(reads=1, path="(query with no result)")


def _read_name(pb: Any) -> str:
    """The document a get or query answer is about (found or missing)."""
    if hasattr(pb, "found"):
        return pb.found.name if pb.HasField("found") else pb.missing
    return pb.document.name


def _relative(name: str) -> str:
    """projects/p/databases/d/documents/chats/c1 -> chats/c1"""
    return name.split("/documents/", 1)[-1]
