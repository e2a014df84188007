"""Decode the audio containers phones record to 16 kHz mono float32, then trim and check it.

PyAV (bundled FFmpeg) reads m4a/AAC, webm/opus, ogg, mp3, wav, 3gp, caf from bytes in memory.
Resampling uses FFmpeg's own resampler (`av.AudioResampler`) from whatever rate the file has,
so a 44.1 kHz or 8 kHz upload reaches the encoder at 16 kHz. (The original inference code
"resampled" 16 kHz -> 16 kHz, i.e. never, and fed other rates to the model as if they were 16 kHz.)

The endpoint decodes whatever a caller posts, so FFmpeg is attack surface here as in the backend:
decoding goes through guarded_decode.py, the backend's own guarded decode (a symlink to
functions/emochat/pipeline/guarded_decode.py, whose content the bundle ships; neither package
imports the other), with its allow-lists and limits; the output is capped at `max_seconds`. Every
refusal is a BadAudioError with a `code`.
"""

from __future__ import annotations

from pathlib import Path

import librosa
import numpy as np

from stress_model.config import FeatureConfig
from stress_model.guarded_decode import UndecodableAudio, decode_capped

# The backend accepts voice messages of up to 120 s; a posted file declaring more is refused.
MAX_DECLARED_SECONDS = 120.0


class BadAudioError(ValueError):
    """The input cannot be scored: refused, undecodable, empty, silent or too short. One-line message;
    `code` names the reason as the backend's error codes do."""

    def __init__(self, message: str, code: str = "undecodable_audio") -> None:
        super().__init__(message)
        self.code = code


def decode(
    source: bytes | str | Path,
    sample_rate: int = 16_000,
    max_seconds: float | None = None,
    max_declared_seconds: float | None = MAX_DECLARED_SECONDS,
) -> np.ndarray:
    """Decode bytes (or a file's bytes) to mono float32 at `sample_rate`; stop after `max_seconds`
    (at most MAX_DECLARED_SECONDS + 1 s when None). A file declaring more than `max_declared_seconds`
    is refused; training on a local dataset's long recordings passes None and keeps the first
    `max_seconds`."""
    data = bytes(source) if isinstance(source, bytes | bytearray | memoryview) else Path(source).read_bytes()
    if not data:
        raise BadAudioError("empty input: no audio bytes received")
    limit = int((max_seconds or MAX_DECLARED_SECONDS + 1) * sample_rate)
    try:
        wave, _ = decode_capped(data, sample_rate, limit, max_declared_seconds)
    except UndecodableAudio as e:
        raise BadAudioError(str(e), e.code) from None
    except Exception as e:  # any FFmpeg/container failure on user input is a bad-input error
        raise BadAudioError(f"could not decode audio: {type(e).__name__}") from e
    return wave


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
    """decode + prepare: what the handler (bytes) and the training code (files) both use.

    Posted bytes are refused past MAX_DECLARED_SECONDS; a dataset's files on disk may be long
    recordings of which the first `cfg.max_seconds` are used (decoding is capped there either way).
    """
    declared = MAX_DECLARED_SECONDS if isinstance(source, bytes | bytearray | memoryview) else None
    return prepare(decode(source, cfg.sample_rate, cfg.max_seconds, declared), cfg)
