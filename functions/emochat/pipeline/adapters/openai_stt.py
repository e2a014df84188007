"""Speech-to-text through OpenAI's transcription API, with the official `openai` client.

The client is configured as usual (timeout, max_retries), but the retries happen here, one request
at a time: only here is the event's deadline known, so every attempt gets the smaller of the
client's timeout and the time left, and a wait (Retry-After, backoff) is taken only if an attempt
still fits after it. Retried like the client would: timeouts, connection errors, 408, 409, 429 and
5xx, honouring Retry-After; plus one retry of a 200 whose body is garbled (a proxy's page, a cut-off
body), which the client does not retry.
"""

from __future__ import annotations

import email.utils
import math
import time
from collections.abc import Mapping

import openai

from emochat.pipeline.budget import Deadline
from emochat.pipeline.ports import ServiceError, Transcript, VoiceClip

RETRYABLE_STATUSES = frozenset({408, 409, 429})
BACKOFF_S, MAX_BACKOFF_S = 0.5, 8.0  # the openai client's own schedule
MIN_ATTEMPT_S = 1.0  # less time than this left for a request: give up rather than start it


class _Failure(Exception):
    """One attempt's failure: the port's error, whether another attempt may help, the server's wait."""

    def __init__(self, error: ServiceError, retryable: bool, retry_after_s: float | None = None) -> None:
        super().__init__(error.message)
        self.error, self.retryable, self.retry_after_s = error, retryable, retry_after_s


class OpenAITranscriber:
    def __init__(self, client: openai.OpenAI, model: str = "whisper-1", bad_answer_retries: int = 1) -> None:
        self._client = client.with_options(max_retries=0)
        self._max_retries = client.max_retries
        self._timeout_s = _seconds(client.timeout)
        self._model = model
        self._bad_answer_retries = bad_answer_retries

    def transcribe(
        self, clip: VoiceClip, language: str | None, deadline: Deadline | None = None
    ) -> Transcript:
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
        # whisper-1 reports the detected language only in verbose_json; newer models only do json.
        verbose = self._model.startswith("whisper")
        try:
            result = self._client.audio.transcriptions.create(
                model=self._model,
                file=(clip.filename, clip.data, clip.content_type),
                language=language or openai.omit,
                response_format="verbose_json" if verbose else "json",
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
        detected = getattr(result, "language", None)
        return Transcript(text=text.strip(), language=_language_code(detected) or language)


# verbose_json names the language ("english"); the contract stores a code, like the hint ("en").
_LANGUAGE_CODES = {
    "english": "en",
    "korean": "ko",
    "japanese": "ja",
    "chinese": "zh",
    "spanish": "es",
    "french": "fr",
    "german": "de",
}


def _language_code(name: str | None) -> str | None:
    if not name:
        return None
    name = name.strip().lower()
    return _LANGUAGE_CODES.get(name, name if len(name) <= 3 else None)


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
