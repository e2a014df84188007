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


def make_wav(
    seconds: float = 1.0,
    rate: int = 16_000,
    amplitude: float = 0.3,
    freq: float = 220.0,
    channels: int = 1,
    sample_bytes: int = 2,
) -> bytes:
    """A WAV tone, mono 16-bit unless asked otherwise (a field recorder writes stereo 24-bit)."""
    t = np.arange(int(seconds * rate)) / rate
    if sample_bytes == 2:
        tone = amplitude * np.sin(2 * math.pi * freq * t)
        return wav_bytes(np.repeat(tone[:, None], channels, axis=1), rate, channels)
    full_scale = 2 ** (8 * sample_bytes - 1) - 1
    samples = (amplitude * np.sin(2 * math.pi * freq * t) * full_scale).astype("<i4")
    # Little-endian: a sample's low `sample_bytes` bytes are the PCM sample of that width.
    frames = np.repeat(samples, channels).view(np.uint8).reshape(-1, 4)[:, :sample_bytes]
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as wav:
        wav.setnchannels(channels)
        wav.setsampwidth(sample_bytes)
        wav.setframerate(rate)
        wav.writeframes(frames.tobytes())
    return buffer.getvalue()
