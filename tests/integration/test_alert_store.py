"""FirestoreAlertStore against the Firestore emulator: the transactions decide races for real."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from emochat.alerts.adapters.firestore_store import FirestoreAlertStore
from emochat.alerts.model import (
    AlertDecision,
    AlertLog,
    AlertPolicy,
    AlertPrefs,
    AlertReason,
    Baseline,
    MarkerAction,
    ReadyReading,
    RecipientLimits,
    Verdict,
)
from emochat.alerts.ports import Reservation
from emochat.domain import StressLevel

pytestmark = pytest.mark.stack

POLICY = AlertPolicy(z_threshold=1.0, min_samples=5)
PREFS = AlertPrefs(enabled=True, cooldown_minutes=30)
NOW = 1_800_000_000.0


def reading(
    chat: str,
    message: str = "m1",
    sender: str = "mina",
    score: float = 85.0,
    level: StressLevel = StressLevel.HIGH,
) -> ReadyReading:
    return ReadyReading(chat, message, sender, score, level)


@pytest.fixture
def store(db) -> FirestoreAlertStore:
    return FirestoreAlertStore(db)


def reserve(
    store, uid: str, sender: str, nid: str, record: dict, now: float, max_per_hour: int = 6
) -> Verdict:
    return store.reserve(Reservation(uid, sender, nid, record, now), RecipientLimits(PREFS, max_per_hour))


def account(db, uid: str) -> str:
    """A real account: the backend writes only for uids with a profile (accounts.model.account_open)."""
    db.document(f"users/{uid}").set({"displayName": uid})
    return uid


def test_made_up_and_deleted_uids_get_no_user_tree(db, store, unique) -> None:
    """Issue 10 item 6: members that are not accounts create nothing, so they cannot pass for
    orphans at the purge's safety valve; a deleted account (tombstone) gets nothing either."""
    made_up, deleted = f"nobody-{unique}", account(db, f"deleted-{unique}")
    db.document(f"deletedUsers/{deleted}").set({"deletedAt": datetime.now(UTC)})
    db.document(f"users/{deleted}").delete()
    for uid in (made_up, deleted):
        assert reserve(store, uid, "someone", "n1", {"x": 1}, NOW) is Verdict.NO_ACCOUNT
        assert store.record_ready(reading(unique, uid, uid), POLICY, NOW, 120).action is MarkerAction.SKIP
        assert list(db.document(f"users/{uid}").collections()) == []
        assert not db.document(f"chats/{unique}/alertMarkers/{uid}").get().exists


def test_record_ready_updates_baseline_and_claims_once(db, store, unique) -> None:
    sender = account(db, f"u-{unique}")
    first = store.record_ready(reading(unique, sender=sender), POLICY, NOW, 120)
    assert first.action is MarkerAction.START
    assert first.decision == AlertDecision(True, AlertReason.FIXED_THRESHOLD)
    assert first.baseline == Baseline()

    again = store.record_ready(reading(unique, sender=sender), POLICY, NOW + 1, 120)
    assert again.action is MarkerAction.SKIP

    baseline = db.document(f"users/{sender}/stats/baseline").get().to_dict()
    assert baseline["count"] == 1 and baseline["mean"] == 85.0 and baseline["m2"] == 0.0
    assert baseline["lastMessage"] == f"chats/{unique}/messages/m1"
    marker = db.document(f"chats/{unique}/alertMarkers/m1").get().to_dict()
    assert marker["state"] == "claimed" and marker["decision"] == {
        "alert": True,
        "reason": "fixed_threshold",
        "z": None,
    }
    assert marker["senderId"] == sender and marker["score"] == 85.0 and marker["level"] == "high"
    assert marker["leaseExpiresAt"] == datetime.fromtimestamp(NOW + 120, UTC)


def test_low_reading_is_counted_and_done_at_once(db, store, unique) -> None:
    sender = account(db, f"u-{unique}")
    low = reading(unique, sender=sender, score=12.0, level=StressLevel.LOW)
    claimed = store.record_ready(low, POLICY, NOW, 120)
    assert claimed.decision == AlertDecision(False, AlertReason.NOT_HIGH)
    marker = db.document(f"chats/{unique}/alertMarkers/m1").get().to_dict()
    assert marker["state"] == "done" and marker["leaseExpiresAt"] is None
    later = store.record_ready(reading(unique, sender=sender), POLICY, NOW + 999, 120)
    assert later.action is MarkerAction.SKIP
    assert db.document(f"users/{sender}/stats/baseline").get().get("count") == 1


