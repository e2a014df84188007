"""Coping suggestions: a per-user Thompson-sampling bandit over the catalog. Pure: no I/O.

Each suggestion is an arm; "helpful" is a Bernoulli reward with an unknown rate θ. A user's belief
about θ is Beta(α, β):

    α = α0 + helpful,  β = β0 + not helpful          (evidence from that user's own feedback)

- **Population prior** (α0, β0): the suggestion's helpful rate over all users, shrunk toward the
  catalog's editorial guess with `population_shrinkage` pseudo-observations, then given only
  `prior_strength` pseudo-observations, so a new user starts from what helps most people and their
  own first few ratings already move the ranking.
- **Context**: feedback is counted per (stress level × time of day). For the current context the
  evidence is that context's counts plus the counts from other contexts weighted by
  `context_pooling` (a power prior): 1 is one bandit for all contexts, 0 is a separate bandit per
  context, in between lets sparse contexts borrow strength.
- **Never stops exploring**: personal evidence is capped at `max_evidence` pseudo-observations
  (scaled down beyond it, so the posterior variance has a floor and the model follows a user whose
  tastes change), and each slot is a uniformly random eligible suggestion with probability
  `epsilon`, so every eligible suggestion is shown with probability ≥ epsilon / (eligible count).
- **Thompson sampling**: draw θ ~ Beta(α, β) for each eligible suggestion and show the largest.
  The pick's reason is recorded: `exploit` when it is also the suggestion with the best posterior
  mean, `explore` otherwise (Thompson variance or the epsilon floor).

Randomness comes in as a `random.Random`, so tests seed it.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from emochat.domain import STRESS_LEVELS
from emochat.suggestions.catalog import TIMES_OF_DAY, Catalog, Suggestion

# The context's stress levels: the readings' vocabulary, plus "unknown" (no recent reading).
STRESS_CONTEXTS = (*STRESS_LEVELS, "unknown")

# ── Context ──────────────────────────────────────────────────────────────────────────────────────


def time_of_day(local: datetime) -> str:
    return TIMES_OF_DAY[local.hour // 6]


@dataclass(frozen=True)
class Context:
    """Where a suggestion is shown: the user's stress level and their local time of day."""

    stress_level: str = "unknown"
    time_of_day: str = "afternoon"

    def __post_init__(self) -> None:
        if self.stress_level not in STRESS_CONTEXTS:
            raise ValueError(f"stress level must be one of {STRESS_CONTEXTS}, got {self.stress_level!r}")
        if self.time_of_day not in TIMES_OF_DAY:
            raise ValueError(f"time of day must be one of {TIMES_OF_DAY}, got {self.time_of_day!r}")

    @property
    def key(self) -> str:
        return f"{self.stress_level}|{self.time_of_day}"

    def as_field(self) -> dict[str, str]:
        return {"stressLevel": self.stress_level, "timeOfDay": self.time_of_day}

    @classmethod
    def from_field(cls, value: Mapping[str, Any] | None) -> Context:
        value = value or {}
        stress = value.get("stressLevel")
        tod = value.get("timeOfDay")
        return cls(
            stress_level=stress if stress in STRESS_CONTEXTS else "unknown",
            time_of_day=tod if tod in TIMES_OF_DAY else "afternoon",
        )


def context_at(stress_level: str | None, local: datetime) -> Context:
    level = stress_level if stress_level in STRESS_CONTEXTS else "unknown"
    return Context(stress_level=level, time_of_day=time_of_day(local))


# ── Evidence ─────────────────────────────────────────────────────────────────────────────────────


@dataclass(frozen=True)
class Counts:
    helpful: float = 0.0
    not_helpful: float = 0.0

    @property
    def total(self) -> float:
        return self.helpful + self.not_helpful

    def add(self, helpful: bool) -> Counts:
        return Counts(self.helpful + (1 if helpful else 0), self.not_helpful + (0 if helpful else 1))

    def as_field(self) -> dict[str, float]:
        return {"helpful": self.helpful, "notHelpful": self.not_helpful}

    @classmethod
    def from_field(cls, value: Mapping[str, Any] | None) -> Counts:
        value = value or {}
        return cls(float(value.get("helpful") or 0), float(value.get("notHelpful") or 0))


@dataclass(frozen=True)
class ArmModel:
    """One user's feedback on one suggestion: overall and per context key."""

    overall: Counts = Counts()
    by_context: Mapping[str, Counts] = field(default_factory=dict)


