"""Coping suggestions, stress trends and deletion over the in-memory fakes (tests/fakes), which share
one set of documents as the features share one Firestore."""

from __future__ import annotations

import copy
import random
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fakes.accounts import FakeAccounts, InMemoryAccountStore, InMemoryVoiceObjects
from fakes.documents import Documents, mentions
from fakes.suggestions import InMemorySuggestionStore
from fakes.trends import InMemoryTrendStore

from emochat.accounts import service as account_service
from emochat.accounts.service import AccountServices
from emochat.domain import RequestError
from emochat.profile import user_language
from emochat.suggestions import service as suggestions
from emochat.suggestions.bandit import Counts
from emochat.suggestions.service import AlertContext, SuggestionConfig, SuggestionServices
from emochat.trends import model as trend_model
from emochat.trends import service as trend_service
from emochat.trends.service import TrendConfig, TrendServices
from tools.ops import OpsServices

NOW = datetime(2025, 11, 20, 5, 0, tzinfo=UTC)  # 14:00 in Seoul: afternoon


@pytest.fixture
def store() -> Documents:
    store = Documents()
    suggestions.seed_catalog(InMemorySuggestionStore(store))
    store.docs["users/alice"] = {"displayName": "Alice", "timeZone": "Asia/Seoul", "language": "ko"}
    store.docs["users/bob"] = {"displayName": "Bob", "timeZone": "America/New_York"}
    return store


@pytest.fixture
def clock() -> list[datetime]:
    return [NOW]


def services_over(store: Documents, clock: list[datetime], seed: int = 1) -> OpsServices:
    """Suggestions, trends and accounts over one set of documents, as over one Firestore."""
    now = lambda: clock[0]  # noqa: E731
    return OpsServices(
        suggestions=SuggestionServices(
            store=InMemorySuggestionStore(store),
            trends=InMemoryTrendStore(store),
            rng=random.Random(seed),
            clock=now,
        ),
        trends=TrendServices(store=InMemoryTrendStore(store), clock=now),
        accounts=AccountServices(store=InMemoryAccountStore(store), voice=InMemoryVoiceObjects()),
    )


@pytest.fixture
def services(store, clock) -> OpsServices:
    return services_over(store, clock)


CONFIG = SuggestionConfig(cache_ttl_s=0)
TRENDS = TrendConfig()


def records(store: Documents, uid: str) -> dict[str, dict[str, Any]]:
    return {p.rsplit("/", 1)[1]: d for p, d in store.under(f"users/{uid}/recommendations").items()}


# ── Catalog ──────────────────────────────────────────────────────────────────────────────────────


def test_seeding_is_idempotent_and_retires_dropped_suggestions(services, store) -> None:
    base = len(store.docs)
    suggestions.seed_catalog(services.suggestions.store)
    assert len(store.docs) == base
    store.docs["catalog/v1/suggestions/retired-one"] = {
        **store.docs["catalog/v1/suggestions/box-breathing"],
        "id": "retired-one",
    }
    suggestions.seed_catalog(services.suggestions.store)
    assert store.docs["catalog/v1/suggestions/retired-one"]["active"] is False
    assert store.docs["catalog/v1"]["source"]["sha256"]


def test_unseeded_catalog_falls_back_to_the_bundled_file(clock) -> None:
    services = services_over(Documents(), clock, seed=0)
    out = suggestions.recommend_coping(services.suggestions, CONFIG, "alice", {"count": 2})
    assert len(out["recommendations"]) == 2 and out["catalogVersion"] == "v1"
    with pytest.raises(RequestError) as err:
        suggestions.recommend_coping(
            services.suggestions, SuggestionConfig(catalog_version="v9", cache_ttl_s=0), "a", {}
        )
    assert err.value.code == "failed-precondition"


def test_inactive_suggestions_are_never_shown(services, store) -> None:
    for path in store.under("catalog/v1/suggestions"):
        if not path.endswith(("/box-breathing", "/calm-music")):
            store.docs[path]["active"] = False
    shown = Counter()
    for _ in range(30):
        for rec in suggestions.recommend_coping(services.suggestions, CONFIG, "alice", {"count": 5})[
            "recommendations"
        ]:
            shown[rec["suggestionId"]] += 1
    assert set(shown) == {"box-breathing", "calm-music"}