# The emulator settles each lock conflict with a ~2 s timeout: three threads prove the point.
def test_concurrent_duplicates_count_once(db, store, unique) -> None:
    sender = account(db, f"u-{unique}")
    with ThreadPoolExecutor(max_workers=3) as pool:
        claims = list(
            pool.map(lambda _: store.record_ready(reading(unique, sender=sender), POLICY, NOW, 120), range(3))
        )
    assert [c.action for c in claims].count(MarkerAction.START) == 1
    assert [c.action for c in claims].count(MarkerAction.SKIP) == 2
    assert db.document(f"users/{sender}/stats/baseline").get().get("count") == 1


def test_concurrent_messages_all_reach_the_baseline(db, store, unique) -> None:
    sender = account(db, f"u-{unique}")
    # Each collision costs the emulator a ~2 s lock timeout before one side retries: keep it small.
    scores = [12.0, 61.5, 44.0]

    def record(i: int):
        level = StressLevel.HIGH if scores[i] >= 60 else StressLevel.LOW
        return store.record_ready(reading(unique, f"m{i}", sender, scores[i], level), POLICY, NOW, 120)

    with ThreadPoolExecutor(max_workers=len(scores)) as pool:
        assert {c.action for c in pool.map(record, range(len(scores)))} == {MarkerAction.START}
    stored = Baseline.from_fields(db.document(f"users/{sender}/stats/baseline").get().to_dict())
    assert stored.count == len(scores)
    assert stored.mean == pytest.approx(np.mean(scores))
    assert stored.variance == pytest.approx(np.var(scores, ddof=1))


def test_expired_claim_is_retaken_with_its_stored_decision(db, store, unique) -> None:
    sender = account(db, f"u-{unique}")
    for i, score in enumerate([20.0, 25.0, 30.0, 22.0, 28.0]):
        store.record_ready(reading(unique, f"old{i}", sender, score, StressLevel.LOW), POLICY, NOW, 120)
    first = store.record_ready(reading(unique, "spike", sender, 80.0), POLICY, NOW, 120)
    assert first.decision is not None and first.decision.reason is AlertReason.PERSONAL_BASELINE
    assert (
        store.record_ready(reading(unique, "spike", sender, 80.0), POLICY, NOW + 119, 120).action
        is MarkerAction.SKIP
    )
    retake = store.record_ready(reading(unique, "spike", sender, 80.0), POLICY, NOW + 120, 120)
    assert retake.action is MarkerAction.RETAKE
    assert retake.decision == first.decision and retake.baseline == first.baseline
    assert db.document(f"users/{sender}/stats/baseline").get().get("count") == 6

    store.finish_message(reading(unique, "spike", sender, 80.0), {sender: "send", "joon": "cooldown"})
    marker = db.document(f"chats/{unique}/alertMarkers/spike").get().to_dict()
    assert marker["state"] == "done" and marker["recipients"] == {sender: "send", "joon": "cooldown"}
    assert (
        store.record_ready(reading(unique, "spike", sender, 80.0), POLICY, NOW + 9999, 120).action
        is MarkerAction.SKIP
    )


def test_reserve_creates_feed_entry_and_logs_the_push(db, store, unique) -> None:
    uid = account(db, f"u-{unique}")
    record = {"type": "stress_alert", "title": "Take a moment", "status": "sending"}
    assert reserve(store, uid, "mina", "n1", record, NOW, 6) is Verdict.SEND
    assert db.document(f"users/{uid}/notifications/n1").get().to_dict() == record
    log = db.document(f"users/{uid}/stats/alerts").get().to_dict()
    assert log["lastAlertAt"] == datetime.fromtimestamp(NOW, UTC)
    assert log["lastNotificationId"] == "n1"
    assert AlertLog.from_fields(log) == AlertLog({"mina": NOW}, (NOW,))

    assert reserve(store, uid, "mina", "n1", record, NOW + 5, 6) is Verdict.RESUME  # reserved, unfinished
    store.finish_notification(uid, "n1", {"status": "sent"})
    assert reserve(store, uid, "mina", "n1", record, NOW + 5, 6) is Verdict.DUPLICATE
    assert reserve(store, uid, "mina", "n2", record, NOW + 29 * 60, 6) is Verdict.COOLDOWN
    assert not db.document(f"users/{uid}/notifications/n2").get().exists
    # Another sender has a cooldown of its own; the cap bounds them all together.
    assert reserve(store, uid, "eve", "n4", record, NOW + 60, 2) is Verdict.SEND
    assert reserve(store, uid, "ara", "n5", record, NOW + 120, 2) is Verdict.CAPPED
    assert reserve(store, uid, "mina", "n3", record, NOW + 30 * 60, 6) is Verdict.SEND

    store.finish_notification(uid, "n3", {"status": "sent", "delivery": {"success": 1}})
    assert db.document(f"users/{uid}/notifications/n3").get().get("status") == "sent"


