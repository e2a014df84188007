"""The alert service (emochat.alerts.service) with an in-memory store and notifier."""

from __future__ import annotations

from typing import Any

import pytest
from fakes.alerts import Clock, FakeNotifier, FakeStore

from emochat.alerts import model as alerts
from emochat.alerts.model import (
    AlertDecision,
    AlertPolicy,
    AlertPrefs,
    AlertReason,
    Baseline,
    MarkerAction,
    MarkerState,
    ReadyReading,
    Verdict,
)
from emochat.alerts.service import AlertConfig, AlertServices, alert_on_reading
from emochat.alerts.texts import texts_for
from emochat.domain import StressLevel


@pytest.fixture
def store() -> FakeStore:
    return FakeStore(
        members={"chat1": ["mina", "joon", "ara"]},
        users={"mina": {"displayName": "Mina"}, "joon": {"displayName": "Joon"}, "ara": {}},
        devices={"mina": ["mina-phone"], "joon": ["joon-phone", "joon-tablet"], "ara": ["ara-phone"]},
    )


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def notifier() -> FakeNotifier:
    return FakeNotifier()


@pytest.fixture
def services(store: FakeStore, notifier: FakeNotifier, clock: Clock) -> AlertServices:
    return AlertServices(store=store, notifier=notifier, clock=clock)


CONFIG = AlertConfig(policy=AlertPolicy(z_threshold=1.0, min_samples=5), default_prefs=AlertPrefs(True, 30))


def reading(
    message_id: str = "m1", score: float = 85.0, level: StressLevel = StressLevel.HIGH, sender: str = "mina"
) -> ReadyReading:
    return ReadyReading("chat1", message_id, sender, score, level)


def test_high_reading_alerts_sender_and_members(
    services: AlertServices, store: FakeStore, notifier: FakeNotifier
) -> None:
    outcome = alert_on_reading(reading(), services, CONFIG)

    assert outcome.action is MarkerAction.START
    assert outcome.decision == AlertDecision(True, AlertReason.FIXED_THRESHOLD)
    assert outcome.verdicts == {"mina": Verdict.SEND, "joon": Verdict.SEND, "ara": Verdict.SEND}
    pushes = {tokens: push for tokens, push in notifier.sent}
    assert pushes[("mina-phone",)].data["role"] == "self"
    assert pushes[("joon-phone", "joon-tablet")].title == "Mina sounds stressed"
    assert pushes[("ara-phone",)].data["messageId"] == "m1"

    nid = alerts.notification_id("chat1", "m1")
    joon = store.notifications["joon"][nid]
    assert joon["status"] == "sent" and joon["role"] == "member" and joon["reason"] == "fixed_threshold"
    assert joon["delivery"] == {
        "tokens": 2,
        "success": 2,
        "failure": 0,
        "removedTokens": 0,
        "retries": 0,
        "errors": {},
    }
    assert joon["title"] == pushes[("joon-phone", "joon-tablet")].title
    assert joon["baseline"] == {"count": 0, "mean": 0.0, "std": 0.0}
    assert store.baselines["mina"] == Baseline().add(85.0)
    assert store.markers["chats/chat1/messages/m1"]["state"] is MarkerState.DONE
    assert store.markers["chats/chat1/messages/m1"]["recipients"] == {
        "mina": "send",
        "joon": "send",
        "ara": "send",
    }


def test_senders_self_care_alert_carries_one_coping_suggestion(
    services: AlertServices, store: FakeStore, notifier: FakeNotifier
) -> None:
    asked: list[ReadyReading] = []
    suggestion = {
        "recommendationId": "r1",
        "suggestionId": "box-breathing",
        "kind": "breathing",
        "title": "Box breathing",
        "text": "In 4, hold 4, out 4, hold 4.",
        "language": "en",
    }
    services.suggest = lambda r, language: asked.append((r, language)) or suggestion
    alert_on_reading(reading(), services, CONFIG)
    alert_on_reading(reading(), services, CONFIG)  # a duplicate asks for nothing more

    assert [(r.sender_id, language) for r, language in asked] == [("mina", "en")]
    pushes = {tokens: push for tokens, push in notifier.sent}
    own = pushes[("mina-phone",)]
    assert "Box breathing" in own.body
    assert own.data["recommendationId"] == "r1" and own.data["suggestionId"] == "box-breathing"
    assert all(isinstance(v, str) for v in own.data.values())
    assert "suggestionId" not in pushes[("joon-phone", "joon-tablet")].data
    nid = alerts.notification_id("chat1", "m1")
    mina = store.notifications["mina"][nid]
    assert mina["suggestion"] == suggestion and mina["body"] == own.body and mina["data"] == own.data
    assert "suggestion" not in store.notifications["joon"][nid]