# ── Recommendations ──────────────────────────────────────────────────────────────────────────────


def test_recommend_returns_and_records_top_suggestions(services, store) -> None:
    out = suggestions.recommend_coping(services.suggestions, CONFIG, "alice", {"count": 3})
    assert out["context"] == {"stressLevel": "unknown", "timeOfDay": "afternoon"}
    recs = out["recommendations"]
    assert [r["rank"] for r in recs] == [1, 2, 3] and len({r["suggestionId"] for r in recs}) == 3
    assert all(r["language"] == "ko" for r in recs)  # from the profile
    stored = records(store, "alice")
    assert set(stored) == {r["recommendationId"] for r in recs}
    for rec in recs:
        doc = stored[rec["recommendationId"]]
        assert doc["suggestionId"] == rec["suggestionId"] and doc["shownAt"] == NOW
        assert doc["source"] == "on_demand" and doc["feedback"] is None
        assert doc["context"] == out["context"] and doc["reason"] == rec["reason"]
        assert 0 < doc["sampledValue"] < 1 and 0 < doc["posteriorMean"] < 1 and doc["policy"]
        assert doc["expireAt"] == NOW + timedelta(days=180)


def test_recommend_arguments(services) -> None:
    assert (
        len(suggestions.recommend_coping(services.suggestions, CONFIG, "bob", None)["recommendations"]) == 3
    )
    out = suggestions.recommend_coping(
        services.suggestions, CONFIG, "bob", {"stressLevel": "high", "language": "en-US"}
    )
    assert out["context"] == {"stressLevel": "high", "timeOfDay": "night"}  # 00:00 in New York
    assert out["recommendations"][0]["language"] == "en"
    for bad in (
        {"count": 0},
        {"count": 9},
        {"count": "2"},
        {"count": 1.5},
        {"stressLevel": "huge"},
        {"language": 3},
    ):
        with pytest.raises(RequestError) as err:
            suggestions.recommend_coping(services.suggestions, CONFIG, "bob", bad)
        assert err.value.code == "invalid-argument"


def test_recent_reading_sets_the_stress_context(services, store, clock) -> None:
    store.docs["chats/c1/messages/m1"] = {
        "senderId": "alice",
        "status": "ready",
        "createdAt": NOW - timedelta(minutes=30),
        "stress": {"score": 81.0, "level": "high"},
    }
    trend_service.record_message_change(
        services.trends, TRENDS, "c1", "m1", None, store.docs["chats/c1/messages/m1"]
    )
    assert (
        suggestions.recommend_coping(services.suggestions, CONFIG, "alice", {})["context"]["stressLevel"]
        == "high"
    )
    clock[0] = NOW + timedelta(hours=4)  # too old to describe how the user feels now
    assert (
        suggestions.recommend_coping(services.suggestions, CONFIG, "alice", {})["context"]["stressLevel"]
        == "unknown"
    )


def test_alert_suggestion_is_recorded_with_its_context(services, store) -> None:
    sent = datetime(2025, 11, 20, 13, 0, tzinfo=UTC)  # 22:00 in Seoul
    pick = suggestions.recommend_for_alert(
        services.suggestions,
        CONFIG,
        "alice",
        AlertContext("high", at=sent, message_path="chats/c1/messages/m9"),
    )
    assert pick is not None and pick.language == "ko" and pick.title and pick.text
    field = pick.as_field()
    assert set(field) == {"recommendationId", "suggestionId", "kind", "title", "text", "language"}
    doc = records(store, "alice")[pick.recommendation_id]
    assert doc["source"] == "alert" and doc["messagePath"] == "chats/c1/messages/m9"
    assert doc["context"] == {"stressLevel": "high", "timeOfDay": "evening"}
    # The app rates it like any other suggestion.
    out = suggestions.rate_suggestion(
        services.suggestions, CONFIG, "alice", {"recommendationId": pick.recommendation_id, "helpful": True}
    )
    assert out["recorded"] is True


# ── Feedback ─────────────────────────────────────────────────────────────────────────────────────