def test_reserve_follows_the_users_alert_prefs(db, store, unique) -> None:
    off, quick = f"off-{unique}", f"quick-{unique}"
    db.document(f"users/{off}").set({"displayName": "Off", "alertPrefs": {"enabled": False}})
    db.document(f"users/{quick}").set({"displayName": "Quick", "alertPrefs": {"cooldownMinutes": 1}})
    assert reserve(store, off, "mina", "n1", {"x": 1}, NOW, 6) is Verdict.DISABLED
    assert reserve(store, quick, "mina", "n1", {"x": 1}, NOW, 6) is Verdict.SEND
    assert reserve(store, quick, "mina", "n2", {"x": 1}, NOW + 61, 6) is Verdict.SEND
    assert store.user_display_name(quick) == "Quick"
    assert store.user_display_name(f"nobody-{unique}") is None


def test_user_language(db, store, unique) -> None:
    db.document(f"users/ko-{unique}").set({"displayName": "미나", "language": "ko-KR"})
    db.document(f"users/none-{unique}").set({"displayName": "Joon"})
    assert store.user_language(f"ko-{unique}") == "ko-KR"
    assert store.user_language(f"none-{unique}") is None
    assert store.user_language(f"nobody-{unique}") is None


def test_concurrent_alerts_for_one_recipient_respect_the_cooldown(db, store, unique) -> None:
    uid = account(db, f"u-{unique}")
    with ThreadPoolExecutor(max_workers=3) as pool:
        verdicts = list(pool.map(lambda i: reserve(store, uid, "mina", f"n{i}", {"i": i}, NOW, 6), range(3)))
    assert verdicts.count(Verdict.SEND) == 1 and verdicts.count(Verdict.COOLDOWN) == 2
    assert len(list(db.collection(f"users/{uid}/notifications").stream())) == 1


def test_chat_members_are_members_only_never_invitees(db, store, unique) -> None:
    chat = {"members": ["a", "b", 3], "invited": ["c"], "createdAt": datetime.now(UTC)}
    db.document(f"chats/{unique}").set(chat)
    assert store.chat_members(unique) == ["a", "b"]
    assert store.chat_members(f"missing-{unique}") is None


def test_device_tokens_and_removal(db, store, unique) -> None:
    uid = account(db, f"u-{unique}")
    devices = db.collection(f"users/{uid}/devices")
    now = datetime.now(UTC)
    devices.document("phone").set({"token": "good-1", "platform": "ios", "updatedAt": now})
    devices.document("old").set({"token": "unregistered-1", "platform": "android", "updatedAt": now})
    devices.document("dup").set({"token": "unregistered-1", "platform": "android", "updatedAt": now})
    devices.document("blank").set({"token": "", "platform": "web", "updatedAt": now})
    assert sorted(store.device_tokens(uid, 5)) == ["good-1", "unregistered-1"]

    assert store.remove_tokens(uid, ["unregistered-1", "not-there"]) == 2
    assert sorted(d.id for d in devices.stream()) == ["blank", "phone"]
    assert store.remove_tokens(uid, []) == 0


def test_removal_spares_a_device_rewritten_meanwhile(db, store, unique, monkeypatch) -> None:
    uid = account(db, f"u-{unique}")
    device = db.document(f"users/{uid}/devices/phone")
    device.set({"token": "unregistered-1", "platform": "ios", "updatedAt": datetime.now(UTC)})
    real_devices = store._devices

    class RewrittenAfterRead:
        """The app re-registers the phone between our read and our delete."""

        def __init__(self, collection) -> None:
            self.collection = collection

        def stream(self):
            snapshots = list(self.collection.stream())
            device.update({"token": "fresh-token", "updatedAt": datetime.now(UTC)})
            return iter(snapshots)

    monkeypatch.setattr(store, "_devices", lambda u: RewrittenAfterRead(real_devices(u)))
    assert store.remove_tokens(uid, ["unregistered-1"]) == 0
    assert device.get().get("token") == "fresh-token"


