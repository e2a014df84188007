from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from fakes.pipeline import FakeStressScorer, FakeTranscriber, InMemoryAudio, InMemoryMessages
from hostile_audio import HOSTILE
from wavs import make_wav

from emochat.domain import MessageStatus
from emochat.pipeline import model as domain
from emochat.pipeline.model import AudioLimits, Claim
from emochat.pipeline.ports import ServiceError
from emochat.pipeline.service import PipelineConfig, Services, Upload, process_upload, sweep_abandoned

BUCKET = "demo-emochat.appspot.com"
NAME = "voice/u1/c1/m1.wav"
DOC = "chats/c1/messages/m1"


def make_services(**overrides) -> Services:
    services = Services(
        transcriber=FakeTranscriber(),
        stress_scorer=FakeStressScorer(),
        audio_store=InMemoryAudio(),
        messages=InMemoryMessages({"c1": ["u1", "u2"]}),
    )
    for key, value in overrides.items():
        setattr(services, key, value)
    return services


def upload(services: Services, data: bytes, name: str = NAME, generation: int = 1, **kw) -> Upload:
    services.audio_store.objects[(BUCKET, name)] = data
    return Upload(
        bucket=BUCKET,
        name=name,
        generation=generation,
        content_type=kw.pop("content_type", "audio/wav"),
        size_bytes=kw.pop("size_bytes", len(data)),
        metadata=kw.pop("metadata", {}),
    )


def test_ready_message_has_every_contract_field(tone_wav: bytes) -> None:
    services = make_services()
    outcome = process_upload(
        upload(services, tone_wav, metadata={"language": "en"}), services, PipelineConfig()
    )
    assert outcome.claim is Claim.START and outcome.status is MessageStatus.READY
    doc = services.messages.docs[DOC]
    assert doc["kind"] == "voice" and doc["senderId"] == "u1" and doc["status"] == "ready"
    assert doc["text"] == "hello there" and doc["language"] == "en" and doc["error"] is None
    assert doc["stress"] == {"score": 80.0, "level": "high", "probability": 0.8, "model": "fake-stress"}
    assert doc["audio"]["path"] == NAME and doc["audio"]["contentType"] == "audio/wav"
    assert doc["audio"]["sizeBytes"] == len(tone_wav) and doc["audio"]["durationMs"] == 1000
    assert set(doc["timings"]) == {"sttMs", "stressMs", "totalMs"}
    assert doc["createdAt"] is not None and doc["leaseExpiresAt"] is None
    assert services.messages.history == [(DOC, "processing"), (DOC, "ready")]


def test_language_hint_reaches_transcriber(tone_wav: bytes) -> None:
    services = make_services()
    process_upload(upload(services, tone_wav, metadata={"language": "ko"}), services, PipelineConfig())
    assert services.transcriber.calls[0][1] == "ko"


def test_objects_outside_voice_are_ignored(tone_wav: bytes) -> None:
    services = make_services()
    outcome = process_upload(upload(services, tone_wav, name="avatars/u1.png"), services, PipelineConfig())
    assert outcome.claim is None and services.messages.docs == {} and services.audio_store.downloads == 0


def test_services_run_concurrently(tone_wav: bytes) -> None:
    services = make_services(
        transcriber=FakeTranscriber(delay_s=0.4), stress_scorer=FakeStressScorer(delay_s=0.4)
    )
    outcome = process_upload(upload(services, tone_wav), services, PipelineConfig())
    # Sequential would take ≥ 800 ms; overlapping, the total stays near one stage.
    assert outcome.timings["sttMs"] >= 400 and outcome.timings["stressMs"] >= 400
    assert outcome.timings["totalMs"] < outcome.timings["sttMs"] + outcome.timings["stressMs"]


def test_stress_gets_canonical_wav_and_stt_the_original(tone_wav: bytes) -> None:
    services = make_services()
    process_upload(
        upload(services, tone_wav, name="voice/u1/c1/m1.caf", content_type="audio/x-caf"),
        services,
        PipelineConfig(),
    )
    stt_clip = services.transcriber.calls[0][0]
    assert stt_clip.content_type == "audio/wav" and stt_clip.filename == "m1.wav"  # caf: not OpenAI-native
    assert services.stress_scorer.calls[0].content_type == "audio/wav"
    services = make_services()
    process_upload(upload(services, tone_wav), services, PipelineConfig())
    assert services.transcriber.calls[0][0].data == tone_wav


