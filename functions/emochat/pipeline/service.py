"""Turn one finalized voice upload into a chat message: the service layer of process_voice_message.

Order matters: cheap checks first, the paid calls last and concurrently, and the message document
exists (status processing) before anything can go wrong, so nothing is ever silently lost.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from emochat.domain import MessageStatus, Problem
from emochat.language import language_code
from emochat.pipeline import model
from emochat.pipeline.audio import UndecodableAudio, decode_audio
from emochat.pipeline.model import AudioLimits, Claim, StageResult, StressThresholds, VoicePath
from emochat.pipeline.ports import (
    AudioStore,
    MessageStore,
    ServiceError,
    StressScorer,
    Transcriber,
    VoiceClip,
)

log = logging.getLogger(__name__)

# Formats OpenAI's transcription API takes as they are; others (caf, 3gp, aac, opus) go as WAV.
STT_NATIVE_EXTENSIONS = frozenset({"m4a", "mp4", "mp3", "wav", "webm", "ogg"})
# OpenAI's documented upload limit is 25 MB, decimal; uploads are accepted up to 25 MiB. A file in
# between goes as the canonical WAV (16 kHz mono: 120 s is 3.8 MB) instead of being refused there.
STT_MAX_UPLOAD_BYTES = 25_000_000


@dataclass(frozen=True)
class Upload:
    """The parts of a Cloud Storage object-finalized event the pipeline uses."""

    bucket: str
    name: str
    generation: int
    content_type: str | None
    size_bytes: int
    metadata: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class PipelineConfig:
    thresholds: StressThresholds = field(default_factory=StressThresholds)
    limits: AudioLimits = field(default_factory=AudioLimits)
    max_upload_bytes: int = model.MAX_UPLOAD_BYTES
    # How long a processing claim holds before another delivery may retake it: the function timeout.
    lease_s: float = 300.0


@dataclass
class Services:
    transcriber: Transcriber
    stress_scorer: StressScorer
    audio_store: AudioStore
    messages: MessageStore


@dataclass(frozen=True)
class Outcome:
    """What happened to one event, for logs and tests."""

    claim: Claim | None
    status: MessageStatus | None
    problem: Problem | None = None
    timings: dict[str, int] = field(default_factory=dict)
    # The step that decided the outcome: route, claim, validate, download, decode or services.
    stage: str = "services"
    path: VoicePath | None = None


def _clock_ms(start: float) -> int:
    return round((time.perf_counter() - start) * 1000)


def _run_stage(call: Callable[[], object]) -> StageResult:
    start = time.perf_counter()
    try:
        value = call()
    except ServiceError as exc:
        return StageResult(None, Problem(exc.code, exc.message), _clock_ms(start))
    return StageResult(value, None, _clock_ms(start))


def _initial_fields(path: VoicePath, upload: Upload, lease_s: float) -> dict[str, Any]:
    now = datetime.now(UTC)
    return {
        "kind": "voice",
        "senderId": path.uid,
        "createdAt": now,
        "status": MessageStatus.PROCESSING.value,
        "audio": _audio_field(upload, None),
        "text": None,
        "language": language_code(upload.metadata.get("language")),
        "stress": None,
        "error": None,
        "timings": None,
        # Until then this attempt owns the message; past it, a redelivery or the sweeper takes over.
        "leaseExpiresAt": now + timedelta(seconds=lease_s),
    }


def _audio_field(upload: Upload, duration_ms: int | None) -> dict[str, Any]:
    return {
        "path": upload.name,
        "contentType": upload.content_type,
        "sizeBytes": upload.size_bytes,
        "durationMs": duration_ms,
        "generation": upload.generation,
    }


def process_upload(upload: Upload, services: Services, config: PipelineConfig) -> Outcome:
    """Validate, transcribe and score one upload, and write its message. Idempotent per generation."""
    started = time.perf_counter()
    path = model.parse_voice_path(upload.name)
    if path is None:
        return Outcome(claim=None, status=None, stage="route")

    claim = services.messages.claim(path, upload.generation, _initial_fields(path, upload, config.lease_s))
    if claim in (Claim.SKIP_DUPLICATE, Claim.SKIP_STALE):
        return Outcome(claim=claim, status=None, stage="claim", path=path)

    def finish(
        status: MessageStatus, problem: Problem | None, stage: str = "services", **fields: Any
    ) -> Outcome:
        fields.setdefault("audio", _audio_field(upload, None))
        timings = {**fields.pop("timings", {}), "totalMs": _clock_ms(started)}
        services.messages.finish(
            path,
            upload.generation,
            {
                "status": status.value,
                "error": problem.as_field() if problem else None,
                "timings": timings,
                "leaseExpiresAt": None,
                **fields,
            },
        )
        return Outcome(claim=claim, status=status, problem=problem, timings=timings, stage=stage, path=path)

    def reject(problem: Problem, stage: str, **fields: Any) -> Outcome:
        # A rejection replaces any earlier result: the message now stands for this upload.
        return finish(MessageStatus.REJECTED, problem, stage, text=None, stress=None, **fields)

    problem = model.check_upload(path, upload.content_type, upload.size_bytes, config.max_upload_bytes)
    if problem:
        return reject(problem, "validate")
    problem = model.check_membership(path, services.messages.chat_members(path.chat_id))
    if problem:
        return reject(problem, "validate")

    try:
        data = services.audio_store.download(upload.bucket, upload.name, upload.generation)
        decoded = decode_audio(data, max_duration_s=config.limits.max_duration_ms / 1000)
    except ServiceError as exc:
        return finish(MessageStatus.FAILED, Problem(exc.code, exc.message), "download")
    except UndecodableAudio as exc:
        # Refused before or while decoding, each reason with its code (emochat.pipeline.audio); a length
        # refused from what the file declares keeps that declared length.
        return reject(Problem(exc.code, str(exc)), "decode", audio=_audio_field(upload, exc.duration_ms))
    audio = _audio_field(upload, decoded.duration_ms)
    problem = model.check_audio(decoded.duration_ms, decoded.peak_dbfs, config.limits)
    if problem:
        return reject(problem, "decode", audio=audio)

    seconds = decoded.duration_ms / 1000
    wav = VoiceClip(decoded.to_wav(), f"{path.message_id}.wav", "audio/wav", seconds)
    original = VoiceClip(data, f"{path.message_id}.{path.ext}", upload.content_type or "audio/mp4", seconds)
    native = path.ext in STT_NATIVE_EXTENSIONS and len(data) <= STT_MAX_UPLOAD_BYTES
    stt_clip = original if native else wav
    language_hint = _language_hint(upload)

    # Both services are network-bound: two threads overlap them at no CPU cost.
    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="voice") as pool:
        stt_future = pool.submit(_run_stage, lambda: services.transcriber.transcribe(stt_clip, language_hint))
        stress_future = pool.submit(_run_stage, lambda: services.stress_scorer.score_stress(wav))
        stt, stress = stt_future.result(), stress_future.result()

    status, problem = model.outcome_status(stt, stress)
    # An empty transcript ("") is a ready message, not a failure: the audio passed the duration and
    # silence checks, so it is the sender's voice without recognisable words (a sigh, laughter,
    # humming, an unsupported language); the stress reading comes from the voice and stands. ""
    # (transcribed, no words) stays distinct from None (speech-to-text failed).
    transcript = stt.value
    stress_field = (
        model.stress_reading(stress.value, config.thresholds, services.stress_scorer.model_name)
        if isinstance(stress.value, float)
        else None
    )
    return finish(
        status,
        problem,
        audio=audio,
        text=transcript.text if transcript is not None else None,
        language=(transcript.language if transcript is not None else None) or language_hint,
        stress=stress_field,
        timings={"sttMs": stt.elapsed_ms, "stressMs": stress.elapsed_ms},
    )


def _language_hint(upload: Upload) -> str | None:
    """The sender's language hint as an ISO-639-1 code; one the API would refuse becomes no hint."""
    raw = upload.metadata.get("language")
    hint = language_code(raw)
    if raw and hint is None:
        log.info("language hint %r of %s is not a language code: transcribing without", raw[:40], upload.name)
    return hint


def sweep_abandoned(messages: MessageStore, now: float | None = None, limit: int = 200) -> list[str]:
    """Fail every message stuck in processing past its lease, so none stays a placeholder forever."""
    now = time.time() if now is None else now
    return [
        doc_path
        for doc_path in messages.abandoned(now, limit)
        if messages.fail_if_abandoned(doc_path, now, model.ABANDONED.as_field())
    ]
