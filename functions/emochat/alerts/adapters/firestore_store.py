"""Alert state in Firestore: baselines, per-message markers, cooldowns, feeds and device tokens.

Documents (the data contract's alert part):
- chats/{chatId}/alertMarkers/{messageId}: one per ready message, created in the transaction that
  updates the sender's baseline; server-only.
- users/{uid}/stats/baseline: the running mean and variance of the user's stress scores.
- users/{uid}/stats/alerts: when the user was last alerted (the cooldown marker).
- users/{uid}/notifications/{notificationId}: the in-app feed entry of each alert sent.
- users/{uid}/devices/{deviceId}: FCM tokens (written by the app); stale ones are deleted here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from google.api_core import exceptions as api_exceptions
from google.cloud import firestore

from emochat.alerts.model import (
    AlertDecision,
    AlertPolicy,
    AlertPrefs,
    Baseline,
    Marker,
    MarkerAction,
    MarkerState,
    ReadyReading,
    Verdict,
    alert_prefs,
    decide_alert,
    decide_marker,
    decide_recipient,
)
from emochat.alerts.ports import Claimed
from emochat.firestore_tx import read_chat_members, run_transaction


# Several messages of one sender can become ready at once, and each transaction writes the sender's
# baseline (and two alerts can race for one recipient's cooldown). The client retries an aborted
# transaction at once, keeping its place in line; rounds of such attempts are separated here by
# short jittered pauses, for contention that outlasts one round (the emulator settles each lock
# conflict only after a ~2 s timeout). The same scheme as firestore_tx.run_transaction.
def _timestamp(epoch_s: float) -> datetime:
    return datetime.fromtimestamp(epoch_s, UTC)


def _epoch(value: Any) -> float | None:
    return value.timestamp() if isinstance(value, datetime) else None


def _marker(snapshot: firestore.DocumentSnapshot) -> Marker | None:
    if not snapshot.exists:
        return None
    data = snapshot.to_dict() or {}
    try:
        state = MarkerState(data.get("state"))
    except ValueError:
        state = MarkerState.DONE  # unreadable: never act on it twice
    return Marker(state=state, lease_expires_at=_epoch(data.get("leaseExpiresAt")))


class FirestoreAlertStore:
    def __init__(self, db: firestore.Client) -> None:
        self._db = db

    # ── per message ──────────────────────────────────────────────────────────────────────────────

    def _marker_ref(self, reading: ReadyReading) -> firestore.DocumentReference:
        return self._db.collection("chats", reading.chat_id, "alertMarkers").document(reading.message_id)

    def baseline_ref(self, uid: str) -> firestore.DocumentReference:
        return self._db.collection("users", uid, "stats").document("baseline")

    def record_ready(self, reading: ReadyReading, policy: AlertPolicy, now: float, lease_s: float) -> Claimed:
        marker_ref = self._marker_ref(reading)
        baseline_ref = self.baseline_ref(reading.sender_id)

        @firestore.transactional
        def record_in(transaction: firestore.Transaction) -> Claimed:
            # All reads before any write, as Firestore transactions require.
            marker_snapshot = marker_ref.get(transaction=transaction)
            action = decide_marker(_marker(marker_snapshot), now)
            if action is MarkerAction.SKIP:
                return Claimed(action)
            if action is MarkerAction.RETAKE:
                stored = marker_snapshot.to_dict() or {}
                transaction.update(
                    marker_ref, {"leaseExpiresAt": _timestamp(now + lease_s), "retakenAt": _timestamp(now)}
                )
                return Claimed(
                    action,
                    AlertDecision.from_fields(stored.get("decision")),
                    Baseline.from_fields(stored.get("baselineBefore")),
                )

            baseline_snapshot = baseline_ref.get(transaction=transaction)
            prior = Baseline.from_fields(baseline_snapshot.to_dict() if baseline_snapshot.exists else None)
            decision = decide_alert(reading, prior, policy)
            transaction.set(
                baseline_ref,
                {
                    **prior.add(reading.score).as_fields(),
                    "updatedAt": _timestamp(now),
                    "lastMessage": reading.message_doc,
                },
            )
            transaction.set(
                marker_ref,
                {
                    "state": (MarkerState.CLAIMED if decision.alert else MarkerState.DONE).value,
                    "senderId": reading.sender_id,
                    "score": reading.score,
                    "level": reading.level.value,
                    "decision": decision.as_fields(),
                    "baselineBefore": {"count": prior.count, "mean": prior.mean, "m2": prior.m2},
                    "claimedAt": _timestamp(now),
                    "leaseExpiresAt": _timestamp(now + lease_s) if decision.alert else None,
                    "doneAt": None if decision.alert else _timestamp(now),
                    "recipients": {},
                },
            )
            return Claimed(action, decision, prior)

        return run_transaction(self._db, record_in)

    def finish_message(self, reading: ReadyReading, verdicts: Mapping[str, str]) -> None:
        self._marker_ref(reading).update(
            {
                "state": MarkerState.DONE.value,
                "doneAt": firestore.SERVER_TIMESTAMP,
                "leaseExpiresAt": None,
                "recipients": dict(verdicts),
            }
        )

    def chat_members(self, chat_id: str) -> list[str] | None:
        return read_chat_members(self._db, chat_id)

    # ── per recipient ────────────────────────────────────────────────────────────────────────────

    def _user_ref(self, uid: str) -> firestore.DocumentReference:
        return self._db.collection("users").document(uid)

    def user_display_name(self, uid: str) -> str | None:
        snapshot = self._user_ref(uid).get(field_paths=["displayName"])
        name = (snapshot.to_dict() or {}).get("displayName") if snapshot.exists else None
        return name if isinstance(name, str) else None

    def user_language(self, uid: str) -> str | None:
        snapshot = self._user_ref(uid).get(field_paths=["language"])
        language = (snapshot.to_dict() or {}).get("language") if snapshot.exists else None
        return language if isinstance(language, str) else None

    def cooldown_ref(self, uid: str) -> firestore.DocumentReference:
        return self._db.collection("users", uid, "stats").document("alerts")

    def notification_ref(self, uid: str, notification_id: str) -> firestore.DocumentReference:
        return self._db.collection("users", uid, "notifications").document(notification_id)

    def reserve(
        self, uid: str, notification_id: str, record: Mapping[str, Any], default_prefs: AlertPrefs, now: float
    ) -> Verdict:
        user_ref = self._user_ref(uid)
        cooldown_ref = self.cooldown_ref(uid)
        notification_ref = self.notification_ref(uid, notification_id)

        @firestore.transactional
        def reserve_in(transaction: firestore.Transaction) -> Verdict:
            user = user_ref.get(transaction=transaction)
            cooldown = cooldown_ref.get(transaction=transaction)
            notified = notification_ref.get(transaction=transaction).exists
            raw_prefs = (user.to_dict() or {}).get("alertPrefs") if user.exists else None
            prefs = alert_prefs(raw_prefs, default_prefs)
            last = _epoch((cooldown.to_dict() or {}).get("lastAlertAt")) if cooldown.exists else None
            verdict = decide_recipient(prefs, last, now, notified)
            if verdict is Verdict.SEND:
                transaction.create(notification_ref, dict(record))
                transaction.set(
                    cooldown_ref,
                    {
                        "lastAlertAt": _timestamp(now),
                        "lastNotificationId": notification_id,
                        "cooldownUntil": _timestamp(now) + timedelta(minutes=prefs.cooldown_minutes),
                    },
                    merge=True,
                )
            return verdict

        return run_transaction(self._db, reserve_in)

    def finish_notification(self, uid: str, notification_id: str, fields: Mapping[str, Any]) -> None:
        self.notification_ref(uid, notification_id).update(dict(fields))

    # ── devices ──────────────────────────────────────────────────────────────────────────────────

    def _devices(self, uid: str) -> firestore.CollectionReference:
        return self._db.collection("users", uid, "devices")

    def device_tokens(self, uid: str) -> list[str]:
        tokens = ((s.to_dict() or {}).get("token") for s in self._devices(uid).stream())
        return list(dict.fromkeys(t for t in tokens if isinstance(t, str) and t))

    def remove_tokens(self, uid: str, tokens: Sequence[str]) -> int:
        """Delete each device doc holding a stale token, unless the app rewrote it since it was read
        (a precondition on its update time): a fresh token must never be lost to an old answer."""
        stale = set(tokens)
        removed = 0
        for snapshot in self._devices(uid).stream():
            if (snapshot.to_dict() or {}).get("token") not in stale:
                continue
            try:
                snapshot.reference.delete(option=self._db.write_option(last_update_time=snapshot.update_time))
            except (api_exceptions.FailedPrecondition, api_exceptions.NotFound):
                continue
            removed += 1
        return removed
