"""Warn people when a voice message sounds highly stressed: the service layer of alert_on_high_stress.

Order matters: the per-message marker and the sender's baseline are written in one transaction
before anyone is alerted, so a duplicate event neither counts the reading twice nor alerts twice;
each recipient is then reserved (feed entry + alert log, in one transaction) before the push goes
out, so the cooldown and the cap hold even when two messages alert at the same moment.

Recipients are served concurrently under one deadline that fits the function timeout. A run that
dies, or whose deadline leaves recipients unserved, leaves the marker claimed; past its lease (the
timeout plus a margin, so its first owner is surely gone) the sweeper (sweep_stuck_alerts) retakes
it: reservations already made are skipped, those reserved but never finished are resumed, and the
rest are served. No trigger is ever redelivered, so the sweeper is what finishes every alert.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from emochat.alerts import model as alerts
from emochat.alerts.delivery import Delivery
from emochat.alerts.model import (
    AlertDecision,
    AlertPolicy,
    AlertPrefs,
    Baseline,
    MarkerAction,
    Push,
    ReadyReading,
    Recipient,
    RecipientLimits,
    Role,
    Verdict,
)
from emochat.alerts.ports import AlertStore, Notifier, Reservation
from emochat.profile import user_language

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AlertConfig:
    policy: AlertPolicy = field(default_factory=AlertPolicy)
    default_prefs: AlertPrefs = field(default_factory=AlertPrefs)
    # Pushes one person gets per hour at most, across all senders (each sender has its own cooldown).
    max_alerts_per_hour: int = 6
    # Pushes go to at most this many of a person's devices, the most recently updated.
    max_devices: int = 5
    # The alert function's timeout; a claimed marker holds for this plus lease_margin_s, so a
    # retake never overlaps its first owner.
    timeout_s: float = 300.0
    lease_margin_s: float = 60.0
    # Kept at the end of each run for the final writes (feed entries, the marker).
    finish_margin_s: float = 30.0
    # The longest one FCM call may take (delivery.http_call_worst_s, set by wiring): no recipient is
    # started, and no call made, that could not end before the run's deadline.
    fcm_call_s: float = 0.0
    max_parallel: int = 16  # recipients served at once

    def __post_init__(self) -> None:
        if not self.delivery_window_s > self.fcm_call_s:
            raise ValueError(
                f"one FCM call ({self.fcm_call_s:.0f} s) does not fit the delivery window "
                f"({self.delivery_window_s:.0f} s of a {self.timeout_s:.0f} s timeout)"
            )

    @property
    def lease_s(self) -> float:
        return self.timeout_s + self.lease_margin_s

    @property
    def delivery_window_s(self) -> float:
        """From a run's start to the moment every push must have ended."""
        return self.timeout_s - self.finish_margin_s

    @property
    def limits(self) -> RecipientLimits:
        return RecipientLimits(self.default_prefs, self.max_alerts_per_hour)


# One coping suggestion for the sender's self-care alert, in the alert's language (the recommender's
# hook): the fields to store and push, e.g. {recommendationId, suggestionId, kind, title, text}, or None.
SuggestFn = Callable[[ReadyReading, str], Mapping[str, str] | None]


@dataclass
class AlertServices:
    store: AlertStore
    notifier: Notifier
    clock: Callable[[], float] = time.time
    suggest: SuggestFn | None = None


@dataclass(frozen=True)
class AlertOutcome:
    """What happened to one ready message, for logs and tests."""

    action: MarkerAction
    decision: AlertDecision | None = None
    verdicts: dict[str, Verdict] = field(default_factory=dict)
    deliveries: dict[str, Delivery] = field(default_factory=dict)
    pending: tuple[str, ...] = ()  # recipients the deadline left unserved: the sweeper's


def _timestamp(epoch_s: float) -> datetime:
    return datetime.fromtimestamp(epoch_s, UTC)


def _record(
    recipient: Recipient,
    reading: ReadyReading,
    decision: AlertDecision,
    prior: Baseline | None,
    push: Push,
    now: float,
) -> dict[str, Any]:
    """The feed entry users/{uid}/notifications/{id} as first written, before the push goes out.

    A member's entry says who, which message, when and the reading the chat already shows; why it
    alerted (reason, z, the baseline) is computed from the sender's history and stays the sender's.
    """
    entry: dict[str, Any] = {
        "type": "stress_alert",
        "role": recipient.role.value,
        "chatId": reading.chat_id,
        "messageId": reading.message_id,
        "senderId": reading.sender_id,
        "title": push.title,
        "body": push.body,
        "data": dict(push.data),
        "score": reading.score,
        "level": reading.level.value,
        "read": False,
        "status": alerts.SENDING,
        "delivery": None,
        "createdAt": _timestamp(now),
        "sentAt": None,
    }
    if recipient.role is Role.SELF:
        entry["reason"] = decision.reason.value
        entry["z"] = decision.z
        entry["baseline"] = (  # the yardstick the reading was judged against
            {"count": prior.count, "mean": round(prior.mean, 3), "std": round(prior.std, 3)}
            if prior is not None
            else None
        )
    return entry


