"""Alert state in Firestore: baselines, per-message markers, cooldowns, feeds and device tokens.

Documents (the data contract's alert part):
- chats/{chatId}/alertMarkers/{messageId}: one per ready message, created in the transaction that
  updates the sender's baseline; server-only.
- users/{uid}/stats/baseline: the running mean and variance of the user's stress scores.
- users/{uid}/stats/alerts: the user's AlertLog (last alert per sender, recent pushes) for the
  per-sender cooldown and the per-recipient cap.
- users/{uid}/notifications/{notificationId}: the in-app feed entry of each alert sent.
- users/{uid}/devices/{deviceId}: FCM tokens (written by the app); stale ones are deleted here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from google.api_core import exceptions as api_exceptions
from google.cloud import firestore

from emochat.alerts.model import (
    AlertDecision,
    AlertLog,
    AlertPolicy,
    Baseline,
    Marker,
    MarkerAction,
    MarkerState,
    ReadyReading,
    RecipientLimits,
    Verdict,
    alert_prefs,
    decide_alert,
    decide_marker,
    decide_recipient,
    marker_reading,
    most_recent_tokens,
)
from emochat.alerts.ports import Claimed, Reservation
from emochat.firestore_tx import account_open, read_chat_members, run_transaction


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
            if not account_open(self._db, transaction, reading.sender_id, needs_profile=True):
                return Claimed(MarkerAction.SKIP)  # a deleted or made-up sender: no marker, no baseline
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

    def stuck_alerts(self, now: float, limit: int) -> list[ReadyReading]:
        """A collection-group query on leaseExpiresAt alone (done markers hold null, which a
        timestamp range leaves out): one single-field index, declared in firestore.indexes.json."""
        expired = (
            self._db.collection_group("alertMarkers")
            .where(filter=firestore.FieldFilter("leaseExpiresAt", "<=", _timestamp(now)))
            .order_by("leaseExpiresAt")
            .limit(limit)
        )
        stuck = []
        for snapshot in expired.stream():
            chat = snapshot.reference.parent.parent
            reading = marker_reading(chat.id if chat else "", snapshot.id, snapshot.to_dict())
            if reading is not None:
                stuck.append(reading)
        return stuck

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

    def alert_log_ref(self, uid: str) -> firestore.DocumentReference:
        return self._db.collection("users", uid, "stats").document("alerts")

    def notification_ref(self, uid: str, notification_id: str) -> firestore.DocumentReference:
        return self._db.collection("users", uid, "notifications").document(notification_id)

    def reserve(self, reservation: Reservation, limits: RecipientLimits) -> Verdict:
        uid, sender_id, now = reservation.uid, reservation.sender_id, reservation.now
        user_ref = self._user_ref(uid)
        log_ref = self.alert_log_ref(uid)
        notification_ref = self.notification_ref(uid, reservation.notification_id)

        @firestore.transactional
        def reserve_in(transaction: firestore.Transaction) -> Verdict:
            if not account_open(self._db, transaction, uid, needs_profile=True):
                return Verdict.NO_ACCOUNT  # no feed entry, no cooldown: no user tree for it
            user = user_ref.get(transaction=transaction)
            stored_log = log_ref.get(transaction=transaction)
            entry = notification_ref.get(transaction=transaction)
            raw_prefs = (user.to_dict() or {}).get("alertPrefs") if user.exists else None
            prefs = alert_prefs(raw_prefs, limits.default_prefs)
            log = AlertLog.from_fields(stored_log.to_dict() if stored_log.exists else None)
            status = str((entry.to_dict() or {}).get("status")) if entry.exists else None
            verdict = decide_recipient(prefs, log, sender_id, now, status, limits.max_per_hour)
            if verdict is Verdict.SEND:
                transaction.create(notification_ref, dict(reservation.record))
                transaction.set(
                    log_ref,
                    {
                        **log.sent(sender_id, now).as_fields(),  # epoch seconds
                        "lastAlertAt": _timestamp(now),
                        "lastNotificationId": reservation.notification_id,
                    },
                )
            return verdict

        return run_transaction(self._db, reserve_in)

    def finish_notification(self, uid: str, notification_id: str, fields: Mapping[str, Any]) -> None:
        self.notification_ref(uid, notification_id).update(dict(fields))

    # ── devices ──────────────────────────────────────────────────────────────────────────────────

    def _devices(self, uid: str) -> firestore.CollectionReference:
        return self._db.collection("users", uid, "devices")

    def device_tokens(self, uid: str, limit: int) -> list[str]:
        """Only devices with an updatedAt count (the rules require one): a query ordered on a field
        leaves out documents without it."""
        newest = self._devices(uid).order_by("updatedAt", direction=firestore.Query.DESCENDING).limit(limit)
        rows = ((s.to_dict() or {}) for s in newest.stream())
        return most_recent_tokens(((row.get("token"), _epoch(row.get("updatedAt"))) for row in rows), limit)

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
