"""A Firestore document's stored size, by Firestore's published storage size calculation: what its
1 MiB document limit (1,048,576 bytes) is measured in. Neither the emulator nor the client reports
it, so the tests that bound a document's size estimate it with this."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from typing import Any

DOCUMENT_LIMIT = 1_048_576


def _string(value: str) -> int:
    return len(value.encode()) + 1


def value_size(value: Any) -> int:
    if value is None or isinstance(value, bool):
        return 1
    if isinstance(value, int | float | datetime | date):
        return 8
    if isinstance(value, str):
        return _string(value)
    if isinstance(value, bytes):
        return len(value)
    if isinstance(value, Mapping):
        return sum(_string(str(k)) + value_size(v) for k, v in value.items())
    if isinstance(value, list | tuple):
        return sum(value_size(v) for v in value)
    raise TypeError(f"no Firestore size for {type(value).__name__}")


def document_size(path: str, fields: Mapping[str, Any]) -> int:
    """Name (each collection and document id, + 16) + fields (names and values) + 32."""
    name = sum(_string(part) for part in path.split("/")) + 16
    return name + value_size(fields) + 32
