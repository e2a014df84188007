"""Real, decodable audio made in memory, without external tools: the tests' one WAV writer."""

from __future__ import annotations

import io
import math
import wave

import numpy as np


def wav_bytes(x: np.ndarray, sr: int, channels: int = 1) -> bytes:
    """16-bit PCM WAV in memory (x in [-1, 1]: (n,) or (n, channels))."""
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(2)
        w.setframerate(sr)
        w.writeframes((np.clip(x, -1, 1) * 32767).astype(np.int16).tobytes())
    return buf.getvalue()


def make_wav(seconds: float = 1.0, rate: int = 16_000, amplitude: float = 0.3, freq: float = 220.0) -> bytes:
    """A mono 16-bit WAV tone."""
    t = np.arange(int(seconds * rate)) / rate
    return wav_bytes(amplitude * np.sin(2 * math.pi * freq * t), rate)
