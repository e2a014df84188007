"""Scripted faults, shared by the stand-ins; their client is app_client.StandIn.

``POST /_emochat/faults`` takes a list of faults (or one); each API request consumes the next::

    [{"status": 429, "retry_after": 1}, {"status": 500, "times": 2}, {"delay_s": 5},
     {"malformed": true}, {"empty_transcript": true}]

- ``status``: that HTTP status with the API's own error body (the server's dialect);
- ``retry_after``: seconds, as ``Retry-After`` (whole, rounded up) and ``retry-after-ms`` (exact;
  the openai client reads it first, so sub-second values keep tests fast);
- ``delay_s``: wait first (for client timeouts); a request whose client hangs up meanwhile is
  logged as 499 when it does, and not processed;
- ``malformed``: 200 with a cut-off JSON body (``true``/``"json"``), or JSON of the wrong shape;
- ``empty_transcript``: honoured by the STT endpoint itself (``scripted_fault``); others refuse it;
- ``times``: how many consecutive requests the fault applies to (default 1).

``GET``/``DELETE /_emochat/faults`` show/clear what is still scripted; ``GET``/``DELETE
/_emochat/requests`` give/clear the count and a short log of the API requests seen.
"""

from __future__ import annotations

import asyncio
import math
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, Literal, NamedTuple

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, model_validator

ADMIN_PREFIX = "/_emochat"
_SCOPE_KEY = "emochat.fault"
CLIENT_GONE_STATUS = 499  # a delayed request whose client hung up meanwhile (nginx's code)


class Fault(BaseModel):
    model_config = ConfigDict(extra="forbid")

    status: int | None = Field(default=None, ge=400, le=599)
    retry_after: float | None = Field(default=None, ge=0)
    delay_s: float | None = Field(default=None, ge=0, le=600)
    malformed: bool | Literal["json", "shape"] = False
    empty_transcript: bool = False
    times: int = Field(default=1, ge=1)

    @model_validator(mode="after")
    def _has_one_coherent_effect(self) -> Fault:
        outcomes = [self.status is not None, bool(self.malformed), self.empty_transcript]
        if sum(outcomes) > 1:
            raise ValueError("choose at most one of status, malformed, empty_transcript")
        if not any(outcomes) and self.delay_s is None:
            raise ValueError("a fault needs status, delay_s, malformed or empty_transcript")
        return self


_FAULT_LIST = TypeAdapter(list[Fault] | Fault)


class FaultDialect(NamedTuple):
    """How one API expresses injected faults in its own wire format."""

    render_error: Callable[[int], Response]  # status -> that API's error response
    wrong_shape: Any  # valid JSON that a client of this API does not expect
    endpoint_faults: frozenset[str] = frozenset()  # flags its endpoint honours (empty_transcript)


def scripted_fault(request: Request) -> Fault | None:
    """The fault the middleware handed to this request's endpoint, if any."""
    return request.scope.get(_SCOPE_KEY)


def install_faults(app: FastAPI, dialect: FaultDialect, is_api_path: Callable[[str], bool]) -> None:
    """The /_emochat fault routes and the middleware that applies faults to API requests (the paths
    `is_api_path` accepts; admin and health routes are left alone)."""
    lock = threading.Lock()
    pending: deque[list[Any]] = deque()  # [fault, requests left]
    log: deque[dict[str, Any]] = deque(maxlen=200)
    seen = [0]

    def take() -> Fault | None:
        with lock:
            if not pending:
                return None
            pending[0][1] -= 1
            return (pending.popleft() if pending[0][1] == 0 else pending[0])[0]

    def listed() -> dict[str, Any]:
        with lock:
            return {"pending": [{**f.model_dump(exclude_defaults=True), "times": n} for f, n in pending]}

    def requests() -> dict[str, Any]:
        with lock:
            return {"count": seen[0], "requests": list(log)}

    @app.middleware("http")
    async def apply_scripted_faults(
        request: Request, call_next: Callable[..., Awaitable[Response]]
    ) -> Response:
        if not is_api_path(request.url.path):
            return await call_next(request)
        started = time.perf_counter()
        fault = take()
        response = await _answer(fault, request, call_next, dialect)
        entry = {"method": request.method, "path": request.url.path, "status": response.status_code}
        entry["fault"] = fault.model_dump(exclude_defaults=True, exclude={"times"}) if fault else None
        entry["ms"] = round((time.perf_counter() - started) * 1000, 1)
        entry["at"] = datetime.now(UTC).isoformat(timespec="milliseconds")
        with lock:
            seen[0] += 1
            log.append({"seq": seen[0], **entry})
        return response

    @app.post(f"{ADMIN_PREFIX}/faults", include_in_schema=False)
    async def add_faults(request: Request) -> dict[str, Any]:
        try:
            parsed = _FAULT_LIST.validate_python(await request.json())
        except (ValidationError, ValueError) as error:
            raise HTTPException(status_code=422, detail=str(error)) from error
        faults = parsed if isinstance(parsed, list) else [parsed]
        if any(f.empty_transcript for f in faults) and "empty_transcript" not in dialect.endpoint_faults:
            raise HTTPException(status_code=422, detail="this server does not support ['empty_transcript']")
        with lock:
            pending.extend([fault, fault.times] for fault in faults)
        return listed()

    @app.api_route(f"{ADMIN_PREFIX}/faults", methods=["GET", "DELETE"], include_in_schema=False)
    async def show_or_clear_faults(request: Request) -> dict[str, Any]:
        if request.method == "DELETE":
            with lock:
                pending.clear()
        return listed()

    @app.api_route(f"{ADMIN_PREFIX}/requests", methods=["GET", "DELETE"], include_in_schema=False)
    async def show_or_clear_requests(request: Request) -> dict[str, Any]:
        if request.method == "DELETE":
            with lock:
                seen[0] = 0
                log.clear()
        return requests()


async def _client_leaves_within(request: Request, delay_s: float) -> bool:
    """Wait out the delay, watching the connection all along: one look at its end missed a hang-up
    now and then (the server had not yet been told of it)."""
    end = time.monotonic() + delay_s
    while (left := end - time.monotonic()) > 0:
        if await request.is_disconnected():
            return True
        await asyncio.sleep(min(left, 0.05))
    return await request.is_disconnected()


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
        if await _client_leaves_within(request, fault.delay_s):  # timed out: no work for nobody
            return Response(status_code=CLIENT_GONE_STATUS)
    if fault.status is not None:
        response = dialect.render_error(fault.status)
    elif fault.malformed == "shape":
        response = JSONResponse(dialect.wrong_shape)
    elif fault.malformed:  # truncated JSON under a JSON content type: a proxy cutting a body short
        response = Response(content=b'{"text": "cut sho', media_type="application/json")
    else:
        if fault.empty_transcript:
            request.scope[_SCOPE_KEY] = fault
        response = await call_next(request)
    if fault.retry_after is not None:
        response.headers["Retry-After"] = str(math.ceil(fault.retry_after))
        response.headers["retry-after-ms"] = str(round(fault.retry_after * 1000))
    return response
