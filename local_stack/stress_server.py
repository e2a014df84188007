"""A Hugging Face Inference Endpoint hosting the project's ``EndpointHandler``, as the production
adapter (emochat.pipeline.adapters.hf_stress) calls it.

``POST /`` takes raw audio (``audio/*``, ``video/mp4`` or ``application/octet-stream``; anything else
is HF's 415) and hands it to the handler as ``{"inputs": <bytes>}``, as the Inference Toolkit does;
the handler's list (``[{"label": "stressed", "score": p}, ...]``) is the answer, its ``ValueError``
(bad audio) a 400 ``{"error": ...}``. While the handler loads, and for ``warmup_seconds`` after
start, requests get HF's 503 ``{"error": "... is currently loading", "estimated_time": N}`` (an
endpoint scaling up from zero), unless they carry ``X-Scale-Up-Timeout: <seconds>``: then, as HF's
proxy does, they are held until the endpoint is ready or that time is up. A scripted 503 fault
ignores the header (it stands for an endpoint that does). ``GET /health`` is 200 once loaded.
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

DEFAULT_PACKAGE_DIR = Path(__file__).resolve().parents[1] / "stress_model"  # holds package stress_model
DEFAULT_MODEL_DIR = DEFAULT_PACKAGE_DIR / "checkpoints" / "demo"
RAW_AUDIO_TYPES = frozenset({"application/octet-stream", "video/mp4"})  # besides audio/*
LOADING_GUESS_SECONDS = 5.0  # estimated_time while the handler itself is still loading
Handler = Callable[[dict[str, Any]], Any]  # HF's custom handler interface


@dataclass(frozen=True)
class StressSettings:
    model_dir: Path = DEFAULT_MODEL_DIR
    package_dir: Path = DEFAULT_PACKAGE_DIR
    token: str | None = None  # None: no Authorization needed
    warmup_seconds: float = 0.0


def hf_error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def hf_loading(estimated_time: float) -> JSONResponse:
    message = "Model emochat/stress-student is currently loading"
    return JSONResponse({"error": message, "estimated_time": round(estimated_time, 1)}, status_code=503)


def render_scripted_error(status: int) -> JSONResponse:
    if status == 503:
        return hf_loading(LOADING_GUESS_SECONDS)
    return hf_error(status, HTTPStatus(status).phrase)


def create_app(settings: StressSettings, loader: Callable[[], Handler] | None = None) -> FastAPI:
    """``loader`` builds the handler; by default stress_model.handler.EndpointHandler(model_dir)."""

    def project_handler() -> Handler:
        if str(settings.package_dir) not in sys.path:
            sys.path.insert(0, str(settings.package_dir))
        return importlib.import_module("stress_model.handler").EndpointHandler(str(settings.model_dir))

    handler: list[Handler] = []  # filled by the loader thread
    load_error: list[str] = []
    call_lock = threading.Lock()  # one call at a time: the model is not shared
    started_at = time.monotonic()

    def load() -> None:
        try:
            handler.append((loader or project_handler)())
        except Exception as error:  # reported on /health and every request instead of dying silently
            log.exception("stress handler failed to load")
            load_error.append(f"{type(error).__name__}: {error}")

    def seconds_until_ready() -> float:
        warmup_left = settings.warmup_seconds - (time.monotonic() - started_at)
        return max(warmup_left, 0.0 if handler else LOADING_GUESS_SECONDS)

    def call(data: dict[str, Any]) -> Any:
        with call_lock:
            return handler[0](data)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        nonlocal started_at
        started_at = time.monotonic()
        threading.Thread(target=load, name="stress-handler-loader", daemon=True).start()
        yield

    app = FastAPI(title="EmoChat local Hugging Face endpoint stand-in", lifespan=lifespan)
    dialect = FaultDialect(render_scripted_error, {"label": "stressed", "probability": 0.5})
    install_faults(app, dialect, is_api_path=lambda path: path == "/")

    @app.post("/")
    async def predict(request: Request) -> Response:
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        if settings.token is not None and (scheme.lower() != "bearer" or given.strip() != settings.token):
            return hf_error(401, "Invalid credentials in Authorization header")
        if load_error:
            return hf_error(500, f"Handler failed to load: {load_error[0]}")
        if seconds_until_ready() > 0:  # hold it while the endpoint scales up, if it asks for that
            try:
                hold = float(request.headers.get("x-scale-up-timeout", "0"))
            except ValueError:
                hold = 0.0
            give_up_at = time.monotonic() + hold
            await request.body()  # read first: the disconnect check would otherwise swallow the body
            while seconds_until_ready() > 0 and time.monotonic() < give_up_at and not load_error:
                if await request.is_disconnected():
                    break
                await asyncio.sleep(0.05)
            if (wait := seconds_until_ready()) > 0:
                return hf_loading(wait)
        content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if not (content_type.startswith("audio/") or content_type in RAW_AUDIO_TYPES):
            return hf_error(415, f"Content type {content_type or '(none)'!r} is not supported; send audio/*")
        try:
            result = await run_in_threadpool(call, {"inputs": await request.body()})
        except ValueError as error:  # BadAudioError and other input errors
            return hf_error(400, str(error))
        except Exception as error:  # a handler bug: say so, as a server error
            log.exception("stress handler failed")
            return hf_error(500, f"{type(error).__name__}: {error}")
        # numpy and torch scalars as plain numbers
        return Response(json.dumps(result, default=lambda value: value.item()), media_type="application/json")

    @app.get("/health")
    async def health() -> Response:
        if load_error:
            return hf_error(500, f"Handler failed to load: {load_error[0]}")
        wait = seconds_until_ready()
        if not handler:
            return hf_loading(wait)
        return JSONResponse({"status": "ok", "warming_up": wait > 0, "estimated_time": round(wait, 1)})

    return app
