"""Narrow interfaces between the service layer and the outside world.

Real adapters live in `emochat.adapters`; unit tests use in-memory fakes with the same shape.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from emochat.pipeline.model import Claim, VoicePath


class ServiceError(Exception):
    """A remote service gave up after its retries; `code` goes into the message's error field."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class VoiceClip:
    """One voice message's audio as the services receive it."""

    data: bytes
    filename: str
    content_type: str
    duration_s: float | None = None  # as decoded by the pipeline: what a per-minute price is paid on


@dataclass(frozen=True)
class TranscriptionUsage:
    """What one transcription was billed on: backend bookkeeping, never a field the app shows."""

    model: str
    audio_seconds: float | None  # the length of the audio sent
    api_usage: dict[str, Any] | None  # the API's own `usage` (tokens or duration), as it answered

    def as_field(self) -> dict[str, Any]:
        return {"model": self.model, "audioSeconds": self.audio_seconds, "usage": self.api_usage}


@dataclass(frozen=True)
class Transcript:
    text: str
    language: str | None  # ISO-639-1: the one the API detected, else the hint
    usage: TranscriptionUsage | None = None


class Transcriber(Protocol):
    def transcribe(self, clip: VoiceClip, language: str | None) -> Transcript: ...


class StressScorer(Protocol):
    model_name: str

    def score_stress(self, clip: VoiceClip) -> float:
        """P(stressed) in [0, 1]."""
        ...


class AudioStore(Protocol):
    def download(self, bucket: str, name: str, generation: int) -> bytes: ...


class MessageStore(Protocol):
    def chat_members(self, chat_id: str) -> list[str] | None:
        """The chat's member uids, or None when the chat does not exist."""
        ...

    def claim(self, path: VoicePath, generation: int, fields: dict[str, Any]) -> Claim:
        """Atomically decide (domain.decide_claim) and, unless skipping, mark the message as taken.

        START/RETAKE write `fields` (status processing); REPLACE records the pending generation
        but leaves a finished message's visible fields alone until the new result is written.
        """
        ...

    def finish(self, path: VoicePath, generation: int, fields: dict[str, Any]) -> bool:
        """Atomically write a final result unless a newer generation has taken the message."""
        ...

    def abandoned(self, now: float, limit: int) -> list[str]:
        """Paths of messages still processing past their lease (at most `limit`)."""
        ...

    def fail_if_abandoned(self, doc_path: str, now: float, error: dict[str, str]) -> bool:
        """Atomically mark one message failed, unless it finished or was retaken meanwhile."""
        ...
