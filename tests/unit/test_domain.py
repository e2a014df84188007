from __future__ import annotations

import math

import pytest

from emochat.domain import MessageStatus, Problem, StressLevel
from emochat.pipeline import model as domain
from emochat.pipeline.model import (
    AudioLimits,
    Claim,
    MessageState,
    StageResult,
    StressThresholds,
    UploadedObject,
    VoicePath,
)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("voice/u1/c1/m1.m4a", VoicePath("u1", "c1", "m1", "m4a")),
        ("voice/u1/c1/m1.M4A", VoicePath("u1", "c1", "m1", "M4A")),  # kept: check_upload refuses it
        ("voice/u1/c1/m1.tar.gz", VoicePath("u1", "c1", "m1.tar", "gz")),
        ("voice/u1/c1/m1", VoicePath("u1", "c1", "m1", "")),
        ("voice/유저/채팅/메시지 1.ogg", VoicePath("유저", "채팅", "메시지 1", "ogg")),
        ("avatars/u1/pic.png", None),
        ("voice/u1/m1.m4a", None),
        ("voice/u1/c1/extra/m1.m4a", None),
        ("voice//c1/m1.m4a", None),
        ("voice/u1/../m1.m4a", None),
        ("voice/u1/c1/.m4a", None),
        ("voice/u1/__c__/m1.m4a", None),
        ("Voice/u1/c1/m1.m4a", None),
        ("", None),
    ],
)
def test_parse_voice_path(name: str, expected: VoicePath | None) -> None:
    assert domain.parse_voice_path(name) == expected


def test_message_doc_path() -> None:
    assert VoicePath("u", "c", "m", "m4a").message_doc == "chats/c/messages/m"


@pytest.mark.parametrize(
    ("content_type", "ok"),
    [
        ("audio/mp4", True),
        ("audio/x-m4a", True),
        ("AUDIO/WEBM; codecs=opus", True),
        ("video/mp4", True),
        ("video/webm", False),
        ("image/png", False),
        ("application/octet-stream", False),
        ("", False),
        (None, False),
    ],
)
def test_audio_content_types(content_type: str | None, ok: bool) -> None:
    assert domain.is_audio_content_type(content_type) is ok


def _code(problem: Problem | None) -> str | None:
    return problem.code if problem else None


@pytest.mark.parametrize(
    ("ext", "content_type", "size", "code"),
    [
        ("m4a", "audio/mp4", 1000, None),
        ("3gp", "audio/3gpp", 1000, None),
        ("png", "audio/mp4", 1000, "unsupported_extension"),
        ("", "audio/mp4", 1000, "unsupported_extension"),
        ("m4a", "image/png", 1000, "unsupported_content_type"),
        ("m4a", None, 1000, "unsupported_content_type"),
        ("m4a", "audio/mp4", 0, "empty_file"),
        ("m4a", "audio/mp4", domain.MAX_UPLOAD_BYTES, None),
        ("m4a", "audio/mp4", domain.MAX_UPLOAD_BYTES + 1, "file_too_large"),
    ],
)
def test_check_upload(ext: str, content_type: str | None, size: int, code: str | None) -> None:
    assert _code(domain.check_upload(VoicePath("u", "c", "m", ext), content_type, size)) == code


def test_check_membership() -> None:
    path = VoicePath("u1", "c1", "m1", "m4a")
    assert domain.check_membership(path, ["u1", "u2"]) is None
    assert _code(domain.check_membership(path, ["u2"])) == "not_a_member"
    assert _code(domain.check_membership(path, [])) == "not_a_member"
    assert _code(domain.check_membership(path, None)) == "chat_not_found"


@pytest.mark.parametrize(
    ("duration_ms", "peak_dbfs", "code"),
    [
        (3000, -10.0, None),
        (299, -10.0, "audio_too_short"),
        (120_000, -10.0, None),
        (120_001, -10.0, "audio_too_long"),
        (3000, -60.0, "silent_audio"),
        (3000, -math.inf, "silent_audio"),
    ],
)
def test_check_audio(duration_ms: int, peak_dbfs: float, code: str | None) -> None:
    assert _code(domain.check_audio(duration_ms, peak_dbfs, AudioLimits())) == code


def test_problem_messages_are_human() -> None:
    problem = domain.check_upload(VoicePath("u", "c", "m", "m4a"), "audio/mp4", 30 * 2**20)
    assert problem is not None and "30.0 MiB" in problem.message and "25 MiB" in problem.message
    assert problem.as_field() == {"code": "file_too_large", "message": problem.message}


@pytest.mark.parametrize(
    ("p", "score"),
    [(0.0, 0.0), (1.0, 100.0), (0.5, 50.0), (0.12345, 12.3), (0.59999, 60.0), (0.29949, 29.9)],
)
def test_score_from_probability(p: float, score: float) -> None:
    assert domain.score_from_probability(p) == score


@pytest.mark.parametrize("p", [-0.01, 1.01, math.nan])
def test_score_rejects_non_probabilities(p: float) -> None:
    with pytest.raises(ValueError):
        domain.score_from_probability(p)


@pytest.mark.parametrize(
    ("score", "level"),
    [
        (0.0, StressLevel.LOW),
        (29.9, StressLevel.LOW),
        (30.0, StressLevel.MODERATE),
        (59.9, StressLevel.MODERATE),
        (60.0, StressLevel.HIGH),
        (100.0, StressLevel.HIGH),
    ],
)
def test_stress_level_default_thresholds(score: float, level: StressLevel) -> None:
    assert domain.stress_level(score, StressThresholds()) is level


