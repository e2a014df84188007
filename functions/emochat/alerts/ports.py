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
    AlertPrefs,
    Baseline,
    MarkerAction,
    Push,
    ReadyReading,
    Verdict,
)


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
        """
        ...

    def chat_members(self, chat_id: str) -> list[str] | None: ...

    def user_display_name(self, uid: str) -> str | None: ...

    def user_language(self, uid: str) -> str | None:
        """users/{uid}.language as the app stored it ("ko", "en-US", ...), or None."""
        ...

    def reserve(
        self, uid: str, notification_id: str, record: Mapping[str, Any], default_prefs: AlertPrefs, now: float
    ) -> Verdict:
        """In one transaction: decide (alerts.decide_recipient, from the user's alertPrefs, cooldown
        marker and feed) and, on SEND, create the feed entry from `record` and restart the cooldown."""
        ...

    def device_tokens(self, uid: str) -> list[str]: ...

    def remove_tokens(self, uid: str, tokens: Sequence[str]) -> int:
        """Delete the user's device docs holding these tokens; how many were deleted."""
        ...

    def finish_notification(self, uid: str, notification_id: str, fields: Mapping[str, Any]) -> None: ...

    def finish_message(self, reading: ReadyReading, verdicts: Mapping[str, str]) -> None:
        """Mark the message's alerts done, with what became of each recipient (the ops trail)."""
        ...


class Notifier(Protocol):
    def send(self, tokens: Sequence[str], push: Push) -> Delivery:
        """Push to every token, retrying transient failures; never raises for a delivery failure."""
        ...
