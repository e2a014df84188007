"""Turn one finalized voice upload into a chat message: the service layer of process_voice_message.

Order matters: cheap checks first, the paid calls last and concurrently, and the message document
exists (status processing) before anything can go wrong, so nothing is ever silently lost. One
deadline travels with the event: every call gets the smaller of its own timeout and the time left,
and the final write keeps a reserve, so every run ends (and writes its end) inside the timeout.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

from emochat.domain import MessageStatus, Problem
from emochat.language import language_code
from emochat.pipeline import model
from emochat.pipeline.audio import UndecodableAudio, decode_audio
from emochat.pipeline.budget import SYSTEM_CLOCK, Clock, Deadline
from emochat.pipeline.model import (
    AudioLimits,
    Claim,
    DailyBudget,
    Holder,
    StageResult,
    StressThresholds,
    UploadedObject,
    VoicePath,
)
from emochat.pipeline.ports import (
    AudioStore,
    MessageStore,
    ServiceError,
    StoreUnavailable,
    StressScorer,
    Transcriber,
    Transcript,
    VoiceClip,
)

log = logging.getLogger(__name__)

# Formats OpenAI's transcription API takes as they are; others (caf, 3gp, aac, opus) go as WAV.
STT_NATIVE_EXTENSIONS = frozenset({"m4a", "mp4", "mp3", "wav", "webm", "ogg"})
# OpenAI's documented upload limit is 25 MB, decimal; uploads are accepted up to 25 MiB. A file in
# between goes as the canonical WAV (16 kHz mono: 120 s is 3.8 MB) instead of being refused there.
STT_MAX_UPLOAD_BYTES = 25_000_000
# Firestore writes refused as unavailable are tried again after these pauses, while time is left.
WRITE_BACKOFF_S, WRITE_MAX_BACKOFF_S, WRITE_MIN_ATTEMPT_S = 0.5, 4.0, 1.0

NOT_HOLDER = "the run no longer holds the message"  # swept, retaken or past its lease: not an error

_T = TypeVar("_T")


@dataclass(frozen=True)
class Upload:
    """The parts of a Cloud Storage object-finalized event the pipeline uses."""

    bucket: str
    name: str
    generation: int
    content_type: str | None
    size_bytes: int
    metadata: dict[str, str] = field(default_factory=dict)

    @property
    def object(self) -> UploadedObject:
        return UploadedObject(self.name, self.generation)


@dataclass(frozen=True)
class PipelineConfig:
    thresholds: StressThresholds = field(default_factory=StressThresholds)
    limits: AudioLimits = field(default_factory=AudioLimits)
    budget: DailyBudget = field(default_factory=DailyBudget)
    max_upload_bytes: int = model.MAX_UPLOAD_BYTES
    # The function's timeout: the whole run, its last write included, ends inside it.
    timeout_s: float = 300.0
    # Kept back from the download and the services for the final write and its retries.
    write_reserve_s: float = 30.0
    # Kept back from everything: the function's own start and return.
    safety_s: float = 5.0
    # A lease outlives the run holding it (timeout + margin), so a live run is never retaken.
    lease_margin_s: float = 60.0
    download_timeout_s: float = 60.0

    @property
    def lease_s(self) -> float:
        return self.timeout_s + self.lease_margin_s


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
    # False when the run's last write did not land: refused (it no longer held the message) or
    # impossible (Firestore unavailable until the deadline; `unwritten` says why).
    written: bool = True
    unwritten: str | None = None
    # Unexpected exceptions turned into a stage's failure ("stt: KeyError"), for the error log.
    crashes: tuple[str, ...] = ()

    @property
    def lost(self) -> bool:
        """The run's end could not be written and no other run holds the message: an operator acts."""
        return not self.written and self.unwritten != NOT_HOLDER


