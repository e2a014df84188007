"""The alert decisions (emochat.alerts.model, .delivery, .texts): pure values in, decisions out."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest

from emochat.alerts import delivery
from emochat.alerts import model as alerts
from emochat.alerts.delivery import TokenFate
from emochat.alerts.model import (
    AlertDecision,
    AlertLog,
    AlertPolicy,
    AlertPrefs,
    AlertReason,
    Baseline,
    Marker,
    MarkerAction,
    MarkerState,
    ReadyReading,
    Recipient,
    Role,
    Verdict,
)
from emochat.alerts.texts import texts_for
from emochat.domain import StressLevel
from emochat.profile import user_language


def message(
    status: str, level: str | None = "high", score: float | None = 82.5, sender: str = "mina"
) -> dict:
    stress = None if level is None else {"score": score, "level": level, "probability": 0.825, "model": "m"}
    return {"kind": "voice", "senderId": sender, "status": status, "stress": stress}


def reading(score: float = 82.5, level: StressLevel = StressLevel.HIGH) -> ReadyReading:
    return ReadyReading("chat1", "msg1", "mina", score, level)


# ── transitions ──────────────────────────────────────────────────────────────────────────────────


@pytest.mark.parametrize("before_status", [None, "processing", "failed", "rejected"])
def test_transition_into_ready_is_a_reading(before_status: str | None) -> None:
    before = None if before_status is None else message(before_status, level=None)
    got = alerts.ready_reading("chat1", "msg1", before, message("ready"))
    assert got == ReadyReading("chat1", "msg1", "mina", 82.5, StressLevel.HIGH)
    assert got.message_doc == "chats/chat1/messages/msg1"


@pytest.mark.parametrize("level", ["low", "moderate", "high"])
def test_every_level_is_a_reading_since_every_one_feeds_the_baseline(level: str) -> None:
    got = alerts.ready_reading("c", "m", message("processing", None), message("ready", level, 12.0))
    assert got is not None and got.level.value == level


@pytest.mark.parametrize(
    ("before", "after"),
    [
        (None, message("processing", None)),  # created as processing
        (message("processing", None), message("processing", None)),  # lease refreshed
        (message("processing", None), message("failed", "high")),
        (message("processing", None), message("rejected", None)),
        (message("ready"), message("ready")),  # a later edit of a ready message (or a duplicate)
        (message("ready", "low", 10.0), message("ready", "high", 90.0)),  # re-scored while ready
        (message("ready"), None),  # deleted
        (None, None),
    ],
)
def test_other_writes_are_not_readings(before: dict | None, after: dict | None) -> None:
    assert alerts.ready_reading("c", "m", before, after) is None


@pytest.mark.parametrize(
    "after",
    [
        message("ready", level=None),  # ready without a reading
        message("ready", score=None),
        message("ready", score=math.nan),
        message("ready", score=True),
        message("ready", level="extreme"),
        {**message("ready"), "senderId": ""},
        {**message("ready"), "senderId": None},
        {**message("ready"), "stress": "high"},
    ],
)
def test_ready_without_a_usable_reading_is_ignored(after: dict) -> None:
    assert alerts.ready_reading("c", "m", message("processing", None), after) is None


def test_integer_scores_are_accepted() -> None:
    got = alerts.ready_reading("c", "m", None, message("ready", "high", 70))
    assert got is not None and got.score == 70.0 and isinstance(got.score, float)


# ── Welford baseline ─────────────────────────────────────────────────────────────────────────────


@pytest.mark.parametrize("n", [1, 2, 3, 10, 500])
def test_welford_matches_numpy(n: int) -> None:
    rng = random.Random(n)
    scores = [round(rng.uniform(0, 100), 1) for _ in range(n)]
    baseline = Baseline()
    for score in scores:
        baseline = baseline.add(score)
    assert baseline.count == n
    assert baseline.mean == pytest.approx(np.mean(scores), rel=1e-12, abs=1e-9)
    expected_var = np.var(scores, ddof=1) if n > 1 else 0.0
    assert baseline.variance == pytest.approx(expected_var, rel=1e-9, abs=1e-9)
    assert baseline.std == pytest.approx(math.sqrt(expected_var), rel=1e-9, abs=1e-9)


def test_welford_is_stable_for_large_offsets() -> None:
    # The naive sum-of-squares formula loses everything here; Welford keeps the spread exactly.
    scores = [1e9 + x for x in (4.0, 7.0, 13.0, 16.0)]
    baseline = Baseline()
    for score in scores:
        baseline = baseline.add(score)
    assert baseline.variance == pytest.approx(np.var(scores, ddof=1), rel=1e-9)


def test_baseline_round_trips_and_rejects_nonsense() -> None:
    baseline = Baseline().add(10.0).add(20.0).add(60.0)
    fields = baseline.as_fields()
    assert set(fields) == {"count", "mean", "m2", "variance", "std"}
    assert Baseline.from_fields(fields) == baseline
    for bad in (
        None,
        {},
        {"count": 0, "mean": 1, "m2": 0},
        {"count": "3", "mean": 1, "m2": 0},
        {"count": 3, "mean": "x", "m2": 0},
        {"count": 3, "mean": 1, "m2": -1},
        {"count": True, "mean": 1, "m2": 0},
        {"count": 2, "mean": math.inf, "m2": 0},
    ):
        assert Baseline.from_fields(bad) == Baseline()


# ── z-score rule ─────────────────────────────────────────────────────────────────────────────────


def history(*scores: float) -> Baseline:
    baseline = Baseline()
    for score in scores:
        baseline = baseline.add(score)
    return baseline


def test_not_high_never_alerts() -> None:
    for level in (StressLevel.LOW, StressLevel.MODERATE):
        decision = alerts.decide_alert(reading(40.0, level), Baseline(), AlertPolicy())
        assert decision == AlertDecision(alert=False, reason=AlertReason.NOT_HIGH)


def test_fixed_threshold_decides_until_the_baseline_has_enough_samples() -> None:
    policy = AlertPolicy(min_samples=5)
    flat_high = history(90, 90, 90, 90)  # 4 samples: a reading of 61 would be far below it
    decision = alerts.decide_alert(reading(61.0), flat_high, policy)
    assert decision == AlertDecision(alert=True, reason=AlertReason.FIXED_THRESHOLD, z=None)


def test_unusual_high_alerts_on_the_personal_baseline() -> None:
    calm = history(20, 25, 30, 22, 28)  # mean 25, sd ≈ 4.06
    decision = alerts.decide_alert(reading(70.0), calm, AlertPolicy())
    assert decision.alert and decision.reason is AlertReason.PERSONAL_BASELINE
    assert decision.z == pytest.approx((70 - 25) / np.std([20, 25, 30, 22, 28], ddof=1), abs=1e-3)


def test_usual_high_for_this_person_does_not_alert() -> None:
    tense = history(70, 80, 75, 85, 78)  # mean 77.6, sd ≈ 5.68
    decision = alerts.decide_alert(reading(72.0), tense, AlertPolicy())
    assert decision == AlertDecision(
        alert=False,
        reason=AlertReason.WITHIN_PERSONAL_RANGE,
        z=round((72 - 77.6) / np.std([70, 80, 75, 85, 78], ddof=1), 3),
    )


def test_z_threshold_is_inclusive_and_configurable() -> None:
    base = history(50, 60, 50, 60, 50, 60)  # mean 55, sd ≈ 5.477
    sd = float(np.std([50, 60, 50, 60, 50, 60], ddof=1))
    at_one_sd = reading(55 + sd)
    assert alerts.decide_alert(at_one_sd, base, AlertPolicy(z_threshold=1.0)).alert
    assert not alerts.decide_alert(at_one_sd, base, AlertPolicy(z_threshold=1.5)).alert
    assert alerts.decide_alert(reading(55 + 2 * sd), base, AlertPolicy(z_threshold=1.5)).alert


def test_flat_history_uses_the_std_floor() -> None:
    flat = history(60, 60, 60, 60, 60)
    assert flat.std == 0.0
    assert alerts.z_score(60.5, flat, min_std=1.0) == 0.5
    assert not alerts.decide_alert(reading(60.5), flat, AlertPolicy()).alert
    assert alerts.decide_alert(reading(61.0), flat, AlertPolicy()).alert


@pytest.mark.parametrize("kwargs", [{"z_threshold": math.nan}, {"min_samples": 1}, {"min_std": 0.0}])
def test_policy_rejects_nonsense(kwargs: dict) -> None:
    with pytest.raises(ValueError):
        AlertPolicy(**kwargs)


def test_decision_round_trips() -> None:
    decision = AlertDecision(alert=True, reason=AlertReason.PERSONAL_BASELINE, z=2.5)
    assert AlertDecision.from_fields(decision.as_fields()) == decision
    assert AlertDecision.from_fields(None) is None
    assert AlertDecision.from_fields({"alert": True, "reason": "nope"}) is None


# ── once per message ─────────────────────────────────────────────────────────────────────────────


def test_marker_decisions() -> None:
    now = 1000.0
    assert alerts.decide_marker(None, now) is MarkerAction.START
    assert alerts.decide_marker(Marker(MarkerState.DONE), now) is MarkerAction.SKIP
    assert alerts.decide_marker(Marker(MarkerState.CLAIMED, now + 1), now) is MarkerAction.SKIP  # in flight
    assert alerts.decide_marker(Marker(MarkerState.CLAIMED, now), now) is MarkerAction.RETAKE
    assert alerts.decide_marker(Marker(MarkerState.CLAIMED, None), now) is MarkerAction.SKIP


# ── recipients, prefs, cooldown ──────────────────────────────────────────────────────────────────


def test_recipients_sender_first_then_other_members_once() -> None:
    got = alerts.recipients("mina", ["joon", "mina", "ara", "joon", "", 7])
    assert got == [
        Recipient("mina", Role.SELF),
        Recipient("joon", Role.MEMBER),
        Recipient("ara", Role.MEMBER),
    ]
    assert alerts.recipients("mina", None) == [Recipient("mina", Role.SELF)]


def test_alert_prefs_fall_back_field_by_field() -> None:
    default = AlertPrefs(enabled=True, cooldown_minutes=30)
    assert alerts.alert_prefs(None, default) == default
    assert alerts.alert_prefs("off", default) == default
    assert alerts.alert_prefs({"enabled": False}, default) == AlertPrefs(False, 30)
    assert alerts.alert_prefs({"cooldownMinutes": 5}, default) == AlertPrefs(True, 5)
    assert alerts.alert_prefs({"cooldownMinutes": 0}, default) == AlertPrefs(True, 0)
    assert alerts.alert_prefs({"enabled": "no", "cooldownMinutes": -3}, default) == default
    huge = alerts.alert_prefs({"cooldownMinutes": 10**9}, default)
    assert huge.cooldown_minutes == alerts.MAX_COOLDOWN_MINUTES


def test_recipient_verdicts() -> None:
    prefs = AlertPrefs(enabled=True, cooldown_minutes=30)
    now = 10_000.0

    def verdict(log: AlertLog, entry: str | None = None, p: AlertPrefs = prefs) -> Verdict:
        return alerts.decide_recipient(p, log, "mina", now, entry, max_per_hour=6)

    assert verdict(AlertLog()) is Verdict.SEND
    assert verdict(AlertLog().sent("mina", now - 29 * 60)) is Verdict.COOLDOWN
    assert verdict(AlertLog().sent("mina", now - 30 * 60)) is Verdict.SEND
    assert verdict(AlertLog().sent("mina", now), p=AlertPrefs(True, 0)) is Verdict.SEND
    assert verdict(AlertLog(), p=AlertPrefs(False, 30)) is Verdict.DISABLED
    # A redelivery of an alert already sent is a duplicate, whatever the cooldown says.
    assert verdict(AlertLog().sent("mina", now), entry="sent") is Verdict.DUPLICATE
    assert verdict(AlertLog().sent("mina", now), entry="no_devices") is Verdict.DUPLICATE
    # Reserved by a run that died before pushing: a retake serves it, whatever the cooldown says.
    assert verdict(AlertLog().sent("mina", now), entry=alerts.SENDING) is Verdict.RESUME


def test_most_recent_tokens() -> None:
    devices = [
        ("old", 1.0),
        ("new", 3.0),
        ("", 4.0),
        (None, 5.0),
        ("mid", 2.0),
        ("new", 2.5),
        ("undated", None),
    ]
    assert alerts.most_recent_tokens(devices, 2) == ["new", "mid"]
    assert alerts.most_recent_tokens(devices, 10) == ["new", "mid", "old", "undated"]
    assert alerts.most_recent_tokens(devices, 0) == []


def test_cooldown_is_per_sender_and_a_cap_bounds_the_rest() -> None:
    """Issue 10: one sender's alert (a stranger's, say) must not silence another's real one."""
    prefs = AlertPrefs(enabled=True, cooldown_minutes=30)
    now = 10_000.0
    log = AlertLog().sent("eve", now - 60)

    def verdict(sender: str, at: float = now) -> Verdict:
        return alerts.decide_recipient(prefs, log, sender, at, None, max_per_hour=6)

    assert verdict("eve") is Verdict.COOLDOWN and verdict("mina") is Verdict.SEND
    for i in range(5):
        log = log.sent(f"s{i}", now - 50 + i)
    assert verdict("mina") is Verdict.CAPPED
    # The cap is a sliding hour: the oldest push leaving it frees one slot.
    assert verdict("mina", now + 3600 - 59) is Verdict.SEND
    assert verdict("mina", now + 3600 - 61) is Verdict.CAPPED


