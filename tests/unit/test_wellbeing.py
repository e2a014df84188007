"""Wellbeing services with an in-memory store: recommendations, feedback, trends, deletion."""

from __future__ import annotations

import copy
import itertools
import random
import threading
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from emochat.suggestions import bandit as recommend
from emochat.suggestions import service as wellbeing
from emochat.suggestions.bandit import Catalog, Counts, UserModel, Verdict
from emochat.suggestions.service import (
    AlertContext,
    RatingOutcome,
    RequestError,
    WellbeingConfig,
    WellbeingServices,
)
from emochat.trends import model as trends
from emochat.trends.model import TrendChange

NOW = datetime(2025, 11, 20, 5, 0, tzinfo=UTC)  # 14:00 in Seoul: afternoon


class InMemoryWellbeingStore:
    """The Firestore adapter's behaviour over a dict of document paths, decided by the same pure code."""

    def __init__(self) -> None:
        self.docs: dict[str, dict[str, Any]] = {}
        self._ids = itertools.count(1)
        self._lock = threading.Lock()

    def _under(self, prefix: str) -> dict[str, dict[str, Any]]:
        return {
            p: d
            for p, d in self.docs.items()
            if p.startswith(prefix + "/") and "/" not in p[len(prefix) + 1 :]
        }

    def seed_catalog(self, catalog: Catalog, source: Mapping[str, Any]) -> int:
        base = f"catalog/{catalog.version}"
        for path in self._under(f"{base}/suggestions"):
            self.docs[path]["active"] = False
        for s in catalog.suggestions:
            self.docs[f"{base}/suggestions/{s.id}"] = s.as_doc(catalog.version)
        self.docs[base] = {
            "version": catalog.version,
            "count": len(catalog.suggestions),
            "source": dict(source),
        }
        return len(catalog.suggestions)

    def catalog(self, version: str) -> Catalog | None:
        docs = {p.rsplit("/", 1)[1]: d for p, d in self._under(f"catalog/{version}/suggestions").items()}
        return recommend.catalog_from_docs(version, docs) if docs else None

    def population(self) -> dict[str, Counts]:
        return {p.rsplit("/", 1)[1]: Counts.from_field(d) for p, d in self._under("suggestionStats").items()}

    def profile(self, uid: str) -> dict[str, Any]:
        return copy.deepcopy(self.docs.get(f"users/{uid}", {}))

    def model(self, uid: str) -> UserModel:
        return UserModel.from_doc(self.docs.get(f"users/{uid}/wellbeing/model"))

    def save_recommendations(self, uid: str, records: list[dict[str, Any]]) -> list[str]:
        ids = []
        for record in records:
            rec_id = f"rec{next(self._ids)}"
            self.docs[f"users/{uid}/recommendations/{rec_id}"] = copy.deepcopy(record)
            ids.append(rec_id)
        return ids

    def rate(
        self, uid: str, recommendation_id: str, helpful: bool, suggestion_id: str | None, now: datetime
    ) -> RatingOutcome:
        with self._lock:
            record = self.docs.get(f"users/{uid}/recommendations/{recommendation_id}")
            verdict = recommend.judge_rating(record, helpful, suggestion_id)
            if verdict is not Verdict.RECORD:
                return RatingOutcome(verdict, record.get("suggestionId") if record else None)
            model, sid, _ = recommend.feedback_update(record, self.model(uid), helpful)
            self.docs[f"users/{uid}/wellbeing/model"] = model.to_doc()
            record["feedback"] = {"helpful": helpful, "ratedAt": now}
            stats = self.docs.setdefault(f"suggestionStats/{sid}", {"helpful": 0, "notHelpful": 0})
            stats["helpful" if helpful else "notHelpful"] += 1
            return RatingOutcome(verdict, sid)

    def recommendations(self, uid: str, limit: int) -> list[tuple[str, dict[str, Any]]]:
        recs = [(p.rsplit("/", 1)[1], d) for p, d in self._under(f"users/{uid}/recommendations").items()]
        return sorted(recs, key=lambda r: r[1]["shownAt"], reverse=True)[:limit]

    def message(self, chat_id: str, message_id: str) -> dict[str, Any] | None:
        return copy.deepcopy(self.docs.get(f"chats/{chat_id}/messages/{message_id}"))

    def apply_reading(self, change: TrendChange, time_zone: str) -> bool:
        with self._lock:
            path = f"users/{change.user_id}/stressDaily/{change.day}"
            update = trends.with_reading(
                self.docs.get(path), change.day, time_zone, change.key, change.reading
            )
            if update.changed:
                if update.doc is None:
                    self.docs.pop(path, None)
                else:
                    self.docs[path] = update.doc
            return update.changed

    def day_docs(self, uid: str, days: Iterable[str]) -> dict[str, dict[str, Any]]:
        paths = {day: f"users/{uid}/stressDaily/{day}" for day in days}
        return {day: copy.deepcopy(self.docs[p]) for day, p in paths.items() if p in self.docs}

    def sent_messages(self, uid: str) -> Iterator[tuple[str, dict[str, Any]]]:
        for path, doc in list(self.docs.items()):
            parts = path.split("/")
            if (
                len(parts) == 4
                and parts[0] == "chats"
                and parts[2] == "messages"
                and doc.get("senderId") == uid
            ):
                yield f"{parts[1]}/{parts[3]}", copy.deepcopy(doc)

    def replace_days(self, uid: str, docs: Mapping[str, dict[str, Any] | None]) -> None:
        for path in self._under(f"users/{uid}/stressDaily"):
            del self.docs[path]
        for day, doc in docs.items():
            if doc is not None:
                self.docs[f"users/{uid}/stressDaily/{day}"] = doc

    def delete_user(self, uid: str) -> int:
        gone = [p for p in self.docs if p == f"users/{uid}" or p.startswith(f"users/{uid}/")]
        for path in gone:
            del self.docs[path]
        return len(gone)

    def user_ids(self) -> Iterator[str]:
        yield from sorted({p.split("/")[1] for p in self.docs if p.startswith("users/")})