def test_each_recipient_is_alerted_in_their_language(
    services: AlertServices, store: FakeStore, notifier: FakeNotifier
) -> None:
    store.users["mina"]["language"] = "ko-KR"
    asked: list[str] = []
    suggestion = {"recommendationId": "r1", "suggestionId": "walk", "kind": "walk", "title": "짧은 산책"}
    services.suggest = lambda r, language: asked.append(language) or suggestion
    alert_on_reading(reading(), services, CONFIG)
    pushes = {tokens: push for tokens, push in notifier.sent}
    own = pushes[("mina-phone",)]
    assert own.title == texts_for("ko")["self_title"] and "짧은 산책" in own.body
    assert asked == ["ko"]  # the suggestion is asked for in the alert's language
    assert pushes[("joon-phone", "joon-tablet")].title == "Mina sounds stressed"  # Joon has no language set


def test_no_suggestion_still_alerts(services: AlertServices, notifier: FakeNotifier) -> None:
    services.suggest = lambda r, language: None
    outcome = alert_on_reading(reading(), services, CONFIG)
    assert outcome.verdicts["mina"] is Verdict.SEND
    assert "suggestionId" not in {k for _, p in notifier.sent for k in p.data}


def test_duplicate_event_alerts_once_and_counts_once(
    services: AlertServices, store: FakeStore, notifier: FakeNotifier
) -> None:
    alert_on_reading(reading(), services, CONFIG)
    again = alert_on_reading(reading(), services, CONFIG)
    assert again.action is MarkerAction.SKIP and not again.verdicts
    assert len(notifier.sent) == 3
    assert store.baselines["mina"].count == 1


@pytest.mark.parametrize("level", [StressLevel.LOW, StressLevel.MODERATE])
def test_low_and_moderate_update_the_baseline_only(
    services: AlertServices, store: FakeStore, notifier: FakeNotifier, level: StressLevel
) -> None:
    outcome = alert_on_reading(reading(score=35.0, level=level), services, CONFIG)
    assert outcome.decision == AlertDecision(False, AlertReason.NOT_HIGH)
    assert notifier.sent == [] and store.notifications == {}
    assert store.baselines["mina"].count == 1 and store.baselines["mina"].mean == 35.0
    assert store.markers["chats/chat1/messages/m1"]["state"] is MarkerState.DONE


def test_cooldown_per_recipient(
    services: AlertServices, store: FakeStore, notifier: FakeNotifier, clock: Clock
) -> None:
    store.users["joon"]["alertPrefs"] = {"cooldownMinutes": 5}
    alert_on_reading(reading("m1"), services, CONFIG)
    clock.now += 10 * 60
    outcome = alert_on_reading(reading("m2"), services, CONFIG)
    # Joon's own 5 minutes are over; Mina and Ara are on the default 30.
    assert outcome.verdicts == {"mina": Verdict.COOLDOWN, "joon": Verdict.SEND, "ara": Verdict.COOLDOWN}
    assert len(store.notifications["mina"]) == 1 and len(store.notifications["joon"]) == 2
    clock.now += 30 * 60
    third = alert_on_reading(reading("m3"), services, CONFIG)
    assert set(third.verdicts.values()) == {Verdict.SEND}


def test_disabled_recipient_gets_nothing(
    services: AlertServices, store: FakeStore, notifier: FakeNotifier
) -> None:
    store.users["ara"]["alertPrefs"] = {"enabled": False}
    outcome = alert_on_reading(reading(), services, CONFIG)
    assert outcome.verdicts["ara"] is Verdict.DISABLED
    assert "ara" not in store.notifications or not store.notifications["ara"]
    assert all("ara-phone" not in tokens for tokens, _ in notifier.sent)


def test_stale_tokens_are_removed_and_counted(services: AlertServices, store: FakeStore) -> None:
    store.devices["joon"] = ["joon-phone", "stale-old-phone", "down-tablet"]
    alert_on_reading(reading(), services, CONFIG)
    assert store.devices["joon"] == ["joon-phone", "down-tablet"]
    entry = store.notifications["joon"][alerts.notification_id("chat1", "m1")]
    assert entry["status"] == "sent"
    assert entry["delivery"]["success"] == 1 and entry["delivery"]["failure"] == 2
    assert entry["delivery"]["removedTokens"] == 1
    assert entry["delivery"]["errors"] == {"UNREGISTERED": 1, "UNAVAILABLE": 1}


def test_recipient_without_devices_still_gets_a_feed_entry(
    services: AlertServices, store: FakeStore, notifier: FakeNotifier
) -> None:
    store.devices["ara"] = []
    outcome = alert_on_reading(reading(), services, CONFIG)
    assert outcome.verdicts["ara"] is Verdict.SEND
    entry = store.notifications["ara"][alerts.notification_id("chat1", "m1")]
    assert entry["status"] == "no_devices" and entry["delivery"]["tokens"] == 0
    assert len(notifier.sent) == 2


def test_a_failing_notifier_does_not_stop_the_others(
    services: AlertServices, store: FakeStore, notifier: FakeNotifier
) -> None:
    notifier.explode = True
    outcome = alert_on_reading(reading(), services, CONFIG)
    assert set(outcome.verdicts.values()) == {Verdict.SEND}
    for uid in ("mina", "joon", "ara"):
        entry = store.notifications[uid][alerts.notification_id("chat1", "m1")]
        assert entry["status"] == "failed" and entry["delivery"]["errors"] == {
            "RuntimeError": len(store.devices[uid])
        }


