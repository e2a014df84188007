"""Stress alerts: which message writes alert whom, when, and in what words.

Pure Python, no I/O, like `domain`: the trigger and the service layer (`alerts.service`) only carry values
between Firestore, FCM and these decisions.

- A message alerts at most once, on its transition into `ready` (`ready_reading`); the per-message
  marker that enforces "once" is claimed through `decide_marker`.
- Every ready reading also feeds its sender's personal baseline (`Baseline`: Welford's running mean
  and variance of the scores), so what counts as unusual follows the person.
- A `high` reading alerts on the fixed threshold until the sender's baseline has enough samples;
  from then on only when it is also unusual for them (`decide_alert`: z ≥ the policy's threshold).
- The sender gets a self-care prompt, the other chat members an empathy prompt (`alert_push`), each
  within their own `alertPrefs` (`decide_recipient`: enabled, at most one alert per cooldown).
- FCM answers decide each token's fate (`token_fate`): delivered, stale (delete it), transient
  (retry it with `backoff_s`), or failed.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from emochat.alerts.texts import texts_for
from emochat.domain import StressLevel, finite_number, is_ready, reading_of
from emochat.profile import DEFAULT_LANGUAGE

# ── Which writes count ───────────────────────────────────────────────────────────────────────────


@dataclass(frozen=True)
class ReadyReading:
    """A message that just became ready, with the stress reading it carries."""

    chat_id: str
    message_id: str
    sender_id: str
    score: float
    level: StressLevel

    @property
    def message_doc(self) -> str:
        return f"chats/{self.chat_id}/messages/{self.message_id}"


def ready_reading(
    chat_id: str, message_id: str, before: Mapping[str, Any] | None, after: Mapping[str, Any] | None
) -> ReadyReading | None:
    """The reading of a write that turns a message ready, or None for every other write.

    Only the transition counts (before not ready, after ready): the processing write, later edits of
    a ready message and deletions are all None, so a message is looked at once per time it becomes
    ready. A ready message without a usable reading (`domain.reading_of`: no sender, no finite
    numeric score, unknown level) is None too: there is nothing to learn from it or alert about.
    """
    if is_ready(before):
        return None
    parsed = reading_of(after)
    if parsed is None:
        return None
    return ReadyReading(chat_id, message_id, parsed.sender_id, parsed.score, parsed.level)


# ── Personal baseline ────────────────────────────────────────────────────────────────────────────


def _number(value: Any, default: float) -> float:
    number = finite_number(value)
    return default if number is None else number


@dataclass(frozen=True)
class Baseline:
    """A person's running mean and variance of stress scores (Welford's online algorithm).

    `m2` is the sum of squared deviations from the mean; `variance` is the sample variance (n - 1),
    0 until there are two samples. One update per sample, numerically stable, O(1) storage.
    """

    count: int = 0
    mean: float = 0.0
    m2: float = 0.0

    def add(self, score: float) -> Baseline:
        count = self.count + 1
        delta = score - self.mean
        mean = self.mean + delta / count
        return Baseline(count=count, mean=mean, m2=self.m2 + delta * (score - mean))

    @property
    def variance(self) -> float:
        return self.m2 / (self.count - 1) if self.count > 1 else 0.0

    @property
    def std(self) -> float:
        return math.sqrt(self.variance)

    def as_fields(self) -> dict[str, Any]:
        return {
            "count": self.count,
            "mean": self.mean,
            "m2": self.m2,
            "variance": self.variance,
            "std": self.std,
        }

    @classmethod
    def from_fields(cls, raw: Mapping[str, Any] | None) -> Baseline:
        """A stored baseline, or an empty one when the stored fields make no sense."""
        if not raw:
            return cls()
        count = raw.get("count")
        if isinstance(count, bool) or not isinstance(count, int) or count <= 0:
            return cls()
        mean, m2 = _number(raw.get("mean"), math.nan), _number(raw.get("m2"), math.nan)
        if math.isnan(mean) or math.isnan(m2) or m2 < 0:
            return cls()
        return cls(count=count, mean=mean, m2=m2)


# ── Whether a reading alerts ─────────────────────────────────────────────────────────────────────


class AlertReason(StrEnum):
    FIXED_THRESHOLD = "fixed_threshold"  # high, and too few samples yet to know what is usual
    PERSONAL_BASELINE = "personal_baseline"  # high, and unusual for this person (z ≥ threshold)
    WITHIN_PERSONAL_RANGE = "within_personal_range"  # high, but usual for this person: no alert
    NOT_HIGH = "not_high"  # low or moderate: it only feeds the baseline


@dataclass(frozen=True)
class AlertPolicy:
    z_threshold: float = 1.0
    min_samples: int = 5
    # Floor on σ, in score points: a flat history (σ ≈ 0) must not make every reading "unusual".
    min_std: float = 1.0

    def __post_init__(self) -> None:
        if not math.isfinite(self.z_threshold):
            raise ValueError(f"z threshold must be finite, got {self.z_threshold}")
        if self.min_samples < 2:
            raise ValueError(f"a baseline needs at least 2 samples for a spread, got {self.min_samples}")
        if not self.min_std > 0:
            raise ValueError(f"min_std must be positive, got {self.min_std}")


@dataclass(frozen=True)
class AlertDecision:
    alert: bool
    reason: AlertReason
    z: float | None = None

    def as_fields(self) -> dict[str, Any]:
        return {"alert": self.alert, "reason": self.reason.value, "z": self.z}

    @classmethod
    def from_fields(cls, raw: Mapping[str, Any] | None) -> AlertDecision | None:
        if not raw:
            return None
        try:
            reason = AlertReason(raw.get("reason"))
        except ValueError:
            return None
        z = raw.get("z")
        return cls(
            alert=bool(raw.get("alert")),
            reason=reason,
            z=float(z) if isinstance(z, int | float) and not isinstance(z, bool) else None,
        )


def z_score(score: float, baseline: Baseline, min_std: float) -> float:
    return (score - baseline.mean) / max(baseline.std, min_std)


def decide_alert(reading: ReadyReading, prior: Baseline, policy: AlertPolicy) -> AlertDecision:
    """Whether a reading alerts, judged against the sender's baseline *before* this reading.

    The reading itself is left out of its own yardstick, so a single spike cannot hide itself.
    """
    if reading.level is not StressLevel.HIGH:
        return AlertDecision(alert=False, reason=AlertReason.NOT_HIGH)
    if prior.count < policy.min_samples:
        return AlertDecision(alert=True, reason=AlertReason.FIXED_THRESHOLD)
    z = round(z_score(reading.score, prior, policy.min_std), 3)
    if z >= policy.z_threshold:
        return AlertDecision(alert=True, reason=AlertReason.PERSONAL_BASELINE, z=z)
    return AlertDecision(alert=False, reason=AlertReason.WITHIN_PERSONAL_RANGE, z=z)


# ── Once per message ─────────────────────────────────────────────────────────────────────────────


class MarkerState(StrEnum):
    CLAIMED = "claimed"  # the baseline is updated; alerts are being sent
    DONE = "done"


class MarkerAction(StrEnum):
    START = "start"  # first look at this message: update the baseline, decide, alert
    RETAKE = "retake"  # an earlier run died while alerting (its lease ran out): finish its alerts
    SKIP = "skip"  # done already, or another run is on it right now


@dataclass(frozen=True)
class Marker:
    state: MarkerState
    lease_expires_at: float | None = None  # epoch seconds; only while claimed


def decide_marker(existing: Marker | None, now: float) -> MarkerAction:
    """Duplicate events become no-ops; a run that died mid-way is finished by a later delivery.

    The baseline is updated in the same transaction that creates the marker, so a retake never
    counts the reading twice; recipients already notified are skipped by `decide_recipient`.
    """
    if existing is None:
        return MarkerAction.START
    if existing.state is MarkerState.CLAIMED and (
        existing.lease_expires_at is not None and existing.lease_expires_at <= now
    ):
        return MarkerAction.RETAKE
    return MarkerAction.SKIP


# ── Who hears about it ───────────────────────────────────────────────────────────────────────────


class Role(StrEnum):
    SELF = "self"  # the sender: a self-care prompt
    MEMBER = "member"  # another chat member: an empathy prompt


@dataclass(frozen=True)
class Recipient:
    uid: str
    role: Role


def recipients(sender_id: str, members: Iterable[Any] | None) -> list[Recipient]:
    """The sender first, then every other member once, in the chat's order."""
    others = dict.fromkeys(m for m in (members or []) if isinstance(m, str) and m and m != sender_id)
    return [Recipient(sender_id, Role.SELF), *(Recipient(uid, Role.MEMBER) for uid in others)]


