"""Per-user rate limits of the callables (issue 10 item 5): the pure decider and the service over
the fake counter, which decides with the same code as the Firestore adapter."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from fakes.documents import Documents
from fakes.ratelimit import InMemoryCallCounter

from emochat.domain import RequestError
from emochat.ratelimit.model import Limit, Verdict, decide
from emochat.ratelimit.service import RateLimitServices, admit

T0 = datetime(2025, 11, 20, 5, 0, tzinfo=UTC)
LIMIT = Limit(calls=3, window_s=60)


def test_the_decider_counts_within_a_window_and_resets_after_it() -> None:
    counter = None
    for expected in (1, 2, 3):
        decision = decide(counter, T0 + timedelta(seconds=expected), LIMIT)
        assert decision.verdict is Verdict.ALLOW and decision.counter["count"] == expected
        counter = decision.counter
    over = decide(counter, T0 + timedelta(seconds=10), LIMIT)
    assert (
        over.verdict is Verdict.EXHAUSTED and over.counter is None and over.retry_after_s == 51
    )  # the window opened at T0 + 1 s
    assert decide(counter, T0 + timedelta(seconds=61), LIMIT).counter == {
        "windowStart": T0 + timedelta(seconds=61),
        "count": 1,
    }
    # A counter that is unreadable or from the future starts a new window rather than locking out.
    for odd in ({"windowStart": "x", "count": 99}, {"windowStart": T0 + timedelta(days=1), "count": 99}):
        assert decide(odd, T0, LIMIT).verdict is Verdict.ALLOW


def test_a_user_over_the_limit_is_refused_and_others_are_not() -> None:
    store = Documents()
    clock = [T0]
    services = RateLimitServices(InMemoryCallCounter(store), clock=lambda: clock[0])
    for _ in range(3):
        admit(services, "alice", "stress_trends", LIMIT)
    with pytest.raises(RequestError) as refused:
        admit(services, "alice", "stress_trends", LIMIT)
    assert refused.value.code == "resource-exhausted"
    admit(services, "alice", "recommend_coping", LIMIT)  # each callable has its own counter
    admit(services, "bob", "stress_trends", LIMIT)
    clock[0] = T0 + timedelta(seconds=61)
    admit(services, "alice", "stress_trends", LIMIT)


def test_a_deleted_account_is_refused_and_counts_nothing() -> None:
    store = Documents()
    store.docs["deletedUsers/alice"] = {"deletedAt": T0}
    services = RateLimitServices(InMemoryCallCounter(store), clock=lambda: T0)
    with pytest.raises(RequestError) as refused:
        admit(services, "alice", "recommend_coping", LIMIT)
    assert refused.value.code == "permission-denied"
    admit(services, "alice", "delete_my_data", LIMIT, deleted_ok=True)  # deleting again stays possible
    assert not [p for p in store.docs if p.startswith("users/alice")]


def test_app_check_is_enforced_for_the_callables_when_the_param_says_so(monkeypatch) -> None:
    # The storage trigger's declaration needs the default bucket, as the emulator gives it.
    monkeypatch.setenv("FIREBASE_CONFIG", '{"projectId": "demo-emochat", "storageBucket": "b"}')
    monkeypatch.setenv("GCLOUD_PROJECT", "demo-emochat")
    import main
    from firebase_functions import https_fn

    def request(app: object | None) -> https_fn.CallableRequest:
        auth = https_fn.AuthData(uid="alice", token={})
        return https_fn.CallableRequest(raw_request=None, data={}, auth=auth, app=app)

    monkeypatch.setenv("ENFORCE_APP_CHECK", "false")
    assert main._caller(request(None)) == "alice"
    monkeypatch.setenv("ENFORCE_APP_CHECK", "true")
    with pytest.raises(https_fn.HttpsError) as refused:
        main._caller(request(None))
    assert refused.value.code is https_fn.FunctionsErrorCode.UNAUTHENTICATED
    assert main._caller(request(https_fn.AppCheckData(app_id="app", token={}))) == "alice"
