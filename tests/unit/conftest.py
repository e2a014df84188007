from __future__ import annotations

import io
import math
import wave

import numpy as np
import pytest


def make_wav(seconds: float = 1.0, rate: int = 16_000, amplitude: float = 0.3, freq: float = 220.0) -> bytes:
    """A mono 16-bit WAV tone: real, decodable audio without external tools."""
    t = np.arange(int(seconds * rate)) / rate
    samples = (amplitude * np.sin(2 * math.pi * freq * t) * 32767).astype("<i2")
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(samples.tobytes())
    return buffer.getvalue()


@pytest.fixture
def tone_wav() -> bytes:
    return make_wav()