class FakeAccounts:
    def __init__(self, existing: set[str]) -> None:
        self.existing = existing
        self.calls: list[list[str]] = []

    def missing(self, uids: list[str]) -> set[str]:
        assert len(uids) <= 100
        self.calls.append(uids)
        return {u for u in uids if u not in self.existing}

    def delete_account(self, uid: str) -> bool:
        present = uid in self.existing
        self.existing.discard(uid)
        return present


@pytest.fixture
def store() -> InMemoryWellbeingStore:
    store = InMemoryWellbeingStore()
    wellbeing.seed_catalog(store)
    store.docs["users/alice"] = {"displayName": "Alice", "timeZone": "Asia/Seoul", "language": "ko"}
    store.docs["users/bob"] = {"displayName": "Bob", "timeZone": "America/New_York"}
    return store


@pytest.fixture
def clock() -> list[datetime]:
    return [NOW]


@pytest.fixture
def services(store, clock) -> WellbeingServices:
    return WellbeingServices(store=store, rng=random.Random(1), clock=lambda: clock[0])


CONFIG = WellbeingConfig(cache_ttl_s=0)


def records(store: InMemoryWellbeingStore, uid: str) -> dict[str, dict[str, Any]]:
    return {p.rsplit("/", 1)[1]: d for p, d in store._under(f"users/{uid}/recommendations").items()}


# ── Catalog ──────────────────────────────────────────────────────────────────────────────────────


def test_seeding_is_idempotent_and_retires_dropped_suggestions(store) -> None:
    base = len(store.docs)
    wellbeing.seed_catalog(store)
    assert len(store.docs) == base
    store.docs["catalog/v1/suggestions/retired-one"] = {
        **store.docs["catalog/v1/suggestions/box-breathing"],
        "id": "retired-one",
    }
    wellbeing.seed_catalog(store)
    assert store.docs["catalog/v1/suggestions/retired-one"]["active"] is False
    assert store.docs["catalog/v1"]["source"]["sha256"]


def test_unseeded_catalog_falls_back_to_the_bundled_file(clock) -> None:
    services = WellbeingServices(store=InMemoryWellbeingStore(), rng=random.Random(0), clock=lambda: clock[0])
    out = wellbeing.recommend_coping(services, CONFIG, "alice", {"count": 2})
    assert len(out["recommendations"]) == 2 and out["catalogVersion"] == "v1"
    with pytest.raises(RequestError) as err:
        wellbeing.recommend_coping(services, WellbeingConfig(catalog_version="v9", cache_ttl_s=0), "a", {})
    assert err.value.code == "failed-precondition"


