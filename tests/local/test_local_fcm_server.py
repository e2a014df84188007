"""The FCM HTTP v1 stand-in, driven by firebase_admin.messaging itself."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator

import firebase_admin
import httpx
import pytest
from firebase_admin import exceptions, messaging
from local_stack_support import ThreadedServer

from emochat.alerts.adapters.fcm_notifier import EmulatorCredential, use_fcm_endpoint
from local_stack.app_client import StandIn
from local_stack.fcm_server import create_app

PROJECT = "demo-emochat"
# firebase-admin 7 deprecates registration tokens for installation IDs; the app still stores tokens.
pytestmark = pytest.mark.filterwarnings("ignore:.*is deprecated. Use .*fid:DeprecationWarning")


@pytest.fixture(scope="module")
def fcm_server() -> Iterator[ThreadedServer]:
    with ThreadedServer(create_app()) as server:
        yield server


@pytest.fixture
def fcm_url(fcm_server: ThreadedServer) -> str:
    StandIn(fcm_server.base_url).clear()
    StandIn(fcm_server.base_url).clear_sent()
    return fcm_server.base_url


@pytest.fixture
def fcm_app(fcm_url: str) -> Iterator[firebase_admin.App]:
    """A firebase_admin app whose messaging sends to the local server, with an offline credential."""
    app = firebase_admin.initialize_app(
        EmulatorCredential(), {"projectId": PROJECT}, name=f"fcm-{uuid.uuid4().hex}"
    )
    use_fcm_endpoint(app, fcm_url)
    yield app
    firebase_admin.delete_app(app)


def sent(base_url: str) -> list[dict]:
    return StandIn(base_url).sent()


def alert(tokens: list[str]) -> messaging.MulticastMessage:
    return messaging.MulticastMessage(
        tokens=tokens,
        notification=messaging.Notification(title="Stress is running high", body="Take a breath"),
        data={"chatId": "chat-1", "messageId": "msg-1", "level": "high"},
    )


def test_send_each_for_multicast_maps_each_token_to_firebase_admin_errors(
    fcm_app: firebase_admin.App, fcm_url: str
) -> None:
    tokens = ["device-ok", "unregistered-old", "invalid-garbled", "mismatch-other-app"]
    batch = messaging.send_each_for_multicast(alert(tokens), app=fcm_app)

    by_token = dict(zip(tokens, batch.responses, strict=True))
    assert batch.success_count == 1 and batch.failure_count == 3
    assert by_token["device-ok"].message_id.startswith(f"projects/{PROJECT}/messages/")
    assert isinstance(by_token["unregistered-old"].exception, messaging.UnregisteredError)
    assert isinstance(by_token["invalid-garbled"].exception, exceptions.InvalidArgumentError)
    assert isinstance(by_token["mismatch-other-app"].exception, messaging.SenderIdMismatchError)

    records = {record["token"]: record for record in sent(fcm_url)}
    assert records["device-ok"]["outcome"] == "sent"
    assert records["device-ok"]["notification"] == {
        "title": "Stress is running high",
        "body": "Take a breath",
    }
    assert records["device-ok"]["data"] == {"chatId": "chat-1", "messageId": "msg-1", "level": "high"}
    assert records["unregistered-old"]["outcome"] == "UNREGISTERED"
    assert records["invalid-garbled"]["outcome"] == "INVALID_ARGUMENT"
    assert records["mismatch-other-app"]["outcome"] == "SENDER_ID_MISMATCH"


def test_sync_send_retries_throttled_and_unavailable_by_itself(
    fcm_app: firebase_admin.App, fcm_url: str
) -> None:
    # firebase_admin's requests adapter (urllib3 Retry) retries 503, and 429 when it carries
    # Retry-After, so both tokens fail once here and are still delivered within one call.
    batch = messaging.send_each_for_multicast(alert(["throttled-a", "unavailable-b"]), app=fcm_app)
    assert batch.success_count == 2
    outcomes = [(record["token"], record["outcome"]) for record in sent(fcm_url)]
    assert sorted(outcomes) == [
        ("throttled-a", "QUOTA_EXCEEDED"), ("throttled-a", "sent"),
        ("unavailable-b", "UNAVAILABLE"), ("unavailable-b", "sent"),
    ]  # fmt: skip


def test_async_send_surfaces_quota_exceeded_then_delivers_and_dry_run(
    fcm_app: firebase_admin.App, fcm_url: str
) -> None:
    # The async path (httpx) does not honour Retry-After, so the 429 reaches the caller.
    async def send_twice() -> tuple[messaging.BatchResponse, messaging.BatchResponse]:
        try:
            first = await messaging.send_each_for_multicast_async(
                alert(["throttled-c", "unregistered-d"]), app=fcm_app
            )
            again = await messaging.send_each_for_multicast_async(alert(["throttled-c"]), app=fcm_app)
            return first, again
        finally:  # close on this loop: delete_app would try on a new one and fail
            await messaging._get_messaging_service(fcm_app)._async_client.aclose()

    first, again = asyncio.run(send_twice())
    assert isinstance(first.responses[0].exception, messaging.QuotaExceededError)
    assert first.responses[0].exception.http_response.headers["Retry-After"] == "1"
    assert isinstance(first.responses[1].exception, messaging.UnregisteredError)
    assert again.success_count == 1
    name = messaging.send(messaging.Message(token="device-3", data={"k": "v"}), dry_run=True, app=fcm_app)
    assert name == f"projects/{PROJECT}/messages/fake_message_id"
    assert sent(fcm_url)[-1]["outcome"] == "validated"


def test_installation_ids_follow_the_same_prefix_rules(fcm_app: firebase_admin.App, fcm_url: str) -> None:
    batch = messaging.send_each_for_multicast(
        messaging.MulticastMessage(fids=["fid-ok", "unregistered-fid"], data={"level": "high"}), app=fcm_app
    )
    assert batch.responses[0].success
    assert isinstance(batch.responses[1].exception, messaging.UnregisteredError)
    assert sorted((record["fid"], record["outcome"]) for record in sent(fcm_url)) == [
        ("fid-ok", "sent"),
        ("unregistered-fid", "UNREGISTERED"),
    ]


def test_scripted_fault_reaches_firebase_admin(fcm_app: firebase_admin.App, fcm_url: str) -> None:
    StandIn(fcm_url).script([{"status": 429}])
    with pytest.raises(messaging.QuotaExceededError):
        messaging.send(messaging.Message(token="device-4"), app=fcm_app)
    assert StandIn(fcm_url).requests()["count"] == 1


def test_requests_need_a_bearer_token_and_a_target(fcm_url: str) -> None:
    url = f"{fcm_url}/v1/projects/{PROJECT}/messages:send"
    anonymous = httpx.post(url, json={"message": {"token": "device-5"}})
    assert anonymous.status_code == 401 and anonymous.json()["error"]["status"] == "UNAUTHENTICATED"
    no_target = httpx.post(url, json={"message": {"data": {}}}, headers={"Authorization": "Bearer any"})
    assert no_target.status_code == 400 and no_target.json()["error"]["status"] == "INVALID_ARGUMENT"
    assert [record["outcome"] for record in sent(fcm_url)] == ["UNAUTHENTICATED", "INVALID_ARGUMENT"]
    assert httpx.post(f"{fcm_url}/_emochat/faults", json={"empty_transcript": True}).status_code == 422
