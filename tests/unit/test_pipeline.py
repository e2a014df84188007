from __future__ import annotations

import copy
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from fakes.pipeline import FakeStressScorer, FakeTranscriber, InMemoryAudio, InMemoryMessages
from hostile_audio import HOSTILE
from wavs import make_wav

from emochat.domain import MessageStatus
from emochat.pipeline import model as domain
from emochat.pipeline.model import AudioLimits, Claim, DailyBudget
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


def final_writes(services: Services) -> list[tuple[str, str]]:
    """The message's status writes, without the partial result written while it is processing."""
    return [entry for entry in services.messages.history if entry[1] != "partial"]


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
    assert final_writes(services) == [(DOC, "processing"), (DOC, "ready")]


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
    assert final_writes(services) == [(DOC, "processing"), (DOC, "ready")]


def test_concurrent_duplicates_are_processed_once(tone_wav: bytes) -> None:
    services = make_services(transcriber=FakeTranscriber(delay_s=0.2))
    event = upload(services, tone_wav)
    with ThreadPoolExecutor(max_workers=4) as pool:
        outcomes = list(pool.map(lambda _: process_upload(event, services, PipelineConfig()), range(4)))
    assert sorted(o.claim for o in outcomes).count(Claim.START) == 1
    assert len(services.transcriber.calls) == 1


# ── A message belongs to its sender and to the first object uploaded for it ─────────────────────

JOON_NAME = "voice/u2/c1/m1.wav"  # u2, a member of c1, under u1's message id


@pytest.mark.parametrize(
    ("name", "data"),
    [
        pytest.param(JOON_NAME, make_wav(seconds=2.0), id="member_speech"),
        pytest.param(JOON_NAME, b"junk, not audio" * 20, id="member_junk"),
        pytest.param("voice/u3/c1/m1.wav", make_wav(seconds=2.0), id="non_member"),
        pytest.param(NAME, make_wav(seconds=2.0), id="same_name_new_generation"),
        pytest.param("voice/u1/c1/m1.mp3", make_wav(seconds=2.0), id="other_extension"),
        pytest.param("voice/u1/c1/m1.WAV", make_wav(seconds=2.0), id="upper_case_extension"),
    ],
)
def test_second_object_never_changes_a_finished_message(name: str, data: bytes, tone_wav: bytes) -> None:
    services = make_services()
    process_upload(upload(services, tone_wav, generation=1), services, PipelineConfig())
    before = copy.deepcopy(services.messages.docs[DOC])
    history = list(services.messages.history)
    services.stress_scorer.p = 0.1

    outcome = process_upload(upload(services, data, name=name, generation=2), services, PipelineConfig())

    assert outcome.status is None and outcome.claim in (Claim.SKIP_NOT_SENDER, Claim.SKIP_TAKEN)
    assert services.messages.docs[DOC] == before and services.messages.history == history
    assert len(services.transcriber.calls) == 1 and len(services.stress_scorer.calls) == 1
    assert services.audio_store.downloads == 1  # the second object is not even read


@pytest.mark.parametrize(
    "name", [JOON_NAME, NAME, "voice/u1/c1/m1.mp3"], ids=["member", "same_name", "other_extension"]
)
def test_second_object_while_processing_does_not_take_the_message(name: str, tone_wav: bytes) -> None:
    """The first upload is slow; a second object for its id arrives meanwhile and changes nothing."""
    gate = threading.Event()

    class SlowFirst(FakeTranscriber):
        def transcribe(self, clip, language, *args):
            if not gate.is_set():
                gate.set()
                time.sleep(0.3)
            return super().transcribe(clip, language, *args)

    services = make_services(transcriber=SlowFirst())
    with ThreadPoolExecutor(max_workers=1) as pool:
        first = pool.submit(
            process_upload, upload(services, tone_wav, generation=1), services, PipelineConfig()
        )
        assert gate.wait(5)
        second = process_upload(
            upload(services, b"junk, not audio" * 20, name=name, generation=2), services, PipelineConfig()
        )
        assert first.result().status is MessageStatus.READY
    assert second.claim in (Claim.SKIP_NOT_SENDER, Claim.SKIP_TAKEN) and second.status is None
    doc = services.messages.docs[DOC]
    assert doc["status"] == "ready" and doc["senderId"] == "u1" and doc["audio"]["path"] == NAME
    assert doc["audio"]["generation"] == 1 and doc["text"] == "hello there"
    assert [s for _, s in final_writes(services)] == ["processing", "ready"]


def test_upper_case_extension_of_a_new_message_is_rejected(tone_wav: bytes) -> None:
    """Extensions are lowercase only; a fresh message id has a message where the reason can show."""
    services = make_services()
    outcome = process_upload(
        upload(services, tone_wav, name="voice/u1/c1/m1.WAV"), services, PipelineConfig()
    )
    assert outcome.status is MessageStatus.REJECTED and outcome.problem.code == "unsupported_extension"
    assert services.transcriber.calls == []