def test_feedback_updates_the_model_once_per_showing(services, store) -> None:
    rec = suggestions.recommend_coping(
        services.suggestions, CONFIG, "alice", {"count": 1, "stressLevel": "high"}
    )
    rec_id, sid = rec["recommendations"][0]["recommendationId"], rec["recommendations"][0]["suggestionId"]
    out = suggestions.rate_suggestion(
        services.suggestions, CONFIG, "alice", {"recommendationId": rec_id, "helpful": True}
    )
    assert out == {"recommendationId": rec_id, "suggestionId": sid, "helpful": True, "recorded": True}
    model = services.suggestions.store.model("alice")
    assert model.feedback_count == 1 and model.arms[sid].by_context["high|afternoon"] == Counts(1, 0)
    assert services.suggestions.store.population()[sid] == Counts(1, 0)
    assert records(store, "alice")[rec_id]["feedback"] == {"helpful": True, "ratedAt": NOW}
    # A retried call changes nothing; rating the other way is refused.
    again = suggestions.rate_suggestion(
        services.suggestions, CONFIG, "alice", {"recommendationId": rec_id, "helpful": True}
    )
    assert again["recorded"] is False and services.suggestions.store.model("alice").feedback_count == 1
    with pytest.raises(RequestError) as err:
        suggestions.rate_suggestion(
            services.suggestions, CONFIG, "alice", {"recommendationId": rec_id, "helpful": False}
        )
    assert err.value.code == "already-exists" and services.suggestions.store.population()[sid] == Counts(1, 0)


def test_feedback_for_an_unshown_suggestion_is_refused(services, store) -> None:
    with pytest.raises(RequestError) as err:
        suggestions.rate_suggestion(
            services.suggestions, CONFIG, "alice", {"recommendationId": "made-up", "helpful": True}
        )
    assert err.value.code == "not-found"
    # Bob's recommendation id is not Alice's to rate.
    bobs = suggestions.recommend_coping(services.suggestions, CONFIG, "bob", {"count": 1})["recommendations"][
        0
    ]
    with pytest.raises(RequestError) as err:
        suggestions.rate_suggestion(
            services.suggestions,
            CONFIG,
            "alice",
            {"recommendationId": bobs["recommendationId"], "helpful": True},
        )
    assert err.value.code == "not-found"
    # A shown recommendation cannot be used to rate a different suggestion.
    mine = suggestions.recommend_coping(services.suggestions, CONFIG, "alice", {"count": 1})[
        "recommendations"
    ][0]
    other = next(
        s.id
        for s in suggestions.current_catalog(services.suggestions, CONFIG).suggestions
        if s.id != mine["suggestionId"]
    )
    with pytest.raises(RequestError) as err:
        suggestions.rate_suggestion(
            services.suggestions,
            CONFIG,
            "alice",
            {"recommendationId": mine["recommendationId"], "suggestionId": other, "helpful": True},
        )
    assert err.value.code == "invalid-argument"
    assert (
        services.suggestions.store.model("alice").feedback_count == 0
        and services.suggestions.store.model("bob").feedback_count == 0
    )
    assert services.suggestions.store.population() == {}


@pytest.mark.parametrize(
    "data",
    [
        None,
        {},
        {"recommendationId": "x"},
        {"recommendationId": "x", "helpful": "yes"},
        {"recommendationId": "a/b", "helpful": True},
        {"recommendationId": "..", "helpful": True},
        {"recommendationId": "", "helpful": True},
        {"recommendationId": "x" * 200, "helpful": True},
        {"recommendationId": 5, "helpful": True},
    ],
)
def test_feedback_arguments(services, data) -> None:
    with pytest.raises(RequestError) as err:
        suggestions.rate_suggestion(services.suggestions, CONFIG, "alice", data)
    assert err.value.code == "invalid-argument"


