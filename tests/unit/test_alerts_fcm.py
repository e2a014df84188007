"""FcmNotifier: per-token fates, bounded retries of just the transient tokens, and the real
firebase_admin.messaging client pointed at the FCM stand-in (in-process, on loopback)."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator

import firebase_admin
import pytest
from fakes.alerts import FakeFcm, Sleeps
from firebase_admin import exceptions, messaging

from emochat.alerts.adapters.fcm_notifier import EmulatorCredential, FcmNotifier, use_fcm_endpoint
from emochat.alerts.delivery import Delivery
from emochat.alerts.model import Push
from local_stack.app_client import StandIn

PUSH = Push(
    title="Mina sounds stressed",
    body="Maybe check in?",
    data={"chatId": "c1", "messageId": "m1", "score": "82.5", "level": "high"},
)


def notifier(fcm: FakeFcm, sleeps: Sleeps, **options: float) -> FcmNotifier:
    return FcmNotifier(fcm, sleep=sleeps, clock=lambda: sum(sleeps.waits), **options)


def test_tokens_are_sorted_into_delivered_stale_and_failed() -> None:
    fcm, sleeps = FakeFcm(), Sleeps()
    tokens = ["ok-1", "unregistered-a", "invalid-b", "mismatch-c", "badpayload-d", "denied-e", "ok-1"]
    delivery = notifier(fcm, sleeps).send(tokens, PUSH)
    assert delivery == Delivery(
        tokens=6,
        success=1,
        failure=5,
        stale_tokens=("unregistered-a", "invalid-b", "mismatch-c"),
        retries=0,
        errors={"UNREGISTERED": 1, "INVALID_ARGUMENT": 2, "SENDER_ID_MISMATCH": 1, "PERMISSION_DENIED": 1},
    )
    assert fcm.calls == [["ok-1", "unregistered-a", "invalid-b", "mismatch-c", "badpayload-d", "denied-e"]]
    assert sleeps.waits == []


def test_only_transient_tokens_are_retried_honouring_retry_after() -> None:
    fcm, sleeps = FakeFcm(fail_times=1), Sleeps()
    tokens = ["ok-1", "throttled-a", "down-b", "unregistered-c"]
    delivery = notifier(fcm, sleeps, backoff_s=0.5).send(tokens, PUSH)
    assert fcm.calls == [["ok-1", "throttled-a", "down-b", "unregistered-c"], ["throttled-a", "down-b"]]
    assert sleeps.waits == [2.0]  # Retry-After: 2 beats the 0.5 s backoff
    assert delivery.success == 3 and delivery.failure == 1 and delivery.retries == 1
    assert delivery.stale_tokens == ("unregistered-c",) and delivery.errors == {"UNREGISTERED": 1}


def test_retries_are_bounded_by_attempts() -> None:
    fcm, sleeps = FakeFcm(fail_times=99), Sleeps()
    delivery = notifier(fcm, sleeps, max_attempts=3, backoff_s=0.5).send(["down-a", "ok-b"], PUSH)
    assert fcm.calls == [["down-a", "ok-b"], ["down-a"], ["down-a"]]
    assert sleeps.waits == [0.5, 1.0]
    assert delivery == Delivery(tokens=2, success=1, failure=1, retries=2, errors={"UNAVAILABLE": 1})


def test_retries_are_bounded_by_the_deadline() -> None:
    fcm, sleeps = FakeFcm(fail_times=99), Sleeps()
    delivery = notifier(fcm, sleeps, max_attempts=10, backoff_s=1.0, deadline_s=2.5).send(["down-a"], PUSH)
    assert sleeps.waits == [1.0]  # the next wait (2 s) would end past the deadline
    assert delivery.failure == 1 and delivery.errors == {"UNAVAILABLE": 1}


def test_no_call_starts_that_could_not_end_within_the_budget() -> None:
    """Each FCM call may take up to call_s; one that could end past the caller's budget is not made."""
    fcm, sleeps = FakeFcm(fail_times=99), Sleeps()
    clock = [0.0]

    def slow_fcm(message: messaging.MulticastMessage) -> messaging.BatchResponse:
        clock[0] += 10.0  # every call takes as long as it may
        return fcm(message)

    def sleep(seconds: float) -> None:
        sleeps(seconds)
        clock[0] += seconds

    sender = FcmNotifier(
        slow_fcm, max_attempts=10, backoff_s=1.0, call_s=10.0, sleep=sleep, clock=lambda: clock[0]
    )
    delivery = sender.send(["down-a", "ok-b"], PUSH, budget_s=25.0)
    assert len(fcm.calls) == 2 and clock[0] <= 25.0  # 10 + wait 1 + 10; a third call would end at 33
    assert delivery.success == 1 and delivery.errors == {"UNAVAILABLE": 1}
    none = sender.send(["ok-c"], PUSH, budget_s=9.0)
    assert none == Delivery(tokens=1, failure=1, unsent=1) and none.never_tried and len(fcm.calls) == 2