def test_personal_baseline_takes_over_after_enough_samples(
    services: AlertServices, store: FakeStore, notifier: FakeNotifier, clock: Clock
) -> None:
    # Mina is usually tense: her five earlier readings sit between 70 and 85.
    for i, score in enumerate([70.0, 80.0, 75.0, 85.0, 78.0]):
        clock.now += 3600
        alert_on_reading(reading(f"old{i}", score=score), services, CONFIG)
    assert store.baselines["mina"].count == 5
    clock.now += 3600
    usual = alert_on_reading(reading("usual", score=76.0), services, CONFIG)
    assert usual.decision is not None and usual.decision.reason is AlertReason.WITHIN_PERSONAL_RANGE
    assert not usual.verdicts
    clock.now += 3600
    spike = alert_on_reading(reading("spike", score=97.0), services, CONFIG)
    assert spike.decision is not None and spike.decision.reason is AlertReason.PERSONAL_BASELINE
    entry = store.notifications["joon"][alerts.notification_id("chat1", "spike")]
    assert entry["reason"] == "personal_baseline" and entry["z"] == spike.decision.z and entry["z"] >= 1.0
    assert entry["baseline"]["count"] == 6


def test_retake_after_a_crash_finishes_only_the_missing_recipients(
    services: AlertServices, store: FakeStore, notifier: FakeNotifier, clock: Clock
) -> None:
    original_reserve = store.reserve

    def crash_after_mina(uid: str, *args: Any, **kwargs: Any) -> Verdict:
        if uid == "joon":
            raise RuntimeError("instance died")
        return original_reserve(uid, *args, **kwargs)

    store.reserve = crash_after_mina  # type: ignore[method-assign]
    with pytest.raises(RuntimeError):
        alert_on_reading(reading(), services, CONFIG)
    store.reserve = original_reserve  # type: ignore[method-assign]

    assert alert_on_reading(reading(), services, CONFIG).action is MarkerAction.SKIP  # lease still held
    clock.now += CONFIG.lease_s
    retake = alert_on_reading(reading(), services, CONFIG)
    assert retake.action is MarkerAction.RETAKE
    assert retake.verdicts == {"mina": Verdict.DUPLICATE, "joon": Verdict.SEND, "ara": Verdict.SEND}
    assert store.baselines["mina"].count == 1
    assert [tokens for tokens, _ in notifier.sent].count(("mina-phone",)) == 1


def test_sender_alone_in_a_missing_chat_still_gets_self_care(
    services: AlertServices, store: FakeStore, notifier: FakeNotifier
) -> None:
    outcome = alert_on_reading(ReadyReading("gone", "m1", "mina", 90.0, StressLevel.HIGH), services, CONFIG)
    assert outcome.verdicts == {"mina": Verdict.SEND}


# ── wiring ───────────────────────────────────────────────────────────────────────────────────────


def test_alert_config_from_params(monkeypatch: pytest.MonkeyPatch) -> None:
    from emochat import wiring

    for name in ("ALERT_Z_THRESHOLD", "ALERT_BASELINE_MIN_SAMPLES", "ALERT_COOLDOWN_MINUTES"):
        monkeypatch.delenv(name, raising=False)
    default = wiring.alert_config()
    assert default.policy == AlertPolicy(z_threshold=1.0, min_samples=5)
    assert default.default_prefs == AlertPrefs(enabled=True, cooldown_minutes=30.0)
    monkeypatch.setenv("ALERT_Z_THRESHOLD", "1.75")
    monkeypatch.setenv("ALERT_BASELINE_MIN_SAMPLES", "8")
    monkeypatch.setenv("ALERT_COOLDOWN_MINUTES", "0")
    custom = wiring.alert_config()
    assert custom.policy.z_threshold == 1.75 and custom.policy.min_samples == 8
    assert custom.default_prefs.cooldown_minutes == 0.0
    monkeypatch.setenv("ALERT_Z_THRESHOLD", "high")
    with pytest.raises(ValueError, match="ALERT_Z_THRESHOLD"):
        wiring.alert_config()


def test_firebase_app_under_the_emulators_needs_no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    import firebase_admin

    from emochat import wiring
    from emochat.alerts.adapters.fcm_notifier import EmulatorCredential

    monkeypatch.setenv("FIRESTORE_EMULATOR_HOST", "127.0.0.1:1")
    monkeypatch.setenv("GCLOUD_PROJECT", "demo-wiring")
    wiring.firebase_app.cache_clear()
    try:
        app = wiring.firebase_app()
        assert app.name == wiring.ALERTS_APP_NAME and app.project_id == "demo-wiring"
        assert isinstance(app.credential, EmulatorCredential)
        assert app.credential.get_credential().token == "owner"
        assert wiring.firebase_app() is app
    finally:
        wiring.firebase_app.cache_clear()
        firebase_admin.delete_app(firebase_admin.get_app(wiring.ALERTS_APP_NAME))
