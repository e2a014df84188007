"""Speech-to-text through OpenAI's transcription API, with the official `openai` client.

The client is configured as usual (timeout, max_retries), but the retries happen here, one request
at a time: only here is the event's deadline known, so every attempt gets the smaller of the
client's timeout and the time left, and a wait (Retry-After, backoff) is taken only if an attempt
still fits after it. Retried like the client would: timeouts, connection errors, 408, 409, 429 and
5xx, honouring Retry-After; plus one retry of a 200 whose body is garbled (a proxy's page, a cut-off
body), which the client does not retry.

Each model is asked for the one format that tells the most: `whisper-1` for verbose_json (the
detected language, by name), the others for json (gpt-4o-transcribe and gpt-4o-mini-transcribe
refuse verbose_json with a 400; gpt-transcribe lists the detected languages in json). The `usage`
the API returns (duration for whisper-1 and gpt-transcribe, tokens for the gpt-4o models) travels
back with the transcript, with the audio seconds sent, for the backend's bookkeeping.
"""

from __future__ import annotations

import email.utils
import math
import time
from collections.abc import Mapping
from typing import Any, Literal

import openai

from emochat.language import language_code
from emochat.pipeline.budget import Deadline
from emochat.pipeline.ports import ServiceError, Transcript, TranscriptionUsage, VoiceClip

# The models tested against the stand-in (tests/integration/test_service_adapters.py); dated
# snapshots of them (gpt-4o-mini-transcribe-2025-12-15) take the same format.
SUPPORTED_MODELS = ("whisper-1", "gpt-4o-mini-transcribe", "gpt-4o-transcribe", "gpt-transcribe")
RETRYABLE_STATUSES = frozenset({408, 409, 429})
BACKOFF_S, MAX_BACKOFF_S = 0.5, 8.0  # the openai client's own schedule
MIN_ATTEMPT_S = 1.0  # less time than this left for a request: give up rather than start it


def response_format_for(model: str) -> Literal["verbose_json", "json"]:
    """verbose_json where the model gives it (Whisper), json everywhere else."""
    return "verbose_json" if model.startswith("whisper") else "json"


class _Failure(Exception):
    """One attempt's failure: the port's error, whether another attempt may help, the server's wait."""

    def __init__(self, error: ServiceError, retryable: bool, retry_after_s: float | None = None) -> None:
        super().__init__(error.message)
        self.error, self.retryable, self.retry_after_s = error, retryable, retry_after_s


class OpenAITranscriber:
    def __init__(self, client: openai.OpenAI, model: str, bad_answer_retries: int = 1) -> None:
        self._client = client.with_options(max_retries=0)
        self._max_retries = client.max_retries
        self._timeout_s = _seconds(client.timeout)
        self._model = model
        self._bad_answer_retries = bad_answer_retries

    def transcribe(
        self, clip: VoiceClip, language: str | None, deadline: Deadline | None = None
    ) -> Transcript:
        """`language` is an ISO-639-1 hint (emochat.language.language_code) or None to detect."""
        deadline = deadline or Deadline(math.inf)
        retries = bad_answers = 0
        error = ServiceError("stt_timeout", "No time was left for speech-to-text.")
        while (timeout_s := deadline.allow(self._timeout_s)) >= MIN_ATTEMPT_S:
            try:
                return self._transcribe_once(clip, language, timeout_s)
            except _Failure as failure:
                error = failure.error
                if not failure.retryable:
                    raise error from failure.error.__cause__
                if error.code == "stt_bad_response":
                    bad_answers += 1
                    exhausted = bad_answers > self._bad_answer_retries
                else:
                    retries += 1
                    exhausted = retries > self._max_retries
                wait_s = failure.retry_after_s
                if wait_s is None:
                    wait_s = min(BACKOFF_S * 2 ** max(retries - 1, 0), MAX_BACKOFF_S)
                if exhausted or not deadline.leaves(wait_s, MIN_ATTEMPT_S):
                    raise error from failure.error.__cause__
                deadline.clock.sleep(wait_s)
        raise error

    def _transcribe_once(self, clip: VoiceClip, language: str | None, timeout_s: float) -> Transcript:
        try:
            result = self._client.audio.transcriptions.create(
                model=self._model,
                file=(clip.filename, clip.data, clip.content_type),
                language=language or openai.omit,
                response_format=response_format_for(self._model),
                timeout=timeout_s,
            )
        except openai.APITimeoutError as exc:
            raise _failure("stt_timeout", "Speech-to-text timed out.", exc, retryable=True) from exc
        except openai.APIConnectionError as exc:
            raise _failure("stt_unavailable", "Speech-to-text could not be reached.", exc, True) from exc
        except openai.RateLimitError as exc:
            raise _failure("stt_rate_limited", "Speech-to-text is rate limited.", exc, True) from exc
        except openai.APIStatusError as exc:
            raise _failure(
                "stt_rejected" if exc.status_code < 500 else "stt_unavailable",
                f"Speech-to-text answered HTTP {exc.status_code}.",
                exc,
                retryable=exc.status_code in RETRYABLE_STATUSES or exc.status_code >= 500,
            ) from exc
        except (openai.APIResponseValidationError, ValueError) as exc:
            # ValueError: a body that is not JSON at all (json.JSONDecodeError).
            raise _failure("stt_bad_response", "Speech-to-text sent a malformed answer.", exc, True) from exc
        text = getattr(result, "text", None)
        if not isinstance(text, str):
            raise _Failure(ServiceError("stt_bad_response", "Speech-to-text sent no transcript."), True)
        return Transcript(
            text=text.strip(),
            language=_detected_language(result) or language,
            usage=TranscriptionUsage(
                model=self._model, audio_seconds=clip.duration_s, api_usage=_api_usage(result)
            ),
        )


def _detected_language(result: object) -> str | None:
    """The language the model reports, as a code: verbose_json names one ("english"),
    gpt-transcribe lists codes (an empty list: none reliably detected); other models report none."""
    named = getattr(result, "language", None)
    if named:
        return language_code(named)
    for reported in getattr(result, "languages", None) or []:
        code = language_code(getattr(reported, "code", None))
        if code:
            return code
    return None


def _api_usage(result: object) -> dict[str, Any] | None:
    usage = getattr(result, "usage", None)
    return usage.model_dump(exclude_none=True) if usage is not None else None


def _failure(code: str, message: str, exc: Exception, retryable: bool) -> _Failure:
    error = ServiceError(code, message)
    error.__cause__ = exc
    headers = getattr(getattr(exc, "response", None), "headers", None)
    return _Failure(error, retryable, _retry_after_s(headers) if headers is not None else None)


def _retry_after_s(headers: Mapping[str, str]) -> float | None:
    """The server's requested wait: retry-after-ms (OpenAI's), else Retry-After in seconds or a date."""
    try:
        if "retry-after-ms" in headers:
            return max(0.0, float(headers["retry-after-ms"]) / 1000)
        value = headers.get("retry-after")
        if value is None:
            return None
        try:
            return max(0.0, float(value))
        except ValueError:
            when = email.utils.parsedate_to_datetime(value)
            return max(0.0, when.timestamp() - time.time())
    except (TypeError, ValueError, OverflowError):
        return None


def _seconds(timeout: object) -> float:
    """The client's per-request timeout in seconds (a number, or a Timeout's read timeout)."""
    if isinstance(timeout, int | float):
        return float(timeout)
    read = getattr(timeout, "read", None)
    return float(read) if isinstance(read, int | float) else 60.0
