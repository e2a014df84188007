"""The coping-suggestion bandit: catalog, priors, posteriors, Thompson sampling, exploration floor."""

from __future__ import annotations

import json
import random
from collections import Counter
from datetime import datetime

import pytest

from emochat.suggestions import bandit as recommend
from emochat.suggestions.bandit import (
    ArmModel,
    Context,
    Counts,
    PolicyParams,
    Reason,
    UserModel,
    Verdict,
)
from emochat.suggestions.catalog import (
    BUNDLED_CATALOG,
    Catalog,
    CatalogError,
    catalog_from_docs,
    parse_catalog,
)

AFTERNOON = Context("moderate", "afternoon")


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return parse_catalog(json.loads(BUNDLED_CATALOG.read_text()))


def simulate(
    catalog: Catalog,
    true_rates: dict[str, float],
    rounds: int,
    seed: int,
    context: Context = AFTERNOON,
    params: PolicyParams | None = None,
) -> tuple[list[float], UserModel]:
    """A simulated user who finds each suggestion helpful with a fixed probability; per-round regret."""
    rng, user = random.Random(seed), random.Random(seed + 10_000)
    model, regrets = UserModel(), []
    eligible = {s.id: true_rates[s.id] for s in catalog.eligible(context)}
    for _ in range(rounds):
        pick = recommend.rank(catalog, model, {}, context, 1, rng, params)[0]
        sid = pick.suggestion.id
        regrets.append(recommend.expected_regret(eligible, sid))
        model = recommend.with_feedback(model, sid, context, user.random() < eligible[sid])
    return regrets, model


def rates_preferring(catalog: Catalog, best: str, seed: int = 7) -> dict[str, float]:
    rng = random.Random(seed)
    rates = {s.id: rng.uniform(0.15, 0.45) for s in catalog.suggestions}
    rates[best] = 0.85
    return rates


# ── Catalog ──────────────────────────────────────────────────────────────────────────────────────


def test_bundled_catalog_is_complete(catalog: Catalog) -> None:
    kinds = {s.kind for s in catalog.suggestions}
    assert {"breathing", "walk", "music", "reach_out", "screen_break"} <= kinds
    assert len(kinds) >= 8 and catalog.version == "v1"
    for s in catalog.suggestions:
        assert s.title["ko"] and s.title["en"] and s.text["ko"] and s.text["en"]
        assert s.duration_min > 0 and s.setting
    ids = [s.id for s in catalog.suggestions]
    assert len(ids) == len(set(ids))


def test_catalog_round_trips_through_documents(catalog: Catalog) -> None:
    docs = {s.id: s.as_doc(catalog.version) for s in catalog.suggestions}
    back = catalog_from_docs(catalog.version, docs)
    assert {s.id: s for s in back.suggestions} == {s.id: s for s in catalog.suggestions}


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d["suggestions"][0]["title"].pop("ko"), "title"),
        (lambda d: d["suggestions"].append(dict(d["suggestions"][0])), "duplicate"),
        (lambda d: d["suggestions"][0].update(durationMin=0), "durationMin"),
        (lambda d: d["suggestions"][0].update(id="Has Spaces"), "id"),
        (lambda d: d["suggestions"][0].update(timesOfDay=["midnight"]), "timesOfDay"),
        (lambda d: d["suggestions"][0].update(priorHelpful=1.5), "priorHelpful"),
        (lambda d: d.update(version=""), "version"),
        (lambda d: d.update(suggestions=[]), "no suggestions"),
    ],
)
def test_bad_catalogs_are_refused(mutate, message: str) -> None:
    data = json.loads(BUNDLED_CATALOG.read_text())
    mutate(data)
    with pytest.raises(CatalogError, match=message):
        parse_catalog(data)


def test_localized_falls_back_to_english(catalog: Catalog) -> None:
    s = catalog.by_id("box-breathing")
    assert s.localized("ko")["title"] == s.title["ko"]
    assert s.localized("fr")["language"] == "en"
    assert s.localized(None)["text"] == s.text["en"]


def test_eligibility_follows_time_of_day(catalog: Catalog) -> None:
    night = {s.id for s in catalog.eligible(Context("high", "night"))}
    assert "short-walk" not in night and "wind-down" in night
    morning = {s.id for s in catalog.eligible(Context("high", "morning"))}
    assert "short-walk" in morning and "wind-down" not in morning


# ── Context ──────────────────────────────────────────────────────────────────────────────────────


@pytest.mark.parametrize(
    ("hour", "bucket"), [(0, "night"), (5, "night"), (6, "morning"), (12, "afternoon"), (23, "evening")]
)
def test_time_of_day(hour: int, bucket: str) -> None:
    assert recommend.time_of_day(datetime(2025, 1, 1, hour, 30)) == bucket