def alert_on_reading(
    reading: ReadyReading, services: AlertServices, config: AlertConfig, deadline: float | None = None
) -> AlertOutcome:
    """Update the sender's baseline and alert whoever should hear about it. Once per message.

    Every push ends by the run's deadline: `config.delivery_window_s` from now, or `deadline` (the
    sweeper's own) if sooner. Raises, leaving the marker claimed for the sweeper, if serving any
    recipient failed; the others are served first.
    """
    now = services.clock()
    deliver_by = min(now + config.delivery_window_s, math.inf if deadline is None else deadline)
    store = services.store
    claimed = store.record_ready(reading, config.policy, now, config.lease_s)
    decision = claimed.decision
    if claimed.action is MarkerAction.SKIP or decision is None or not decision.alert:
        return AlertOutcome(action=claimed.action, decision=decision)

    notification = alerts.notification_id(reading.chat_id, reading.message_id)
    sender_name = alerts.display_name(store.user_display_name(reading.sender_id))
    recipients = alerts.recipients(reading.sender_id, store.chat_members(reading.chat_id))

    def serve(recipient: Recipient) -> tuple[Verdict, Delivery | None] | None:
        """One recipient, start to end; None when the deadline leaves no room for a push."""
        if services.clock() + config.fcm_call_s > deliver_by:
            return None
        language = user_language(store.user_language(recipient.uid))
        push = alerts.alert_push(recipient.role, sender_name, reading, decision, notification, language)
        record = _record(recipient, reading, decision, claimed.baseline, push, now)
        reservation = Reservation(recipient.uid, reading.sender_id, notification, record, now)
        verdict = store.reserve(reservation, config.limits)
        if verdict not in (Verdict.SEND, Verdict.RESUME):
            return verdict, None
        extra: dict[str, Any] = {}
        if recipient.role is Role.SELF and verdict is Verdict.SEND and services.suggest is not None:
            # Asked only once the alert is certain to go out: a suggestion is recorded as shown.
            suggestion = services.suggest(reading, language)
            if suggestion:
                push = alerts.with_suggestion(push, suggestion, language)
                extra = {"suggestion": dict(suggestion), "body": push.body, "data": dict(push.data)}
        budget_s = deliver_by - services.clock()
        delivery = _deliver(recipient.uid, notification, push, services, config, budget_s, extra)
        return None if delivery is None else (verdict, delivery)

    workers = max(1, min(config.max_parallel, len(recipients)))
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="alert") as pool:
        futures = {recipient.uid: pool.submit(serve, recipient) for recipient in recipients}
        wait(futures.values())
    failures = {uid: f.exception() for uid, f in futures.items() if f.exception() is not None}
    for uid, exc in failures.items():
        log.error("serving %s the alert on %s failed", uid, reading.message_doc, exc_info=exc)
    if failures:
        raise next(iter(failures.values()))  # the marker stays claimed: the sweeper finishes it

    served = {uid: result for uid, f in futures.items() if (result := f.result()) is not None}
    verdicts = {uid: verdict for uid, (verdict, _) in served.items()}
    deliveries = {uid: delivery for uid, (_, delivery) in served.items() if delivery is not None}
    pending = tuple(uid for uid in futures if uid not in served)
    if pending:
        log.warning("deadline left %d recipients of %s to the sweeper", len(pending), reading.message_doc)
    else:
        store.finish_message(reading, {uid: verdict.value for uid, verdict in verdicts.items()})
    return AlertOutcome(claimed.action, decision, verdicts, deliveries, pending)


def sweep_stuck_alerts(
    services: AlertServices, config: AlertConfig, run_s: float | None = None, limit: int = 50
) -> list[str]:
    """Finish the alerts of every message whose marker is claimed past its lease (its run died, or
    its deadline left recipients): the documents of the messages retaken and finished.

    `run_s`: the sweeper's own time, default one delivery window; retakes share its deadline.
    """
    start = services.clock()
    deadline = start + (config.delivery_window_s if run_s is None else run_s)
    finished: list[str] = []
    for reading in services.store.stuck_alerts(start, limit):
        if services.clock() + config.fcm_call_s > deadline:
            break
        try:
            outcome = alert_on_reading(reading, services, config, deadline)
        except Exception:  # one broken alert must not keep the sweeper from the others
            log.exception("retaking the alert on %s failed", reading.message_doc)
            continue
        if outcome.action is MarkerAction.RETAKE and not outcome.pending:
            finished.append(reading.message_doc)
    return finished


def _deliver(
    uid: str,
    notification: str,
    push: Push,
    services: AlertServices,
    config: AlertConfig,
    budget_s: float,
    extra: Mapping[str, Any],
) -> Delivery | None:
    """Push and write the outcome into the feed entry; None, leaving the entry `sending` for the
    sweeper to resume, when the deadline came before any call could be made."""
    store = services.store
    tokens = store.device_tokens(uid, config.max_devices)
    try:
        delivery = services.notifier.send(tokens, push, budget_s) if tokens else Delivery()
    except Exception as exc:  # one recipient's failure must not cost the others their alerts
        log.exception("push to %s failed", uid)
        delivery = Delivery(tokens=len(tokens), failure=len(tokens), errors={type(exc).__name__: len(tokens)})
    if delivery.never_tried:
        return None
    removed = store.remove_tokens(uid, delivery.stale_tokens) if delivery.stale_tokens else 0
    if not tokens:
        status = "no_devices"  # still in the in-app feed
    elif delivery.success:
        status = "sent"
    else:
        status = "failed"
    store.finish_notification(
        uid,
        notification,
        {
            **extra,
            "status": status,
            "delivery": delivery.as_fields(removed),
            "sentAt": _timestamp(services.clock()),
        },
    )
    return delivery
