"""Warn people when a voice message sounds highly stressed: the service layer of alert_on_high_stress.

Order matters: the per-message marker and the sender's baseline are written in one transaction
before anyone is alerted, so a duplicate event neither counts the reading twice nor alerts twice;
each recipient is then reserved (feed entry + cooldown, in one transaction) before the push goes
out, so the cooldown holds even when two messages alert at the same moment.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
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
    Role,
    Verdict,
)
from emochat.alerts.ports import AlertStore, Notifier
from emochat.profile import user_language

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AlertConfig:
    policy: AlertPolicy = field(default_factory=AlertPolicy)
    default_prefs: AlertPrefs = field(default_factory=AlertPrefs)
    # How long a claimed marker holds before a redelivery may finish its alerts: the function timeout.
    lease_s: float = 120.0


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
    """The feed entry users/{uid}/notifications/{id} as first written, before the push goes out."""
    return {
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
        "reason": decision.reason.value,
        "z": decision.z,
        "baseline": (  # the yardstick the reading was judged against
            {"count": prior.count, "mean": round(prior.mean, 3), "std": round(prior.std, 3)}
            if prior is not None
            else None
        ),
        "read": False,
        "status": "sending",
        "delivery": None,
        "createdAt": _timestamp(now),
        "sentAt": None,
    }


def alert_on_reading(reading: ReadyReading, services: AlertServices, config: AlertConfig) -> AlertOutcome:
    """Update the sender's baseline and alert whoever should hear about it. Once per message."""
    now = services.clock()
    store = services.store
    claimed = store.record_ready(reading, config.policy, now, config.lease_s)
    decision = claimed.decision
    if claimed.action is MarkerAction.SKIP or decision is None or not decision.alert:
        return AlertOutcome(action=claimed.action, decision=decision)

    notification = alerts.notification_id(reading.chat_id, reading.message_id)
    sender_name = alerts.display_name(store.user_display_name(reading.sender_id))
    verdicts: dict[str, Verdict] = {}
    deliveries: dict[str, Delivery] = {}
    for recipient in alerts.recipients(reading.sender_id, store.chat_members(reading.chat_id)):
        language = user_language(store.user_language(recipient.uid))
        push = alerts.alert_push(recipient.role, sender_name, reading, decision, notification, language)
        record = _record(recipient, reading, decision, claimed.baseline, push, now)
        verdict = store.reserve(recipient.uid, notification, record, config.default_prefs, now)
        verdicts[recipient.uid] = verdict
        if verdict is not Verdict.SEND:
            continue
        extra: dict[str, Any] = {}
        if recipient.role is Role.SELF and services.suggest is not None:
            # Asked only once the alert is certain to go out: a suggestion is recorded as shown.
            suggestion = services.suggest(reading, language)
            if suggestion:
                push = alerts.with_suggestion(push, suggestion, language)
                extra = {"suggestion": dict(suggestion), "body": push.body, "data": dict(push.data)}
        deliveries[recipient.uid] = _deliver(recipient.uid, notification, push, services, extra)
    store.finish_message(reading, {uid: verdict.value for uid, verdict in verdicts.items()})
    return AlertOutcome(action=claimed.action, decision=decision, verdicts=verdicts, deliveries=deliveries)


def _deliver(
    uid: str, notification: str, push: Push, services: AlertServices, extra: Mapping[str, Any]
) -> Delivery:
    store = services.store
    tokens = store.device_tokens(uid)
    try:
        delivery = services.notifier.send(tokens, push) if tokens else Delivery()
    except Exception as exc:  # one recipient's failure must not cost the others their alerts
        log.exception("push to %s failed", uid)
        delivery = Delivery(tokens=len(tokens), failure=len(tokens), errors={type(exc).__name__: len(tokens)})
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
