"""The voice pipeline's decisions: voice paths, upload checks, stress scores, message claims.

Pure Python, no I/O: everything here is decided from values, so it is unit-tested exhaustively and
the triggers stay thin. The field names and codes are the data contract the mobile app reads
(shared/design.md §2): change them only together with the app.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

from emochat.domain import MessageStatus, Problem, StressLevel

VOICE_PREFIX = "voice"
AUDIO_EXTENSIONS = frozenset({"m4a", "mp4", "aac", "wav", "webm", "ogg", "opus", "mp3", "caf", "3gp"})
# Some Android recorders label voice notes video/mp4; they are still audio-only files.
EXTRA_CONTENT_TYPES = frozenset({"video/mp4"})
MAX_UPLOAD_BYTES = 25 * 1024 * 1024


# ── Storage paths ────────────────────────────────────────────────────────────────────────────────


@dataclass(frozen=True)
class VoicePath:
    """voice/{uid}/{chatId}/{messageId}.{ext}: who sent which message into which chat."""

    uid: str
    chat_id: str
    message_id: str
    ext: str

    @property
    def message_doc(self) -> str:
        return f"chats/{self.chat_id}/messages/{self.message_id}"


def _is_valid_doc_id(segment: str) -> bool:
    # Firestore's own limits on a document id; anything else would make the write itself fail.
    return (
        bool(segment)
        and segment not in {".", ".."}
        and not (segment.startswith("__") and segment.endswith("__"))
        and len(segment.encode()) <= 1500
    )


def parse_voice_path(name: str) -> VoicePath | None:
    """The voice path an object name stands for, or None when the object is not a voice message.

    None covers everything outside voice/ and voice paths with no chat or message to write to:
    without a chatId and messageId there is no message document where a rejection could be shown.
    An unsupported extension still parses, so that it can be rejected visibly.
    """
    parts = name.split("/")
    if len(parts) != 4 or parts[0] != VOICE_PREFIX:
        return None
    uid, chat_id, file_name = parts[1], parts[2], parts[3]
    message_id, dot, ext = file_name.rpartition(".")
    if not dot:
        message_id, ext = file_name, ""
    if not all(_is_valid_doc_id(s) for s in (uid, chat_id, message_id)):
        return None
    # The extension is kept as written: only lowercase ones are accepted (check_upload), so one
    # message id cannot be reached under `.WAV`, `.Wav` and `.wav` (storage.rules agree).
    return VoicePath(uid=uid, chat_id=chat_id, message_id=message_id, ext=ext)


# ── Upload checks (before any paid call) ─────────────────────────────────────────────────────────


def is_audio_content_type(content_type: str | None) -> bool:
    if not content_type:
        return False
    media_type = content_type.split(";", 1)[0].strip().lower()
    return media_type.startswith("audio/") or media_type in EXTRA_CONTENT_TYPES


def check_upload(
    path: VoicePath, content_type: str | None, size_bytes: int, max_bytes: int = MAX_UPLOAD_BYTES
) -> Problem | None:
    """The first reason the stored object cannot be a voice message, judged from its metadata."""
    if path.ext not in AUDIO_EXTENSIONS:
        allowed = ", ".join(sorted(AUDIO_EXTENSIONS))
        return Problem("unsupported_extension", f"File extension '.{path.ext}' is not one of: {allowed}.")
    if not is_audio_content_type(content_type):
        return Problem(
            "unsupported_content_type", f"Content type '{content_type or 'none'}' is not an audio type."
        )
    if size_bytes <= 0:
        return Problem("empty_file", "The uploaded file is empty.")
    if size_bytes > max_bytes:
        return Problem(
            "file_too_large",
            f"The file is {size_bytes / 2**20:.1f} MiB; the limit is {max_bytes / 2**20:.0f} MiB.",
        )
    return None


def check_membership(path: VoicePath, members: list[str] | None) -> Problem | None:
    """The sender must be a member of an existing chat: the path alone proves nothing."""
    if members is None:
        return Problem("chat_not_found", f"Chat '{path.chat_id}' does not exist.")
    if path.uid not in members:
        return Problem("not_a_member", "The sender is not a member of this chat.")
    return None


@dataclass(frozen=True)
class AudioLimits:
    max_duration_ms: int = 120_000
    min_duration_ms: int = 300
    # Peak level in dBFS below which a clip is treated as silence (a muted or covered microphone).
    silence_peak_dbfs: float = -50.0


def check_audio(duration_ms: int, peak_dbfs: float, limits: AudioLimits) -> Problem | None:
    """The first reason decoded audio is not worth transcribing."""
    if duration_ms < limits.min_duration_ms:
        return Problem(
            "audio_too_short",
            f"The recording is {duration_ms} ms; at least {limits.min_duration_ms} ms are needed.",
        )
    if duration_ms > limits.max_duration_ms:
        return Problem(
            "audio_too_long",
            f"The recording is {duration_ms / 1000:.1f} s; "
            f"the limit is {limits.max_duration_ms / 1000:.0f} s.",
        )
    if peak_dbfs < limits.silence_peak_dbfs:
        return Problem("silent_audio", "The recording contains only silence.")
    return None


# ── Stress readings ──────────────────────────────────────────────────────────────────────────────


@dataclass(frozen=True)
class StressThresholds:
    """level low < moderate ≤ score < high ≤ score, on the 0–100 scale."""

    moderate: float = 30.0
    high: float = 60.0

    def __post_init__(self) -> None:
        if not 0.0 <= self.moderate <= self.high <= 100.0:
            raise ValueError(f"need 0 ≤ moderate ≤ high ≤ 100, got {self.moderate}, {self.high}")


def score_from_probability(p_stressed: float) -> float:
    """score = 100 × P(stressed), one decimal."""
    if math.isnan(p_stressed) or not 0.0 <= p_stressed <= 1.0:
        raise ValueError(f"P(stressed) must be within [0, 1], got {p_stressed}")
    return round(100.0 * p_stressed, 1)


def stress_level(score: float, thresholds: StressThresholds) -> StressLevel:
    if score >= thresholds.high:
        return StressLevel.HIGH
    if score >= thresholds.moderate:
        return StressLevel.MODERATE
    return StressLevel.LOW


def stress_reading(p_stressed: float, thresholds: StressThresholds, model: str) -> dict:
    """The message's `stress` field for a model's P(stressed)."""
    score = score_from_probability(p_stressed)
    return {
        "score": score,
        "level": stress_level(score, thresholds).value,
        "probability": round(p_stressed, 4),
        "model": model,
    }


# ── Message lifecycle and delivery ──────────────────────────────────────────────────────────────


class Claim(StrEnum):
    """What to do with a finalize event, given what the message document already holds.

    A message id belongs to the first object uploaded for it: its sender (the path's uid) and that
    object's name and generation. Any other object for the same id (another uid, another extension
    or case, the same name uploaded again) never changes the message; a retry is a new message id.
    """

    START = "start"  # no message yet: create it as processing
    RETAKE = "retake"  # this object's earlier attempt died mid-way (its lease ran out): process again
    SKIP_DUPLICATE = "skip_duplicate"  # this object is done or in flight already (a redelivery)
    SKIP_NOT_SENDER = "skip_not_sender"  # the path's uid is not the message's sender
    SKIP_TAKEN = "skip_taken"  # the message stands for another object of its sender
    SKIP_DELETED = "skip_deleted"  # the sender's account was deleted (accounts.model.account_open)

    @property
    def proceeds(self) -> bool:
        return self in (Claim.START, Claim.RETAKE)


@dataclass(frozen=True)
class UploadedObject:
    """Which object a finalize event is about: the identity a message is bound to."""

    name: str
    generation: int


@dataclass(frozen=True)
class MessageState:
    """The parts of a stored message that decide how a new delivery is handled."""

    status: MessageStatus
    sender_id: str | None
    object: UploadedObject | None  # audio.path and audio.generation of the object it stands for
    lease_expires_at: float | None = None  # epoch seconds; only while processing
    claim_token: str | None = None  # which run holds it (a new one per START and RETAKE)


@dataclass(frozen=True)
class Holder:
    """One run's hold on a message: the object it processes and the token its claim wrote."""

    object: UploadedObject
    token: str