def test_service_learns_a_users_preference_through_feedback(services, store) -> None:
    """Through the callables' service functions: the preferred suggestion rises to the top."""
    user = random.Random(2)
    rates = {s.id: 0.2 for s in suggestions.current_catalog(services.suggestions, CONFIG).suggestions} | {
        "calm-music": 0.9
    }
    tops = []
    for _ in range(150):
        rec = suggestions.recommend_coping(
            services.suggestions, CONFIG, "alice", {"count": 1, "stressLevel": "moderate"}
        )
        first = rec["recommendations"][0]
        tops.append(first["suggestionId"])
        helpful = user.random() < rates[first["suggestionId"]]
        suggestions.rate_suggestion(
            services.suggestions,
            CONFIG,
            "alice",
            {"recommendationId": first["recommendationId"], "helpful": helpful},
        )
    assert tops[:30].count("calm-music") < tops[-30:].count("calm-music")
    assert tops[-30:].count("calm-music") >= 20


# ── Trends ───────────────────────────────────────────────────────────────────────────────────────


def _msg(sender: str, at: datetime, score: float | None, status: str = "ready") -> dict[str, Any]:
    level = None if score is None else ("high" if score >= 60 else "moderate" if score >= 30 else "low")
    return {
        "kind": "voice",
        "senderId": sender,
        "status": status,
        "createdAt": at,
        "stress": None if score is None else {"score": score, "level": level},
    }


def write(services, store, chat: str, mid: str, new: dict | None, deliveries: int = 1) -> None:
    """Write a message as the pipeline would, then deliver the trigger's event (maybe twice)."""
    path = f"chats/{chat}/messages/{mid}"
    before = copy.deepcopy(store.docs.get(path))
    if new is None:
        store.docs.pop(path, None)
    else:
        store.docs[path] = new
    for _ in range(deliveries):
        trend_service.record_message_change(services.trends, TRENDS, chat, mid, before, copy.deepcopy(new))


def test_aggregates_follow_messages_and_match_recomputation(services, store) -> None:
    rng = random.Random(8)
    for i in range(120):
        chat, mid = f"c{rng.randrange(2)}", f"m{rng.randrange(40)}"
        sender = rng.choice(["alice", "bob"])
        existing = store.docs.get(f"chats/{chat}/messages/{mid}")
        at = existing["createdAt"] if existing else NOW - timedelta(hours=rng.randrange(24 * 5))
        sender = existing["senderId"] if existing else sender
        roll = rng.random()
        if roll < 0.1:
            write(services, store, chat, mid, None)
        elif roll < 0.25:
            write(services, store, chat, mid, _msg(sender, at, None, "processing"))
        else:
            write(services, store, chat, mid, _msg(sender, at, round(rng.uniform(0, 100), 1)), 1 + i % 2)
    for uid in ("alice", "bob"):
        stored, truth = trend_service.recompute_trends(services.trends, TRENDS, uid)
        assert truth and set(stored) == set(truth)
        assert set(
            services.trends.store.day_docs(uid, trend_model.day_range(NOW.date() + timedelta(days=1), 10))
        ) == set(truth)
        for day in truth:
            for k in ("count", "mean", "max", "min", "high", "levels"):
                assert stored[day][k] == truth[day][k], (uid, day, k)


def test_a_stale_event_cannot_roll_back_the_aggregate(services, store) -> None:
    at = NOW - timedelta(hours=1)
    first, second = _msg("alice", at, 40.0), _msg("alice", at, 90.0)
    store.docs["chats/c1/messages/m1"] = second  # the message has already been re-scored
    trend_service.record_message_change(services.trends, TRENDS, "c1", "m1", None, first)  # old event, late
    day = services.trends.store.day_docs("alice", ["2025-11-20"])["2025-11-20"]
    assert day["count"] == 1 and day["max"] == 90.0 and day["high"] == 1


def test_irrelevant_writes_do_no_io(services, store) -> None:
    calls = []
    services.trends.store.message = lambda *a: calls.append(a)  # type: ignore[method-assign]
    assert (
        trend_service.record_message_change(
            services.trends, TRENDS, "c", "m", None, _msg("alice", NOW, None, "processing")
        )
        == []
    )
    assert calls == []


