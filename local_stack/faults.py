"""Scripted fault injection, shared by every local API stand-in.

A test scripts faults with ``POST /_emochat/faults`` (a JSON list, or one object); each API request
then consumes the next one, in order::

    [{"status": 429, "retry_after": 1}, {"status": 500, "times": 2}, {"delay_s": 5},
     {"malformed": true}, {"empty_transcript": true}]

- ``status``: answer with that HTTP status and the API's own error body (the server's dialect);
- ``retry_after``: seconds, sent as ``Retry-After`` (whole seconds, rounded up, as HTTP wants) and
  ``retry-after-ms`` (exact; the openai client reads it first, so sub-second values keep tests fast);
- ``delay_s``: wait first, then answer (normally, or with ``status``): for client timeouts; a
  request whose client has gone by then is logged with status 499 and not processed;
- ``malformed``: 200 with a body that is not JSON (``true`` or ``"json"``) or JSON of the wrong
  shape (``"shape"``);
- other flags (``empty_transcript``) are honoured by the endpoint itself, which reads them with
  :func:`scripted_fault`; a server refuses flags its dialect does not list;
- ``times``: how many consecutive requests the fault applies to (default 1).

``GET /_emochat/faults`` shows what is still scripted, ``DELETE /_emochat/faults`` clears it.
``GET /_emochat/requests`` gives the count and a short log of API requests seen (faulted or not),
``DELETE /_emochat/requests`` clears that log.
"""

from __future__ import annotations

import asyncio
import math
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from fastapi import APIRouter, FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, model_validator

ADMIN_PREFIX = "/_emochat"
_SCOPE_KEY = "emochat.fault"
CLIENT_GONE_STATUS = 499  # logged for a delayed request whose client hung up meanwhile (nginx's code)


class Fault(BaseModel):
    """One scripted misbehaviour."""

    model_config = ConfigDict(extra="forbid")

    status: int | None = Field(default=None, ge=400, le=599)
    retry_after: float | None = Field(default=None, ge=0)
    delay_s: float | None = Field(default=None, ge=0, le=600)
    malformed: bool | Literal["json", "shape"] = False
    empty_transcript: bool = False
    message: str | None = None
    times: int = Field(default=1, ge=1)

    @model_validator(mode="after")
    def _has_one_coherent_effect(self) -> Fault:
        outcomes = [self.status is not None, bool(self.malformed), self.empty_transcript]
        if sum(outcomes) > 1:
            raise ValueError("choose at most one of status, malformed, empty_transcript")
        if not any(outcomes) and self.delay_s is None:
            raise ValueError("a fault needs status, delay_s, malformed or empty_transcript")
        return self

    def endpoint_flags(self) -> set[str]:
        """Flags that only the endpoint can honour (it knows the request's details)."""
        return {"empty_transcript"} if self.empty_transcript else set()


_FAULT_LIST = TypeAdapter(list[Fault] | Fault)


@dataclass(frozen=True)
class FaultDialect:
    """How one API expresses injected faults in its own wire format."""

    render_error: Callable[[int, str | None], Response]  # status, message -> that API's error response
    wrong_shape: Any  # valid JSON that a client of this API does not expect
    endpoint_faults: frozenset[str] = frozenset()  # endpoint-handled flags it supports


class FaultController:
    """One server's fault script (consumed one fault per API request) and request log; thread-safe."""

    def __init__(self, dialect: FaultDialect) -> None:
        self.dialect = dialect
        self._lock = threading.Lock()
        self._pending: deque[list[Any]] = deque()  # [fault, requests left]
        self.count = 0
        self._log: deque[dict[str, Any]] = deque(maxlen=200)

    def add(self, faults: list[Fault]) -> None:
        with self._lock:
            self._pending.extend([fault, fault.times] for fault in faults)

    def take(self) -> Fault | None:
        with self._lock:
            if not self._pending:
                return None
            entry = self._pending[0]
            entry[1] -= 1
            if entry[1] == 0:
                self._pending.popleft()
            return entry[0]

    def pending(self) -> dict[str, Any]:
        with self._lock:
            return {
                "pending": [{**f.model_dump(exclude_defaults=True), "times": n} for f, n in self._pending]
            }

    def record(self, entry: dict[str, Any]) -> None:
        with self._lock:
            self.count += 1
            self._log.append({"seq": self.count, **entry})

    def requests(self) -> dict[str, Any]:
        with self._lock:
            return {"count": self.count, "requests": list(self._log)}

    def clear(self, *, faults: bool = False, requests: bool = False) -> None:
        with self._lock:
            if faults:
                self._pending.clear()
            if requests:
                self.count = 0
                self._log.clear()