def decide_claim(existing: MessageState | None, path: VoicePath, obj: UploadedObject, now: float) -> Claim:
    """At-least-once delivery made idempotent, and a message bound to its sender and first object."""
    if existing is None:
        return Claim.START
    if existing.sender_id != path.uid:
        return Claim.SKIP_NOT_SENDER
    if existing.object != obj:
        return Claim.SKIP_TAKEN
    if existing.status is MessageStatus.PROCESSING:
        expired = existing.lease_expires_at is not None and existing.lease_expires_at <= now
        return Claim.RETAKE if expired else Claim.SKIP_DUPLICATE
    return Claim.SKIP_DUPLICATE


def may_write(existing: MessageState | None, holder: Holder, now: float) -> bool:
    """A run writes (a partial or the final result) only while it holds the message: the message
    stands for its object, carries its claim token, is still processing and its lease runs.

    So a run that outlived its lease (a zombie) writes nothing, and a message that was swept
    (failed) or retaken (a new token) keeps what its new owner wrote.
    """
    return (
        existing is not None
        and existing.object == holder.object
        and existing.claim_token == holder.token
        and existing.status is MessageStatus.PROCESSING
        and existing.lease_expires_at is not None
        and now < existing.lease_expires_at
    )


@dataclass(frozen=True)
class StageResult:
    """What one service produced: a value or a problem, and how long it took."""

    value: object | None
    problem: Problem | None
    elapsed_ms: int


