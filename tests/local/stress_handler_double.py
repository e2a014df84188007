"""A test double of ``stress_model.handler``: the same interface, no model.

It decodes the audio for real (PyAV, as the project handler does) so that bad audio fails the same
way, and scores by loudness, so the result is deterministic and depends on the input.
"""

from __future__ import annotations

import io
from typing import Any

import numpy as np
from faster_whisper import decode_audio


class BadAudioError(ValueError):
    """The input is not decodable audio (the project handler raises its own, also a ValueError)."""


class EndpointHandler:
    def __init__(self, path: str = "") -> None:
        self.path = path
        self.calls = 0

    def __call__(self, data: dict[str, Any]) -> list[dict[str, Any]]:
        self.calls += 1
        audio = _decode(_audio_bytes(data.get("inputs")))
        stressed = round(min(float(np.sqrt(np.mean(audio**2))) * 4.0, 1.0), 4)
        return [{"label": "stressed", "score": stressed}, {"label": "not_stressed", "score": 1.0 - stressed}]


def _audio_bytes(inputs: Any) -> bytes:
    if isinstance(inputs, bytes | bytearray) and inputs:
        return bytes(inputs)
    raise BadAudioError("no audio in inputs")


def _decode(data: bytes) -> np.ndarray:
    try:
        audio = decode_audio(io.BytesIO(data), sampling_rate=16_000)
    except Exception as error:
        raise BadAudioError(f"could not decode audio: {error}") from error
    if audio.size == 0:
        raise BadAudioError("audio has no samples")
    return audio
