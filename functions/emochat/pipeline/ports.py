"""Narrow interfaces between the service layer and the outside world.

Real adapters live in `emochat.adapters`; unit tests use in-memory fakes with the same shape.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from emochat.pipeline.budget import Deadline
from emochat.pipeline.model import Claim, DailyBudget, Holder, UploadedObject, VoicePath


class ServiceError(Exception):
    """A remote service gave up after its retries; `code` goes into the message's error field."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class StoreUnavailable(Exception):
    """The message store could not be reached or refused the request for now: worth trying again."""


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
    def transcribe(
        self, clip: VoiceClip, language: str | None, deadline: Deadline | None = None
    ) -> Transcript:
        """The transcript, with every attempt and wait inside `deadline`."""
        ...


class StressScorer(Protocol):
    model_name: str

    def score_stress(self, clip: VoiceClip, deadline: Deadline | None = None) -> float:
        """P(stressed) in [0, 1], with every attempt and wait inside `deadline`."""
        ...


class AudioStore(Protocol):
    def download(self, bucket: str, name: str, generation: int, timeout_s: float) -> bytes:
        """The object's bytes, retries included, within timeout_s."""
        ...


class MessageStore(Protocol):
    """Every method raises StoreUnavailable for a refusal worth retrying; the pipeline retries it."""

    def chat_members(self, chat_id: str) -> list[str] | None:
        """The chat's member uids, or None when the chat does not exist."""
        ...

    def claim(self, path: VoicePath, obj: UploadedObject, fields: dict[str, Any]) -> Claim:
        """Atomically decide (domain.decide_claim) and, for START/RETAKE, write `fields` (processing).

        Every skip leaves the message untouched; SKIP_DELETED, writing nothing, when the sender's
        account was deleted (accounts.model).
        """
        ...

    def finish(self, path: VoicePath, holder: Holder, fields: dict[str, Any]) -> bool:
        """Atomically write a result (partial or final), only while `holder` holds the message
        (domain.may_write): same object and claim token, still processing, lease not run out. When the
        sender's account was deleted meanwhile, delete the message instead (returns False)."""
        ...

    def charge_usage(self, uid: str, day: str, audio_seconds: float, budget: DailyBudget) -> bool:
        """Atomically count one message of `audio_seconds` in users/{uid}/usage/{day}, unless that
        would exceed `budget` (model.charge decides); False, and nothing counted, when over budget."""
        ...

    def record_stt_usage(self, path: VoicePath, day: str, usage: TranscriptionUsage) -> None:
        """Keep what one message's transcription was billed on, in backend bookkeeping the app never
        reads: users/{uid}/usage/{day}/transcriptions/{chatId}:{messageId}."""
        ...

    def abandoned(self, now: float, limit: int) -> list[str]:
        """Paths of messages still processing past their lease (at most `limit`)."""
        ...

    def fail_if_abandoned(self, doc_path: str, now: float, error: dict[str, str]) -> bool:
        """Atomically mark one message failed, unless it finished or was retaken meanwhile."""
        ...
