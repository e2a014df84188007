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
import unicodedata
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


def marker_reading(chat_id: str, message_id: str, marker: Mapping[str, Any] | None) -> ReadyReading | None:
    """The reading a claimed marker was made for (the sweeper's view), or None if it is unreadable."""
    marker = marker or {}
    sender, score = marker.get("senderId"), finite_number(marker.get("score"))
    try:
        level = StressLevel(marker.get("level"))
    except ValueError:
        return None
    if not (chat_id and message_id and isinstance(sender, str) and sender) or score is None:
        return None
    return ReadyReading(chat_id, message_id, sender, score, level)


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
    RESUME = "resume"  # reserved by a run that died before finishing it: serve it now
    DUPLICATE = "duplicate"  # already notified about this message (a redelivery)
    DISABLED = "disabled"  # alertPrefs.enabled is false
    COOLDOWN = "cooldown"  # alerted about this sender less than cooldownMinutes ago
    NO_ACCOUNT = "no_account"  # no users/{uid} profile, or deleted: nothing is written for it
    CAPPED = "capped"  # already pushed the per-recipient cap within the last hour, across all senders


CAP_WINDOW_S = 3600.0
MAX_ALERTS_PER_HOUR_LIMIT = 60  # the most a param may allow; also bounds the stored log


@dataclass(frozen=True)
class AlertLog:
    """users/{uid}/stats/alerts: when each sender last alerted this recipient, and the recent pushes.

    The cooldown runs per (recipient, sender) pair, so one sender (a stranger who put the recipient
    in a chat, say) cannot silence the others; the recent pushes bound all senders together.
    """

    last_by_sender: Mapping[str, float] = field(default_factory=dict)
    recent: tuple[float, ...] = ()

    def sent(self, sender_id: str, now: float) -> AlertLog:
        """The log after one more push; entries that can no longer matter are dropped."""
        horizon = now - MAX_COOLDOWN_MINUTES * 60
        last = {s: t for s, t in self.last_by_sender.items() if t > horizon}
        last[sender_id] = now
        recent = (*(t for t in self.recent if t > now - CAP_WINDOW_S), now)
        return AlertLog(last, recent[-MAX_ALERTS_PER_HOUR_LIMIT:])

    def as_fields(self) -> dict[str, Any]:
        return {"lastBySender": dict(self.last_by_sender), "recentAlerts": list(self.recent)}

    @classmethod
    def from_fields(cls, raw: Mapping[str, Any] | None) -> AlertLog:
        """A stored log; what makes no sense in it is left out."""
        raw = raw if isinstance(raw, Mapping) else {}
        by_sender = raw.get("lastBySender")
        by_sender = by_sender if isinstance(by_sender, Mapping) else {}
        recent = raw.get("recentAlerts")
        recent = recent if isinstance(recent, list) else []
        return cls(
            {s: t for s, v in by_sender.items() if (t := finite_number(v)) is not None},
            tuple(t for v in recent if (t := finite_number(v)) is not None),
        )


@dataclass(frozen=True)
class RecipientLimits:
    """How often one person may be alerted: their prefs' defaults and the cap across all senders."""

    default_prefs: AlertPrefs = field(default_factory=AlertPrefs)
    max_per_hour: int = 6


# A feed entry's status from its reservation until the push's outcome is written over it.
SENDING = "sending"


def decide_recipient(
    prefs: AlertPrefs,
    log: AlertLog,
    sender_id: str,
    now: float,
    entry_status: str | None,
    max_per_hour: int,
) -> Verdict:
    """`entry_status`: the status of the recipient's feed entry for this alert, None if it has none.

    An entry still SENDING was reserved by a run that died before it finished (only a retake, past
    the lease, sees one): serve it now, already counted against the cooldown and the cap.
    """
    if entry_status == SENDING:
        return Verdict.RESUME
    if entry_status is not None:
        return Verdict.DUPLICATE
    if not prefs.enabled:
        return Verdict.DISABLED
    last = log.last_by_sender.get(sender_id)
    if last is not None and now - last < prefs.cooldown_minutes * 60:
        return Verdict.COOLDOWN
    if sum(1 for t in log.recent if now - CAP_WINDOW_S < t <= now) >= max_per_hour:
        return Verdict.CAPPED
    return Verdict.SEND


def most_recent_tokens(devices: Iterable[tuple[Any, float | None]], limit: int) -> list[str]:
    """FCM tokens of the `limit` most recently updated devices, newest first, each once.

    `devices`: (token, updatedAt epoch seconds) pairs; blank or non-string tokens are no device.
    """
    usable = [(t, at if at is not None else -math.inf) for t, at in devices if isinstance(t, str) and t]
    newest_first = sorted(usable, key=lambda pair: pair[1], reverse=True)
    return list(dict.fromkeys(t for t, _ in newest_first))[: max(0, limit)]


def notification_id(chat_id: str, message_id: str) -> str:
    """One id per message, the same in every recipient's feed: redeliveries find it taken.

    Hashed because ids may contain any character but '/': joining them with a separator could
    make two messages share an id.
    """
    return hashlib.sha256(f"chats/{chat_id}/messages/{message_id}".encode()).hexdigest()[:32]


# ── What they read ───────────────────────────────────────────────────────────────────────────────

MAX_NAME_CHARS = 40
# Control, format (bidi overrides, zero-width), surrogate, private-use, unassigned characters and
# line or paragraph separators:
# none belongs in a name, and each can make a push title say something other than a name.
_UNPRINTABLE = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})


def display_name(raw: Any) -> str | None:
    """users/{uid}.displayName fit for a push title, or None (the text's "someone" stands in).

    Refused, not repaired: longer than MAX_NAME_CHARS, or holding any character outside printable
    text and spaces, which a name never needs and a spoofed title does.
    """
    if not isinstance(raw, str) or any(unicodedata.category(ch) in _UNPRINTABLE for ch in raw):
        return None
    name = " ".join(raw.split())
    return name if name and len(name) <= MAX_NAME_CHARS else None


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
        "notificationId": notification,
    }
    if role is Role.SELF:  # why it alerted comes from the sender's own history: theirs alone
        data["reason"] = decision.reason.value
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
