"""Real, decodable audio made in memory, without external tools."""

from __future__ import annotations

import io
import math
import wave

import numpy as np


def make_wav(seconds: float = 1.0, rate: int = 16_000, amplitude: float = 0.3, freq: float = 220.0) -> bytes:
    """A mono 16-bit WAV tone."""
    t = np.arange(int(seconds * rate)) / rate
    samples = (amplitude * np.sin(2 * math.pi * freq * t) * 32767).astype("<i2")
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(samples.tobytes())
    return buffer.getvalue()
