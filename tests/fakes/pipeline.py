"""In-memory fakes of the voice pipeline's ports (same behaviour as the adapters, decided by the same
pipeline model), a fake clock, and a scripted HTTP transport for the adapters' wire-format tests."""

from __future__ import annotations

import copy
import threading
import time
from typing import Any

import httpx

from emochat.domain import MessageStatus
from emochat.pipeline.budget import SYSTEM_CLOCK, Clock, Deadline
from emochat.pipeline.model import (
    Claim,
    DailyBudget,
    Holder,
    MessageState,
    UploadedObject,
    Usage,
    VoicePath,
    charge,
    decide_claim,
    is_abandoned,
    may_write,
)
from emochat.pipeline.ports import ServiceError, Transcript, TranscriptionUsage, VoiceClip


class FakeClock:
    """Time that passes only when told: wall time (leases) and monotonic time (deadlines) together.

    Calls running concurrently each move time forward to the end of their own wait (`advance_to`
    keeps the later of two ends), so two overlapping waits of 60 s take 60 s, not 120 s.
    """

    EPOCH = 1_800_000_000.0

    def __init__(self) -> None:
        self._now = 0.0
        self._lock = threading.Lock()

    def monotonic(self) -> float:
        with self._lock:
            return self._now

    def time(self) -> float:
        return self.EPOCH + self.monotonic()

    def advance_to(self, monotonic: float) -> None:
        with self._lock:
            self._now = max(self._now, monotonic)

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._now += seconds

    def sleep(self, seconds: float) -> None:
        self.advance_to(self.monotonic() + max(0.0, seconds))


class InMemoryMessages:
    def __init__(self, chats: dict[str, list[str]] | None = None, clock: Clock = SYSTEM_CLOCK) -> None:
        self.chats = chats or {}
        self.clock = clock
        self.docs: dict[str, dict[str, Any]] = {}
        self.history: list[tuple[str, str]] = []
        self.usage: dict[tuple[str, str], Usage] = {}  # (uid, day) -> users/{uid}/usage/{day}
        self.stt_usage: dict[tuple[str, str, str], TranscriptionUsage] = {}  # (uid, day, message doc)
        self._lock = threading.Lock()

    def chat_members(self, chat_id: str) -> list[str] | None:
        return self.chats.get(chat_id)

    def _state(self, key: str) -> MessageState | None:
        doc = self.docs.get(key)
        if doc is None:
            return None
        lease = doc.get("leaseExpiresAt")
        audio = doc.get("audio") or {}
        return MessageState(
            MessageStatus(doc["status"]),
            doc.get("senderId"),
            UploadedObject(audio["path"], audio["generation"]) if "path" in audio else None,
            lease.timestamp() if lease else None,
            doc.get("claimToken"),
        )

    def claim(self, path: VoicePath, obj: UploadedObject, fields: dict[str, Any]) -> Claim:
        with self._lock:
            decision = decide_claim(self._state(path.message_doc), path, obj, self.clock.time())
            if decision.proceeds:
                self.docs[path.message_doc] = copy.deepcopy(fields)
                self.history.append((path.message_doc, fields["status"]))
            return decision

    def finish(self, path: VoicePath, holder: Holder, fields: dict[str, Any]) -> bool:
        with self._lock:
            if not may_write(self._state(path.message_doc), holder, self.clock.time()):
                return False
            self.docs[path.message_doc].update(copy.deepcopy(fields))
            self.history.append((path.message_doc, fields.get("status") or "partial"))
            return True

    def charge_usage(self, uid: str, day: str, audio_seconds: float, budget: DailyBudget) -> bool:
        with self._lock:
            used = self.usage.get((uid, day), Usage())
            after = charge(used, audio_seconds, budget)
            if after is None:
                return False
            self.usage[(uid, day)] = after
            return True

    def record_stt_usage(self, path: VoicePath, day: str, usage: TranscriptionUsage) -> None:
        with self._lock:
            self.stt_usage[(path.uid, day, path.message_doc)] = usage

    def abandoned(self, now: float, limit: int) -> list[str]:
        return [key for key in self.docs if is_abandoned(self._state(key), now)][:limit]

    def fail_if_abandoned(self, doc_path: str, now: float, error: dict[str, str]) -> bool:
        with self._lock:
            if not is_abandoned(self._state(doc_path), now):
                return False
            self.docs[doc_path].update(status="failed", error=error, leaseExpiresAt=None)
            return True


class InMemoryAudio:
    def __init__(self) -> None:
        self.objects: dict[tuple[str, str], bytes] = {}
        self.downloads = 0
        self.timeouts: list[float] = []

    def download(self, bucket: str, name: str, generation: int, timeout_s: float) -> bytes:
        self.downloads += 1
        self.timeouts.append(timeout_s)
        try:
            return self.objects[(bucket, name)]
        except KeyError:
            raise ServiceError("audio_unavailable", "gone") from None


class FakeTranscriber:
    def __init__(self, text: str = "hello there", error: ServiceError | None = None, delay_s: float = 0.0):
        self.text, self.error, self.delay_s = text, error, delay_s
        self.calls: list[tuple[VoiceClip, str | None]] = []
        self.deadlines: list[Deadline | None] = []

    def transcribe(
        self, clip: VoiceClip, language: str | None, deadline: Deadline | None = None
    ) -> Transcript:
        self.calls.append((clip, language))
        self.deadlines.append(deadline)
        time.sleep(self.delay_s)
        if self.error:
            raise self.error
        usage = TranscriptionUsage(
            "fake-stt", clip.duration_s, {"type": "duration", "seconds": clip.duration_s}
        )
        return Transcript(self.text, language or "en", usage)


class FakeStressScorer:
    model_name = "fake-stress"

    def __init__(self, p: float = 0.8, error: ServiceError | None = None, delay_s: float = 0.0):
        self.p, self.error, self.delay_s = p, error, delay_s
        self.calls: list[VoiceClip] = []
        self.deadlines: list[Deadline | None] = []

    def score_stress(self, clip: VoiceClip, deadline: Deadline | None = None) -> float:
        self.calls.append(clip)
        self.deadlines.append(deadline)
        time.sleep(self.delay_s)
        if self.error:
            raise self.error
        return self.p


def scripted(responses: list[httpx.Response | Exception]) -> tuple[httpx.MockTransport, list[httpx.Request]]:
    """A transport answering each request with the next scripted response (or raising it); the last
    one repeats. Returns the transport and the requests it saw."""
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        item = responses[min(len(seen), len(responses)) - 1]
        if isinstance(item, Exception):
            raise item
        return item

    return httpx.MockTransport(handler), seen