def test_alert_log_round_trips_and_stays_bounded() -> None:
    now = 1_000_000.0
    log = AlertLog()
    for i in range(50):
        log = log.sent(f"s{i}", now + i * 60)
    assert len(log.recent) <= alerts.MAX_ALERTS_PER_HOUR_LIMIT
    late = now + 50 * 60 + alerts.MAX_COOLDOWN_MINUTES * 60
    trimmed = log.sent("last", late)
    assert set(trimmed.last_by_sender) == {"last"} and trimmed.recent == (late,)
    assert AlertLog.from_fields(log.as_fields()) == log
    messy = {"lastBySender": {"a": "x", "b": 5.0}, "recentAlerts": [1.0, "y"]}
    assert AlertLog.from_fields(messy) == AlertLog({"b": 5.0}, (1.0,))
    assert AlertLog.from_fields(None) == AlertLog() == AlertLog.from_fields({"lastBySender": 3})


def test_notification_id_is_per_message_and_unambiguous() -> None:
    a = alerts.notification_id("chat1", "msg1")
    assert a == alerts.notification_id("chat1", "msg1") and len(a) == 32
    assert a != alerts.notification_id("chat1", "msg2")
    assert alerts.notification_id("a_b", "c") != alerts.notification_id("a", "b_c")


