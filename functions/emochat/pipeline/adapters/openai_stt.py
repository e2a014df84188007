"""Speech-to-text through OpenAI's transcription API, with the official `openai` client.

The client owns timeouts and retries (429 with Retry-After, 408/409/5xx, connection errors, with
exponential backoff); this adapter only maps its outcome onto the port.

Each model is asked for the one format that tells the most: `whisper-1` for verbose_json (the
detected language, by name), the others for json (gpt-4o-transcribe and gpt-4o-mini-transcribe
refuse verbose_json with a 400; gpt-transcribe lists the detected languages in json). The `usage`
the API returns (duration for whisper-1 and gpt-transcribe, tokens for the gpt-4o models) travels
back with the transcript, with the audio seconds sent, for the backend's bookkeeping.
"""

from __future__ import annotations

from typing import Any, Literal

import openai

from emochat.language import language_code
from emochat.pipeline.ports import ServiceError, Transcript, TranscriptionUsage, VoiceClip

# The models tested against the stand-in (tests/integration/test_service_adapters.py); dated
# snapshots of them (gpt-4o-mini-transcribe-2025-12-15) take the same format.
SUPPORTED_MODELS = ("whisper-1", "gpt-4o-mini-transcribe", "gpt-4o-transcribe", "gpt-transcribe")


def response_format_for(model: str) -> Literal["verbose_json", "json"]:
    """verbose_json where the model gives it (Whisper), json everywhere else."""
    return "verbose_json" if model.startswith("whisper") else "json"


class OpenAITranscriber:
    def __init__(self, client: openai.OpenAI, model: str, bad_answer_retries: int = 1) -> None:
        self._client = client
        self._model = model
        # The client retries HTTP errors itself but not a 200 whose body is garbled (a proxy's page, a
        # cut-off body): that is transient too, so it gets one more try here.
        self._bad_answer_retries = bad_answer_retries

    def transcribe(self, clip: VoiceClip, language: str | None) -> Transcript:
        """`language` is an ISO-639-1 hint (emochat.language.language_code) or None to detect."""
        for attempt in range(self._bad_answer_retries + 1):
            try:
                return self._transcribe_once(clip, language)
            except ServiceError as error:
                if error.code != "stt_bad_response" or attempt == self._bad_answer_retries:
                    raise
        raise AssertionError("unreachable")

    def _transcribe_once(self, clip: VoiceClip, language: str | None) -> Transcript:
        try:
            result = self._client.audio.transcriptions.create(
                model=self._model,
                file=(clip.filename, clip.data, clip.content_type),
                language=language or openai.omit,
                response_format=response_format_for(self._model),
            )
        except openai.APITimeoutError as exc:
            raise ServiceError("stt_timeout", "Speech-to-text timed out.") from exc
        except openai.APIConnectionError as exc:
            raise ServiceError("stt_unavailable", "Speech-to-text could not be reached.") from exc
        except openai.RateLimitError as exc:
            raise ServiceError("stt_rate_limited", "Speech-to-text is rate limited.") from exc
        except openai.APIStatusError as exc:
            raise ServiceError(
                "stt_rejected" if exc.status_code < 500 else "stt_unavailable",
                f"Speech-to-text answered HTTP {exc.status_code}.",
            ) from exc
        except (openai.APIResponseValidationError, ValueError) as exc:
            # ValueError: a body that is not JSON at all (json.JSONDecodeError).
            raise ServiceError("stt_bad_response", "Speech-to-text sent a malformed answer.") from exc
        text = getattr(result, "text", None)
        if not isinstance(text, str):
            raise ServiceError("stt_bad_response", "Speech-to-text sent no transcript.")
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