def outcome_status(stt: StageResult, stress: StageResult) -> tuple[MessageStatus, Problem | None]:
    """Ready when both services answered; failed, with the first reason, when either gave up.

    The caller stores whatever the other service produced, so a failure loses nothing.
    """
    problems = [r.problem for r in (stt, stress) if r.problem is not None]
    if not problems:
        return MessageStatus.READY, None
    if len(problems) == 2:
        return MessageStatus.FAILED, Problem(
            "services_unavailable", f"{problems[0].message} {problems[1].message}"
        )
    return MessageStatus.FAILED, problems[0]


def is_abandoned(state: MessageState | None, now: float) -> bool:
    """Still processing after its lease ran out: the attempt died (timeout, crash, lost instance)."""
    return (
        state is not None
        and state.status is MessageStatus.PROCESSING
        and state.lease_expires_at is not None
        and state.lease_expires_at <= now
    )


ABANDONED = Problem(
    "processing_timeout", "Processing did not finish in time. Please send the voice message again."
)


# ── Daily voice budget (per user) ────────────────────────────────────────────────────────────────


@dataclass(frozen=True)
class DailyBudget:
    """What one user may send to the paid services per UTC day."""

    messages: int = 200
    audio_seconds: float = 3600.0


@dataclass(frozen=True)
class Usage:
    """users/{uid}/usage/{YYYY-MM-DD}: what the user has sent that day."""

    messages: int = 0
    audio_seconds: float = 0.0


def usage_day(epoch_s: float) -> str:
    """The usage document's id: the UTC date. Not the user's local date: users/{uid}.timeZone is the
    user's to change, and a budget day must not restart when it does."""
    return datetime.fromtimestamp(epoch_s, UTC).date().isoformat()


def charge(used: Usage, audio_seconds: float, budget: DailyBudget) -> Usage | None:
    """The usage after one more message of `audio_seconds`, or None when it would exceed the budget."""
    after = Usage(used.messages + 1, round(used.audio_seconds + audio_seconds, 3))
    if after.messages > budget.messages or after.audio_seconds > budget.audio_seconds:
        return None
    return after


def quota_exceeded(budget: DailyBudget) -> Problem:
    return Problem(
        "quota_exceeded",
        f"Today's voice budget is used up ({budget.messages} messages or "
        f"{budget.audio_seconds / 60:.0f} minutes a day). It renews at midnight UTC.",
    )