def test_a_failed_call_counts_for_every_token_and_is_retried() -> None:
    fcm, sleeps = FakeFcm(), Sleeps()
    fcm.raise_whole_call = exceptions.UnavailableError("connection refused")
    delivery = notifier(fcm, sleeps, max_attempts=2).send(["a", "b"], PUSH)
    assert len(fcm.calls) == 2 and delivery.failure == 2 and delivery.errors == {"UNAVAILABLE": 2}


def test_large_token_lists_are_sent_in_chunks_of_500() -> None:
    fcm, sleeps = FakeFcm(), Sleeps()
    delivery = notifier(fcm, sleeps).send([f"ok-{i}" for i in range(1201)], PUSH)
    assert [len(call) for call in fcm.calls] == [500, 500, 201] and delivery.success == 1201


def test_message_shape() -> None:
    message = FcmNotifier.message(["t1"], PUSH)
    assert message.tokens == ["t1"] and message.data == PUSH.data
    assert message.notification.title == PUSH.title and message.notification.body == PUSH.body
    assert message.android.priority == "high"
    # A re-sent alert (a retake after a crash) replaces the first on the device instead of adding one.
    keyed = FcmNotifier.message(["t1"], Push("t", "b", {"notificationId": "n1"}))
    assert keyed.android.collapse_key == "n1" and keyed.android.notification.tag == "n1"
    assert keyed.apns.headers == {"apns-collapse-id": "n1"}


# ── the real client against the FCM stand-in ─────────────────────────────────────────────────────


@pytest.fixture(scope="module")
def fcm_url() -> Iterator[str]:
    uvicorn = pytest.importorskip("uvicorn")
    fcm_server = pytest.importorskip("local_stack.fcm_server")
    config = uvicorn.Config(fcm_server.create_app(), host="127.0.0.1", port=0, log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "FCM stand-in did not start"
        time.sleep(0.02)
    yield f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}"
    server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture
def app(fcm_url: str) -> Iterator[firebase_admin.App]:
    StandIn(fcm_url).clear_sent()
    app = firebase_admin.initialize_app(
        EmulatorCredential(),
        {"projectId": "demo-emochat", "httpTimeout": 5},
        name=f"alerts-test-{uuid.uuid4().hex}",
    )
    yield app
    firebase_admin.delete_app(app)


def test_real_client_through_the_stand_in(app: firebase_admin.App, fcm_url: str) -> None:
    sleeps = Sleeps()
    fcm = FcmNotifier.for_app(app, endpoint=fcm_url + "/", backoff_s=0.01)
    fcm._sleep = sleeps
    tokens = ["device-ok", "unregistered-old", "invalid-garbled", "mismatch-other", "unavailable-hiccup"]
    delivery = fcm.send(tokens, PUSH)

    assert delivery.success == 2 and delivery.failure == 3
    assert set(delivery.stale_tokens) == {"unregistered-old", "invalid-garbled", "mismatch-other"}
    assert delivery.errors == {"UNREGISTERED": 1, "INVALID_ARGUMENT": 1, "SENDER_ID_MISMATCH": 1}
    # firebase_admin's own HTTP adapter retried the 503 within the first send: nothing left for us.
    assert delivery.retries == 0 and sleeps.waits == []
    sent = StandIn(fcm_url).sent()
    assert {r["project"] for r in sent} == {"demo-emochat"}
    outcomes = [(r["token"], r["outcome"]) for r in sent]
    assert outcomes.count(("unavailable-hiccup", "UNAVAILABLE")) == 1
    assert outcomes.count(("unavailable-hiccup", "sent")) == 1
    ok = next(r for r in sent if r["token"] == "device-ok")
    assert ok["notification"] == {"title": PUSH.title, "body": PUSH.body} and ok["data"] == PUSH.data


def test_real_client_429_without_retry_after_is_retried_by_us(app: firebase_admin.App, fcm_url: str) -> None:
    # firebase_admin (urllib3) retries a 429 only when it carries Retry-After; a bare 429 reaches
    # us, and only that token is sent again.
    fcm_standin = StandIn(fcm_url)
    fcm_standin.clear(requests=False)
    fcm_standin.script([{"status": 429}])
    sleeps = Sleeps()
    fcm = FcmNotifier.for_app(app, endpoint=fcm_url, backoff_s=0.25)
    fcm._sleep = sleeps
    delivery = fcm.send(["device-solo"], PUSH)
    assert delivery == Delivery(tokens=1, success=1, failure=0, retries=1)
    assert sleeps.waits == [0.25]
    assert [r.get("token") for r in fcm_standin.sent()][-1:] == ["device-solo"]


def test_use_fcm_endpoint_sets_the_send_url(app: firebase_admin.App) -> None:
    url = use_fcm_endpoint(app, "http://127.0.0.1:9/")
    assert url == "http://127.0.0.1:9/v1/projects/demo-emochat/messages:send"
    assert messaging._get_messaging_service(app)._fcm_url == url