def test_inactive_suggestions_are_never_shown(services, store) -> None:
    for path in store._under("catalog/v1/suggestions"):
        if not path.endswith(("/box-breathing", "/calm-music")):
            store.docs[path]["active"] = False
    shown = Counter()
    for _ in range(30):
        for rec in wellbeing.recommend_coping(services, CONFIG, "alice", {"count": 5})["recommendations"]:
            shown[rec["suggestionId"]] += 1
    assert set(shown) == {"box-breathing", "calm-music"}


# ── Recommendations ──────────────────────────────────────────────────────────────────────────────


def test_recommend_returns_and_records_top_suggestions(services, store) -> None:
    out = wellbeing.recommend_coping(services, CONFIG, "alice", {"count": 3})
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
    assert len(wellbeing.recommend_coping(services, CONFIG, "bob", None)["recommendations"]) == 3
    out = wellbeing.recommend_coping(services, CONFIG, "bob", {"stressLevel": "high", "language": "en-US"})
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
            wellbeing.recommend_coping(services, CONFIG, "bob", bad)
        assert err.value.code == "invalid-argument"


def test_recent_reading_sets_the_stress_context(services, store, clock) -> None:
    store.docs["chats/c1/messages/m1"] = {
        "senderId": "alice",
        "status": "ready",
        "createdAt": NOW - timedelta(minutes=30),
        "stress": {"score": 81.0, "level": "high"},
    }
    wellbeing.record_message_change(services, CONFIG, "c1", "m1", None, store.docs["chats/c1/messages/m1"])
    assert wellbeing.recommend_coping(services, CONFIG, "alice", {})["context"]["stressLevel"] == "high"
    clock[0] = NOW + timedelta(hours=4)  # too old to describe how the user feels now
    assert wellbeing.recommend_coping(services, CONFIG, "alice", {})["context"]["stressLevel"] == "unknown"


def test_alert_suggestion_is_recorded_with_its_context(services, store) -> None:
    sent = datetime(2025, 11, 20, 13, 0, tzinfo=UTC)  # 22:00 in Seoul
    pick = wellbeing.recommend_for_alert(
        services, CONFIG, "alice", AlertContext("high", at=sent, message_path="chats/c1/messages/m9")
    )
    assert pick is not None and pick.language == "ko" and pick.title and pick.text
    field = pick.as_field()
    assert set(field) == {"recommendationId", "suggestionId", "kind", "title", "text", "language"}
    doc = records(store, "alice")[pick.recommendation_id]
    assert doc["source"] == "alert" and doc["messagePath"] == "chats/c1/messages/m9"
    assert doc["context"] == {"stressLevel": "high", "timeOfDay": "evening"}
    # The app rates it like any other suggestion.
    out = wellbeing.rate_suggestion(
        services, CONFIG, "alice", {"recommendationId": pick.recommendation_id, "helpful": True}
    )
    assert out["recorded"] is True


# ── Feedback ─────────────────────────────────────────────────────────────────────────────────────


def test_feedback_updates_the_model_once_per_showing(services, store) -> None:
    rec = wellbeing.recommend_coping(services, CONFIG, "alice", {"count": 1, "stressLevel": "high"})
    rec_id, sid = rec["recommendations"][0]["recommendationId"], rec["recommendations"][0]["suggestionId"]
    out = wellbeing.rate_suggestion(services, CONFIG, "alice", {"recommendationId": rec_id, "helpful": True})
    assert out == {"recommendationId": rec_id, "suggestionId": sid, "helpful": True, "recorded": True}
    model = store.model("alice")
    assert model.feedback_count == 1 and model.arms[sid].by_context["high|afternoon"] == Counts(1, 0)
    assert store.population()[sid] == Counts(1, 0)
    assert records(store, "alice")[rec_id]["feedback"] == {"helpful": True, "ratedAt": NOW}
    # A retried call changes nothing; rating the other way is refused.
    again = wellbeing.rate_suggestion(
        services, CONFIG, "alice", {"recommendationId": rec_id, "helpful": True}
    )
    assert again["recorded"] is False and store.model("alice").feedback_count == 1
    with pytest.raises(RequestError) as err:
        wellbeing.rate_suggestion(services, CONFIG, "alice", {"recommendationId": rec_id, "helpful": False})
    assert err.value.code == "already-exists" and store.population()[sid] == Counts(1, 0)