def scripted_fault(request: Request) -> Fault | None:
    """The fault the middleware handed to this request's endpoint, if any."""
    return request.scope.get(_SCOPE_KEY)


def install_faults(
    app: FastAPI, dialect: FaultDialect, is_api_path: Callable[[str], bool]
) -> FaultController:
    """Add the ``/_emochat`` fault routes and the fault-applying middleware to ``app``.

    ``is_api_path`` says which requests are API calls (they consume faults and are logged);
    admin and health routes are left alone.
    """
    controller = FaultController(dialect)
    app.state.faults = controller
    app.include_router(_admin_router(controller))

    @app.middleware("http")
    async def apply_scripted_faults(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        if not is_api_path(request.url.path):
            return await call_next(request)
        started = time.perf_counter()
        fault = controller.take()
        response = await _answer(fault, request, call_next, dialect)
        controller.record(
            {
                "method": request.method,
                "path": request.url.path,
                "status": response.status_code,
                "fault": fault.model_dump(exclude_defaults=True, exclude={"times"}) if fault else None,
                "ms": round((time.perf_counter() - started) * 1000, 1),
                "at": datetime.now(UTC).isoformat(timespec="milliseconds"),
            }
        )
        return response

    return controller


async def _answer(
    fault: Fault | None,
    request: Request,
    call_next: Callable[[Request], Awaitable[Response]],
    dialect: FaultDialect,
) -> Response:
    if fault is None:
        return await call_next(request)
    if fault.delay_s:
        # Read the body first: the middleware replays it to the endpoint, and the disconnect check
        # below would otherwise swallow an unread body message.
        await request.body()
        await asyncio.sleep(fault.delay_s)
        if await request.is_disconnected():  # the client timed out: don't do the work for nobody
            return Response(status_code=CLIENT_GONE_STATUS)
    if fault.status is not None:
        response = dialect.render_error(fault.status, fault.message)
    elif fault.malformed:
        response = _malformed(fault.malformed, dialect)
    else:
        if fault.endpoint_flags():
            request.scope[_SCOPE_KEY] = fault
        response = await call_next(request)
    if fault.retry_after is not None:
        response.headers["Retry-After"] = str(math.ceil(fault.retry_after))
        response.headers["retry-after-ms"] = str(round(fault.retry_after * 1000))
    return response


def _malformed(kind: bool | str, dialect: FaultDialect) -> Response:
    if kind == "shape":
        return JSONResponse(dialect.wrong_shape)
    # Truncated JSON under a JSON content type: what a proxy cutting a body short looks like.
    return Response(content=b'{"text": "cut sho', media_type="application/json")


def _admin_router(controller: FaultController) -> APIRouter:
    router = APIRouter(prefix=ADMIN_PREFIX, include_in_schema=False)

    @router.post("/faults")
    async def add_faults(request: Request) -> dict[str, Any]:
        try:
            parsed = _FAULT_LIST.validate_python(await request.json())
        except (ValidationError, ValueError) as error:
            raise HTTPException(status_code=422, detail=str(error)) from error
        faults = parsed if isinstance(parsed, list) else [parsed]
        for fault in faults:
            unsupported = fault.endpoint_flags() - controller.dialect.endpoint_faults
            if unsupported:
                raise HTTPException(
                    status_code=422, detail=f"this server does not support {sorted(unsupported)}"
                )
        controller.add(faults)
        return controller.pending()

    @router.get("/faults")
    async def list_faults() -> dict[str, Any]:
        return controller.pending()

    @router.delete("/faults")
    async def clear_faults() -> dict[str, Any]:
        controller.clear(faults=True)
        return controller.pending()

    @router.get("/requests")
    async def seen_requests() -> dict[str, Any]:
        return controller.requests()

    @router.delete("/requests")
    async def clear_requests() -> dict[str, Any]:
        controller.clear(requests=True)
        return controller.requests()

    return router
