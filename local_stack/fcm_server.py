"""FCM HTTP v1 stand-in: ``POST /v1/projects/{project}/messages:send``, as firebase_admin.messaging
calls it (production's ``use_fcm_endpoint`` in emochat.alerts.adapters.fcm_notifier points it here).

Answers ``{"name": "projects/{project}/messages/{id}"}``, or FCM's own error body (a google.rpc.Status
with an FcmError detail, which firebase_admin maps to its exception types) chosen by the prefix of the
registration token (or installation id, ``fid``): TOKEN_RULES. ``throttled-`` (with Retry-After: 1)
and ``unavailable-`` fail only the first time a token is seen, so retries can be tested. A request
without a bearer token is 401, one without exactly one target or with
non-string data values is 400. ``GET /_emochat/sent`` lists every request (token, notification,
data, outcome, ...); ``DELETE`` clears it and forgets which tokens have failed once.
"""

from __future__ import annotations

import json
import secrets
import time
from datetime import UTC, datetime
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from local_stack.faults import ADMIN_PREFIX, FaultDialect, install_faults

GOOGLE_STATUS = {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED", 404: "NOT_FOUND",
                 429: "RESOURCE_EXHAUSTED", 500: "INTERNAL", 503: "UNAVAILABLE"}  # fmt: skip
# token prefix -> (HTTP status, FcmError errorCode, message, fails only the first time)
TOKEN_RULES = {
    "unregistered-": (404, "UNREGISTERED", "Requested entity was not found.", False),
    "invalid-": (400, "INVALID_ARGUMENT", "The registration token is not a valid FCM registration token",
                 False),
    "mismatch-": (403, "SENDER_ID_MISMATCH", "SenderId mismatch", False),
    "throttled-": (429, "QUOTA_EXCEEDED", "Quota exceeded for the device's message rate.", True),
    "unavailable-": (503, "UNAVAILABLE", "The service is currently unavailable.", True),
}  # fmt: skip
# HTTP status -> the errorCode FCM sends with it (for scripted faults)
FCM_CODE_FOR_STATUS = {rule[0]: rule[1] for rule in TOKEN_RULES.values()} | {500: "INTERNAL"}


def fcm_error(status: int, message: str, fcm_code: str | None = None) -> JSONResponse:
    details = [{"@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError", "errorCode": fcm_code}]
    error = {"code": status, "message": message, "status": GOOGLE_STATUS.get(status, "UNKNOWN")}
    return JSONResponse({"error": error | {"details": details if fcm_code else []}}, status_code=status)


def render_scripted_error(status: int) -> JSONResponse:
    return fcm_error(status, HTTPStatus(status).phrase, FCM_CODE_FOR_STATUS.get(status))


def create_app() -> FastAPI:
    app = FastAPI(title="EmoChat local FCM HTTP v1 stand-in")
    records: list[dict[str, Any]] = []
    failed_once: set[str] = set()  # coroutines on one event loop: no lock needed
    dialect = FaultDialect(render_scripted_error, {"message_id": "not-a-name"})
    install_faults(app, dialect, is_api_path=lambda path: path.endswith("/messages:send"))

    @app.post("/v1/projects/{project}/messages:send")
    async def send(project: str, request: Request) -> JSONResponse:
        at = datetime.now(UTC).isoformat(timespec="milliseconds")
        record: dict[str, Any] = {"project": project, "at": at}
        records.append(record)
        outcome, response = _answer(project, request, await request.body(), failed_once, record)
        record.update(outcome=outcome, status=response.status_code)
        return response

    @app.get(f"{ADMIN_PREFIX}/sent")
    async def sent() -> list[dict[str, Any]]:
        return records

    @app.delete(f"{ADMIN_PREFIX}/sent")
    async def clear_sent() -> dict[str, int]:
        records.clear()
        failed_once.clear()
        return {"cleared": 1}

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    return app


def _answer(
    project: str, request: Request, raw: bytes, failed_once: set[str], record: dict[str, Any]
) -> tuple[str, JSONResponse]:
    scheme, _, bearer = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not bearer.strip():
        return "UNAUTHENTICATED", fcm_error(401, "Request is missing required authentication credential.")
    try:
        body = json.loads(raw)
    except ValueError:
        body = None
    message = body.get("message") if isinstance(body, dict) else None
    if not isinstance(message, dict):
        return "INVALID_ARGUMENT", fcm_error(400, "Invalid JSON payload received: expected a message.")
    keys = ("token", "fid", "topic", "condition", "notification", "data", "android", "apns", "webpush")
    record.update({key: message.get(key) for key in keys}, validate_only=bool(body.get("validate_only")))
    targets = [key for key in ("token", "fid", "topic", "condition") if message.get(key)]
    if len(targets) != 1:
        return "INVALID_ARGUMENT", fcm_error(400, "Exactly one target must be set.", "INVALID_ARGUMENT")
    data = message.get("data") or {}
    if not isinstance(data, dict) or not all(isinstance(value, str) for value in data.values()):
        message = "Invalid value at 'message.data': strings only"
        return "INVALID_ARGUMENT", fcm_error(400, message, "INVALID_ARGUMENT")
    token = message.get("token") or message.get("fid") or ""
    for prefix, (status, code, text, first_time_only) in TOKEN_RULES.items():
        if token.startswith(prefix) and not (first_time_only and token in failed_once):
            failed_once.add(token)
            response = fcm_error(status, text, code)
            if status == 429:
                response.headers["Retry-After"] = "1"
            return code, response
    if record["validate_only"]:
        return "validated", JSONResponse({"name": f"projects/{project}/messages/fake_message_id"})
    name = f"projects/{project}/messages/0:{time.time_ns() // 1000}%{secrets.token_hex(8)}"
    record["name"] = name
    return "sent", JSONResponse({"name": name})