@dataclass
class _Run:
    """One event's run: its clock, deadlines and hold on the message."""

    upload: Upload
    path: VoicePath
    services: Services
    config: PipelineConfig
    clock: Clock
    started: float
    holder: Holder
    crashes: list[str] = field(default_factory=list)

    @property
    def write_deadline(self) -> Deadline:
        return Deadline(self.started + self.config.timeout_s - self.config.safety_s, self.clock)

    @property
    def work_deadline(self) -> Deadline:
        return Deadline(self.write_deadline.at - self.config.write_reserve_s, self.clock)

    def elapsed_ms(self, since: float | None = None) -> int:
        return round((self.clock.monotonic() - (self.started if since is None else since)) * 1000)

    def write(self, fields: dict[str, Any], retry: bool = True) -> tuple[bool, str | None]:
        """(written, why not) for a write of this run's result into its message. The final write is
        retried while the deadline allows; a partial one is tried once (the final one follows)."""
        deadline = self.write_deadline if retry else Deadline(-1.0, self.clock)
        try:
            written = _retrying(
                lambda: self.services.messages.finish(self.path, self.holder, fields), deadline
            )
        except StoreUnavailable as exc:
            return False, f"the message store is unavailable: {exc}"
        return written, None if written else NOT_HOLDER

    def run_stage(self, name: str, call: Callable[[], object]) -> StageResult:
        start = self.clock.monotonic()
        try:
            value = call()
        except ServiceError as exc:
            return StageResult(None, Problem(exc.code, exc.message), self.elapsed_ms(start))
        except Exception as exc:  # a bug or an error type no adapter maps: this stage failed, not the run
            self.crashes.append(f"{name}: {type(exc).__name__}")
            problem = Problem(f"{name}_unavailable", f"{_STAGE_NAMES[name]} failed unexpectedly.")
            return StageResult(None, problem, self.elapsed_ms(start))
        return StageResult(value, None, self.elapsed_ms(start))


_STAGE_NAMES = {"stt": "Speech-to-text", "stress": "The stress model"}


def _retrying(call: Callable[[], _T], deadline: Deadline) -> _T:
    """call(), tried again after StoreUnavailable with growing pauses while the deadline allows."""
    attempt = 0
    while True:
        try:
            return call()
        except StoreUnavailable:
            wait_s = min(WRITE_BACKOFF_S * 2**attempt, WRITE_MAX_BACKOFF_S)
            if not deadline.leaves(wait_s, WRITE_MIN_ATTEMPT_S):
                raise
            deadline.clock.sleep(wait_s)
            attempt += 1


def _initial_fields(
    path: VoicePath, upload: Upload, token: str, lease_s: float, clock: Clock = SYSTEM_CLOCK
) -> dict[str, Any]:
    now = clock.time()
    return {
        "kind": "voice",
        "senderId": path.uid,
        "createdAt": datetime.fromtimestamp(now, UTC),
        "status": MessageStatus.PROCESSING.value,
        "audio": _audio_field(upload, None),
        "text": None,
        "language": language_code(upload.metadata.get("language")),
        "stress": None,
        "error": None,
        "timings": None,
        # Until then this run owns the message; past it, a redelivery or the sweeper takes over,
        # and this run's writes are refused (its token and lease no longer hold).
        "claimToken": token,
        "leaseExpiresAt": datetime.fromtimestamp(now + lease_s, UTC),
    }


def _audio_field(upload: Upload, duration_ms: int | None) -> dict[str, Any]:
    return {
        "path": upload.name,
        "contentType": upload.content_type,
        "sizeBytes": upload.size_bytes,
        "durationMs": duration_ms,
        "generation": upload.generation,
    }


def process_upload(
    upload: Upload, services: Services, config: PipelineConfig, clock: Clock = SYSTEM_CLOCK
) -> Outcome:
    """Validate, transcribe and score one upload, and write its message.

    Idempotent per object; the message stays bound to its sender and to its first object (any other
    object for the same id is skipped at the claim, before it is even read).
    """
    started = clock.monotonic()
    path = model.parse_voice_path(upload.name)
    if path is None:
        return Outcome(claim=None, status=None, stage="route")
    token = uuid.uuid4().hex
    run = _Run(upload, path, services, config, clock, started, Holder(upload.object, token))
    fields = _initial_fields(path, upload, token, config.lease_s, clock)
    try:
        claim = _retrying(lambda: services.messages.claim(path, upload.object, fields), run.work_deadline)
    except StoreUnavailable as exc:
        unwritten = f"the message store is unavailable: {exc}"
        return Outcome(None, None, stage="claim", path=path, written=False, unwritten=unwritten)
    if not claim.proceeds:
        return Outcome(claim=claim, status=None, stage="claim", path=path)
    return _process_claimed(run, claim)