def test_sweeper_fails_only_abandoned_messages(tone_wav: bytes) -> None:
    services = make_services()
    process_upload(upload(services, tone_wav), services, PipelineConfig())  # ready
    stuck = upload(services, tone_wav, name="voice/u1/c1/m2.wav")
    services.messages.claim(
        domain.parse_voice_path(stuck.name), stuck.object, _initial_fields_for(stuck, lease_s=300)
    )
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
    services.messages.claim(
        domain.parse_voice_path(NAME), event.object, _initial_fields_for(event, lease_s=-1)
    )
    outcome = process_upload(event, services, PipelineConfig())
    assert outcome.claim is Claim.RETAKE and services.messages.docs[DOC]["status"] == "ready"


def _initial_fields_for(event: Upload, lease_s: float) -> dict:
    from emochat.pipeline.service import _initial_fields

    return _initial_fields(domain.parse_voice_path(event.name), event, "an-earlier-run", lease_s)


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


# ── Every path ends the message (issue 11, item 2) ───────────────────────────────────────────────


class Broken(FakeTranscriber):
    """A service whose call raises something no adapter maps (a bug, an unexpected library error)."""

    def transcribe(self, clip, language, deadline=None):
        raise KeyError("segments")


class BrokenScorer(FakeStressScorer):
    def score_stress(self, clip, deadline=None):
        raise AttributeError("NoneType has no attribute 'json'")


def test_unexpected_error_in_one_service_fails_that_stage_and_keeps_the_other(tone_wav: bytes) -> None:
    services = make_services(transcriber=Broken())
    outcome = process_upload(upload(services, tone_wav), services, PipelineConfig())
    doc = services.messages.docs[DOC]
    assert doc["status"] == "failed" and doc["error"]["code"] == "stt_unavailable"
    assert doc["text"] is None and doc["stress"]["score"] == 80.0 and doc["leaseExpiresAt"] is None
    assert outcome.crashes == ("stt: KeyError",)

    services = make_services(stress_scorer=BrokenScorer())
    outcome = process_upload(upload(services, tone_wav), services, PipelineConfig())
    doc = services.messages.docs[DOC]
    assert doc["status"] == "failed" and doc["error"]["code"] == "stress_unavailable"
    assert doc["text"] == "hello there" and doc["stress"] is None
    assert outcome.crashes == ("stress: AttributeError",)


class ExplodingAudio(InMemoryAudio):
    def download(self, bucket, name, generation, timeout_s):
        raise ConnectionResetError("peer reset")  # e.g. a RetryError or a socket error, not a ServiceError


def test_any_download_error_fails_the_message_as_audio_unavailable(tone_wav: bytes) -> None:
    services = make_services(audio_store=ExplodingAudio())
    outcome = process_upload(upload(services, tone_wav), services, PipelineConfig())
    doc = services.messages.docs[DOC]
    assert outcome.status is MessageStatus.FAILED and outcome.stage == "download"
    assert doc["status"] == "failed" and doc["error"]["code"] == "audio_unavailable"
    assert services.transcriber.calls == []