def test_feedback_for_an_unshown_suggestion_is_refused(services, store) -> None:
    with pytest.raises(RequestError) as err:
        wellbeing.rate_suggestion(services, CONFIG, "alice", {"recommendationId": "made-up", "helpful": True})
    assert err.value.code == "not-found"
    # Bob's recommendation id is not Alice's to rate.
    bobs = wellbeing.recommend_coping(services, CONFIG, "bob", {"count": 1})["recommendations"][0]
    with pytest.raises(RequestError) as err:
        wellbeing.rate_suggestion(
            services, CONFIG, "alice", {"recommendationId": bobs["recommendationId"], "helpful": True}
        )
    assert err.value.code == "not-found"
    # A shown recommendation cannot be used to rate a different suggestion.
    mine = wellbeing.recommend_coping(services, CONFIG, "alice", {"count": 1})["recommendations"][0]
    other = next(
        s.id for s in wellbeing.current_catalog(services, CONFIG).suggestions if s.id != mine["suggestionId"]
    )
    with pytest.raises(RequestError) as err:
        wellbeing.rate_suggestion(
            services,
            CONFIG,
            "alice",
            {"recommendationId": mine["recommendationId"], "suggestionId": other, "helpful": True},
        )
    assert err.value.code == "invalid-argument"
    assert store.model("alice").feedback_count == 0 and store.model("bob").feedback_count == 0
    assert store.population() == {}


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
        wellbeing.rate_suggestion(services, CONFIG, "alice", data)
    assert err.value.code == "invalid-argument"