# ── texts ────────────────────────────────────────────────────────────────────────────────────────


def test_pushes_for_sender_and_members() -> None:
    decision = AlertDecision(alert=True, reason=AlertReason.PERSONAL_BASELINE, z=2.1)
    own = alerts.alert_push(Role.SELF, "Mina", reading(), decision, "n1")
    other = alerts.alert_push(Role.MEMBER, "Mina", reading(), decision, "n1")
    assert "Mina" not in own.title + own.body and "your" in own.body.lower()
    assert other.title == "Mina sounds stressed" and "Mina" in other.body
    assert other.data == {
        "type": "stress_alert",
        "role": "member",
        "chatId": "chat1",
        "messageId": "msg1",
        "senderId": "mina",
        "score": "82.5",
        "level": "high",
        "notificationId": "n1",
    }
    # Why it alerted (the sender's own baseline) is for the sender's eyes only.
    assert own.data["reason"] == "personal_baseline"
    assert all(isinstance(v, str) for v in own.data.values())
    anonymous = alerts.alert_push(Role.MEMBER, None, reading(), decision, "n1")
    assert anonymous.title == f"{texts_for('en')['someone']} sounds stressed"


def test_korean_pushes_and_language_choice() -> None:
    decision = AlertDecision(alert=True, reason=AlertReason.FIXED_THRESHOLD)
    other = alerts.alert_push(Role.MEMBER, "미나", reading(), decision, "n1", language="ko")
    assert other.title == "미나님이 스트레스를 받은 것 같아요" and "미나님" in other.body
    assert other.data == alerts.alert_push(Role.MEMBER, "미나", reading(), decision, "n1").data
    assert user_language("ko") == user_language("ko-KR") == user_language("KO_kr") == "ko"
    assert user_language("en-US") == user_language("fr") == user_language(None) == "en"