def test_trend_series_for_the_chart(services, store) -> None:
    write(services, store, "c1", "m1", _msg("alice", NOW - timedelta(days=2), 70.0))
    write(services, store, "c1", "m2", _msg("alice", NOW - timedelta(days=2), 20.0))
    write(services, store, "c1", "m3", _msg("alice", NOW, 35.0))
    out = trend_service.stress_trends(services.trends, TRENDS, "alice", {"days": 4})
    assert out["timeZone"] == "Asia/Seoul" and (out["from"], out["to"]) == ("2025-11-17", "2025-11-20")
    assert out["days"] == [
        {"date": "2025-11-17", "count": 0, "mean": None, "max": None, "high": 0},
        {"date": "2025-11-18", "count": 2, "mean": 45.0, "max": 70.0, "high": 1},
        {"date": "2025-11-19", "count": 0, "mean": None, "max": None, "high": 0},
        {"date": "2025-11-20", "count": 1, "mean": 35.0, "max": 35.0, "high": 0},
    ]
    assert len(trend_service.stress_trends(services.trends, TRENDS, "alice", None)["days"]) == 14
    for bad in ({"days": 0}, {"days": 91}, {"days": "7"}):
        with pytest.raises(RequestError):
            trend_service.stress_trends(services.trends, TRENDS, "alice", bad)


def test_rebuild_repairs_aggregates(services, store) -> None:
    store.docs["chats/c1/messages/m1"] = _msg("alice", NOW, 66.0)  # written while the trigger was down
    store.docs["users/alice/stressDaily/2025-01-01"] = {"count": 5}  # junk
    assert trend_service.rebuild_trends(services.trends, TRENDS, "alice") == 1
    stored, truth = trend_service.recompute_trends(services.trends, TRENDS, "alice")
    assert stored["2025-11-20"]["count"] == truth["2025-11-20"]["count"] == 1
    assert "users/alice/stressDaily/2025-01-01" not in store.docs


# ── Deletion ─────────────────────────────────────────────────────────────────────────────────────


def _populate(services, store, uid: str) -> None:
    store.docs[f"users/{uid}/devices/d1"] = {"token": "t", "platform": "ios"}
    store.docs[f"users/{uid}/notifications/n1"] = {"kind": "high_stress"}
    rec = suggestions.recommend_coping(services.suggestions, CONFIG, uid, {"count": 2})["recommendations"][0]
    suggestions.rate_suggestion(
        services.suggestions, CONFIG, uid, {"recommendationId": rec["recommendationId"], "helpful": True}
    )
    write(services, store, f"chat-{uid}", "m1", _msg(uid, NOW, 75.0))


def test_deletion_leaves_nothing_behind(services, store) -> None:
    for uid in ("alice", "bob"):
        _populate(services, store, uid)
    kinds = {p.split("/")[2] for p in store.docs if p.startswith("users/alice/")}
    assert kinds == {"devices", "notifications", "recommendations", "wellbeing", "stressDaily", "stressIndex"}
    bob_before = {p: d for p, d in store.docs.items() if p.startswith("users/bob")}
    with pytest.raises(RequestError):
        account_service.delete_my_data(services.accounts, "alice", {})
    out = account_service.delete_my_data(services.accounts, "alice", {"confirm": True})
    assert out["deleted"] >= 7
    assert not [p for p in store.docs if p == "users/alice" or p.startswith("users/alice/")]
    assert {p: d for p, d in store.docs.items() if p.startswith("users/bob")} == bob_before
    assert "chats/chat-alice/messages/m1" not in store.docs  # the account's messages go too


def test_purge_deleted_users(services, store) -> None:
    for uid in ("alice", "bob"):
        _populate(services, store, uid)
    existing = {"alice", "bob"} | {f"{i:04d}-user" for i in range(600)}
    for uid in existing:
        store.docs.setdefault(f"users/{uid}", {"displayName": uid})
    ghosts = {f"{4 * i:04d}-ghost" for i in range(150)}  # accounts gone, data left (interleaved ids)
    for uid in ghosts:
        store.docs[f"users/{uid}/devices/d"] = {"token": "t"}
    services.accounts.accounts = FakeAccounts(set(existing))
    found = account_service.purge_deleted_users(services.accounts, apply=False)
    assert set(found) == ghosts
    assert all(len(c) <= 100 for c in services.accounts.accounts.calls)
    assert set(services.accounts.store.user_ids()) == existing | ghosts  # a dry run
    assert len(account_service.purge_deleted_users(services.accounts, limit=20)) == 20
    account_service.purge_deleted_users(services.accounts)
    assert set(services.accounts.store.user_ids()) == existing