def test_service_learns_a_users_preference_through_feedback(services, store) -> None:
    """Through the callables' service functions: the preferred suggestion rises to the top."""
    user = random.Random(2)
    rates = {s.id: 0.2 for s in wellbeing.current_catalog(services, CONFIG).suggestions} | {"calm-music": 0.9}
    tops = []
    for _ in range(150):
        rec = wellbeing.recommend_coping(services, CONFIG, "alice", {"count": 1, "stressLevel": "moderate"})
        first = rec["recommendations"][0]
        tops.append(first["suggestionId"])
        helpful = user.random() < rates[first["suggestionId"]]
        wellbeing.rate_suggestion(
            services, CONFIG, "alice", {"recommendationId": first["recommendationId"], "helpful": helpful}
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
        wellbeing.record_message_change(services, CONFIG, chat, mid, before, copy.deepcopy(new))


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
        stored, truth = wellbeing.recompute_trends(services, CONFIG, uid)
        assert truth and set(stored) == set(truth)
        assert set(store.day_docs(uid, trends.day_range(NOW.date() + timedelta(days=1), 10))) == set(truth)
        for day in truth:
            for k in ("count", "mean", "max", "min", "high", "levels"):
                assert stored[day][k] == truth[day][k], (uid, day, k)


def test_a_stale_event_cannot_roll_back_the_aggregate(services, store) -> None:
    at = NOW - timedelta(hours=1)
    first, second = _msg("alice", at, 40.0), _msg("alice", at, 90.0)
    store.docs["chats/c1/messages/m1"] = second  # the message has already been re-scored
    wellbeing.record_message_change(services, CONFIG, "c1", "m1", None, first)  # old event, late
    day = store.day_docs("alice", ["2025-11-20"])["2025-11-20"]
    assert day["count"] == 1 and day["max"] == 90.0 and day["high"] == 1


def test_irrelevant_writes_do_no_io(services, store) -> None:
    calls = []
    store.message = lambda *a: calls.append(a)  # type: ignore[method-assign]
    assert (
        wellbeing.record_message_change(
            services, CONFIG, "c", "m", None, _msg("alice", NOW, None, "processing")
        )
        == []
    )
    assert calls == []


def test_trend_series_for_the_chart(services, store) -> None:
    write(services, store, "c1", "m1", _msg("alice", NOW - timedelta(days=2), 70.0))
    write(services, store, "c1", "m2", _msg("alice", NOW - timedelta(days=2), 20.0))
    write(services, store, "c1", "m3", _msg("alice", NOW, 35.0))
    out = wellbeing.stress_trends(services, CONFIG, "alice", {"days": 4})
    assert out["timeZone"] == "Asia/Seoul" and (out["from"], out["to"]) == ("2025-11-17", "2025-11-20")
    assert out["days"] == [
        {"date": "2025-11-17", "count": 0, "mean": None, "max": None, "high": 0},
        {"date": "2025-11-18", "count": 2, "mean": 45.0, "max": 70.0, "high": 1},
        {"date": "2025-11-19", "count": 0, "mean": None, "max": None, "high": 0},
        {"date": "2025-11-20", "count": 1, "mean": 35.0, "max": 35.0, "high": 0},
    ]
    assert len(wellbeing.stress_trends(services, CONFIG, "alice", None)["days"]) == 14
    for bad in ({"days": 0}, {"days": 91}, {"days": "7"}):
        with pytest.raises(RequestError):
            wellbeing.stress_trends(services, CONFIG, "alice", bad)


def test_rebuild_repairs_aggregates(services, store) -> None:
    store.docs["chats/c1/messages/m1"] = _msg("alice", NOW, 66.0)  # written while the trigger was down
    store.docs["users/alice/stressDaily/2025-01-01"] = {"count": 5}  # junk
    assert wellbeing.rebuild_trends(services, CONFIG, "alice") == 1
    stored, truth = wellbeing.recompute_trends(services, CONFIG, "alice")
    assert stored["2025-11-20"]["count"] == truth["2025-11-20"]["count"] == 1
    assert "users/alice/stressDaily/2025-01-01" not in store.docs


# ── Deletion ─────────────────────────────────────────────────────────────────────────────────────


def _populate(services, store, uid: str) -> None:
    store.docs[f"users/{uid}/devices/d1"] = {"token": "t", "platform": "ios"}
    store.docs[f"users/{uid}/notifications/n1"] = {"kind": "high_stress"}
    rec = wellbeing.recommend_coping(services, CONFIG, uid, {"count": 2})["recommendations"][0]
    wellbeing.rate_suggestion(
        services, CONFIG, uid, {"recommendationId": rec["recommendationId"], "helpful": True}
    )
    write(services, store, f"chat-{uid}", "m1", _msg(uid, NOW, 75.0))


def test_deletion_leaves_nothing_behind(services, store) -> None:
    for uid in ("alice", "bob"):
        _populate(services, store, uid)
    kinds = {p.split("/")[2] for p in store.docs if p.startswith("users/alice/")}
    assert kinds == {"devices", "notifications", "recommendations", "wellbeing", "stressDaily"}
    bob_before = {p: d for p, d in store.docs.items() if p.startswith("users/bob")}
    with pytest.raises(RequestError):
        wellbeing.delete_my_data(services, CONFIG, "alice", {})
    out = wellbeing.delete_my_data(services, CONFIG, "alice", {"confirm": True})
    assert out["deleted"] >= 7
    assert not [p for p in store.docs if p == "users/alice" or p.startswith("users/alice/")]
    assert {p: d for p, d in store.docs.items() if p.startswith("users/bob")} == bob_before
    assert "chats/chat-alice/messages/m1" in store.docs  # chat content is the chat's, not the profile's


def test_purge_deleted_users(services, store) -> None:
    for uid in ("alice", "bob"):
        _populate(services, store, uid)
    existing = {"alice", "bob"} | {f"{i:04d}-user" for i in range(600)}
    for uid in existing:
        store.docs.setdefault(f"users/{uid}", {"displayName": uid})
    ghosts = {f"{4 * i:04d}-ghost" for i in range(150)}  # accounts gone, data left (interleaved ids)
    for uid in ghosts:
        store.docs[f"users/{uid}/devices/d"] = {"token": "t"}
    services.accounts = FakeAccounts(set(existing))
    found = wellbeing.purge_deleted_users(services, apply=False)
    assert set(found) == ghosts
    assert all(len(c) <= 100 for c in services.accounts.calls)
    assert set(store.user_ids()) == existing | ghosts  # a dry run
    assert len(wellbeing.purge_deleted_users(services, limit=20)) == 20
    wellbeing.purge_deleted_users(services)
    assert set(store.user_ids()) == existing


def test_purge_refuses_when_most_accounts_look_gone(services, store) -> None:
    for i in range(30):
        store.docs[f"users/u{i}"] = {"displayName": "x"}
    services.accounts = FakeAccounts(set())  # e.g. pointed at the wrong project
    with pytest.raises(RuntimeError, match="refusing"):
        wellbeing.purge_deleted_users(services)
    assert len(set(store.user_ids())) == 32  # alice and bob too


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
    services.accounts = FakeAccounts({"alice", "bob"})
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
