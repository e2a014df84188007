"""The alerts' narrow interfaces: the Firestore state they keep and the push channel.

Adapters: adapters/firestore_store.py and adapters/fcm_notifier.py; unit tests: tests/fakes/alerts.py.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from emochat.alerts.delivery import Delivery
from emochat.alerts.model import (
    AlertDecision,
    AlertPolicy,
    Baseline,
    MarkerAction,
    Push,
    ReadyReading,
    RecipientLimits,
    Verdict,
)


@dataclass(frozen=True)
class Reservation:
    """One recipient of one alert, to be decided and, if so, entered in their feed."""

    uid: str
    sender_id: str
    notification_id: str
    record: Mapping[str, Any]  # the feed entry users/{uid}/notifications/{notification_id}
    now: float


@dataclass(frozen=True)
class Claimed:
    """What claiming a ready message's marker gave: whether to go on, and the decision to act on."""

    action: MarkerAction
    decision: AlertDecision | None = None
    baseline: Baseline | None = None  # the sender's baseline before this reading


class AlertStore(Protocol):
    def record_ready(self, reading: ReadyReading, policy: AlertPolicy, now: float, lease_s: float) -> Claimed:
        """In one transaction: claim the message's marker (alerts.decide_marker) and, on START, add
        the score to the sender's baseline and store alerts.decide_alert's decision on the marker.

        A decision not to alert finishes the marker at once; RETAKE returns the stored decision.
        SKIP, writing nothing, for a sender without a profile or with a deleted account.
        """
        ...

    def chat_members(self, chat_id: str) -> list[str] | None: ...

    def user_display_name(self, uid: str) -> str | None: ...

    def user_language(self, uid: str) -> str | None:
        """users/{uid}.language as the app stored it ("ko", "en-US", ...), or None."""
        ...

    def reserve(self, reservation: Reservation, limits: RecipientLimits) -> Verdict:
        """In one transaction: decide (alerts.decide_recipient, from the user's alertPrefs, alert log
        and feed entry) and, on SEND, create the feed entry from the reservation's record and log
        the push (AlertLog.sent); RESUME and the rest write nothing;
        NO_ACCOUNT, writing nothing, for a uid without a profile or with a deleted account."""
        ...

    def device_tokens(self, uid: str, limit: int) -> list[str]:
        """The tokens of the user's `limit` most recently updated devices (alerts.most_recent_tokens)."""
        ...

    def remove_tokens(self, uid: str, tokens: Sequence[str]) -> int:
        """Delete the user's device docs holding these tokens; how many were deleted."""
        ...

    def finish_notification(self, uid: str, notification_id: str, fields: Mapping[str, Any]) -> None: ...

    def finish_message(self, reading: ReadyReading, verdicts: Mapping[str, str]) -> None:
        """Mark the message's alerts done, with what became of each recipient (the ops trail)."""
        ...

    def stuck_alerts(self, now: float, limit: int) -> list[ReadyReading]:
        """Messages whose alert marker is still claimed with its lease run out by `now`: a run died
        mid-way and no trigger is ever redelivered. At most `limit`, oldest lease first."""
        ...


class Notifier(Protocol):
    def send(self, tokens: Sequence[str], push: Push, budget_s: float) -> Delivery:
        """Push to every token, retrying transient failures, all within `budget_s` seconds (no call
        starts that could end later); never raises for a delivery failure."""
        ...