@dataclass(frozen=True)
class UserModel:
    """users/{uid}/wellbeing/model: the user's feedback counts, the sufficient statistics."""

    arms: Mapping[str, ArmModel] = field(default_factory=dict)
    feedback_count: int = 0

    def to_doc(self) -> dict[str, Any]:
        return {
            "modelVersion": 1,
            "feedbackCount": self.feedback_count,
            "arms": {
                sid: {
                    "overall": arm.overall.as_field(),
                    "byContext": {key: c.as_field() for key, c in arm.by_context.items()},
                }
                for sid, arm in self.arms.items()
            },
        }

    @classmethod
    def from_doc(cls, doc: Mapping[str, Any] | None) -> UserModel:
        if not doc:
            return cls()
        arms = {
            sid: ArmModel(
                overall=Counts.from_field(raw.get("overall")),
                by_context={k: Counts.from_field(v) for k, v in (raw.get("byContext") or {}).items()},
            )
            for sid, raw in (doc.get("arms") or {}).items()
            if isinstance(raw, Mapping)
        }
        return cls(arms=arms, feedback_count=int(doc.get("feedbackCount") or 0))


def with_feedback(model: UserModel, suggestion_id: str, context: Context, helpful: bool) -> UserModel:
    arm = model.arms.get(suggestion_id, ArmModel())
    by_context = dict(arm.by_context)
    by_context[context.key] = by_context.get(context.key, Counts()).add(helpful)
    arms = {**model.arms, suggestion_id: ArmModel(arm.overall.add(helpful), by_context)}
    return UserModel(arms=arms, feedback_count=model.feedback_count + 1)


# ── Posterior ────────────────────────────────────────────────────────────────────────────────────


@dataclass(frozen=True)
class PolicyParams:
    epsilon: float = 0.1  # each slot is a uniform pick among the eligible with this probability
    prior_strength: float = 4.0  # pseudo-observations in a new user's prior
    population_shrinkage: float = 20.0  # pseudo-observations pulling population rates to the catalog's
    context_pooling: float = 0.5  # weight of feedback given in other contexts
    max_evidence: float = 40.0  # cap on personal pseudo-observations (variance floor, follows change)
    default_prior_mean: float = 0.5  # for suggestions the catalog gives no priorHelpful
    # What one user adds to a suggestion's population counts (suggestionStats) at most, in ratings:
    # beyond it their counts are scaled down, keeping their helpful share, so one account rating a
    # suggestion over and over cannot poison the prior every other user starts from.
    max_population_ratings_per_user: float = 5.0

    def __post_init__(self) -> None:
        if not 0.0 < self.epsilon < 1.0:
            raise ValueError("epsilon must be within (0, 1): exploration must never stop")
        if self.prior_strength <= 0 or self.population_shrinkage < 0 or self.max_evidence <= 0:
            raise ValueError("prior strength and evidence cap must be positive")
        if self.max_population_ratings_per_user <= 0:
            raise ValueError("prior strength and evidence cap must be positive")
        if not 0.0 <= self.context_pooling <= 1.0:
            raise ValueError("context pooling must be within [0, 1]")


@dataclass(frozen=True)
class Beta:
    alpha: float
    beta: float

    @property
    def mean(self) -> float:
        return self.alpha / (self.alpha + self.beta)

    @property
    def variance(self) -> float:
        n = self.alpha + self.beta
        return self.alpha * self.beta / (n * n * (n + 1))

    def sample(self, rng: random.Random) -> float:
        return rng.betavariate(self.alpha, self.beta)


def population_prior(suggestion: Suggestion, population: Mapping[str, Counts], params: PolicyParams) -> Beta:
    """Beta(α0, β0): the population's helpful rate for this suggestion, shrunk, at a fixed strength."""
    centre = suggestion.prior_helpful if suggestion.prior_helpful is not None else params.default_prior_mean
    seen = population.get(suggestion.id, Counts())
    rate = (seen.helpful + params.population_shrinkage * centre) / (seen.total + params.population_shrinkage)
    rate = min(max(rate, 0.02), 0.98)
    return Beta(params.prior_strength * rate, params.prior_strength * (1.0 - rate))


def personal_evidence(arm: ArmModel | None, context: Context, params: PolicyParams) -> Counts:
    """This context's feedback plus other contexts' at weight `context_pooling`, capped."""
    if arm is None:
        return Counts()
    here = arm.by_context.get(context.key, Counts())
    pooling = params.context_pooling
    helpful = here.helpful + pooling * max(arm.overall.helpful - here.helpful, 0.0)
    not_helpful = here.not_helpful + pooling * max(arm.overall.not_helpful - here.not_helpful, 0.0)
    total = helpful + not_helpful
    if total > params.max_evidence:
        scale = params.max_evidence / total
        helpful, not_helpful = helpful * scale, not_helpful * scale
    return Counts(helpful, not_helpful)


def posterior(
    suggestion: Suggestion,
    model: UserModel,
    population: Mapping[str, Counts],
    context: Context,
    params: PolicyParams,
) -> Beta:
    prior = population_prior(suggestion, population, params)
    evidence = personal_evidence(model.arms.get(suggestion.id), context, params)
    return Beta(prior.alpha + evidence.helpful, prior.beta + evidence.not_helpful)


# ── Picking ──────────────────────────────────────────────────────────────────────────────────────


class Reason(StrEnum):
    EXPLOIT = "exploit"  # the suggestion with the best posterior mean
    EXPLORE = "explore"  # another one: Thompson sampling's own variance, or the epsilon floor