def test_display_names_are_tidied() -> None:
    assert alerts.display_name("  Mina   Kim ") == "Mina Kim"
    assert alerts.display_name("미나") == "미나"
    assert alerts.display_name("") is None and alerts.display_name("  ") is None
    assert alerts.display_name(None) is None and alerts.display_name(3) is None
    assert alerts.display_name("x" * alerts.MAX_NAME_CHARS) == "x" * alerts.MAX_NAME_CHARS


@pytest.mark.parametrize(
    "name",
    [
        "x" * (alerts.MAX_NAME_CHARS + 1),  # too long to be a name: a message in a title
        "Mina\nURGENT: your account is locked",  # a second line in the push
        "Bank\tsupport",
        "Mina\x00",
        "\u202eanim",  # right-to-left override: shows another name than it is
        "Mi\u200bna",  # zero-width space
        "\x1b[31mMina",
    ],
)
def test_display_names_with_control_characters_or_too_long_are_refused(name: str) -> None:
    assert alerts.display_name(name) is None


# ── FCM answers ──────────────────────────────────────────────────────────────────────────────────


@pytest.mark.parametrize(
    ("code", "status", "message", "fate"),
    [
        ("UNREGISTERED", 404, "Requested entity was not found.", TokenFate.STALE),
        ("SENDER_ID_MISMATCH", 403, "SenderId mismatch", TokenFate.STALE),
        (
            "INVALID_ARGUMENT",
            400,
            "The registration token is not a valid FCM registration token",
            TokenFate.STALE,
        ),
        ("INVALID_ARGUMENT", 400, "Invalid value at 'message.data[0].value'", TokenFate.FAILED),
        ("QUOTA_EXCEEDED", 429, "", TokenFate.TRANSIENT),
        ("RESOURCE_EXHAUSTED", 429, "", TokenFate.TRANSIENT),
        ("UNAVAILABLE", 503, "", TokenFate.TRANSIENT),
        ("UNAVAILABLE", None, "Failed to establish a connection", TokenFate.TRANSIENT),
        ("INTERNAL", 500, "", TokenFate.TRANSIENT),
        ("UNKNOWN", 502, "", TokenFate.TRANSIENT),
        ("DEADLINE_EXCEEDED", None, "timed out", TokenFate.TRANSIENT),
        ("THIRD_PARTY_AUTH_ERROR", 401, "", TokenFate.FAILED),
        ("UNAUTHENTICATED", 401, "", TokenFate.FAILED),
        ("PERMISSION_DENIED", 403, "", TokenFate.FAILED),
    ],
)
def test_token_fates(code: str, status: int | None, message: str, fate: TokenFate) -> None:
    assert delivery.token_fate(code, status, message) is fate