def _process_claimed(run: _Run, claim: Claim) -> Outcome:
    upload, path, services, config = run.upload, run.path, run.services, run.config

    def finish(
        status: MessageStatus, problem: Problem | None, stage: str = "services", **fields: Any
    ) -> Outcome:
        fields.setdefault("audio", _audio_field(upload, None))
        timings = {**fields.pop("timings", {}), "totalMs": run.elapsed_ms()}
        written, why_not = run.write(
            {
                "status": status.value,
                "error": problem.as_field() if problem else None,
                "timings": timings,
                "leaseExpiresAt": None,
                **fields,
            }
        )
        return Outcome(
            claim=claim,
            status=status,
            problem=problem,
            timings=timings,
            stage=stage,
            path=path,
            written=written,
            unwritten=why_not,
            crashes=tuple(run.crashes),
        )

    def reject(problem: Problem, stage: str, **fields: Any) -> Outcome:
        return finish(MessageStatus.REJECTED, problem, stage, text=None, stress=None, **fields)

    problem = model.check_upload(path, upload.content_type, upload.size_bytes, config.max_upload_bytes)
    if problem:
        return reject(problem, "validate")
    try:
        members = _retrying(lambda: services.messages.chat_members(path.chat_id), run.work_deadline)
    except StoreUnavailable as exc:
        problem = Problem(
            "chat_unavailable", "The chat could not be read. Please send the voice message again."
        )
        run.crashes.append(f"validate: {exc}")
        return finish(MessageStatus.FAILED, problem, "validate")
    problem = model.check_membership(path, members)
    if problem:
        return reject(problem, "validate")

    try:
        data = services.audio_store.download(
            upload.bucket, upload.name, upload.generation, run.work_deadline.allow(config.download_timeout_s)
        )
    except ServiceError as exc:
        return finish(MessageStatus.FAILED, Problem("audio_unavailable", exc.message), "download")
    except Exception as exc:  # whatever the storage client raised (a retry error, a socket error)
        run.crashes.append(f"download: {type(exc).__name__}")
        problem = Problem("audio_unavailable", f"The uploaded file could not be read ({type(exc).__name__}).")
        return finish(MessageStatus.FAILED, problem, "download")
    try:
        decoded = decode_audio(data, max_duration_s=config.limits.max_duration_ms / 1000)
    except UndecodableAudio as exc:
        # Refused before or while decoding, each reason with its code (emochat.pipeline.audio); a length
        # refused from what the file declares keeps that declared length.
        return reject(Problem(exc.code, str(exc)), "decode", audio=_audio_field(upload, exc.duration_ms))
    except Exception as exc:  # the decoder's own failure on some input: still that input's fault
        run.crashes.append(f"decode: {type(exc).__name__}")
        return reject(
            Problem("undecodable_audio", f"The file is not decodable audio ({type(exc).__name__})."), "decode"
        )
    audio = _audio_field(upload, decoded.duration_ms)
    problem = model.check_audio(decoded.duration_ms, decoded.peak_dbfs, config.limits)
    if problem:
        return reject(problem, "decode", audio=audio)

    # Counted once the audio is known to be worth sending (its true duration decoded), before any
    # paid call: bad input costs no paid call and no budget, and every admitted message is counted
    # in the same transaction that checks the budget, so concurrent uploads cannot overdraw it.
    day = model.usage_day(run.clock.time())
    seconds = decoded.duration_ms / 1000
    try:
        admitted = _retrying(
            lambda: services.messages.charge_usage(path.uid, day, seconds, config.budget), run.work_deadline
        )
    except StoreUnavailable:
        problem = Problem(
            "usage_unavailable", "The daily voice budget could not be checked. Please try again."
        )
        return finish(MessageStatus.FAILED, problem, "quota", audio=audio)
    if not admitted:
        return reject(model.quota_exceeded(config.budget), "quota", audio=audio)

    seconds = decoded.duration_ms / 1000
    wav = VoiceClip(decoded.to_wav(), f"{path.message_id}.wav", "audio/wav", seconds)
    original = VoiceClip(data, f"{path.message_id}.{path.ext}", upload.content_type or "audio/mp4", seconds)
    native = path.ext in STT_NATIVE_EXTENSIONS and len(data) <= STT_MAX_UPLOAD_BYTES
    stt_clip = original if native else wav
    language_hint = _language_hint(upload)
    deadline = run.work_deadline

    # Both services are network-bound: two threads overlap them at no CPU cost.
    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="voice") as pool:
        stt_future = pool.submit(
            run.run_stage, "stt", lambda: services.transcriber.transcribe(stt_clip, language_hint, deadline)
        )
        stress_future = pool.submit(
            run.run_stage, "stress", lambda: services.stress_scorer.score_stress(wav, deadline)
        )
        # The first result shows at once, while the message is still processing; the second
        # finishes it. A failure is not a result: it waits for the final write.
        done, pending = wait((stt_future, stress_future), return_when=FIRST_COMPLETED)
        first = next(iter(done))
        if pending and first.result().problem is None:
            partial = _partial_fields(first is stt_future, first.result(), language_hint, config, services)
            run.write(partial, retry=False)
        stt, stress = stt_future.result(), stress_future.result()

    if isinstance(stt.value, Transcript) and stt.value.usage is not None:
        # What the paid call was billed on, kept apart from the message (bookkeeping, not for the app);
        # one try: the message's own end matters more than this record.
        try:
            services.messages.record_stt_usage(path, day, stt.value.usage)
        except StoreUnavailable as exc:
            log.warning("transcription usage of %s not recorded: %s", path.message_doc, exc)

    status, problem = model.outcome_status(stt, stress)
    return finish(
        status,
        problem,
        audio=audio,
        **_stt_fields(stt, language_hint),
        **_stress_fields(stress, config, services),
        timings={"sttMs": stt.elapsed_ms, "stressMs": stress.elapsed_ms},
    )