def test_context_validation_and_fields() -> None:
    assert recommend.context_at("bogus", datetime(2025, 1, 1, 8)) == Context("unknown", "morning")
    assert Context("high", "night").key == "high|night"
    assert Context.from_field({"stressLevel": "low", "timeOfDay": "evening"}) == Context("low", "evening")
    with pytest.raises(ValueError):
        Context("extreme", "night")


# ── Priors and posteriors ────────────────────────────────────────────────────────────────────────


def test_population_prior_starts_from_the_catalog_and_learns_from_everyone(catalog: Catalog) -> None:
    params = PolicyParams(prior_strength=4, population_shrinkage=20)
    walk = catalog.by_id("short-walk")
    fresh = recommend.population_prior(walk, {}, params)
    assert fresh.mean == pytest.approx(walk.prior_helpful) and fresh.alpha + fresh.beta == pytest.approx(4)
    few = recommend.population_prior(walk, {"short-walk": Counts(0, 5)}, params)
    many = recommend.population_prior(walk, {"short-walk": Counts(100, 900)}, params)
    assert walk.prior_helpful > few.mean > many.mean  # shrunk: a few ratings move it a little
    assert many.mean == pytest.approx((100 + 20 * walk.prior_helpful) / 1020)
    assert many.alpha + many.beta == pytest.approx(4)  # strength fixed: a user's own feedback dominates


def test_context_pooling_and_evidence_cap() -> None:
    arm = ArmModel(Counts(10, 30), {"high|night": Counts(8, 2)})
    params = PolicyParams(context_pooling=0.5, max_evidence=1000)
    here = recommend.personal_evidence(arm, Context("high", "night"), params)
    assert (here.helpful, here.not_helpful) == (8 + 0.5 * 2, 2 + 0.5 * 28)
    elsewhere = recommend.personal_evidence(arm, Context("low", "morning"), params)
    assert (elsewhere.helpful, elsewhere.not_helpful) == (5, 15)
    capped = recommend.personal_evidence(
        ArmModel(Counts(900, 100), {}), AFTERNOON, PolicyParams(max_evidence=40)
    )
    assert capped.total == pytest.approx(40) and capped.helpful == pytest.approx(36)


def test_params_refuse_to_stop_exploring() -> None:
    with pytest.raises(ValueError):
        PolicyParams(epsilon=0.0)
    with pytest.raises(ValueError):
        PolicyParams(context_pooling=2)


def test_model_document_round_trip() -> None:
    model = UserModel()
    model = recommend.with_feedback(model, "box-breathing", Context("high", "night"), True)
    model = recommend.with_feedback(model, "box-breathing", Context("low", "morning"), False)
    model = recommend.with_feedback(model, "short-walk", Context("low", "morning"), True)
    back = UserModel.from_doc(model.to_doc())
    assert back == model and back.feedback_count == 3
    assert back.arms["box-breathing"].overall == Counts(1, 1)
    assert back.arms["box-breathing"].by_context["high|night"] == Counts(1, 0)


# ── Ranking ──────────────────────────────────────────────────────────────────────────────────────


def test_rank_gives_distinct_eligible_picks_with_reasons(catalog: Catalog) -> None:
    night = Context("high", "night")
    picks = recommend.rank(catalog, UserModel(), {}, night, 5, random.Random(1))
    assert [p.rank for p in picks] == [1, 2, 3, 4, 5]
    assert len({p.suggestion.id for p in picks}) == 5
    assert all(p.suggestion.suits(night) for p in picks)
    for p in picks:
        field = p.reason_field()
        assert field["reason"] in ("explore", "exploit") and field["policy"] in ("thompson", "epsilon")
        assert 0 < field["sampledValue"] < 1 and field["posteriorMean"] <= field["bestPosteriorMean"] + 1e-9
        assert field["epsilon"] == 0.1 and field["candidates"] == len(catalog.eligible(night)) - p.rank + 1
    everything = recommend.rank(catalog, UserModel(), {}, night, 50, random.Random(1))
    assert len(everything) == len(catalog.eligible(night))


def test_rank_is_reproducible_with_a_seed(catalog: Catalog) -> None:
    a = recommend.rank(catalog, UserModel(), {}, AFTERNOON, 3, random.Random(42))
    b = recommend.rank(catalog, UserModel(), {}, AFTERNOON, 3, random.Random(42))
    assert [(p.suggestion.id, p.sampled_value) for p in a] == [(p.suggestion.id, p.sampled_value) for p in b]