@dataclass(frozen=True)
class AlertPrefs:
    """users/{uid}.alertPrefs: whether to alert this person at all, and how often at most."""

    enabled: bool = True
    cooldown_minutes: float = 30.0


MAX_COOLDOWN_MINUTES = 7 * 24 * 60


def alert_prefs(raw: Any, default: AlertPrefs) -> AlertPrefs:
    """A user's preferences, each field falling back to the default when missing or malformed."""
    if not isinstance(raw, Mapping):
        return default
    enabled = raw.get("enabled")
    cooldown = _number(raw.get("cooldownMinutes"), math.nan)
    return AlertPrefs(
        enabled=enabled if isinstance(enabled, bool) else default.enabled,
        cooldown_minutes=(min(cooldown, MAX_COOLDOWN_MINUTES) if cooldown >= 0 else default.cooldown_minutes),
    )


class Verdict(StrEnum):
    """What becomes of one recipient of one alert."""

    SEND = "send"
    DUPLICATE = "duplicate"  # already notified about this message (a redelivery)
    DISABLED = "disabled"  # alertPrefs.enabled is false
    COOLDOWN = "cooldown"  # alerted less than cooldownMinutes ago


def decide_recipient(
    prefs: AlertPrefs, last_alert_at: float | None, now: float, already_notified: bool
) -> Verdict:
    if already_notified:
        return Verdict.DUPLICATE
    if not prefs.enabled:
        return Verdict.DISABLED
    if last_alert_at is not None and now - last_alert_at < prefs.cooldown_minutes * 60:
        return Verdict.COOLDOWN
    return Verdict.SEND


