"""Decode any common audio container to 16 kHz mono float32, then trim and check it.

PyAV (bundled FFmpeg) reads m4a/AAC, webm/opus, ogg, mp3, wav, 3gp, caf from bytes in memory.
Resampling uses FFmpeg's own resampler (`av.AudioResampler`) from whatever rate the file has,
so a 44.1 kHz or 8 kHz upload reaches the encoder at 16 kHz. (The original inference code
"resampled" 16 kHz -> 16 kHz, i.e. never, and fed other rates to the model as if they were 16 kHz.)
"""

from __future__ import annotations

import io
from pathlib import Path

import av
import librosa
import numpy as np

from stress_model.config import FeatureConfig


class BadAudioError(ValueError):
    """The input cannot be scored: undecodable, empty, silent or too short. Message is one line."""


def decode(
    source: bytes | str | Path, sample_rate: int = 16_000, max_seconds: float | None = None
) -> np.ndarray:
    """Decode bytes (or a file path) to mono float32 at `sample_rate`; stop after `max_seconds`."""
    if isinstance(source, bytes | bytearray | memoryview):
        if len(source) == 0:
            raise BadAudioError("empty input: no audio bytes received")
        src: io.BytesIO | str = io.BytesIO(bytes(source))
    else:
        src = str(source)
    limit = int(max_seconds * sample_rate) if max_seconds else None
    chunks: list[np.ndarray] = []
    n = 0
    try:
        with av.open(src, mode="r") as container:
            if not container.streams.audio:
                raise BadAudioError("no audio stream in input")
            stream = container.streams.audio[0]
            resampler = av.AudioResampler(format="flt", layout="mono", rate=sample_rate)
            for frame in container.decode(stream):
                frame.pts = None  # we only need samples in order; odd timestamps make the resampler fail
                for out in resampler.resample(frame):
                    chunks.append(out.to_ndarray().reshape(-1))
                    n += chunks[-1].size
                if limit is not None and n >= limit:
                    break
            else:
                for out in resampler.resample(None):  # flush the resampler's delay line
                    chunks.append(out.to_ndarray().reshape(-1))
    except BadAudioError:
        raise
    except Exception as e:  # any FFmpeg/container failure on user input is a bad-input error
        raise BadAudioError(f"could not decode audio: {type(e).__name__}") from e
    wave = np.concatenate(chunks).astype(np.float32) if chunks else np.zeros(0, np.float32)
    if wave.size == 0:
        raise BadAudioError("no audio samples could be decoded")
    return wave[:limit] if limit is not None else wave


def prepare(wave: np.ndarray, cfg: FeatureConfig) -> np.ndarray:
    """Cap, trim leading/trailing silence and reject what cannot be scored."""
    wave = np.nan_to_num(wave[: int(cfg.max_seconds * cfg.sample_rate)])
    if wave.size == 0 or float(np.max(np.abs(wave))) < 1e-4:
        raise BadAudioError("audio is silent")
    if cfg.trim_silence:
        wave, _ = librosa.effects.trim(wave, top_db=cfg.trim_top_db, frame_length=1024, hop_length=256)
    seconds = wave.size / cfg.sample_rate
    if seconds < cfg.min_seconds:
        raise BadAudioError(f"audio too short: {seconds:.2f} s of sound, need at least {cfg.min_seconds:g} s")
    return wave.astype(np.float32)


def load(source: bytes | str | Path, cfg: FeatureConfig) -> np.ndarray:
    """decode + prepare: what the handler and the training code both use."""
    return prepare(decode(source, cfg.sample_rate, cfg.max_seconds), cfg)
