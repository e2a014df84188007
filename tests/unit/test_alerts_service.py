"""The alert service (emochat.alerts.service) with an in-memory store and notifier."""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Mapping, Sequence
from typing import Any

import pytest
from fakes.alerts import Clock, FakeFcm, FakeNotifier, FakeStore

from emochat.alerts import model as alerts
from emochat.alerts.adapters.fcm_notifier import FcmNotifier
from emochat.alerts.delivery import Delivery
from emochat.alerts.model import (
    AlertDecision,
    AlertPolicy,
    AlertPrefs,
    AlertReason,
    Baseline,
    MarkerAction,
    MarkerState,
    Push,
    ReadyReading,
    Verdict,
)
from emochat.alerts.ports import Reservation
from emochat.alerts.service import AlertConfig, AlertServices, alert_on_reading, sweep_stuck_alerts
from emochat.alerts.texts import texts_for
from emochat.domain import StressLevel


@pytest.fixture
def store() -> FakeStore:
    return FakeStore(
        members={"chat1": ["mina", "joon", "ara"]},
        users={"mina": {"displayName": "Mina"}, "joon": {"displayName": "Joon"}, "ara": {}},
        # Oldest first, as registered: pushes list the newest first.
        devices={"mina": ["mina-phone"], "joon": ["joon-tablet", "joon-phone"], "ara": ["ara-phone"]},
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
    assert joon["status"] == "sent" and joon["role"] == "member"
    assert joon["delivery"] == {
        "tokens": 2,
        "success": 2,
        "failure": 0,
        "removedTokens": 0,
        "retries": 0,
        "errors": {},
    }
    assert joon["title"] == pushes[("joon-phone", "joon-tablet")].title
    # Mina's baseline is hers alone: her own entry shows the yardstick, a member's nothing of it.
    assert store.notifications["mina"][nid]["baseline"] == {"count": 0, "mean": 0.0, "std": 0.0}
    assert store.notifications["mina"][nid]["reason"] == "fixed_threshold"
    assert not {"baseline", "z", "reason"} & set(joon) and "reason" not in joon["data"]
    assert joon["score"] == 85.0 and joon["level"] == "high" and joon["senderId"] == "mina"
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


def test_a_strangers_alerts_do_not_suppress_a_real_one(
    services: AlertServices, store: FakeStore, notifier: FakeNotifier, clock: Clock
) -> None:
    """Issue 10 item 2: Eve put Joon in a chat of hers and alerts him; Mina's real alert still reaches him."""
    store.members["spam"] = ["eve", "joon"]
    store.users["eve"] = {"displayName": "Eve"}
    eve = alert_on_reading(ReadyReading("spam", "e1", "eve", 95.0, StressLevel.HIGH), services, CONFIG)
    assert eve.verdicts["joon"] is Verdict.SEND
    clock.now += 60
    again = alert_on_reading(ReadyReading("spam", "e2", "eve", 96.0, StressLevel.HIGH), services, CONFIG)
    assert again.verdicts["joon"] is Verdict.COOLDOWN  # Eve's own pair is cooling down
    clock.now += 60
    real = alert_on_reading(reading("m1"), services, CONFIG)
    assert real.verdicts["joon"] is Verdict.SEND
    assert [p.title for tokens, p in notifier.sent if "joon-phone" in tokens][-1] == "Mina sounds stressed"


def test_a_per_recipient_cap_bounds_pushes_across_senders(
    services: AlertServices, store: FakeStore, notifier: FakeNotifier, clock: Clock
) -> None:
    config = AlertConfig(policy=CONFIG.policy, default_prefs=CONFIG.default_prefs, max_alerts_per_hour=6)
    verdicts = []
    for i in range(8):  # eight senders, each in a chat with Joon, within the hour
        store.members[f"c{i}"] = [f"s{i}", "joon"]
        store.users[f"s{i}"] = {}  # real accounts: the backend writes nothing for made-up uids
        verdicts.append(
            alert_on_reading(
                ReadyReading(f"c{i}", "m", f"s{i}", 90.0, StressLevel.HIGH), services, config
            ).verdicts["joon"]
        )
        clock.now += 60
    assert verdicts == [Verdict.SEND] * 6 + [Verdict.CAPPED] * 2
    assert len(store.notifications["joon"]) == 6
    assert sum("joon-phone" in tokens for tokens, _ in notifier.sent) == 6
    clock.now += 3600
    later = alert_on_reading(ReadyReading("c7", "m2", "s7", 90.0, StressLevel.HIGH), services, config)
    assert later.verdicts["joon"] is Verdict.SEND


@pytest.mark.parametrize("name", ["Mina\nURGENT: tap here", "\u202eanim", "M" * 200, "Mi\x00na"])
def test_a_bad_display_name_becomes_someone_in_the_push_title(
    services: AlertServices, store: FakeStore, notifier: FakeNotifier, name: str
) -> None:
    store.users["mina"]["displayName"] = name
    store.users["ara"]["language"] = "ko"
    alert_on_reading(reading(), services, CONFIG)
    pushes = {tokens: push for tokens, push in notifier.sent}
    for tokens, language in ((("joon-phone", "joon-tablet"), "en"), (("ara-phone",), "ko")):
        texts = texts_for(language)
        assert pushes[tokens].title == texts["member_title"].format(name=texts["someone"])
    assert all(name not in p.title + p.body for _, p in notifier.sent)


def test_invitees_are_never_recipients(
    services: AlertServices, store: FakeStore, notifier: FakeNotifier
) -> None:
    store.invited["chat1"] = ["eve"]
    store.devices["eve"] = ["eve-phone"]
    outcome = alert_on_reading(reading(), services, CONFIG)
    assert set(outcome.verdicts) == {"mina", "joon", "ara"}
    assert "eve" not in store.notifications and all("eve-phone" not in t for t, _ in notifier.sent)


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
    nid = alerts.notification_id("chat1", "spike")
    own = store.notifications["mina"][nid]
    assert own["reason"] == "personal_baseline" and own["z"] == spike.decision.z and own["z"] >= 1.0
    assert own["baseline"]["count"] == 6
    # Joon learns that Mina sounded stressed, with the score the chat shows; nothing of her history.
    other = store.notifications["joon"][nid]
    assert not {"baseline", "z", "reason"} & set(other) and "reason" not in other["data"]
    assert other["score"] == 97.0


def test_retake_after_a_crash_finishes_only_the_missing_recipients(
    services: AlertServices, store: FakeStore, notifier: FakeNotifier, clock: Clock
) -> None:
    original_reserve = store.reserve

    def fail_for_joon(reservation: Reservation, *args: Any) -> Verdict:
        if reservation.uid == "joon":
            raise RuntimeError("Firestore refused")
        return original_reserve(reservation, *args)

    store.reserve = fail_for_joon  # type: ignore[method-assign]
    with pytest.raises(RuntimeError):
        alert_on_reading(reading(), services, CONFIG)
    store.reserve = original_reserve  # type: ignore[method-assign]
    # Served concurrently, Ara was not held up by Joon's failure; the marker stays claimed.
    assert store.markers["chats/chat1/messages/m1"]["state"] is MarkerState.CLAIMED

    assert alert_on_reading(reading(), services, CONFIG).action is MarkerAction.SKIP  # lease still held
    clock.now += CONFIG.lease_s
    retake = alert_on_reading(reading(), services, CONFIG)
    assert retake.action is MarkerAction.RETAKE
    assert retake.verdicts == {"mina": Verdict.DUPLICATE, "joon": Verdict.SEND, "ara": Verdict.DUPLICATE}
    assert store.baselines["mina"].count == 1
    assert sorted(tokens for tokens, _ in notifier.sent) == [
        ("ara-phone",),
        ("joon-phone", "joon-tablet"),
        ("mina-phone",),
    ]


# ── delivery under one deadline, device cap, crashes (issue 11 item 5) ───────────────────────────


class InstanceDied(BaseException):
    """The function instance is gone (timeout, OOM, redeploy): nothing after it runs."""


def test_recipients_are_served_concurrently(services: AlertServices, store: FakeStore) -> None:
    """Three slow recipients at once: served one after another, no push would find the others."""
    together = threading.Barrier(3, timeout=5)

    class SlowNotifier(FakeNotifier):
        def send(self, tokens: Sequence[str], push: Push, budget_s: float) -> Delivery:
            together.wait()  # every recipient's push is in flight at the same time
            return super().send(tokens, push, budget_s)

    services.notifier = SlowNotifier()
    outcome = alert_on_reading(reading(), services, CONFIG)
    assert {uid: d.success for uid, d in outcome.deliveries.items()} == {"mina": 1, "joon": 2, "ara": 1}
    assert {
        store.notifications[uid][alerts.notification_id("chat1", "m1")]["status"]
        for uid in outcome.deliveries
    } == {"sent"}


def test_pushes_go_to_at_most_the_n_most_recent_devices(
    services: AlertServices, store: FakeStore, notifier: FakeNotifier
) -> None:
    store.devices["joon"] = [f"joon-{i}" for i in range(40)]  # oldest first, as registered
    config = dataclasses.replace(CONFIG, max_devices=5)
    outcome = alert_on_reading(reading(), services, config)
    (joon,) = [tokens for tokens, _ in notifier.sent if tokens[0].startswith("joon-")]
    assert joon == ("joon-39", "joon-38", "joon-37", "joon-36", "joon-35")
    assert outcome.deliveries["joon"].tokens == 5


def test_worst_case_delivery_fits_the_function_timeout(store: FakeStore) -> None:
    """The production configuration, every FCM call as slow as it may be and always failing over:
    the run ends within the function timeout, and recipients the deadline cut off are left claimed
    for the sweeper (served one after another here: the slowest possible schedule)."""
    from emochat import wiring

    config = dataclasses.replace(wiring.alert_config(), max_parallel=1)
    assert config.lease_s > config.timeout_s > config.delivery_window_s > config.fcm_call_s
    clock = Clock()
    start = clock.now
    fcm = FakeFcm(fail_times=10**6)

    def slowest_fcm(message: Any) -> Any:
        clock.now += config.fcm_call_s
        return fcm(message)

    def sleep(seconds: float) -> None:
        clock.now += seconds

    fcm_notifier = FcmNotifier(
        slowest_fcm, max_attempts=99, call_s=config.fcm_call_s, sleep=sleep, clock=clock
    )
    store.members["big"] = [f"u{i}" for i in range(50)]
    store.devices.update({f"u{i}": [f"down-{i}"] for i in range(50)})
    store.users.update({f"u{i}": {} for i in range(50)})  # real accounts (accounts.model.account_open)
    services = AlertServices(store=store, notifier=fcm_notifier, clock=clock)
    outcome = alert_on_reading(ReadyReading("big", "m1", "u0", 90.0, StressLevel.HIGH), services, config)
    assert clock.now - start <= config.timeout_s - config.finish_margin_s
    assert outcome.pending  # the deadline left recipients to the sweeper, none of them reserved
    assert all(uid not in store.notifications for uid in outcome.pending)
    assert store.markers["chats/big/messages/m1"]["state"] is MarkerState.CLAIMED


def test_a_recipient_reserved_when_the_deadline_came_is_resumed_by_the_sweeper(
    services: AlertServices, store: FakeStore, notifier: FakeNotifier, clock: Clock
) -> None:
    """Reserved in time, but the Firestore steps ate the budget: no FCM call fits any more. The
    entry stays `sending` and the marker claimed, instead of ending `failed` and never pushed."""

    class LateOnce(FakeNotifier):
        late = True

        def send(self, tokens: Sequence[str], push: Push, budget_s: float = float("inf")) -> Delivery:
            if self.late:
                self.late = False
                return Delivery(tokens=len(tokens), failure=len(tokens), unsent=len(tokens))
            return super().send(tokens, push, budget_s)

    services.notifier = late = LateOnce()
    store.members["chat1"] = ["joon"]
    outcome = alert_on_reading(reading(sender="joon"), services, CONFIG)
    nid = alerts.notification_id("chat1", "m1")
    assert outcome.pending == ("joon",) and store.notifications["joon"][nid]["status"] == "sending"
    assert store.markers["chats/chat1/messages/m1"]["state"] is MarkerState.CLAIMED
    clock.now += CONFIG.lease_s
    assert sweep_stuck_alerts(services, CONFIG) == ["chats/chat1/messages/m1"]
    assert store.notifications["joon"][nid]["status"] == "sent"
    assert [tokens for tokens, _ in late.sent] == [("joon-phone", "joon-tablet")]


def test_a_crash_before_a_push_is_finished_by_the_sweeper_exactly_once(
    services: AlertServices, store: FakeStore, notifier: FakeNotifier, clock: Clock
) -> None:
    real_tokens = store.device_tokens

    def die_at_joon(uid: str, limit: int) -> list[str]:
        if uid == "joon":
            raise InstanceDied
        return real_tokens(uid, limit)

    store.device_tokens = die_at_joon  # type: ignore[method-assign]
    with pytest.raises(InstanceDied):
        alert_on_reading(reading(), services, CONFIG)
    store.device_tokens = real_tokens  # type: ignore[method-assign]
    nid = alerts.notification_id("chat1", "m1")
    assert store.notifications["joon"][nid]["status"] == "sending"  # reserved, never pushed
    assert not [t for t, _ in notifier.sent if "joon-phone" in t]

    # No trigger is redelivered: only the sweeper can finish it, once the lease has run out.
    assert sweep_stuck_alerts(services, CONFIG) == []
    clock.now += CONFIG.lease_s
    assert sweep_stuck_alerts(services, CONFIG) == ["chats/chat1/messages/m1"]
    assert store.markers["chats/chat1/messages/m1"]["state"] is MarkerState.DONE
    assert store.markers["chats/chat1/messages/m1"]["recipients"] == {
        "mina": "duplicate",
        "joon": "resume",
        "ara": "duplicate",
    }
    sent = [tokens for tokens, _ in notifier.sent]
    assert sorted(sent) == [("ara-phone",), ("joon-phone", "joon-tablet"), ("mina-phone",)]  # each once
    assert store.notifications["joon"][nid]["status"] == "sent"
    assert store.alert_logs["joon"].recent == (clock.now - CONFIG.lease_s,)  # counted once
    clock.now += CONFIG.lease_s
    assert sweep_stuck_alerts(services, CONFIG) == []


def test_a_crash_after_a_push_resends_it_under_the_same_collapse_id(
    services: AlertServices, store: FakeStore, notifier: FakeNotifier, clock: Clock
) -> None:
    """Pushed, then the instance died before writing so: which no one can know. The retake sends it
    again with the same collapse id, so the device shows it once."""
    real_finish = store.finish_notification

    def die_after_joons_push(uid: str, nid: str, fields: Mapping[str, Any]) -> None:
        if uid == "joon":
            raise InstanceDied
        real_finish(uid, nid, fields)

    store.finish_notification = die_after_joons_push  # type: ignore[method-assign]
    with pytest.raises(InstanceDied):
        alert_on_reading(reading(), services, CONFIG)
    store.finish_notification = real_finish  # type: ignore[method-assign]
    clock.now += CONFIG.lease_s
    assert sweep_stuck_alerts(services, CONFIG) == ["chats/chat1/messages/m1"]
    to_joon = [push for tokens, push in notifier.sent if "joon-phone" in tokens]
    assert len(to_joon) == 2 and len({p.data["notificationId"] for p in to_joon}) == 1
    assert len([t for t, _ in notifier.sent if t == ("ara-phone",)]) == 1


def test_the_sweeper_leaves_live_and_finished_markers_alone(
    services: AlertServices, store: FakeStore, notifier: FakeNotifier, clock: Clock
) -> None:
    alert_on_reading(reading("done"), services, CONFIG)
    alert_on_reading(reading("low", score=20.0, level=StressLevel.LOW), services, CONFIG)
    sent = len(notifier.sent)
    clock.now += 10 * CONFIG.lease_s
    assert sweep_stuck_alerts(services, CONFIG) == [] and len(notifier.sent) == sent


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
    for name in ("ALERT_MAX_PER_HOUR",):
        monkeypatch.delenv(name, raising=False)
    default = wiring.alert_config()
    assert default.policy == AlertPolicy(z_threshold=1.0, min_samples=5)
    assert default.default_prefs == AlertPrefs(enabled=True, cooldown_minutes=30.0)
    assert default.max_alerts_per_hour == 6
    monkeypatch.setenv("ALERT_Z_THRESHOLD", "1.75")
    monkeypatch.setenv("ALERT_BASELINE_MIN_SAMPLES", "8")
    monkeypatch.setenv("ALERT_COOLDOWN_MINUTES", "0")
    monkeypatch.setenv("ALERT_MAX_PER_HOUR", "100000")
    custom = wiring.alert_config()
    assert custom.max_alerts_per_hour == alerts.MAX_ALERTS_PER_HOUR_LIMIT
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