def notification_id(chat_id: str, message_id: str) -> str:
    """One id per message, the same in every recipient's feed: redeliveries find it taken.

    Hashed because ids may contain any character but '/': joining them with a separator could
    make two messages share an id.
    """
    return hashlib.sha256(f"chats/{chat_id}/messages/{message_id}".encode()).hexdigest()[:32]


# ── What they read ───────────────────────────────────────────────────────────────────────────────

MAX_NAME_CHARS = 40


def display_name(raw: Any) -> str | None:
    if not isinstance(raw, str) or not raw.strip():
        return None
    name = " ".join(raw.split())
    return name if len(name) <= MAX_NAME_CHARS else name[: MAX_NAME_CHARS - 1].rstrip() + "…"


@dataclass(frozen=True)
class Push:
    """One notification as FCM carries it; `data` values are strings, as FCM requires."""

    title: str
    body: str
    data: dict[str, str] = field(default_factory=dict)


def alert_push(
    role: Role,
    sender_name: str | None,
    reading: ReadyReading,
    decision: AlertDecision,
    notification: str,
    language: str = DEFAULT_LANGUAGE,
) -> Push:
    texts = texts_for(language)
    if role is Role.SELF:
        title, body = texts["self_title"], texts["self_body"]
    else:
        name = sender_name or texts["someone"]
        title = texts["member_title"].format(name=name)
        body = texts["member_body"].format(name=name)
    data = {
        "type": "stress_alert",
        "role": role.value,
        "chatId": reading.chat_id,
        "messageId": reading.message_id,
        "senderId": reading.sender_id,
        "score": str(round(reading.score, 1)),
        "level": reading.level.value,
        "reason": decision.reason.value,
        "notificationId": notification,
    }
    return Push(title=title, body=body, data=data)


def with_suggestion(push: Push, suggestion: Mapping[str, str], language: str = DEFAULT_LANGUAGE) -> Push:
    """The self-care push carrying one coping suggestion: its title in the body, its ids in the data
    so the app can open it and rate it (rate_suggestion takes the recommendationId)."""
    title = suggestion.get("title", "")
    try_this = texts_for(language)["try_this"]
    body = f"{push.body} {try_this.format(title=title)}" if title else push.body
    names = {
        "recommendationId": "recommendationId",
        "suggestionId": "suggestionId",
        "kind": "suggestionKind",
        "title": "suggestionTitle",
    }
    data = {**push.data, **{names[k]: str(v) for k, v in suggestion.items() if k in names}}
    return Push(title=push.title, body=body, data=data)