def test_purge_refuses_when_most_accounts_look_gone(services, store) -> None:
    for i in range(30):
        store.docs[f"users/u{i}"] = {"displayName": "x"}
    services.accounts.accounts = FakeAccounts(set())  # e.g. pointed at the wrong project
    with pytest.raises(RuntimeError, match="refusing"):
        account_service.purge_deleted_users(services.accounts)
    assert len(set(services.accounts.store.user_ids())) == 32  # alice and bob too


# ── Ops CLI ──────────────────────────────────────────────────────────────────────────────────────


def test_ops_cli_renders_a_trend_and_verifies_it(services, store, monkeypatch, tmp_path) -> None:
    from typer.testing import CliRunner

    from tools import ops

    write(services, store, "c1", "m1", _msg("alice", NOW - timedelta(days=1), 72.0))
    write(services, store, "c1", "m2", _msg("alice", NOW, 25.0))
    monkeypatch.setattr(ops, "open_services", lambda project, with_accounts=False: services)
    png = tmp_path / "out" / "alice.png"
    result = CliRunner().invoke(ops.app, ["trend", "alice", "--days", "400", "--out", str(png)])
    assert result.exit_code != 0  # at most a year
    result = CliRunner().invoke(ops.app, ["trend", "alice", "--days", "10", "--out", str(png)])
    assert result.exit_code == 0, result.output
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and "Stress trend of alice" in result.output
    empty = CliRunner().invoke(ops.app, ["trend", "nobody", "--out", str(tmp_path / "empty.png")])
    assert empty.exit_code == 0, empty.output
    assert CliRunner().invoke(ops.app, ["verify-trends", "alice"]).exit_code == 0
    store.docs["users/alice/stressDaily/2025-11-20"]["count"] = 99  # corrupt it
    assert CliRunner().invoke(ops.app, ["verify-trends", "alice"]).exit_code == 1
    assert CliRunner().invoke(ops.app, ["rebuild-trends", "alice"]).exit_code == 0
    assert CliRunner().invoke(ops.app, ["verify-trends", "alice"]).exit_code == 0
    recs = CliRunner().invoke(ops.app, ["recs", "alice"])
    assert recs.exit_code == 0, recs.output


def test_ops_cli_deletion_paths(services, store, monkeypatch) -> None:
    from typer.testing import CliRunner

    from tools import ops

    _populate(services, store, "alice")
    store.docs["users/ghost/devices/d"] = {"token": "t"}
    services.accounts.accounts = FakeAccounts({"alice", "bob"})
    monkeypatch.setattr(ops, "open_services", lambda project, with_accounts=False: services)
    listed = CliRunner().invoke(ops.app, ["purge-deleted"])
    assert listed.exit_code == 0 and "would purge 1 user(s): ghost" in listed.output
    assert "users/ghost/devices/d" in store.docs
    assert CliRunner().invoke(ops.app, ["purge-deleted", "--apply"]).exit_code == 0
    assert "users/ghost/devices/d" not in store.docs
    refused = CliRunner().invoke(ops.app, ["delete-user", "alice"], input="n\n")
    assert refused.exit_code != 0 and "users/alice" in store.docs
    assert CliRunner().invoke(ops.app, ["delete-user", "alice", "--yes"]).exit_code == 0
    assert not [p for p in store.docs if p.startswith("users/alice")]


# ── One language rule ────────────────────────────────────────────────────────────────────────────


def test_a_user_without_a_language_gets_english_suggestions_as_alerts_do(services, store) -> None:
    """profile.user_language serves alerts and suggestions alike: no language set means English
    (the suggestions used to fall back to Korean while the alerts fell back to English)."""
    assert "language" not in store.docs["users/bob"]
    recs = suggestions.recommend_coping(services.suggestions, CONFIG, "bob", {"count": 2})["recommendations"]
    assert [r["language"] for r in recs] == ["en", "en"]
    assert user_language(store.docs["users/bob"].get("language")) == "en"
    store.docs["users/bob"]["language"] = "fr-FR"  # unsupported: English too
    recs = suggestions.recommend_coping(services.suggestions, CONFIG, "bob", {"count": 1})["recommendations"]
    assert recs[0]["language"] == "en"


