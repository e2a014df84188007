"""The suggestion, trend and account stores against the Firestore (and Auth) emulators: transactions
decide for real.

Everything here uses its own uids, chat ids and catalog versions, so it runs beside the triggers of
the running stack and beside other tests.
"""

from __future__ import annotations

import json
import random
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest

from emochat.accounts.adapters.firebase_accounts import FirebaseAccounts
from emochat.accounts.adapters.firestore_store import FirestoreAccountStore
from emochat.suggestions.adapters.firestore_store import FirestoreSuggestionStore
from emochat.suggestions.bandit import Context, Counts, PolicyParams, Verdict
from emochat.suggestions.catalog import BUNDLED_CATALOG, parse_catalog
from emochat.suggestions.service import AlertContext
from emochat.trends import model as trends
from emochat.trends import service as trend_service
from emochat.trends.adapters.firestore_store import FirestoreTrendStore
from emochat.trends.model import Reading, TrendChange
from emochat.trends.service import TrendConfig, TrendServices

pytestmark = pytest.mark.stack

NOW = datetime.now(UTC).replace(microsecond=0)
TRENDS = TrendConfig()
PARAMS = PolicyParams()


@pytest.fixture
def store(db) -> FirestoreSuggestionStore:
    return FirestoreSuggestionStore(db)


@pytest.fixture
def trend_store(db) -> FirestoreTrendStore:
    return FirestoreTrendStore(db)


@pytest.fixture
def services(trend_store) -> TrendServices:
    return TrendServices(store=trend_store)


EVENING = Context("high", "evening")


def record(suggestion_id: str) -> dict:
    return {"suggestionId": suggestion_id, "shownAt": NOW, "context": EVENING.as_field(), "feedback": None}


def test_catalog_seeds_and_reads_back(store, unique) -> None:
    data = json.loads(BUNDLED_CATALOG.read_text()) | {"version": f"t{unique}"}
    catalog = parse_catalog(data)
    assert store.seed_catalog(catalog, {"file": "test"}) == len(catalog.suggestions)
    back = store.catalog(catalog.version)
    assert {s.id: s for s in back.suggestions} == {s.id: s for s in catalog.suggestions}
    smaller = parse_catalog(data | {"suggestions": data["suggestions"][1:]})
    store.seed_catalog(smaller, {"file": "test"})
    dropped = store.catalog(catalog.version).by_id(data["suggestions"][0]["id"])
    assert dropped is not None and dropped.active is False
    assert store.catalog(f"missing{unique}") is None


def test_rating_is_transactional_and_once(store, db, unique) -> None:
    uid = f"rater-{unique}"
    rec_id, other_id = store.save_recommendations(uid, [record("box-breathing"), record("calm-music")])
    before = store.population().get("box-breathing", Counts())
    with ThreadPoolExecutor(max_workers=4) as pool:
        outcomes = list(pool.map(lambda _: store.rate(uid, rec_id, True, None, NOW, PARAMS), range(4)))
    verdicts = sorted(o.verdict.value for o in outcomes)
    assert verdicts == ["duplicate"] * 3 + ["record"]
    model = store.model(uid)
    assert model.feedback_count == 1 and model.arms["box-breathing"].by_context["high|evening"] == Counts(
        1, 0
    )
    after = store.population()["box-breathing"]
    assert after.helpful - before.helpful >= 1  # other tests may rate it too, never fewer
    assert store.rate(uid, rec_id, False, None, NOW, PARAMS).verdict is Verdict.ALREADY_RATED
    assert store.rate(uid, "made-up", True, None, NOW, PARAMS).verdict is Verdict.NOT_SHOWN
    assert store.rate(f"other-{unique}", rec_id, True, None, NOW, PARAMS).verdict is Verdict.NOT_SHOWN
    assert store.rate(uid, other_id, True, "box-breathing", NOW, PARAMS).verdict is Verdict.MISMATCH
    doc = db.document(f"users/{uid}/recommendations/{rec_id}").get().to_dict()
    assert doc["feedback"]["helpful"] is True
    assert [r[0] for r in store.recommendations(uid, 10)] in ([rec_id, other_id], [other_id, rec_id])


def test_concurrent_readings_of_one_day_all_count(trend_store, db, unique) -> None:
    store = trend_store
    uid = f"trend-{unique}"
    db.document(f"users/{uid}").set({"timeZone": "UTC"})  # trends are kept for accounts only
    day = NOW.date().isoformat()
    readings = {f"c/m{i}": Reading(float(15 * i), "high" if i >= 4 else "low", NOW) for i in range(6)}
    changes = [TrendChange(uid, day, key, r) for key, r in readings.items()]
    # Two writers are enough to prove no update is lost; the emulator resolves each collision by
    # a lock timeout of seconds (production Firestore is far quicker), so more would only be slow.
    with ThreadPoolExecutor(max_workers=2) as pool:
        assert all(pool.map(lambda c: store.apply_reading(c, "UTC"), changes))
    assert not store.apply_reading(changes[0], "UTC")  # the same reading again: nothing to write
    doc = store.day_docs(uid, [day])[day]
    expected = trends.summarize(readings)
    assert {k: doc[k] for k in ("count", "mean", "max", "min", "high")} == {
        k: expected[k] for k in ("count", "mean", "max", "min", "high")
    }
    for change in changes:
        store.apply_reading(TrendChange(uid, day, change.key, None), "UTC")
    assert store.day_docs(uid, [day]) == {}  # the last reading out deletes the day