def _stt_fields(stt: StageResult, language_hint: str | None) -> dict[str, Any]:
    # An empty transcript ("") is a ready message, not a failure: the audio passed the duration and
    # silence checks, so it is the sender's voice without recognisable words (a sigh, laughter,
    # humming, an unsupported language); the stress reading comes from the voice and stands. ""
    # (transcribed, no words) stays distinct from None (speech-to-text failed).
    transcript = stt.value
    return {
        "text": transcript.text if isinstance(transcript, Transcript) else None,
        "language": (transcript.language if isinstance(transcript, Transcript) else None) or language_hint,
    }


def _stress_fields(stress: StageResult, config: PipelineConfig, services: Services) -> dict[str, Any]:
    reading = (
        model.stress_reading(stress.value, config.thresholds, services.stress_scorer.model_name)
        if isinstance(stress.value, float)
        else None
    )
    return {"stress": reading}


def _partial_fields(
    is_stt: bool, result: StageResult, language_hint: str | None, config: PipelineConfig, services: Services
) -> dict[str, Any]:
    """The first service's result, written while the message stays processing (no status change)."""
    if is_stt:
        return {**_stt_fields(result, language_hint), "timings": {"sttMs": result.elapsed_ms}}
    return {**_stress_fields(result, config, services), "timings": {"stressMs": result.elapsed_ms}}


def _language_hint(upload: Upload) -> str | None:
    """The sender's language hint as an ISO-639-1 code; one the API would refuse becomes no hint."""
    raw = upload.metadata.get("language")
    hint = language_code(raw)
    if raw and hint is None:
        log.info("language hint %r of %s is not a language code: transcribing without", raw[:40], upload.name)
    return hint


def sweep_abandoned(messages: MessageStore, now: float | None = None, limit: int = 200) -> list[str]:
    """Fail every message stuck in processing past its lease, so none stays a placeholder forever."""
    now = SYSTEM_CLOCK.time() if now is None else now
    return [
        doc_path
        for doc_path in messages.abandoned(now, limit)
        if messages.fail_if_abandoned(doc_path, now, model.ABANDONED.as_field())
    ]
