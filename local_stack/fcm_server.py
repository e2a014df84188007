"""FCM HTTP v1 stand-in: ``POST /v1/projects/{project}/messages:send``.

Answers ``{"name": "projects/{project}/messages/{id}"}``, or FCM's own error bodies chosen by the
registration token's prefix (or the Firebase installation ID's: firebase-admin 7 deprecates
``token`` for ``fid``, and both are accepted), so that ``firebase_admin.messaging`` maps them to
its exception types (it reads ``error.details[].errorCode`` of type
``google.firebase.fcm.v1.FcmError``):

==================  ======  ==================  ==================  ===========================
token prefix        HTTP    status              errorCode           firebase_admin.messaging
==================  ======  ==================  ==================  ===========================
``unregistered-``   404     NOT_FOUND           UNREGISTERED        UnregisteredError
``invalid-``        400     INVALID_ARGUMENT    INVALID_ARGUMENT    exceptions.InvalidArgumentError
``mismatch-``       403     PERMISSION_DENIED   SENDER_ID_MISMATCH  SenderIdMismatchError
``throttled-``      429     RESOURCE_EXHAUSTED  QUOTA_EXCEEDED      QuotaExceededError (1st time)
``unavailable-``    503     UNAVAILABLE         UNAVAILABLE         exceptions.UnavailableError
                                                                    (1st time)
==================  ======  ==================  ==================  ===========================

``throttled-`` (with ``Retry-After: 1``) and ``unavailable-`` fail only the first time a token is
seen, then succeed, so retries can be tested. Note that firebase_admin's synchronous sends retry by
themselves (urllib3 ``Retry(status=4, status_forcelist=[500, 503])``, which also honours
``Retry-After`` on 429): both tokens are delivered within one ``send_each`` call, after two requests
here. The async sends (httpx) retry 500/503 but not 429, so ``QuotaExceededError`` reaches them.

Every request is recorded: ``GET /_emochat/sent`` lists them (token, notification, data, outcome,
...), ``DELETE /_emochat/sent`` clears them and forgets which tokens have failed once. Any bearer
token is accepted; a request without one gets 401 UNAUTHENTICATED unless ``allow_anonymous``.

firebase_admin has no emulator switch for FCM: production's ``use_fcm_endpoint`` (in
``emochat.alerts.adapters.fcm_notifier``, with its firebase_admin version guard) points an app's messaging
service here, and its ``EmulatorCredential`` needs no network.
"""

from __future__ import annotations

import json
import secrets
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from local_stack.faults import ADMIN_PREFIX, FaultDialect, install_faults

SEND_PATH = "/v1/projects/{project}/messages:send"
FCM_ERROR_TYPE = "type.googleapis.com/google.firebase.fcm.v1.FcmError"
BAD_REQUEST_TYPE = "type.googleapis.com/google.rpc.BadRequest"

# HTTP status -> google.rpc.Code name, as Google APIs report it in error.status
GOOGLE_STATUS = {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED", 404: "NOT_FOUND",
                 409: "ABORTED", 429: "RESOURCE_EXHAUSTED", 500: "INTERNAL", 503: "UNAVAILABLE",
                 504: "DEADLINE_EXCEEDED"}  # fmt: skip
# HTTP status -> the FcmError errorCode FCM sends with it (for scripted faults)
FCM_CODE_FOR_STATUS = {400: "INVALID_ARGUMENT", 403: "SENDER_ID_MISMATCH", 404: "UNREGISTERED",
                       429: "QUOTA_EXCEEDED", 500: "INTERNAL", 503: "UNAVAILABLE"}  # fmt: skip


@dataclass(frozen=True)
class TokenRule:
    """How FCM answers for registration tokens with a given prefix."""

    prefix: str
    status: int
    fcm_code: str
    message: str
    first_time_only: bool = False  # fail once per token, then deliver: lets clients' retries succeed
    retry_after: int | None = None


TOKEN_RULES = (
    TokenRule("unregistered-", 404, "UNREGISTERED", "Requested entity was not found."),
    TokenRule(
        "invalid-", 400, "INVALID_ARGUMENT", "The registration token is not a valid FCM registration token"
    ),
    TokenRule("mismatch-", 403, "SENDER_ID_MISMATCH", "SenderId mismatch"),
    TokenRule(
        "throttled-",
        429,
        "QUOTA_EXCEEDED",
        "Quota exceeded for the device's message rate.",
        first_time_only=True,
        retry_after=1,
    ),
    TokenRule(
        "unavailable-", 503, "UNAVAILABLE", "The service is currently unavailable.", first_time_only=True
    ),
)


@dataclass(frozen=True)
class FcmSettings:
    allow_anonymous: bool = False  # accept requests without an Authorization header


def fcm_error(
    status: int, message: str, fcm_code: str | None, extra_details: list[dict[str, Any]] | None = None
) -> JSONResponse:
    """FCM v1's error body: a google.rpc.Status with an FcmError detail."""
    details = [{"@type": FCM_ERROR_TYPE, "errorCode": fcm_code}] if fcm_code else []
    error = {
        "code": status,
        "message": message,
        "status": GOOGLE_STATUS.get(status, "UNKNOWN"),
        "details": details + (extra_details or []),
    }
    return JSONResponse({"error": error}, status_code=status)


