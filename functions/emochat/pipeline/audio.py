"""Decode an uploaded voice file once, with PyAV (FFmpeg), into what validation and the services need.

Decoding proves the upload is real audio before any paid call, gives its true duration and level,
and yields a canonical 16 kHz mono WAV: a format every speech endpoint accepts, unlike the
container zoo phones record (caf, 3gp, raw aac).

The guarded decode itself (the accepted containers and codecs, and every limit on what an upload
may declare or decode to) is guarded_decode.py, which the stress endpoint runs too. A refusal is an
UndecodableAudio carrying its error code; nothing else escapes.
"""

from __future__ import annotations

import io
import math
import wave
from dataclasses import dataclass

import numpy as np

from emochat.pipeline.guarded_decode import UndecodableAudio, decode_capped, refuse

__all__ = ["DEFAULT_MAX_DURATION_S", "SAMPLE_RATE", "DecodedAudio", "UndecodableAudio", "decode_audio"]

SAMPLE_RATE = 16_000
DEFAULT_MAX_DURATION_S = 120.0


@dataclass(frozen=True)
class DecodedAudio:
    samples: np.ndarray  # float32 mono in [-1, 1] at SAMPLE_RATE
    codec: str

    @property
    def duration_ms(self) -> int:
        return round(1000 * len(self.samples) / SAMPLE_RATE)

    @property
    def peak_dbfs(self) -> float:
        peak = float(np.max(np.abs(self.samples))) if len(self.samples) else 0.0
        return 20 * math.log10(peak) if peak > 0 else -math.inf

    def to_wav(self) -> bytes:
        pcm = (np.clip(self.samples, -1.0, 1.0) * 32767).astype("<i2")
        buffer = io.BytesIO()
        with wave.open(buffer, "wb") as wav:
            wav.setnchannels(1)
            wav.setsampwidth(2)
            wav.setframerate(SAMPLE_RATE)
            wav.writeframes(pcm.tobytes())
        return buffer.getvalue()


def decode_audio(data: bytes, max_duration_s: float = DEFAULT_MAX_DURATION_S) -> DecodedAudio:
    """Decode an accepted container/codec to 16 kHz mono float32, at most `max_duration_s` + 1 s.

    Decoding stops a little past `max_duration_s` so an hour-long upload costs no more than the
    limit it is about to be rejected for; the returned duration then exceeds the limit.
    Raises UndecodableAudio (with its `code`) for anything refused or failing.
    """
    if not data:
        refuse("undecodable_audio", "The file is empty.")
    cap = int((max_duration_s + 1) * SAMPLE_RATE)  # a little past the limit: "too long" is then decided
    try:
        samples, codec = decode_capped(data, SAMPLE_RATE, cap, max_duration_s)
    except UndecodableAudio:
        raise
    except Exception as exc:  # FFmpeg's errors, and anything unforeseen: bad input, never a crash
        raise UndecodableAudio(f"The file is not decodable audio ({type(exc).__name__}).") from exc
    return DecodedAudio(samples=samples, codec=codec)
