"""Decode an uploaded voice file once, with PyAV (FFmpeg), into what validation and the services need.

Decoding proves the upload is real audio before any paid call, gives its true duration and level,
and yields a canonical 16 kHz mono WAV: a format every speech endpoint accepts, unlike the
container zoo phones record (caf, 3gp, raw aac).
"""

from __future__ import annotations

import io
import math
import wave
from dataclasses import dataclass

import av
import numpy as np

SAMPLE_RATE = 16_000


class UndecodableAudio(ValueError):
    """The bytes are not audio FFmpeg can decode."""


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


def decode_audio(data: bytes, max_duration_s: float | None = None) -> DecodedAudio:
    """Decode any container/codec FFmpeg knows to 16 kHz mono float32.

    Decoding stops a little past `max_duration_s` so an hour-long upload costs no more than the
    limit it is about to be rejected for; the returned duration then exceeds the limit.
    """
    if not data:
        raise UndecodableAudio("The file is empty.")
    cap = None if max_duration_s is None else int((max_duration_s + 1) * SAMPLE_RATE)
    chunks: list[np.ndarray] = []
    total = 0
    try:
        with av.open(io.BytesIO(data), mode="r") as container:
            if not container.streams.audio:
                raise UndecodableAudio("The file has no audio track.")
            stream = container.streams.audio[0]
            codec = stream.codec_context.name
            resampler = av.AudioResampler(format="flt", layout="mono", rate=SAMPLE_RATE)
            for frame in container.decode(stream):
                for out in resampler.resample(frame):
                    chunk = out.to_ndarray().reshape(-1)
                    chunks.append(chunk)
                    total += len(chunk)
                if cap is not None and total > cap:
                    break
            else:
                chunks.extend(out.to_ndarray().reshape(-1) for out in resampler.resample(None))
    except UndecodableAudio:
        raise
    except (av.FFmpegError, ValueError, IndexError) as exc:
        raise UndecodableAudio(f"The file is not decodable audio ({type(exc).__name__}).") from exc
    if not chunks or total == 0:
        raise UndecodableAudio("The file decodes to no audio samples.")
    return DecodedAudio(samples=np.concatenate(chunks).astype(np.float32, copy=False), codec=codec)
