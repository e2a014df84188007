"""Stress scoring through our model on a Hugging Face Inference Endpoint, over HTTP with httpx.

Request: the raw audio bytes with an audio/* content type (the endpoint toolkit's binary input).
Response: [{"label": "stressed", "score": p}, {"label": "not_stressed", "score": 1 - p}].
Retries are bounded by a deadline (its own budget, inside the event's deadline) so they always fit
inside the function's timeout: 503 while the endpoint scales up from zero (its body says how long),
429 (Retry-After), other 5xx and timeouts.

An endpoint scaled to zero answers 503 while a replica starts, unless the request carries
`X-Scale-Up-Timeout: <seconds>`: then its proxy holds the request until a replica is ready (or that
many seconds pass). Once the endpoint has answered 503, every later attempt carries the header,
asking for as much holding as the deadline leaves after the model's own time (the read timeout),
and waits that much longer for the answer. Not before: a held request and a hung one look the same
to the client (no byte until the answer), so a first attempt held for minutes would let one stalled
request on a warm endpoint eat the whole deadline instead of being cut at the read timeout and
retried. An endpoint or proxy that ignores the header still answers 503, retried as before.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

import httpx

from emochat.pipeline.budget import Deadline
from emochat.pipeline.ports import ServiceError, VoiceClip


class HuggingFaceStressScorer:
    def __init__(
        self,
        client: httpx.Client,
        url: str,
        token: str | None = None,
        model_name: str = "emochat-stress",
        deadline_s: float = 120.0,
        max_attempts: int = 6,
        backoff_s: float = 1.0,
        scale_up_timeout_s: float = 120.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._client = client
        self._url = url
        self._headers = {"Accept": "application/json"}
        if token:
            self._headers["Authorization"] = f"Bearer {token}"
        self.model_name = model_name
        self._deadline_s = deadline_s
        self._max_attempts = max_attempts
        self._backoff_s = backoff_s
        self._scale_up_timeout_s = scale_up_timeout_s
        self._sleep = sleep

    def score_stress(self, clip: VoiceClip, deadline: Deadline | None = None) -> float:
        # Its own retry budget, inside whatever the event has left.
        deadline = (deadline or Deadline(math.inf)).within(self._deadline_s)
        problem = ServiceError("stress_unavailable", "The stress model could not be reached.")
        scaling_up = False  # the endpoint answered 503: from then on, ask it to hold the request
        for attempt in range(self._max_attempts):
            remaining = deadline.remaining()
            if remaining <= 0:
                break
            read_s = min(remaining, self._client.timeout.read or remaining)
            hold_s = scale_up_hold_s(self._scale_up_timeout_s, remaining, read_s) if scaling_up else 0
            headers = {**self._headers, "Content-Type": clip.content_type}
            if hold_s:
                headers["X-Scale-Up-Timeout"] = str(hold_s)
            try:
                response = self._client.post(
                    self._url,
                    content=clip.data,
                    headers=headers,
                    timeout=httpx.Timeout(min(remaining, read_s + hold_s)),
                )
            except httpx.TimeoutException:
                problem = ServiceError("stress_timeout", "The stress model timed out.")
                wait = self._backoff_s * 2**attempt
            except httpx.TransportError:
                problem = ServiceError("stress_unavailable", "The stress model could not be reached.")
                wait = self._backoff_s * 2**attempt
            else:
                if response.status_code == 200:
                    try:
                        return parse_stressed_probability(response.json())
                    except ValueError as exc:
                        # A garbled answer (a proxy's error page, a cut-off body) is worth one more try.
                        problem = ServiceError("stress_bad_response", f"The stress model's answer: {exc}")
                        wait = self._backoff_s * 2**attempt
                elif response.status_code in (400, 413, 415, 422):
                    raise ServiceError(
                        "stress_rejected", f"The stress model refused the audio: {_error_text(response)}"
                    )
                elif response.status_code in (401, 403, 404):
                    raise ServiceError(
                        "stress_misconfigured", f"The stress endpoint answered HTTP {response.status_code}."
                    )
                else:
                    scaling_up = scaling_up or response.status_code == 503
                    problem = ServiceError(
                        "stress_rate_limited" if response.status_code == 429 else "stress_unavailable",
                        f"The stress model answered HTTP {response.status_code}.",
                    )
                    wait = _server_wait(response) or self._backoff_s * 2**attempt
            if wait >= deadline.remaining():
                break
            self._sleep(wait)
        raise problem


def scale_up_hold_s(scale_up_timeout_s: float, remaining_s: float, read_s: float) -> int:
    """Whole seconds a scaled-to-zero endpoint may hold this attempt: what the deadline leaves after
    the model's own time, at most the configured timeout; 0 sends no header. (Rounded: the attempt's
    timeout is capped at the time left anyway, so half a second over never outlives the deadline.)"""
    return max(0, min(int(scale_up_timeout_s), round(remaining_s - read_s)))


def parse_stressed_probability(body: object) -> float:
    """P(stressed) from a text-classification style answer; also accepts the [[...]] batch shape."""
    if isinstance(body, list) and len(body) == 1 and isinstance(body[0], list):
        body = body[0]
    if not isinstance(body, list):
        raise ValueError("expected a list of {label, score}")
    for item in body:
        if isinstance(item, dict) and item.get("label") == "stressed":
            score = item.get("score")
            if isinstance(score, int | float) and 0.0 <= score <= 1.0:
                return float(score)
            raise ValueError(f"score {score!r} is not a probability")
    raise ValueError("no 'stressed' label")


def _server_wait(response: httpx.Response) -> float | None:
    """How long the server asked us to wait: Retry-After, or a loading endpoint's estimated_time."""
    retry_after = response.headers.get("Retry-After")
    if retry_after:
        try:
            return max(0.0, float(retry_after))
        except ValueError:
            pass
    if response.status_code == 503:
        try:
            estimated = response.json().get("estimated_time")
        except (ValueError, AttributeError):
            return None
        if isinstance(estimated, int | float):
            # Poll while it loads rather than sleeping through the whole estimate.
            return min(float(estimated), 10.0)
    return None


def _error_text(response: httpx.Response) -> str:
    try:
        error = response.json().get("error")
    except (ValueError, AttributeError):
        error = None
    return str(error or f"HTTP {response.status_code}")[:200]