def render_scripted_error(status: int, message: str | None) -> JSONResponse:
    return fcm_error(status, message or HTTPStatus(status).phrase, FCM_CODE_FOR_STATUS.get(status))


@dataclass
class Outbox:
    """Every send request the server received, and which tokens already failed once. The handlers
    are coroutines on one event loop: no lock needed."""

    records: list[dict[str, Any]] = field(default_factory=list)
    failed_once: set[str] = field(default_factory=set)

    def first_failure(self, token: str) -> bool:
        """True the first time it is asked about ``token``."""
        first = token not in self.failed_once
        self.failed_once.add(token)
        return first


def create_app(settings: FcmSettings | None = None) -> FastAPI:
    settings = settings or FcmSettings()
    app = FastAPI(title="EmoChat local FCM HTTP v1 stand-in")
    outbox = Outbox()
    app.state.outbox = outbox
    install_faults(
        app,
        FaultDialect(render_error=render_scripted_error, wrong_shape={"message_id": "not-a-name"}),
        is_api_path=lambda path: path.startswith("/v1/projects/") and path.endswith("/messages:send"),
    )

    @app.post(SEND_PATH)
    async def send(project: str, request: Request) -> JSONResponse:
        record: dict[str, Any] = {
            "project": project,
            "at": datetime.now(UTC).isoformat(timespec="milliseconds"),
        }
        response = await _send(project, request, settings, outbox, record)
        record["status"] = response.status_code
        outbox.records.append(record)
        return response

    @app.get(f"{ADMIN_PREFIX}/sent")
    async def sent() -> list[dict[str, Any]]:
        return list(outbox.records)

    @app.delete(f"{ADMIN_PREFIX}/sent")
    async def clear_sent() -> dict[str, int]:
        outbox.records.clear()
        outbox.failed_once.clear()
        return {"cleared": 1}

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    return app


async def _send(
    project: str, request: Request, settings: FcmSettings, outbox: Outbox, record: dict[str, Any]
) -> JSONResponse:
    if not settings.allow_anonymous and not _has_bearer(request):
        record["outcome"] = "UNAUTHENTICATED"
        return fcm_error(
            401,
            "Request is missing required authentication credential. Expected OAuth 2 access token, "
            "login cookie or other valid authentication credential.",
            None,
        )
    try:
        body = json.loads(await request.body())
    except ValueError:
        body = None
    message = body.get("message") if isinstance(body, dict) else None
    if not isinstance(message, dict):
        record["outcome"] = "INVALID_ARGUMENT"
        return fcm_error(400, "Invalid JSON payload received: expected an object with a message.", None)

    record.update(
        token=message.get("token"),
        fid=message.get("fid"),
        topic=message.get("topic"),
        condition=message.get("condition"),
        notification=message.get("notification"),
        data=message.get("data"),
        android=message.get("android"),
        apns=message.get("apns"),
        webpush=message.get("webpush"),
        validate_only=bool(body.get("validate_only", False)),
    )
    invalid = _invalid_message(message)
    if invalid is not None:
        record["outcome"] = "INVALID_ARGUMENT"
        return invalid

    token = message.get("token") or message.get("fid")
    rule = _rule_for(token) if isinstance(token, str) else None
    if rule is not None and (not rule.first_time_only or outbox.first_failure(token)):
        record["outcome"] = rule.fcm_code
        response = fcm_error(rule.status, rule.message, rule.fcm_code)
        if rule.retry_after is not None:
            response.headers["Retry-After"] = str(rule.retry_after)
        return response

    if record["validate_only"]:
        name = f"projects/{project}/messages/fake_message_id"  # what FCM answers to a dry run
        record["outcome"] = "validated"
    else:
        name = f"projects/{project}/messages/0:{time.time_ns() // 1000}%{secrets.token_hex(8)}"
        record["outcome"] = "sent"
    record["name"] = name
    return JSONResponse({"name": name})


def _has_bearer(request: Request) -> bool:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    return scheme.lower() == "bearer" and bool(token.strip())


def _rule_for(token: str) -> TokenRule | None:
    return next((rule for rule in TOKEN_RULES if token.startswith(rule.prefix)), None)


def _invalid_message(message: dict[str, Any]) -> JSONResponse | None:
    """FCM's 400 for a message without exactly one target or with non-string data values."""
    targets = [key for key in ("token", "fid", "topic", "condition") if message.get(key)]
    if len(targets) != 1:
        text = "Recipient of the message is not set." if not targets else "Exactly one target must be set."
        return fcm_error(400, text, "INVALID_ARGUMENT", [_field_violation("message", text)])
    data = message.get("data") or {}
    if not isinstance(data, dict):
        return fcm_error(400, "Invalid value at 'message.data'", "INVALID_ARGUMENT")
    for index, (key, value) in enumerate(data.items()):
        if not isinstance(value, str):
            text = f"Invalid value at 'message.data[{index}].value' (TYPE_STRING), {value}"
            return fcm_error(400, text, None, [_field_violation(f"message.data[{index}].value", text)])
        if key.startswith("google") or key in ("from", "gcm", "message_type"):
            text = f"Invalid data key: {key!r} is reserved"
            return fcm_error(400, text, "INVALID_ARGUMENT", [_field_violation("message.data", text)])
    return None


def _field_violation(field_path: str, description: str) -> dict[str, Any]:
    return {"@type": BAD_REQUEST_TYPE, "fieldViolations": [{"field": field_path, "description": description}]}