@dataclass(frozen=True)
class Pick:
    suggestion: Suggestion
    rank: int
    reason: Reason
    policy: str  # "thompson" or "epsilon"
    sampled_value: float
    posterior: Beta
    best_posterior_mean: float
    candidates: int
    epsilon: float

    def reason_field(self) -> dict[str, Any]:
        """Why this suggestion was shown, stored with the recommendation."""
        return {
            "reason": self.reason.value,
            "policy": self.policy,
            "sampledValue": round(self.sampled_value, 6),
            "posteriorMean": round(self.posterior.mean, 6),
            "posterior": {"alpha": round(self.posterior.alpha, 6), "beta": round(self.posterior.beta, 6)},
            "bestPosteriorMean": round(self.best_posterior_mean, 6),
            "candidates": self.candidates,
            "epsilon": self.epsilon,
        }


def rank(
    catalog: Catalog,
    model: UserModel,
    population: Mapping[str, Counts],
    context: Context,
    count: int,
    rng: random.Random,
    params: PolicyParams | None = None,
) -> list[Pick]:
    """Up to `count` distinct suggestions for this context, best first, each with its reason."""
    params = params or PolicyParams()
    candidates = catalog.eligible(context)
    posteriors = {s.id: posterior(s, model, population, context, params) for s in candidates}
    samples = {s.id: posteriors[s.id].sample(rng) for s in candidates}
    remaining = list(candidates)
    picks: list[Pick] = []
    while remaining and len(picks) < count:
        best_mean = max(posteriors[s.id].mean for s in remaining)
        if rng.random() < params.epsilon:
            chosen, policy = rng.choice(remaining), "epsilon"
        else:
            chosen, policy = max(remaining, key=lambda s: samples[s.id]), "thompson"
        belief = posteriors[chosen.id]
        is_best = belief.mean >= best_mean - 1e-12
        picks.append(
            Pick(
                suggestion=chosen,
                rank=len(picks) + 1,
                reason=Reason.EXPLOIT if is_best else Reason.EXPLORE,
                policy=policy,
                sampled_value=samples[chosen.id],
                posterior=belief,
                best_posterior_mean=best_mean,
                candidates=len(remaining),
                epsilon=params.epsilon,
            )
        )
        remaining.remove(chosen)
    return picks


# ── Feedback ─────────────────────────────────────────────────────────────────────────────────────


class Verdict(StrEnum):
    RECORD = "record"  # first rating of a shown suggestion: update the model
    DUPLICATE = "duplicate"  # the same rating again (a retried call): nothing to do
    NOT_SHOWN = "not_shown"  # no such recommendation was recorded for this user
    ALREADY_RATED = "already_rated"  # rated before, the other way: one rating per showing
    MISMATCH = "mismatch"  # the recommendation showed a different suggestion


def judge_rating(record: Mapping[str, Any] | None, helpful: bool, suggestion_id: str | None) -> Verdict:
    """May this rating count? One rating per recommendation the user was actually shown."""
    if record is None:
        return Verdict.NOT_SHOWN
    if suggestion_id is not None and suggestion_id != record.get("suggestionId"):
        return Verdict.MISMATCH
    feedback = record.get("feedback")
    if isinstance(feedback, Mapping) and "helpful" in feedback:
        return Verdict.DUPLICATE if bool(feedback["helpful"]) == helpful else Verdict.ALREADY_RATED
    return Verdict.RECORD


def feedback_update(
    record: Mapping[str, Any], model: UserModel, helpful: bool
) -> tuple[UserModel, str, Context]:
    """The user's model after rating the recommendation `record` (its stored context, not the caller's)."""
    context = Context.from_field(record.get("context"))
    suggestion_id = str(record["suggestionId"])
    return with_feedback(model, suggestion_id, context, helpful), suggestion_id, context


def population_share(counts: Counts, cap: float) -> Counts:
    """One user's counts for a suggestion as the population sees them: at most `cap` ratings."""
    if counts.total <= cap:
        return counts
    scale = cap / counts.total
    return Counts(counts.helpful * scale, counts.not_helpful * scale)


def population_delta(before: UserModel, after: UserModel, suggestion_id: str, params: PolicyParams) -> Counts:
    """What a rating changes in suggestionStats/{id}: the change in the user's capped share (may be
    negative in one field once the cap is reached and the user's helpful share moves)."""
    cap = params.max_population_ratings_per_user
    empty = ArmModel()
    old = population_share(before.arms.get(suggestion_id, empty).overall, cap)
    new = population_share(after.arms.get(suggestion_id, empty).overall, cap)
    return Counts(new.helpful - old.helpful, new.not_helpful - old.not_helpful)


def expected_regret(true_rates: Mapping[str, float], chosen: str) -> float:
    """For simulations: how much worse the chosen suggestion is than the best, in helpful rate."""
    return max(true_rates.values()) - true_rates[chosen]
