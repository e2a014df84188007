"""What every feature shares about a message: its states, its stress vocabulary, and its reading.

Pure Python, no I/O. The field names and values are the data contract the mobile app reads
(shared/design.md §2): change them only together with the app. `reading_of` is the one parser of
a stress reading from a message document: alerts and trends both read messages through it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any


class MessageStatus(StrEnum):
    PROCESSING = "processing"
    READY = "ready"
    FAILED = "failed"  # a service error outlasted its retries
    REJECTED = "rejected"  # bad input: retrying cannot help

    @property
    def is_terminal(self) -> bool:
        return self is not MessageStatus.PROCESSING


class StressLevel(StrEnum):
    LOW = "low"
    MODERATE = "moderate"
    HIGH = "high"


STRESS_LEVELS: tuple[str, ...] = tuple(level.value for level in StressLevel)


@dataclass(frozen=True)
class Problem:
    """Why a message was rejected or failed: `code` for machines, `message` for people."""

    code: str
    message: str

    def as_field(self) -> dict[str, str]:
        return {"code": self.code, "message": self.message}


class RequestError(Exception):
    """A caller's request cannot be served; `code` is a callable error code (invalid-argument, ...)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def int_arg(data: Mapping[str, Any], name: str, default: int, low: int, high: int) -> int:
    """A whole-number argument of a callable, within low..high; RequestError otherwise."""
    value = data.get(name, default)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int | float) or int(value) != value:
        raise RequestError("invalid-argument", f"'{name}' must be a whole number.")
    if not low <= value <= high:
        raise RequestError("invalid-argument", f"'{name}' must be within {low}..{high}.")
    return int(value)


def finite_number(value: Any) -> float | None:
    """A stored number as a float; None for anything else (bool, NaN, ±inf, strings, missing)."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(value)


@dataclass(frozen=True)
class MessageReading:
    """The stress reading a ready message carries, with its sender and when it was sent."""

    sender_id: str
    score: float
    level: StressLevel
    at: datetime | None  # createdAt; None when the document has no timestamp


def is_ready(message: Mapping[str, Any] | None) -> bool:
    return bool(message) and message.get("status") == MessageStatus.READY.value  # type: ignore[union-attr]


def reading_of(message: Mapping[str, Any] | None) -> MessageReading | None:
    """The reading of a ready message, or None when it has no usable one.

    Usable: a sender, a `stress` map with a finite numeric score (not a bool) and a known level.
    """
    if not is_ready(message):
        return None
    assert message is not None
    sender = message.get("senderId")
    stress = message.get("stress")
    if not isinstance(sender, str) or not sender or not isinstance(stress, Mapping):
        return None
    score = finite_number(stress.get("score"))
    level = stress.get("level")
    if score is None or level not in STRESS_LEVELS:
        return None
    created = message.get("createdAt")
    return MessageReading(
        sender, score, StressLevel(level), created if isinstance(created, datetime) else None
    )