@pytest.mark.parametrize(
    ("name", "data", "kw", "code"),
    [
        ("voice/u1/c1/m1.png", make_wav(), {}, "unsupported_extension"),
        (NAME, make_wav(), {"content_type": "image/png"}, "unsupported_content_type"),
        (NAME, b"", {}, "empty_file"),
        (NAME, make_wav(), {"size_bytes": 26 * 2**20}, "file_too_large"),
        (NAME, b"this is not audio at all" * 10, {}, "undecodable_audio"),
        (NAME, make_wav(seconds=0.1), {}, "audio_too_short"),
        (NAME, make_wav(seconds=3.0), {}, "audio_too_long"),
        (NAME, make_wav(amplitude=0.0), {}, "silent_audio"),
        ("voice/u3/c1/m1.wav", make_wav(), {}, "not_a_member"),
        ("voice/u1/nochat/m1.wav", make_wav(), {}, "chat_not_found"),
    ],
)
def test_bad_input_is_rejected_with_its_code(name: str, data: bytes, kw: dict, code: str) -> None:
    services = make_services()
    config = PipelineConfig(limits=AudioLimits(max_duration_ms=2000))
    outcome = process_upload(upload(services, data, name=name, **kw), services, config)
    assert outcome.status is MessageStatus.REJECTED and outcome.problem.code == code
    doc = next(iter(services.messages.docs.values()))
    assert doc["status"] == "rejected" and doc["error"]["code"] == code and doc["error"]["message"]
    assert doc["text"] is None and doc["stress"] is None
    # Rejected before any paid call.
    assert services.transcriber.calls == [] and services.stress_scorer.calls == []


@pytest.mark.parametrize("case", list(HOSTILE.values()), ids=list(HOSTILE))
def test_hostile_audio_is_rejected_with_its_code_before_any_paid_call(case) -> None:
    services = make_services()
    data = case.make()
    event = upload(services, data, name="voice/u1/c1/m1.webm", content_type="audio/webm")
    outcome = process_upload(event, services, PipelineConfig())
    assert outcome.status is MessageStatus.REJECTED and outcome.stage == "decode", case.why
    doc = services.messages.docs[DOC]
    assert doc["error"]["code"] == case.code and doc["error"]["message"], case.why
    assert services.transcriber.calls == [] and services.stress_scorer.calls == []
    if case.code == "audio_too_long":  # refused from its header: the declared length is kept
        assert doc["audio"]["durationMs"] == 4 * 3600 * 1000


def test_stress_failure_keeps_transcript(tone_wav: bytes) -> None:
    services = make_services(
        stress_scorer=FakeStressScorer(error=ServiceError("stress_timeout", "timed out"))
    )
    outcome = process_upload(upload(services, tone_wav), services, PipelineConfig())
    doc = services.messages.docs[DOC]
    assert outcome.status is MessageStatus.FAILED
    assert doc["status"] == "failed" and doc["error"]["code"] == "stress_timeout"
    assert doc["text"] == "hello there" and doc["stress"] is None


def test_stt_failure_keeps_stress(tone_wav: bytes) -> None:
    services = make_services(transcriber=FakeTranscriber(error=ServiceError("stt_rate_limited", "429")))
    process_upload(upload(services, tone_wav), services, PipelineConfig())
    doc = services.messages.docs[DOC]
    assert doc["status"] == "failed" and doc["error"]["code"] == "stt_rate_limited"
    assert doc["text"] is None and doc["stress"]["score"] == 80.0


def test_missing_object_fails_without_crashing(tone_wav: bytes) -> None:
    services = make_services()
    event = upload(services, tone_wav)
    services.audio_store.objects.clear()
    outcome = process_upload(event, services, PipelineConfig())
    assert outcome.status is MessageStatus.FAILED and services.messages.docs[DOC]["error"]["code"] == (
        "audio_unavailable"
    )


def test_duplicate_event_is_processed_once(tone_wav: bytes) -> None:
    services = make_services()
    event = upload(services, tone_wav)
    first = process_upload(event, services, PipelineConfig())
    second = process_upload(event, services, PipelineConfig())
    assert first.status is MessageStatus.READY and second.claim is Claim.SKIP_DUPLICATE
    assert len(services.transcriber.calls) == 1
    assert services.messages.history == [(DOC, "processing"), (DOC, "ready")]