# ── Time zones (issue 11 item 7) ─────────────────────────────────────────────────────────────────


@pytest.mark.parametrize(
    "zone", ["America", "x" * 300, "../../etc/passwd", "Asia/", "", 42, None, "Not/AZone", "asia/seoul"]
)
def test_an_odd_time_zone_falls_back_to_the_default(services, store, zone) -> None:
    store.docs["users/alice"]["timeZone"] = zone
    write(services, store, "c1", "m1", _msg("alice", NOW, 70.0))  # the trend trigger
    out = trend_service.stress_trends(services.trends, TRENDS, "alice", {"days": 1})
    assert out["timeZone"] == TRENDS.default_time_zone
    assert out["days"] == [{"date": "2025-11-20", "count": 1, "mean": 70.0, "max": 70.0, "high": 1}]
    shown = suggestions.recommend_coping(services.suggestions, CONFIG, "alice", {"count": 1})
    assert shown["recommendations"]


# ── Deletion leaves nothing (issue 10 item 4) ────────────────────────────────────────────────────


def _shared_world(services, store) -> InMemoryVoiceObjects:
    """Alice and Bob share a chat; Alice sent voice messages, was alerted about, is invited elsewhere."""
    objects = InMemoryVoiceObjects()
    for uid in ("alice", "bob"):
        _populate(services, store, uid)
        store.docs[f"users/{uid}/usage/2025-11-20"] = {"messages": 2, "audioSeconds": 9.5}
        store.docs[f"users/{uid}/stats/baseline"] = {"count": 1, "mean": 75.0, "m2": 0.0}
    store.docs["chats/shared"] = {"members": ["alice", "bob"], "createdAt": NOW}
    store.docs["chats/bobs"] = {"members": ["bob"], "invited": ["alice", "carol"], "createdAt": NOW}
    store.docs["chats/alone"] = {"members": ["alice"], "invited": ["bob"], "createdAt": NOW}
    for chat, mid, sender in (("shared", "a1", "alice"), ("shared", "b1", "bob"), ("alone", "a2", "alice")):
        msg = {**_msg(sender, NOW, 80.0), "text": f"words of {sender}", "language": "en"}
        msg["audio"] = {"path": f"voice/{sender}/{chat}/{mid}.m4a", "contentType": "audio/mp4"}
        write(services, store, chat, mid, msg)
        objects.objects[f"voice/{sender}/{chat}/{mid}.m4a"] = b"audio"
        store.docs[f"chats/{chat}/alertMarkers/{mid}"] = {"senderId": sender, "state": "done"}
        for member in ("alice", "bob"):
            store.docs[f"users/{member}/notifications/{chat}-{mid}"] = {
                "senderId": sender,
                "title": f"{sender.title()} sounds stressed",
                "score": 80.0,
            }
    return objects


def test_deleting_an_account_leaves_nothing_of_it_anywhere(services, store) -> None:
    objects = _shared_world(services, store)
    services.accounts.voice = objects
    bob_before = {p: d for p, d in store.docs.items() if p.startswith("users/bob/stressDaily")}

    account_service.delete_my_data(services.accounts, "alice", {"confirm": True})

    left = {p: d for p, d in store.docs.items() if mentions(p, "alice") or mentions(d, "alice")}
    assert set(left) <= {"deletedUsers/alice"}, sorted(left)  # the tombstone, with no content
    assert store.docs["deletedUsers/alice"].keys() <= {"deletedAt", "expireAt"}
    assert not [name for name in objects.objects if "alice" in name]
    assert "chats/alone" not in store.docs and not store.under("chats/alone/messages")
    assert store.docs["chats/shared"]["members"] == ["bob"]
    assert store.docs["chats/bobs"]["invited"] == ["carol"]
    # Bob's own message, its audio, its marker and his trends stay.
    assert store.docs["chats/shared/messages/b1"]["text"] == "words of bob"
    assert "voice/bob/shared/b1.m4a" in objects.objects and "chats/shared/alertMarkers/b1" in store.docs
    assert {p: d for p, d in store.docs.items() if p.startswith("users/bob/stressDaily")} == bob_before