def test_device_tokens_are_the_most_recently_updated(db, store, unique) -> None:
    uid = f"u-{unique}"
    devices = db.collection(f"users/{uid}/devices")
    base = datetime(2026, 1, 1, tzinfo=UTC)
    for i in range(12):  # one account, many registrations: only the newest get pushes
        devices.document(f"d{i}").set(
            {"token": f"t{i}", "platform": "ios", "updatedAt": base + timedelta(hours=i)}
        )
    devices.document("undated").set({"token": "t-undated", "platform": "ios"})
    assert store.device_tokens(uid, 3) == ["t11", "t10", "t9"]


def test_a_reservation_left_sending_is_resumed_once(db, store, unique) -> None:
    uid = account(db, f"u-{unique}")
    record = {"type": "stress_alert", "status": "sending"}
    assert reserve(store, uid, "mina", "n1", record, NOW) is Verdict.SEND
    assert reserve(store, uid, "mina", "n1", record, NOW + 400) is Verdict.RESUME  # died before finishing
    assert AlertLog.from_fields(db.document(f"users/{uid}/stats/alerts").get().to_dict()).recent == (NOW,)
    store.finish_notification(uid, "n1", {"status": "sent"})
    assert reserve(store, uid, "mina", "n1", record, NOW + 800) is Verdict.DUPLICATE


def test_stuck_alerts_are_the_claimed_markers_past_their_lease(db, store, unique) -> None:
    sender = account(db, f"u-{unique}")
    stuck = reading(unique, "stuck", sender, 91.0)
    live = reading(unique, "live", sender, 92.0)
    store.record_ready(stuck, POLICY, NOW - 1000, 360)
    store.record_ready(live, POLICY, NOW, 360)
    store.record_ready(reading(unique, "low", sender, 10.0, StressLevel.LOW), POLICY, NOW - 1000, 360)
    mine = [r for r in store.stuck_alerts(NOW, 50) if r.chat_id == unique]
    assert mine == [stuck]
    store.finish_message(stuck, {sender: "send"})
    assert [r for r in store.stuck_alerts(NOW + 9999, 50) if r.chat_id == unique] == [live]


class InstanceDied(BaseException):
    """The function instance is gone: nothing after it runs."""


def test_a_crashed_alert_is_finished_by_the_sweeper_once(db, store, unique) -> None:
    """The real store under the service: a run dies after Mina's push and Joon's reservation; no
    trigger comes again; the sweeper, past the lease, serves Joon (resumed) and Ara, and no one twice."""
    from fakes.alerts import Clock, FakeNotifier

    from emochat.alerts.service import AlertConfig, AlertServices, alert_on_reading, sweep_stuck_alerts

    mina, joon, ara = (f"{name}-{unique}" for name in ("mina", "joon", "ara"))
    db.document(f"chats/{unique}").set({"members": [mina, joon, ara], "createdAt": datetime.now(UTC)})
    for uid in (mina, joon, ara):
        db.document(f"users/{uid}").set({"displayName": uid[:4]})
        db.document(f"users/{uid}/devices/phone").set(
            {"token": f"{uid}-phone", "updatedAt": datetime.now(UTC)}
        )

    class DiesAtJoon(FakeNotifier):
        """From Joon's push on, the instance is dead: every later push fails with it."""

        dead = False

        def send(self, tokens, push, budget_s=float("inf")):
            self.dead = self.dead or f"{joon}-phone" in tokens
            if self.dead:
                raise InstanceDied
            return super().send(tokens, push, budget_s)

    clock = Clock(NOW)
    config = AlertConfig(policy=POLICY, default_prefs=PREFS, max_parallel=1)  # Mina, Joon (dies), Ara
    message = reading(unique, "m1", mina, 90.0)
    dying = AlertServices(store=store, notifier=DiesAtJoon(), clock=clock)
    with pytest.raises(InstanceDied):
        alert_on_reading(message, dying, config)
    marker = db.document(f"chats/{unique}/alertMarkers/m1")
    assert marker.get().get("state") == "claimed"

    notifier = FakeNotifier()
    services = AlertServices(store=store, notifier=notifier, clock=clock)
    clock.now += config.lease_s
    assert f"chats/{unique}/messages/m1" in sweep_stuck_alerts(services, config)
    assert marker.get().to_dict()["recipients"] == {mina: "duplicate", joon: "resume", ara: "resume"}
    assert sorted(tokens for tokens, _ in notifier.sent) == [(f"{ara}-phone",), (f"{joon}-phone",)]
    for uid in (mina, joon, ara):
        (entry,) = [s.to_dict() for s in db.collection(f"users/{uid}/notifications").stream()]
        assert entry["status"] == "sent"
    clock.now += config.lease_s
    assert f"chats/{unique}/messages/m1" not in sweep_stuck_alerts(services, config)