def test_concurrent_duplicates_are_processed_once(tone_wav: bytes) -> None:
    services = make_services(transcriber=FakeTranscriber(delay_s=0.2))
    event = upload(services, tone_wav)
    with ThreadPoolExecutor(max_workers=4) as pool:
        outcomes = list(pool.map(lambda _: process_upload(event, services, PipelineConfig()), range(4)))
    assert sorted(o.claim for o in outcomes).count(Claim.START) == 1
    assert len(services.transcriber.calls) == 1


def test_reupload_replaces_result_without_going_back_to_processing(tone_wav: bytes) -> None:
    services = make_services()
    process_upload(upload(services, tone_wav, generation=1), services, PipelineConfig())
    services.stress_scorer.p = 0.1
    outcome = process_upload(
        upload(services, make_wav(seconds=2.0), generation=2), services, PipelineConfig()
    )
    doc = services.messages.docs[DOC]
    assert outcome.claim is Claim.REPLACE
    assert doc["status"] == "ready" and doc["audio"]["durationMs"] == 2000 and doc["stress"]["level"] == "low"
    statuses = [s for _, s in services.messages.history]
    assert statuses == ["processing", "ready", "ready"]
    # The old generation delivered late changes nothing.
    late = process_upload(upload(services, tone_wav, generation=1), services, PipelineConfig())
    assert late.claim is Claim.SKIP_STALE and services.messages.docs[DOC]["audio"]["durationMs"] == 2000


def test_older_result_never_overwrites_newer_generation(tone_wav: bytes) -> None:
    """Generation 1 is slow; generation 2 claims the message meanwhile; 1's late result is dropped."""
    gate = threading.Event()

    class SlowFirst(FakeTranscriber):
        def transcribe(self, clip, language):
            if not gate.is_set():
                gate.set()
                time.sleep(0.3)
            return super().transcribe(clip, language)

    services = make_services(transcriber=SlowFirst())
    with ThreadPoolExecutor(max_workers=2) as pool:
        old = pool.submit(
            process_upload, upload(services, tone_wav, generation=1), services, PipelineConfig()
        )
        gate.wait(5)
        new = process_upload(
            upload(services, make_wav(seconds=2.0), generation=2), services, PipelineConfig()
        )
        old.result()
    assert new.claim is Claim.REPLACE
    assert services.messages.docs[DOC]["audio"]["generation"] == 2


def test_sweeper_fails_only_abandoned_messages(tone_wav: bytes) -> None:
    services = make_services()
    process_upload(upload(services, tone_wav), services, PipelineConfig())  # ready
    stuck = upload(services, tone_wav, name="voice/u1/c1/m2.wav")
    services.messages.claim(domain.parse_voice_path(stuck.name), 1, _initial_fields_for(stuck, lease_s=300))
    now = time.time()
    assert sweep_abandoned(services.messages, now=now) == []  # lease still running
    assert sweep_abandoned(services.messages, now=now + 301) == ["chats/c1/messages/m2"]
    swept = services.messages.docs["chats/c1/messages/m2"]
    assert swept["status"] == "failed" and swept["error"]["code"] == "processing_timeout"
    assert services.messages.docs[DOC]["status"] == "ready"
    assert sweep_abandoned(services.messages, now=now + 600) == []  # idempotent


def test_abandoned_message_is_retaken_by_redelivery(tone_wav: bytes) -> None:
    services = make_services()
    event = upload(services, tone_wav)
    services.messages.claim(domain.parse_voice_path(NAME), 1, _initial_fields_for(event, lease_s=-1))
    outcome = process_upload(event, services, PipelineConfig())
    assert outcome.claim is Claim.RETAKE and services.messages.docs[DOC]["status"] == "ready"


def _initial_fields_for(event: Upload, lease_s: float) -> dict:
    from emochat.pipeline.service import _initial_fields

    return _initial_fields(domain.parse_voice_path(event.name), event, lease_s)


@pytest.mark.parametrize(
    ("name", "data", "stage"),
    [
        ("avatars/u1.png", make_wav(), "route"),
        ("voice/u1/c1/m1.png", make_wav(), "validate"),
        ("voice/u3/c1/m1.wav", make_wav(), "validate"),
        (NAME, b"not audio" * 20, "decode"),
        (NAME, make_wav(amplitude=0.0), "decode"),
        (NAME, make_wav(), "services"),
    ],
)
def test_outcome_names_the_deciding_stage(name: str, data: bytes, stage: str) -> None:
    services = make_services()
    outcome = process_upload(upload(services, data, name=name), services, PipelineConfig())
    assert outcome.stage == stage
    if stage != "route":
        assert outcome.path == domain.parse_voice_path(name)