def test_backoff() -> None:
    assert [delivery.backoff_s(i, 0.5, 8.0) for i in range(6)] == [0.5, 1.0, 2.0, 4.0, 8.0, 8.0]
    assert delivery.backoff_s(0, 0.5, 8.0, retry_after_s=3) == 3
    assert delivery.backoff_s(3, 0.5, 8.0, retry_after_s=1) == 4.0  # never shorter than the backoff
    assert delivery.backoff_s(0, 0.5, 8.0, retry_after_s=120) == 8.0  # capped


def test_worst_http_call_under_urllib3_retries() -> None:
    # 1 + 1 connect + 1 read + 4 status retries = 7 attempts of 2 × 5 s; waits 0, 1, 2, 4, 8, 16 s.
    assert (
        delivery.http_call_worst_s(5, connect=1, read=1, status=4, backoff_factor=0.5, backoff_max_s=120)
        == 101
    )
    assert (
        delivery.http_call_worst_s(5, connect=0, read=0, status=0, backoff_factor=0.5, backoff_max_s=120)
        == 10
    )
    assert (
        delivery.http_call_worst_s(1, 0, 0, 9, backoff_factor=10, backoff_max_s=30)
        == 20 + 20 + 7 * 30  # 10 attempts of 2 s; waits 0, 20, then 30 (capped) x 7
    )


def test_delivery_fields() -> None:
    fields = delivery.Delivery(
        tokens=3,
        success=1,
        failure=2,
        stale_tokens=("t",),
        retries=1,
        errors={"UNREGISTERED": 1, "QUOTA_EXCEEDED": 1},
    )
    assert fields.as_fields(removed_tokens=1) == {
        "tokens": 3,
        "success": 1,
        "failure": 2,
        "removedTokens": 1,
        "retries": 1,
        "errors": {"UNREGISTERED": 1, "QUOTA_EXCEEDED": 1},
    }
