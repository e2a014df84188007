"""Hosts the project's Hugging Face ``EndpointHandler`` the way an Inference Endpoint does.

``POST /`` takes raw audio, as the production adapter sends it (``Content-Type: audio/*``, or
``video/mp4``, which some Android recorders write, or ``application/octet-stream``), and hands it to
the handler as ``{"inputs": <bytes>}``, as the Inference Toolkit does. The handler's list
(``[{"label": "stressed", "score": p}, ...]``) is the response. A ``ValueError`` from the handler
(``BadAudioError`` is one) is answered 400 ``{"error": "..."}``, HF's error shape.

The handler loads in the background at startup; until it is loaded, and for ``warmup_seconds``
after startup, requests get HF's 503 ``{"error": "... is currently loading", "estimated_time": N}``,
as from an endpoint scaling up from zero, unless they carry ``X-Scale-Up-Timeout: <seconds>``: then,
as HF's proxy does, the request is held until the endpoint is ready, or answered 503 when that many
seconds pass first. A scripted ``{"status": 503}`` fault ignores the header: it stands for an endpoint
that does. ``GET /health`` answers 200 once the handler is loaded.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import logging
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from http import HTTPStatus
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from local_stack.faults import FaultDialect, install_faults

log = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_PACKAGE_DIR = REPO_ROOT / "stress_model"  # holds the importable ``stress_model`` package
DEFAULT_MODEL_DIR = DEFAULT_PACKAGE_DIR / "checkpoints" / "demo"
ENDPOINT_NAME = "emochat/stress-student"
PREDICT_PATH = "/"
# Besides audio/*: some Android recorders label audio video/mp4; generic clients send octet-stream.
RAW_AUDIO_TYPES = frozenset({"application/octet-stream", "video/mp4"})
LOADING_GUESS_SECONDS = 5.0  # estimated_time while the handler itself is still loading


# The Hugging Face custom handler interface: called with the decoded request payload.
Handler = Callable[[dict[str, Any]], Any]
HandlerLoader = Callable[[], Handler]


@dataclass(frozen=True)
class StressSettings:
    model_dir: Path = DEFAULT_MODEL_DIR
    package_dir: Path = DEFAULT_PACKAGE_DIR
    token: str | None = None  # None: no Authorization needed
    warmup_seconds: float = 0.0


def project_handler_loader(model_dir: Path, package_dir: Path) -> HandlerLoader:
    """Loads ``stress_model.handler.EndpointHandler(model_dir)``, putting ``package_dir`` on sys.path."""

    def load() -> Handler:
        if str(package_dir) not in sys.path:
            sys.path.insert(0, str(package_dir))
        module = importlib.import_module("stress_model.handler")
        return module.EndpointHandler(str(model_dir))

    return load


class HandlerHost:
    """Loads the handler off the event loop and serves one call at a time (the model is not shared)."""

    def __init__(self, loader: HandlerLoader, warmup_seconds: float) -> None:
        self._loader = loader
        self._warmup_seconds = warmup_seconds
        self._started_at = time.monotonic()
        self._handler: Handler | None = None
        self.load_error: str | None = None
        self._call_lock = threading.Lock()

    def start(self) -> None:
        self._started_at = time.monotonic()
        threading.Thread(target=self._load, name="stress-handler-loader", daemon=True).start()

    def _load(self) -> None:
        started = time.perf_counter()
        try:
            self._handler = self._loader()
            log.info("stress handler loaded in %.1f s", time.perf_counter() - started)
        except Exception as error:  # reported on /health and on every request instead of dying silently
            log.exception("stress handler failed to load")
            self.load_error = f"{type(error).__name__}: {error}"

    @property
    def loaded(self) -> bool:
        return self._handler is not None

    def seconds_until_ready(self) -> float:
        """0 when requests can be served; otherwise an estimate for HF's ``estimated_time``."""
        warmup_left = self._warmup_seconds - (time.monotonic() - self._started_at)
        if not self.loaded:
            return max(warmup_left, LOADING_GUESS_SECONDS)
        return max(warmup_left, 0.0)

    def __call__(self, data: dict[str, Any]) -> Any:
        assert self._handler is not None
        with self._call_lock:
            return self._handler(data)


