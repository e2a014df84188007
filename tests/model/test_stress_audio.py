"""Decoding, resampling and input checks (audio.py)."""

from __future__ import annotations

import numpy as np
import pytest
from model_helpers import tone
from wavs import wav_bytes

from stress_model.audio import BadAudioError, decode, load
from stress_model.config import FeatureConfig


def dominant_hz(x: np.ndarray, sr: int) -> float:
    spec = np.abs(np.fft.rfft(x * np.hanning(x.size)))
    return float(np.fft.rfftfreq(x.size, 1 / sr)[np.argmax(spec)])


@pytest.mark.parametrize("sr", [44_100, 8_000, 48_000, 16_000])
def test_resamples_any_rate_to_16k(sr: int) -> None:
    # The original model's bug: a 16k->16k "resample", so other rates reached the model unchanged.
    out = decode(wav_bytes(tone(440.0, 2.0, sr), sr))
    assert out.dtype == np.float32
    assert abs(out.size - 32_000) <= 160  # 2 s at 16 kHz (resampler delay < 10 ms)
    assert dominant_hz(out, 16_000) == pytest.approx(
        440.0, abs=2.0
    )  # pitch preserved => rate really converted


def test_stereo_is_downmixed_to_mono() -> None:
    sr = 44_100
    left, right = tone(300.0, 1.0, sr), tone(300.0, 1.0, sr)
    out = decode(wav_bytes(np.stack([left, right], axis=1).reshape(-1), sr, channels=2))
    assert out.ndim == 1 and abs(out.size - 16_000) <= 160
    assert dominant_hz(out, 16_000) == pytest.approx(300.0, abs=2.0)


def test_duration_cap_stops_decoding() -> None:
    out = decode(wav_bytes(tone(200.0, 5.0, 22_050), 22_050), max_seconds=1.5)
    assert out.size == 24_000


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (b"", "empty"),
        (b"this is not audio at all" * 50, "could not decode"),
        (bytes(range(256)) * 40, "decode"),
    ],
)
def test_garbage_raises_bad_audio(payload: bytes, message: str) -> None:
    with pytest.raises(BadAudioError, match=message):
        load(payload, FeatureConfig())


def test_silent_and_too_short_are_rejected() -> None:
    cfg = FeatureConfig()
    with pytest.raises(BadAudioError, match="silent"):
        load(wav_bytes(np.zeros(16_000, np.float32), 16_000), cfg)
    short = np.concatenate([np.zeros(8_000), tone(220.0, 0.2, 16_000), np.zeros(8_000)]).astype(np.float32)
    with pytest.raises(BadAudioError, match="too short"):
        load(wav_bytes(short, 16_000), cfg)


def test_trimming_removes_leading_and_trailing_silence() -> None:
    x = np.concatenate([np.zeros(16_000), tone(220.0, 1.0, 16_000), np.zeros(16_000)]).astype(np.float32)
    out = load(wav_bytes(x, 16_000), FeatureConfig())
    assert 0.9 < out.size / 16_000 < 1.2
    untrimmed = load(wav_bytes(x, 16_000), FeatureConfig(trim_silence=False))
    assert untrimmed.size == pytest.approx(48_000, abs=160)