def test_thresholds_are_configurable_and_checked() -> None:
    assert domain.stress_level(45.0, StressThresholds(moderate=20, high=40)) is StressLevel.HIGH
    with pytest.raises(ValueError):
        StressThresholds(moderate=70, high=60)


def test_stress_reading_field() -> None:
    reading = domain.stress_reading(0.6543, StressThresholds(), "m1")
    assert reading == {"score": 65.4, "level": "high", "probability": 0.6543, "model": "m1"}


NOW = 1_000_000.0


PATH = VoicePath("u1", "c1", "m1", "m4a")
OBJ = UploadedObject("voice/u1/c1/m1.m4a", 5)


def state(status: MessageStatus, lease: float | None = None, sender: str = "u1", obj=OBJ) -> MessageState:
    return MessageState(status, sender, obj, lease)


@pytest.mark.parametrize(
    ("existing", "path", "obj", "claim"),
    [
        (None, PATH, OBJ, Claim.START),
        (state(MessageStatus.PROCESSING, NOW + 10), PATH, OBJ, Claim.SKIP_DUPLICATE),
        (state(MessageStatus.PROCESSING, NOW - 1), PATH, OBJ, Claim.RETAKE),
        (state(MessageStatus.READY), PATH, OBJ, Claim.SKIP_DUPLICATE),
        (state(MessageStatus.FAILED), PATH, OBJ, Claim.SKIP_DUPLICATE),
        (state(MessageStatus.REJECTED), PATH, OBJ, Claim.SKIP_DUPLICATE),
        # Another uid under the sender's message id: never, whatever the message's state.
        (state(MessageStatus.READY), VoicePath("u2", "c1", "m1", "m4a"), OBJ, Claim.SKIP_NOT_SENDER),
        (
            state(MessageStatus.PROCESSING, NOW - 1),
            VoicePath("u2", "c1", "m1", "m4a"),
            OBJ,
            Claim.SKIP_NOT_SENDER,
        ),
        # The sender's other objects for the same id: the same name again, another extension or case.
        (state(MessageStatus.READY), PATH, UploadedObject(OBJ.name, 6), Claim.SKIP_TAKEN),
        (state(MessageStatus.READY), PATH, UploadedObject(OBJ.name, 4), Claim.SKIP_TAKEN),
        (state(MessageStatus.PROCESSING, NOW + 10), PATH, UploadedObject(OBJ.name, 6), Claim.SKIP_TAKEN),
        (
            state(MessageStatus.PROCESSING, NOW - 1),
            PATH,
            UploadedObject("voice/u1/c1/m1.wav", 5),
            Claim.SKIP_TAKEN,
        ),
        (state(MessageStatus.READY), PATH, UploadedObject("voice/u1/c1/m1.M4A", 5), Claim.SKIP_TAKEN),
    ],
)
def test_decide_claim(
    existing: MessageState | None, path: VoicePath, obj: UploadedObject, claim: Claim
) -> None:
    assert domain.decide_claim(existing, path, obj, NOW) is claim
    assert claim.proceeds is (claim in (Claim.START, Claim.RETAKE))


def test_may_write_only_while_holding_the_message() -> None:
    holder = domain.Holder(OBJ, "token-a")
    held = MessageState(MessageStatus.PROCESSING, "u1", OBJ, NOW + 10, "token-a")
    assert domain.may_write(held, holder, NOW)
    assert not domain.may_write(held, holder, NOW + 10)  # its lease ran out: a zombie writes nothing
    assert not domain.may_write(held, domain.Holder(OBJ, "token-b"), NOW)  # retaken by another run
    assert not domain.may_write(held, domain.Holder(UploadedObject(OBJ.name, 6), "token-a"), NOW)
    for status in (MessageStatus.READY, MessageStatus.FAILED, MessageStatus.REJECTED):  # finished or swept
        assert not domain.may_write(MessageState(status, "u1", OBJ, NOW + 10, "token-a"), holder, NOW)
    assert not domain.may_write(None, holder, NOW)


def test_outcome_status() -> None:
    ok = StageResult("x", None, 10)
    stt_down = StageResult(None, Problem("stt_timeout", "STT timed out."), 10)
    stress_down = StageResult(None, Problem("stress_unavailable", "Stress down."), 10)
    assert domain.outcome_status(ok, ok) == (MessageStatus.READY, None)
    assert domain.outcome_status(stt_down, ok) == (MessageStatus.FAILED, stt_down.problem)
    assert domain.outcome_status(ok, stress_down) == (MessageStatus.FAILED, stress_down.problem)
    status, problem = domain.outcome_status(stt_down, stress_down)
    assert status is MessageStatus.FAILED and problem is not None
    assert problem.code == "services_unavailable" and "STT" in problem.message and "Stress" in problem.message


def test_terminal_statuses() -> None:
    assert not MessageStatus.PROCESSING.is_terminal
    assert all(s.is_terminal for s in (MessageStatus.READY, MessageStatus.FAILED, MessageStatus.REJECTED))


def test_charge_counts_one_message_unless_over_budget() -> None:
    budget = domain.DailyBudget(messages=2, audio_seconds=60.0)
    once = domain.charge(domain.Usage(), 20.0, budget)
    assert once == domain.Usage(1, 20.0)
    assert domain.charge(once, 40.0, budget) == domain.Usage(2, 60.0)  # exactly at the budget
    assert domain.charge(once, 40.5, budget) is None  # audio over
    assert domain.charge(domain.Usage(2, 0.0), 1.0, budget) is None  # messages over


def test_usage_day_is_the_utc_date() -> None:
    # 2026-01-05 23:30 UTC is already the 6th in Seoul: the budget day is the UTC one.
    assert domain.usage_day(1767655800.0) == "2026-01-05"
