"""Budgets fit the timeout, and a run that outlives its lease writes nothing (issue 11, item 3).

A fake clock makes the worst case cheap to run: the production adapters (openai client, httpx)
against transports that take all the time a request is given, so the time a run takes is exactly
what the deadline lets it take.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import httpx
import openai
import pytest
from fakes.pipeline import FakeClock, FakeStressScorer, FakeTranscriber, InMemoryAudio, InMemoryMessages
from wavs import make_wav

from emochat import config as params
from emochat import wiring
from emochat.domain import MessageStatus
from emochat.pipeline.adapters.hf_stress import HuggingFaceStressScorer
from emochat.pipeline.adapters.openai_stt import OpenAITranscriber
from emochat.pipeline.budget import Deadline
from emochat.pipeline.model import Claim
from emochat.pipeline.ports import StoreUnavailable
from emochat.pipeline.service import (
    NOT_HOLDER,
    PipelineConfig,
    Services,
    Upload,
    process_upload,
    sweep_abandoned,
)

BUCKET = "demo-emochat.appspot.com"
NAME = "voice/u1/c1/m1.wav"
DOC = "chats/c1/messages/m1"


def event(audio: InMemoryAudio, data: bytes, generation: int = 1) -> Upload:
    audio.objects[(BUCKET, NAME)] = data
    return Upload(BUCKET, NAME, generation, "audio/wav", len(data), {"language": "en"})


def hanging_transport(clock: FakeClock, answer: httpx.Response | None = None) -> httpx.MockTransport:
    """Each request takes all the time it is given (its read timeout), then times out; or, with
    `answer`, is answered at once with it (e.g. a 429 asking for a long wait)."""

    def handler(request: httpx.Request) -> httpx.Response:
        if answer is not None:
            return answer
        clock.sleep(request.extensions["timeout"]["read"])
        raise httpx.ReadTimeout("no answer", request=request)

    return httpx.MockTransport(handler)


def production_transcriber(clock: FakeClock, answer: httpx.Response | None = None) -> OpenAITranscriber:
    client = openai.OpenAI(
        api_key="sk-test",
        base_url="https://stt.test/v1",
        timeout=params.STT_TIMEOUT_S.value,
        max_retries=params.STT_MAX_RETRIES.value,
        http_client=httpx.Client(transport=hanging_transport(clock, answer)),
    )
    return OpenAITranscriber(client, model="whisper-1")


def production_scorer(clock: FakeClock, answer: httpx.Response | None = None) -> HuggingFaceStressScorer:
    client = httpx.Client(
        transport=hanging_transport(clock, answer), timeout=httpx.Timeout(params.STRESS_TIMEOUT_S.value)
    )
    return HuggingFaceStressScorer(
        client, "https://endpoint.test/", deadline_s=params.STRESS_DEADLINE_S.value, sleep=clock.sleep
    )


class SlowAudio(InMemoryAudio):
    """Storage that takes all the time a download is given."""

    def __init__(self, clock: FakeClock) -> None:
        super().__init__()
        self.clock = clock

    def download(self, bucket: str, name: str, generation: int, timeout_s: float) -> bytes:
        data = super().download(bucket, name, generation, timeout_s)
        self.clock.sleep(timeout_s)
        return data


WORST_STT = {
    "timeouts": None,  # every attempt waits out its timeout
    "retry_after_120": httpx.Response(429, headers={"retry-after": "120"}, json={"error": {"message": "x"}}),
    "garbled": httpx.Response(200, text="{cut off", headers={"content-type": "application/json"}),
}
WORST_STRESS = {
    "timeouts": None,
    "warming_up": httpx.Response(503, json={"error": "loading", "estimated_time": 600}),
    "retry_after_120": httpx.Response(429, headers={"Retry-After": "120"}, json={"error": "slow down"}),
}


WORST_CASES = [pytest.param("stt", case, id=f"stt_{case}") for case in WORST_STT] + [
    pytest.param("stress", case, id=f"stress_{case}") for case in WORST_STRESS
]


@pytest.mark.parametrize(("service", "case"), WORST_CASES)
def test_worst_case_run_fits_the_function_timeout(service: str, case: str) -> None:
    """With the production configuration (params' defaults, the wiring's PipelineConfig), the
    slowest storage and one service at its worst, the run still writes its end in time.

    One slow service at a time: the fake clock is shared, so two slow threads would add up their
    waits instead of overlapping them. Both get the same deadline (test below), so together they
    take no longer than the slower of the two.
    """
    clock = FakeClock()
    config = wiring.pipeline_config()
    assert config.timeout_s == params.PROCESS_TIMEOUT_S
    slow_stt, slow_stress = service == "stt", service == "stress"
    services = Services(
        transcriber=production_transcriber(clock, WORST_STT[case]) if slow_stt else FakeTranscriber(),
        stress_scorer=production_scorer(clock, WORST_STRESS[case]) if slow_stress else FakeStressScorer(),
        audio_store=SlowAudio(clock),
        messages=InMemoryMessages({"c1": ["u1"]}, clock=clock),
    )
    outcome = process_upload(event(services.audio_store, make_wav()), services, config, clock)

    assert outcome.written and outcome.status is MessageStatus.FAILED
    doc = services.messages.docs[DOC]
    assert doc["status"] == "failed" and doc["error"]["code"].startswith(service)
    assert clock.monotonic() <= config.timeout_s - config.safety_s
    assert services.audio_store.timeouts == [config.download_timeout_s]


def test_each_call_gets_the_time_left_not_more() -> None:
    clock = FakeClock()
    config = PipelineConfig(timeout_s=100, write_reserve_s=10, safety_s=5, download_timeout_s=60)
    transcriber, scorer = FakeTranscriber(), FakeStressScorer()
    services = Services(transcriber, scorer, SlowAudio(clock), InMemoryMessages({"c1": ["u1"]}, clock=clock))
    process_upload(event(services.audio_store, make_wav()), services, config, clock)
    # 100 - 5 (safety) - 10 (write reserve) = 85 s of work; the download took its 60 s of them.
    assert services.audio_store.timeouts == [60]
    deadline = transcriber.deadlines[0]
    assert isinstance(deadline, Deadline) and deadline.at == pytest.approx(85.0)
    assert scorer.deadlines[0] == deadline and deadline.allow(600) == pytest.approx(25.0)


def test_stt_waits_only_when_an_attempt_still_fits() -> None:
    clock = FakeClock()
    too_long = httpx.Response(429, headers={"retry-after": "50"}, json={"error": {"message": "x"}})
    stt = production_transcriber(clock, too_long)
    with pytest.raises(Exception) as err:
        stt.transcribe(_clip(), None, Deadline(40.0, clock))
    assert getattr(err.value, "code", None) == "stt_rate_limited" and clock.monotonic() == 0.0


# ── Firestore refusing the claim or the final write ──────────────────────────────────────────────


class FlakyMessages(InMemoryMessages):
    """Refuses the first `failures` calls of `method` as unavailable."""

    def __init__(self, clock: FakeClock, method: str, failures: int) -> None:
        super().__init__({"c1": ["u1"]}, clock=clock)
        self.method, self.failures = method, failures

    def _maybe_refuse(self, method: str) -> None:
        if method == self.method and self.failures > 0:
            self.failures -= 1
            raise StoreUnavailable("503 Service Unavailable")

    def claim(self, path, obj, fields):
        self._maybe_refuse("claim")
        return super().claim(path, obj, fields)

    def finish(self, path, holder, fields):
        if "status" in fields:  # the final write, not the partial one
            self._maybe_refuse("finish")
        return super().finish(path, holder, fields)


@pytest.mark.parametrize("method", ["claim", "finish"])
def test_a_refused_write_is_retried_within_the_budget(method: str) -> None:
    clock = FakeClock()
    messages = FlakyMessages(clock, method, failures=4)
    services = Services(FakeTranscriber(), FakeStressScorer(), InMemoryAudio(), messages)
    outcome = process_upload(event(services.audio_store, make_wav()), services, PipelineConfig(), clock)
    assert outcome.written and outcome.status is MessageStatus.READY
    assert messages.docs[DOC]["status"] == "ready" and messages.failures == 0
    assert 0 < clock.monotonic() < 30  # backed off, well inside the timeout


@pytest.mark.parametrize("method", ["claim", "finish"])
def test_a_write_that_never_lands_is_reported_not_raised(method: str) -> None:
    clock = FakeClock()
    config = PipelineConfig()
    messages = FlakyMessages(clock, method, failures=10**6)
    services = Services(FakeTranscriber(), FakeStressScorer(), InMemoryAudio(), messages)
    outcome = process_upload(event(services.audio_store, make_wav()), services, config, clock)
    assert not outcome.written and "unavailable" in outcome.unwritten and outcome.lost
    assert outcome.stage == ("claim" if method == "claim" else "services")
    assert clock.monotonic() <= config.timeout_s - config.safety_s


# ── Zombies: a run that outlived its lease writes nothing ─────────────────────────────────────────


class HangsOnce(FakeTranscriber):
    """The first call blocks until released (a run stuck past its lease), later calls answer."""

    def __init__(self) -> None:
        super().__init__()
        self.entered, self.release = threading.Event(), threading.Event()

    def transcribe(self, clip, language, deadline=None):
        if not self.entered.is_set():
            self.entered.set()
            assert self.release.wait(10)
            self.text = "the zombie's words"
            return super().transcribe(clip, language, deadline)
        return super().transcribe(clip, language, deadline)


@pytest.mark.parametrize("new_owner", ["sweeper", "redelivery"])
def test_a_swept_or_retaken_message_keeps_what_its_new_owner_wrote(new_owner: str) -> None:
    clock = FakeClock()
    config = PipelineConfig()
    transcriber = HangsOnce()
    services = Services(
        transcriber, FakeStressScorer(), InMemoryAudio(), InMemoryMessages({"c1": ["u1"]}, clock)
    )
    upload = event(services.audio_store, make_wav())
    with ThreadPoolExecutor(max_workers=1) as pool:
        zombie = pool.submit(process_upload, upload, services, config, clock)
        assert transcriber.entered.wait(5)
        clock.advance(config.lease_s + 1)  # the run is now past its lease
        if new_owner == "sweeper":
            assert sweep_abandoned(services.messages, now=clock.time()) == [DOC]
        else:
            retake = process_upload(upload, services, config, clock)
            assert retake.claim is Claim.RETAKE and retake.written
        kept = dict(services.messages.docs[DOC])
        transcriber.release.set()
        late = zombie.result()
    assert not late.written and late.unwritten == NOT_HOLDER and not late.lost
    assert services.messages.docs[DOC] == kept  # neither its partial nor its final result landed
    if new_owner == "sweeper":
        assert kept["status"] == "failed" and kept["error"]["code"] == "processing_timeout"
    else:
        assert kept["status"] == "ready" and kept["text"] == "hello there"


def test_the_lease_outlasts_the_timeout() -> None:
    config = wiring.pipeline_config()
    assert config.lease_s > config.timeout_s


def _clip():
    from emochat.pipeline.ports import VoiceClip

    return VoiceClip(make_wav(), "m1.wav", "audio/wav")


def test_a_stale_run_writes_no_partial_result() -> None:
    """Both services answer only after the run's lease ran out: neither result is written."""
    clock = FakeClock()
    config = PipelineConfig()
    release = threading.Event()
    started = threading.Barrier(3)

    class Late(FakeTranscriber):
        def transcribe(self, clip, language, deadline=None):
            started.wait(5)
            assert release.wait(10)
            return super().transcribe(clip, language, deadline)

    class LateScorer(FakeStressScorer):
        def score_stress(self, clip, deadline=None):
            started.wait(5)
            assert release.wait(10)
            return super().score_stress(clip, deadline)

    messages = InMemoryMessages({"c1": ["u1"]}, clock)
    services = Services(Late(), LateScorer(), InMemoryAudio(), messages)
    with ThreadPoolExecutor(max_workers=1) as pool:
        run = pool.submit(process_upload, event(services.audio_store, make_wav()), services, config, clock)
        started.wait(5)
        clock.advance(config.lease_s + 1)
        kept = dict(messages.docs[DOC])
        release.set()
        outcome = run.result()
    assert not outcome.written and messages.docs[DOC] == kept
    assert [status for _, status in messages.history] == ["processing"]  # no partial, no final