def test_exploit_reason_marks_the_best_posterior_mean(catalog: Catalog) -> None:
    model = UserModel()
    for _ in range(30):
        model = recommend.with_feedback(model, "calm-music", AFTERNOON, True)
    reasons = Counter()
    rng = random.Random(3)
    for _ in range(400):
        pick = recommend.rank(catalog, model, {}, AFTERNOON, 1, rng)[0]
        reasons[(pick.suggestion.id == "calm-music", pick.reason)] += 1
    assert reasons[(True, Reason.EXPLORE)] == 0 and reasons[(False, Reason.EXPLOIT)] == 0
    assert reasons[(True, Reason.EXPLOIT)] > 300 and reasons[(False, Reason.EXPLORE)] > 0


def test_new_user_starts_from_the_population(catalog: Catalog) -> None:
    population = {"drink-water": Counts(900, 100)}  # everyone else finds it helpful
    population |= {s.id: Counts(200, 800) for s in catalog.suggestions if s.id != "drink-water"}
    rng = random.Random(5)
    firsts = Counter(
        recommend.rank(catalog, UserModel(), population, AFTERNOON, 1, rng)[0].suggestion.id
        for _ in range(500)
    )
    assert firsts["drink-water"] / 500 > 0.6


def test_ranking_converges_and_regret_falls(catalog: Catalog) -> None:
    """A simulated user who likes walks: cumulative regret in the last window ≪ in the first."""
    rates = rates_preferring(catalog, "short-walk")
    first, last = 0.0, 0.0
    for seed in range(5):
        regrets, model = simulate(catalog, rates, rounds=500, seed=seed)
        first += sum(regrets[:100])
        last += sum(regrets[-100:])
        means = {
            s.id: recommend.posterior(s, model, {}, AFTERNOON, PolicyParams()).mean
            for s in catalog.eligible(AFTERNOON)
        }
        assert max(means, key=means.get) == "short-walk"
    assert last < 0.5 * first, (first, last)
    assert last / 500 < 0.1  # per round, close to the exploration floor's own cost


def test_contextual_preferences_are_learned_per_context(catalog: Catalog) -> None:
    """Music helps this user at night, breathing in the morning: each context learns its own best."""
    night, morning = Context("high", "night"), Context("high", "morning")
    rates = {
        night.key: {**rates_preferring(catalog, "calm-music", seed=1)},
        morning.key: {**rates_preferring(catalog, "box-breathing", seed=2)},
    }
    rng, user, model = random.Random(11), random.Random(12), UserModel()
    late = Counter()
    for round_ in range(1200):
        context = night if round_ % 2 else morning
        sid = recommend.rank(catalog, model, {}, context, 1, rng)[0].suggestion.id
        model = recommend.with_feedback(model, sid, context, user.random() < rates[context.key][sid])
        if round_ >= 1000:
            late[(context.key, sid)] += 1
    assert late[(night.key, "calm-music")] > 60 and late[(morning.key, "box-breathing")] > 60


def test_exploration_never_drops_to_zero(catalog: Catalog) -> None:
    """After many rounds of feedback every other eligible suggestion is still shown ≥ ε/K of the time."""
    params = PolicyParams(epsilon=0.1)
    model = UserModel()
    eligible = [s.id for s in catalog.eligible(AFTERNOON)]
    for _ in range(100):
        for sid in eligible:
            model = recommend.with_feedback(model, sid, AFTERNOON, sid == "short-walk")
    rng, draws = random.Random(99), 12_000
    shown = Counter(
        recommend.rank(catalog, model, {}, AFTERNOON, 1, rng, params)[0].suggestion.id for _ in range(draws)
    )
    floor = params.epsilon / len(eligible)
    for sid in eligible:
        if sid != "short-walk":
            assert shown[sid] / draws >= 0.75 * floor, (sid, shown[sid] / draws, floor)
    assert shown["short-walk"] / draws > 0.85


# ── Feedback ─────────────────────────────────────────────────────────────────────────────────────


def test_judge_rating() -> None:
    record = {"suggestionId": "short-walk", "feedback": None, "context": AFTERNOON.as_field()}
    assert recommend.judge_rating(None, True, None) is Verdict.NOT_SHOWN
    assert recommend.judge_rating(record, True, "calm-music") is Verdict.MISMATCH
    assert recommend.judge_rating(record, True, "short-walk") is Verdict.RECORD
    rated = {**record, "feedback": {"helpful": True}}
    assert recommend.judge_rating(rated, True, None) is Verdict.DUPLICATE
    assert recommend.judge_rating(rated, False, None) is Verdict.ALREADY_RATED


def test_feedback_update_uses_the_recorded_context() -> None:
    record = {"suggestionId": "short-walk", "context": {"stressLevel": "high", "timeOfDay": "night"}}
    model, sid, context = recommend.feedback_update(record, UserModel(), False)
    assert sid == "short-walk" and context == Context("high", "night")
    assert model.arms["short-walk"].by_context["high|night"] == Counts(0, 1)
