"""Speech-to-text through OpenAI's transcription API, with the official `openai` client.

The client owns timeouts and retries (429 with Retry-After, 408/409/5xx, connection errors, with
exponential backoff); this adapter only maps its outcome onto the port.
"""

from __future__ import annotations

import openai

from emochat.pipeline.ports import ServiceError, Transcript, VoiceClip


class OpenAITranscriber:
    def __init__(self, client: openai.OpenAI, model: str = "whisper-1", bad_answer_retries: int = 1) -> None:
        self._client = client
        self._model = model
        # The client retries HTTP errors itself but not a 200 whose body is garbled (a proxy's page, a
        # cut-off body): that is transient too, so it gets one more try here.
        self._bad_answer_retries = bad_answer_retries

    def transcribe(self, clip: VoiceClip, language: str | None) -> Transcript:
        for attempt in range(self._bad_answer_retries + 1):
            try:
                return self._transcribe_once(clip, language)
            except ServiceError as error:
                if error.code != "stt_bad_response" or attempt == self._bad_answer_retries:
                    raise
        raise AssertionError("unreachable")

    def _transcribe_once(self, clip: VoiceClip, language: str | None) -> Transcript:
        # whisper-1 reports the detected language only in verbose_json; newer models only do json.
        verbose = self._model.startswith("whisper")
        try:
            result = self._client.audio.transcriptions.create(
                model=self._model,
                file=(clip.filename, clip.data, clip.content_type),
                language=language or openai.omit,
                response_format="verbose_json" if verbose else "json",
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