def test_unexpected_decoder_error_rejects_the_upload(
    tone_wav: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    from emochat.pipeline import service

    def decoder_bug(data, max_duration_s=None):
        raise AttributeError("'NoneType' object has no attribute 'name'")  # e.g. a codec with no decoder

    monkeypatch.setattr(service, "decode_audio", decoder_bug)
    services = make_services()
    outcome = process_upload(upload(services, tone_wav), services, PipelineConfig())
    doc = services.messages.docs[DOC]
    assert outcome.status is MessageStatus.REJECTED and outcome.stage == "decode"
    assert doc["status"] == "rejected" and doc["error"]["code"] == "undecodable_audio"
    assert "AttributeError" in doc["error"]["message"] and services.transcriber.calls == []


# ── Progressive results (issue 14) ───────────────────────────────────────────────────────────────


@pytest.mark.parametrize("slow", ["stt", "stress"])
def test_first_result_is_written_while_processing(slow: str, tone_wav: bytes) -> None:
    seen: list[dict] = []

    class Watching(InMemoryMessages):
        def finish(self, path, holder, fields):
            written = super().finish(path, holder, fields)
            seen.append(copy.deepcopy(self.docs[path.message_doc]))
            return written

    services = make_services(
        transcriber=FakeTranscriber(delay_s=0.3 if slow == "stt" else 0.0),
        stress_scorer=FakeStressScorer(delay_s=0.3 if slow == "stress" else 0.0),
        messages=Watching({"c1": ["u1", "u2"]}),
    )
    process_upload(upload(services, tone_wav), services, PipelineConfig())
    partial, final = seen
    assert partial["status"] == "processing" and partial["error"] is None
    if slow == "stt":
        assert partial["stress"]["score"] == 80.0 and partial["text"] is None
        assert set(partial["timings"]) == {"stressMs"}
    else:
        assert partial["text"] == "hello there" and partial["stress"] is None
        assert set(partial["timings"]) == {"sttMs"}
    assert final["status"] == "ready" and final["text"] == "hello there" and final["stress"]["score"] == 80.0


def test_a_failed_first_stage_writes_no_partial_result(tone_wav: bytes) -> None:
    services = make_services(
        transcriber=FakeTranscriber(error=ServiceError("stt_rejected", "400")),
        stress_scorer=FakeStressScorer(delay_s=0.3),
    )
    process_upload(upload(services, tone_wav), services, PipelineConfig())
    assert [s for _, s in services.messages.history] == ["processing", "failed"]


def test_alerts_and_trends_ignore_a_partial_result() -> None:
    """A processing message that already carries a high reading is not a ready one."""
    from emochat import domain as shared
    from emochat.alerts import model as alerts
    from emochat.trends import model as trends

    processing = {"senderId": "u1", "status": "processing", "stress": None, "text": None}
    partial = {**processing, "stress": {"score": 91.0, "level": "high", "probability": 0.91, "model": "m"}}
    assert shared.reading_of(partial) is None
    assert alerts.ready_reading("c1", "m1", processing, partial) is None
    assert not trends.is_relevant(processing, partial)
    ready = {**partial, "status": "ready", "text": "hi"}
    assert alerts.ready_reading("c1", "m1", partial, ready) is not None  # the transition still counts


# ── Daily voice budget (issue 10, item 5) ────────────────────────────────────────────────────────


def usage_of(services: Services, uid: str = "u1"):
    (day,) = {d for u, d in services.messages.usage if u == uid} or {None}
    return services.messages.usage.get((uid, day)) if day else None


def test_each_admitted_message_is_counted_with_its_audio(tone_wav: bytes) -> None:
    services = make_services()
    process_upload(upload(services, tone_wav), services, PipelineConfig())
    process_upload(
        upload(services, make_wav(seconds=2.0), name="voice/u1/c1/m2.wav"), services, PipelineConfig()
    )
    used = usage_of(services)
    assert used.messages == 2 and used.audio_seconds == pytest.approx(3.0)
    # Bad input reaches no paid call and costs no budget.
    process_upload(upload(services, b"junk" * 40, name="voice/u1/c1/m3.wav"), services, PipelineConfig())
    assert usage_of(services).messages == 2


@pytest.mark.parametrize(
    "budget", [DailyBudget(messages=1, audio_seconds=600), DailyBudget(messages=10, audio_seconds=1.5)]
)
def test_over_budget_is_rejected_before_any_paid_call(budget: DailyBudget, tone_wav: bytes) -> None:
    services = make_services()
    config = PipelineConfig(budget=budget)
    assert process_upload(upload(services, tone_wav), services, config).status is MessageStatus.READY
    outcome = process_upload(upload(services, tone_wav, name="voice/u1/c1/m2.wav"), services, config)
    doc = services.messages.docs["chats/c1/messages/m2"]
    assert outcome.status is MessageStatus.REJECTED and outcome.stage == "quota"
    assert (
        doc["status"] == "rejected" and doc["error"]["code"] == "quota_exceeded" and doc["error"]["message"]
    )
    assert doc["audio"]["durationMs"] == 1000 and doc["text"] is None and doc["stress"] is None
    assert len(services.transcriber.calls) == 1 and len(services.stress_scorer.calls) == 1
    assert usage_of(services).messages == 1  # a refusal is not counted
    # Another user's budget is theirs.
    other = process_upload(upload(services, tone_wav, name="voice/u2/c1/m3.wav"), services, config)
    assert other.status is MessageStatus.READY


def test_concurrent_uploads_never_overdraw_the_budget(tone_wav: bytes) -> None:
    services = make_services(transcriber=FakeTranscriber(delay_s=0.05))
    config = PipelineConfig(budget=DailyBudget(messages=3, audio_seconds=600))
    events = [upload(services, tone_wav, name=f"voice/u1/c1/burst{i}.wav") for i in range(8)]
    with ThreadPoolExecutor(max_workers=8) as pool:
        outcomes = list(pool.map(lambda e: process_upload(e, services, config), events))
    statuses = sorted(o.status.value for o in outcomes)
    assert statuses.count("ready") == 3 and statuses.count("rejected") == 5
    assert len(services.transcriber.calls) == 3 and usage_of(services).messages == 3


def test_transcription_usage_is_kept_apart_from_the_message(tone_wav: bytes) -> None:
    services = make_services()
    process_upload(upload(services, tone_wav), services, PipelineConfig())
    ((uid, day, doc_path), usage), *_ = services.messages.stt_usage.items()
    assert (uid, doc_path) == ("u1", DOC) and day == next(d for u, d in services.messages.usage if u == "u1")
    assert usage.model == "fake-stt" and usage.audio_seconds == pytest.approx(1.0) and usage.api_usage
    assert "usage" not in services.messages.docs[DOC]  # not a field the app shows
