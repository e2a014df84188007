"""In-memory fakes of the alerts' ports (AlertStore, Notifier) and of FCM's multicast call.

FakeStore decides with the same pure code as the Firestore adapter (emochat.alerts.model); FakeFcm
answers the way firebase_admin.messaging reports FCM's errors (its exception types).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import requests
from firebase_admin import exceptions, messaging

from emochat.alerts import model as alerts
from emochat.alerts.delivery import Delivery
from emochat.alerts.model import (
    AlertLog,
    AlertPolicy,
    Baseline,
    Marker,
    MarkerAction,
    MarkerState,
    Push,
    ReadyReading,
    RecipientLimits,
    Verdict,
)
from emochat.alerts.ports import Claimed, Reservation


@dataclass
class FakeStore:
    """The AlertStore contract over dicts; decisions come from emochat.alerts, as in the real one."""

    members: dict[str, list[str]] = field(default_factory=dict)
    invited: dict[str, list[str]] = field(default_factory=dict)  # chats/{id}.invited: never recipients
    users: dict[str, dict[str, Any]] = field(default_factory=dict)
    devices: dict[str, list[str]] = field(default_factory=dict)
    baselines: dict[str, Baseline] = field(default_factory=dict)
    markers: dict[str, dict[str, Any]] = field(default_factory=dict)
    alert_logs: dict[str, AlertLog] = field(default_factory=dict)
    notifications: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)

    def record_ready(self, reading: ReadyReading, policy: AlertPolicy, now: float, lease_s: float) -> Claimed:
        if reading.sender_id not in self.users:  # the adapter's accounts.model.account_open
            return Claimed(MarkerAction.SKIP)
        stored = self.markers.get(reading.message_doc)
        marker = Marker(MarkerState(stored["state"]), stored["lease"]) if stored else None
        action = alerts.decide_marker(marker, now)
        if action is MarkerAction.SKIP:
            return Claimed(action)
        if action is MarkerAction.RETAKE:
            assert stored is not None
            stored["lease"] = now + lease_s
            return Claimed(action, stored["decision"], stored["prior"])
        prior = self.baselines.get(reading.sender_id, Baseline())
        decision = alerts.decide_alert(reading, prior, policy)
        self.baselines[reading.sender_id] = prior.add(reading.score)
        self.markers[reading.message_doc] = {
            "reading": reading,
            "state": MarkerState.CLAIMED if decision.alert else MarkerState.DONE,
            "lease": now + lease_s,
            "decision": decision,
            "prior": prior,
            "recipients": {},
        }
        return Claimed(action, decision, prior)

    def finish_message(self, reading: ReadyReading, verdicts: Mapping[str, str]) -> None:
        self.markers[reading.message_doc].update(state=MarkerState.DONE, recipients=dict(verdicts))

    def stuck_alerts(self, now: float, limit: int) -> list[ReadyReading]:
        stuck = [m for m in self.markers.values() if m["state"] is MarkerState.CLAIMED and m["lease"] <= now]
        return [m["reading"] for m in sorted(stuck, key=lambda m: m["lease"])][:limit]

    def chat_members(self, chat_id: str) -> list[str] | None:
        return self.members.get(chat_id)

    def user_display_name(self, uid: str) -> str | None:
        return self.users.get(uid, {}).get("displayName")

    def user_language(self, uid: str) -> str | None:
        return self.users.get(uid, {}).get("language")

    def reserve(self, reservation: Reservation, limits: RecipientLimits) -> Verdict:
        uid, sender_id, now = reservation.uid, reservation.sender_id, reservation.now
        if uid not in self.users:  # the adapter's accounts.model.account_open: no tree for it
            return Verdict.NO_ACCOUNT
        feed = self.notifications.setdefault(uid, {})
        prefs = alerts.alert_prefs(self.users.get(uid, {}).get("alertPrefs"), limits.default_prefs)
        log = self.alert_logs.get(uid, AlertLog())
        entry = feed.get(reservation.notification_id)
        status = entry["status"] if entry else None
        verdict = alerts.decide_recipient(prefs, log, sender_id, now, status, limits.max_per_hour)
        if verdict is Verdict.SEND:
            feed[reservation.notification_id] = dict(reservation.record)
            self.alert_logs[uid] = log.sent(sender_id, now)
        return verdict

    def device_tokens(self, uid: str, limit: int) -> list[str]:
        """`devices[uid]` lists tokens oldest first: a token's place stands for its updatedAt."""
        return alerts.most_recent_tokens(
            ((t, float(i)) for i, t in enumerate(self.devices.get(uid, []))), limit
        )

    def remove_tokens(self, uid: str, tokens: Sequence[str]) -> int:
        before = self.devices.get(uid, [])
        self.devices[uid] = [t for t in before if t not in tokens]
        return len(before) - len(self.devices[uid])

    def finish_notification(self, uid: str, notification_id: str, fields: Mapping[str, Any]) -> None:
        self.notifications[uid][notification_id].update(fields)


