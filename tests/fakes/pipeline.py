"""In-memory fakes of the voice pipeline's ports (same behaviour as the adapters, decided by the same
pipeline model), and a scripted HTTP transport for the adapters' wire-format tests."""

from __future__ import annotations

import copy
import threading
import time
from typing import Any

import httpx

from emochat.domain import MessageStatus
from emochat.pipeline.model import Claim, MessageState, VoicePath, decide_claim, is_abandoned, may_finish
from emochat.pipeline.ports import ServiceError, Transcript, VoiceClip


class InMemoryMessages:
    def __init__(self, chats: dict[str, list[str]] | None = None) -> None:
        self.chats = chats or {}
        self.docs: dict[str, dict[str, Any]] = {}
        self.history: list[tuple[str, str]] = []  # (doc path, status written)
        self._lock = threading.Lock()

    def chat_members(self, chat_id: str) -> list[str] | None:
        return self.chats.get(chat_id)

    def _state(self, key: str) -> MessageState | None:
        doc = self.docs.get(key)
        if doc is None:
            return None
        lease = doc.get("leaseExpiresAt")
        return MessageState(
            MessageStatus(doc["status"]), doc["generation"], lease.timestamp() if lease else None
        )

    def claim(self, path: VoicePath, generation: int, fields: dict[str, Any]) -> Claim:
        with self._lock:
            decision = decide_claim(self._state(path.message_doc), generation, time.time())
            if decision in (Claim.START, Claim.RETAKE):
                self.docs[path.message_doc] = {**copy.deepcopy(fields), "generation": generation}
                self.history.append((path.message_doc, fields["status"]))
            elif decision is Claim.REPLACE:
                self.docs[path.message_doc].update(
                    generation=generation, leaseExpiresAt=fields["leaseExpiresAt"]
                )
            return decision

    def finish(self, path: VoicePath, generation: int, fields: dict[str, Any]) -> bool:
        with self._lock:
            if not may_finish(self._state(path.message_doc), generation):
                return False
            self.docs[path.message_doc].update(copy.deepcopy(fields))
            self.history.append((path.message_doc, fields["status"]))
            return True

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

    def download(self, bucket: str, name: str, generation: int) -> bytes:
        self.downloads += 1
        try:
            return self.objects[(bucket, name)]
        except KeyError:
            raise ServiceError("audio_unavailable", "gone") from None


class FakeTranscriber:
    def __init__(self, text: str = "hello there", error: ServiceError | None = None, delay_s: float = 0.0):
        self.text, self.error, self.delay_s = text, error, delay_s
        self.calls: list[tuple[VoiceClip, str | None]] = []

    def transcribe(self, clip: VoiceClip, language: str | None) -> Transcript:
        self.calls.append((clip, language))
        time.sleep(self.delay_s)
        if self.error:
            raise self.error
        return Transcript(self.text, language or "en")


class FakeStressScorer:
    model_name = "fake-stress"

    def __init__(self, p: float = 0.8, error: ServiceError | None = None, delay_s: float = 0.0):
        self.p, self.error, self.delay_s = p, error, delay_s
        self.calls: list[VoiceClip] = []

    def score_stress(self, clip: VoiceClip) -> float:
        self.calls.append(clip)
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