def test_purge_deletes_a_gone_account_as_completely(services, store) -> None:
    objects = _shared_world(services, store)
    services.accounts.voice = objects
    services.accounts.accounts = FakeAccounts({"bob"})
    assert account_service.purge_deleted_users(services.accounts) == ["alice"]
    assert set(p for p, d in store.docs.items() if mentions(p, "alice") or mentions(d, "alice")) <= {
        "deletedUsers/alice"
    }
    assert not [name for name in objects.objects if "alice" in name]


def test_a_trigger_in_flight_after_deletion_recreates_nothing(services, store) -> None:
    objects = _shared_world(services, store)
    services.accounts.voice = objects
    message = copy.deepcopy(store.docs["chats/shared/messages/a1"])
    account_service.delete_my_data(services.accounts, "alice", {"confirm": True})
    # The pipeline's late write of the message, and the trends trigger for it:
    store.docs["chats/shared/messages/a1"] = message
    trend_service.record_message_change(services.trends, TRENDS, "shared", "a1", None, message)
    del store.docs["chats/shared/messages/a1"]
    trend_service.record_message_change(services.trends, TRENDS, "shared", "a1", message, None)
    # A callable racing the deletion:
    with pytest.raises(RequestError):
        suggestions.recommend_coping(services.suggestions, CONFIG, "alice", {"count": 1})
    assert not [p for p in store.docs if p.startswith("users/alice")]


# ── One account cannot poison the population prior (issue 10 item 6) ────────────────────────────


def test_one_user_rating_many_times_cannot_move_the_prior_beyond_the_cap(services, store) -> None:
    cap = CONFIG.params.max_population_ratings_per_user
    for _ in range(40):
        shown = suggestions.recommend_coping(services.suggestions, CONFIG, "alice", {"count": 5})
        for rec in shown["recommendations"]:
            suggestions.rate_suggestion(
                services.suggestions,
                CONFIG,
                "alice",
                {"recommendationId": rec["recommendationId"], "helpful": True},
            )
    stats = {p.rsplit("/", 1)[1]: Counts.from_field(d) for p, d in store.under("suggestionStats").items()}
    rated = InMemorySuggestionStore(store).model("alice").arms
    assert max(arm.overall.total for arm in rated.values()) > cap  # she did rate some many times
    assert stats and all(counts.total <= cap + 1e-9 for counts in stats.values()), stats
    # Bob's ratings still count in full up to the cap, and a mixed record keeps its helpful share.
    for helpful in (False, True, False, False):
        rec = suggestions.recommend_coping(services.suggestions, CONFIG, "bob", {"count": 1})[
            "recommendations"
        ][0]
        suggestions.rate_suggestion(
            services.suggestions,
            CONFIG,
            "bob",
            {"recommendationId": rec["recommendationId"], "helpful": helpful},
        )
    after = {p.rsplit("/", 1)[1]: Counts.from_field(d) for p, d in store.under("suggestionStats").items()}
    assert sum(c.total for c in after.values()) == pytest.approx(sum(c.total for c in stats.values()) + 4)


def test_a_reading_is_taken_out_of_the_day_it_was_stored_on_after_a_time_zone_change(services, store) -> None:
    """Issue 11 item 7: 23:30 in Seoul is the 20th; in New York the 20th's morning, but 01:30 Seoul
    on the 21st is the 20th in New York. Moving to New York must not strand the stored reading."""
    at = datetime(2025, 11, 20, 16, 30, tzinfo=UTC)  # 01:30 on the 21st in Seoul, 11:30 the 20th in NY
    ready = _msg("alice", at, 70.0)
    write(services, store, "c1", "m1", ready)
    assert "users/alice/stressDaily/2025-11-21" in store.docs
    store.docs["users/alice"]["timeZone"] = "America/New_York"
    write(services, store, "c1", "m1", {**ready, "status": "failed"})  # no longer ready: out it goes
    assert not store.under("users/alice/stressDaily")
    write(services, store, "c1", "m1", ready)  # ready again: now on the New York day
    assert list(store.under("users/alice/stressDaily")) == ["users/alice/stressDaily/2025-11-20"]