def test_message_changes_match_recomputation(services, store, db, unique) -> None:
    uid, chat = f"sender-{unique}", f"chat-{unique}"
    db.document(f"users/{uid}").set({"timeZone": "Asia/Seoul"})  # trends are kept for accounts only
    rng, written = random.Random(6), {}
    for i in range(12):
        ref = db.document(f"chats/{chat}/messages/m{i}")
        at = NOW - timedelta(hours=7 * i)
        processing = {
            "kind": "voice",
            "senderId": uid,
            "status": "processing",
            "createdAt": at,
            "stress": None,
        }
        score = round(rng.uniform(0, 100), 1)
        ready = {**processing, "status": "ready", "stress": {"score": score, "level": trends_level(score)}}
        ref.set(ready)
        written[f"m{i}"] = ready
        trend_service.record_message_change(services, TRENDS, chat, f"m{i}", processing, ready)
    db.document(f"chats/{chat}/messages/m0").delete()
    trend_service.record_message_change(services, TRENDS, chat, "m0", written["m0"], None)
    stored, truth = trend_service.recompute_trends(services, TRENDS, uid)
    assert truth and set(stored) == set(truth)
    for day in truth:
        assert {k: stored[day][k] for k in ("count", "mean", "max", "high")} == {
            k: truth[day][k] for k in ("count", "mean", "max", "high")
        }


def trends_level(score: float) -> str:
    return "high" if score >= 60 else "moderate" if score >= 30 else "low"


def test_delete_user_removes_the_whole_tree(store, trend_store, db, unique) -> None:
    accounts = FirestoreAccountStore(db)
    uid, bystander = f"gone-{unique}", f"stays-{unique}"
    for who in (uid, bystander):
        db.document(f"users/{who}").set({"displayName": who})
        db.document(f"users/{who}/devices/d1").set({"token": "t"})
        db.document(f"users/{who}/notifications/n1").set({"title": "x"})
        db.document(f"users/{who}/stats/baseline").set({"count": 1})
        store.save_recommendations(who, [record("calm-music")])
        trend_store.apply_reading(TrendChange(who, "2025-11-20", "c/m", Reading(70.0, "high", NOW)), "UTC")
        rec_id = store.recommendations(who, 1)[0][0]
        store.rate(who, rec_id, True, None, NOW, PARAMS)
    assert accounts.delete_user(uid) == 8
    assert not db.document(f"users/{uid}").get().exists
    assert list(db.document(f"users/{uid}").collections()) == []
    assert len(list(db.document(f"users/{bystander}").collections())) == 7
    # A user whose profile is gone but whose subcollections are not is still found.
    db.document(f"users/orphan-{unique}/devices/d1").set({"token": "t"})
    assert f"orphan-{unique}" in set(accounts.user_ids())
    accounts.delete_user(f"orphan-{unique}")
    assert f"orphan-{unique}" not in set(accounts.user_ids())


def test_accounts_against_the_auth_emulator(unique) -> None:
    import firebase_admin
    from firebase_admin import auth

    try:
        fb_app = firebase_admin.get_app("wellbeing-tests")
    except ValueError:
        fb_app = firebase_admin.initialize_app(options={"projectId": "demo-emochat"}, name="wellbeing-tests")
    auth.create_user(uid=f"acct-{unique}", app=fb_app)
    accounts = FirebaseAccounts(fb_app)
    assert accounts.missing([f"acct-{unique}", f"ghost-{unique}"]) == {f"ghost-{unique}"}
    assert accounts.delete_account(f"acct-{unique}") is True
    assert accounts.delete_account(f"acct-{unique}") is False
    assert accounts.missing([f"acct-{unique}"]) == {f"acct-{unique}"}


def test_alert_hook_through_the_real_wiring(db, unique) -> None:
    from emochat import wiring

    uid = f"alerted-{unique}"
    db.document(f"users/{uid}").set({"timeZone": "Europe/London", "language": "en"})
    sent = datetime(2025, 11, 20, 22, 30, tzinfo=UTC)
    pick = wiring.suggest_for_alert(uid, AlertContext("high", at=sent, message_path="chats/c/messages/m"))
    assert pick is not None and pick.language == "en"
    doc = db.document(f"users/{uid}/recommendations/{pick.recommendation_id}").get().to_dict()
    assert doc["source"] == "alert" and doc["context"] == {"stressLevel": "high", "timeOfDay": "evening"}
    assert doc["suggestionId"] == pick.suggestion_id and doc["reason"] in ("explore", "exploit")