def hf_error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def hf_loading(estimated_time: float) -> JSONResponse:
    return JSONResponse(
        {"error": f"Model {ENDPOINT_NAME} is currently loading", "estimated_time": round(estimated_time, 1)},
        status_code=503,
    )


def render_scripted_error(status: int, message: str | None) -> JSONResponse:
    if status == 503 and message is None:
        return hf_loading(LOADING_GUESS_SECONDS)
    return hf_error(status, message or HTTPStatus(status).phrase)


def create_app(settings: StressSettings, loader: HandlerLoader | None = None) -> FastAPI:
    """``loader`` builds the handler; by default the project's handler from ``settings``."""
    host = HandlerHost(
        loader or project_handler_loader(settings.model_dir, settings.package_dir), settings.warmup_seconds
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        host.start()
        yield

    app = FastAPI(title="EmoChat local Hugging Face endpoint stand-in", lifespan=lifespan)
    app.state.handler_host = host
    install_faults(
        app,
        FaultDialect(
            render_error=render_scripted_error, wrong_shape={"label": "stressed", "probability": 0.5}
        ),
        is_api_path=lambda path: path == PREDICT_PATH,
    )

    async def predict(request: Request) -> Response:
        if settings.token is not None and not _authorized(request, settings.token):
            return hf_error(401, "Invalid credentials in Authorization header")
        if host.load_error is not None:
            return hf_error(500, f"Handler failed to load: {host.load_error}")
        wait = host.seconds_until_ready()
        if wait > 0:
            wait = await _held_until_ready(request, host)
        if wait > 0:
            return hf_loading(wait)
        payload = await _payload(request)
        if isinstance(payload, Response):
            return payload
        try:
            result = await run_in_threadpool(host, payload)
        except ValueError as error:  # BadAudioError and other input errors
            return hf_error(400, str(error))
        except Exception as error:  # a handler bug: say so, as a server error
            log.exception("stress handler failed")
            return hf_error(500, f"{type(error).__name__}: {error}")
        return Response(json.dumps(result, default=_plain_number), media_type="application/json")

    app.add_api_route(PREDICT_PATH, predict, methods=["POST"])

    @app.get("/health")
    async def health() -> Response:
        if host.load_error is not None:
            return hf_error(500, f"Handler failed to load: {host.load_error}")
        if not host.loaded:
            return hf_loading(host.seconds_until_ready())
        wait = host.seconds_until_ready()
        return JSONResponse({"status": "ok", "warming_up": wait > 0, "estimated_time": round(wait, 1)})

    return app


async def _held_until_ready(request: Request, host: HandlerHost) -> float:
    """Hold a request that asks for it (X-Scale-Up-Timeout) while the endpoint scales up; returns
    the wait still left (0: ready, serve it)."""
    try:
        hold = float(request.headers.get("x-scale-up-timeout", "0"))
    except ValueError:
        hold = 0.0
    give_up_at = time.monotonic() + max(0.0, hold)
    await request.body()  # read first: the disconnect check would otherwise swallow the body
    while (wait := host.seconds_until_ready()) > 0 and time.monotonic() < give_up_at:
        if host.load_error is not None or await request.is_disconnected():
            break
        await asyncio.sleep(min(0.05, wait))
    return host.seconds_until_ready()


def _authorized(request: Request, token: str) -> bool:
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    return scheme.lower() == "bearer" and given.strip() == token


async def _payload(request: Request) -> dict[str, Any] | Response:
    """The handler's ``data`` for a raw audio body; HF's 415 for any other content type."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type.startswith("audio/") or content_type in RAW_AUDIO_TYPES:
        return {"inputs": await request.body()}
    return hf_error(415, f"Content type {content_type or '(none)'!r} is not supported; send audio/*")


def _plain_number(value: Any) -> Any:
    """numpy and torch scalars as plain Python numbers."""
    if hasattr(value, "item"):
        return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")