@dataclass
class FakeNotifier:
    """Delivers to every token except those starting with 'stale-' (stale) or 'down-' (failed)."""

    sent: list[tuple[tuple[str, ...], Push]] = field(default_factory=list)
    explode: bool = False

    def send(self, tokens: Sequence[str], push: Push, budget_s: float = float("inf")) -> Delivery:
        self.sent.append((tuple(tokens), push))
        if self.explode:
            raise RuntimeError("boom")
        stale = tuple(t for t in tokens if t.startswith("stale-"))
        down = [t for t in tokens if t.startswith("down-")]
        errors = {
            **({"UNREGISTERED": len(stale)} if stale else {}),
            **({"UNAVAILABLE": len(down)} if down else {}),
        }
        return Delivery(
            tokens=len(tokens),
            success=len(tokens) - len(stale) - len(down),
            failure=len(stale) + len(down),
            stale_tokens=stale,
            errors=errors,
        )


class Clock:
    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def http_response(status: int, retry_after: str | None = None) -> requests.Response:
    response = requests.Response()
    response.status_code = status
    if retry_after is not None:
        response.headers["Retry-After"] = retry_after
    return response


def error_for(token: str) -> exceptions.FirebaseError | None:
    """FCM's answer for a token, as firebase_admin reports it (its exception types)."""
    if token.startswith("unregistered-"):
        return messaging.UnregisteredError(
            "Requested entity was not found.", http_response=http_response(404)
        )
    if token.startswith("invalid-"):
        return exceptions.InvalidArgumentError(
            "The registration token is not a valid FCM registration token", http_response=http_response(400)
        )
    if token.startswith("badpayload-"):
        return exceptions.InvalidArgumentError(
            "Invalid value at 'message.data[0].value'", http_response=http_response(400)
        )
    if token.startswith("mismatch-"):
        return messaging.SenderIdMismatchError("SenderId mismatch", http_response=http_response(403))
    if token.startswith("throttled-"):
        return messaging.QuotaExceededError("Quota exceeded", http_response=http_response(429, "2"))
    if token.startswith("down-"):
        return exceptions.UnavailableError("unavailable", http_response=http_response(503))
    if token.startswith("denied-"):
        return exceptions.PermissionDeniedError("no", http_response=http_response(403))
    return None


class FakeFcm:
    """send_each_for_multicast's contract; tokens fail as `error_for` says, the first `fail_times` sends."""

    def __init__(self, fail_times: int = 1) -> None:
        self.calls: list[list[str]] = []
        self.fail_times = fail_times
        self.raise_whole_call: exceptions.FirebaseError | None = None

    def __call__(self, message: messaging.MulticastMessage) -> messaging.BatchResponse:
        tokens = list(message.tokens)
        self.calls.append(tokens)
        assert all(isinstance(v, str) for v in message.data.values())
        if self.raise_whole_call is not None:
            raise self.raise_whole_call
        responses = []
        for token in tokens:
            error = error_for(token)
            transient = token.startswith(("throttled-", "down-"))
            if error is not None and transient and self.calls_for(token) > self.fail_times:
                error = None
            answer = None if error else {"name": f"projects/p/messages/{token}"}
            responses.append(messaging.SendResponse(answer, error))
        return messaging.BatchResponse(responses)

    def calls_for(self, token: str) -> int:
        return sum(token in call for call in self.calls)


class Sleeps:
    def __init__(self) -> None:
        self.waits: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)
