from __future__ import annotations

import math
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from wavs import make_wav

from emochat.pipeline.audio import SAMPLE_RATE, UndecodableAudio, decode_audio


@pytest.mark.parametrize("rate", [8_000, 16_000, 44_100, 48_000])
def test_any_rate_is_resampled_to_16k(rate: int) -> None:
    decoded = decode_audio(make_wav(seconds=1.5, rate=rate, freq=440.0))
    assert abs(decoded.duration_ms - 1500) <= 20
    # The tone's frequency survives resampling: count zero crossings (2 per period).
    crossings = np.count_nonzero(np.diff(np.signbit(decoded.samples[100:-100])))
    seconds = (len(decoded.samples) - 200) / SAMPLE_RATE
    assert crossings / 2 / seconds == pytest.approx(440.0, rel=0.02)


def test_level_and_canonical_wav_round_trip() -> None:
    decoded = decode_audio(make_wav(amplitude=0.5))
    assert decoded.peak_dbfs == pytest.approx(20 * math.log10(0.5), abs=0.2)
    again = decode_audio(decoded.to_wav())
    assert again.duration_ms == decoded.duration_ms and again.codec == "pcm_s16le"


def test_silence_has_minus_infinity_peak() -> None:
    assert decode_audio(make_wav(amplitude=0.0)).peak_dbfs == -math.inf


@pytest.mark.parametrize("data", [b"", b"hello world" * 100, b"\x89PNG\r\n\x1a\n" + bytes(500)])
def test_garbage_is_undecodable(data: bytes) -> None:
    with pytest.raises(UndecodableAudio):
        decode_audio(data)


def test_declared_length_past_the_cap_is_refused_before_decoding() -> None:
    with pytest.raises(UndecodableAudio) as raised:
        decode_audio(make_wav(seconds=20.0), max_duration_s=3.0)
    assert raised.value.code == "audio_too_long" and raised.value.duration_ms == 20_000


@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="ffmpeg is not installed (make bootstrap)")
@pytest.mark.parametrize(
    ("ext", "args"),
    [
        ("m4a", ["-c:a", "aac"]),
        ("mp4", ["-c:a", "aac"]),
        ("aac", ["-c:a", "aac"]),
        ("wav", []),
        ("webm", ["-c:a", "libopus"]),
        ("ogg", ["-c:a", "libopus"]),
        ("ogg", ["-c:a", "libvorbis"]),
        ("opus", ["-c:a", "libopus"]),
        ("mp3", []),
        ("3gp", ["-c:a", "aac"]),
        ("caf", ["-c:a", "alac"]),
    ],
)
def test_phone_formats_decode(tmp_path: Path, ext: str, args: list[str]) -> None:
    source = tmp_path / "in.wav"
    source.write_bytes(make_wav(seconds=2.0, rate=44_100))
    target = tmp_path / f"out.{ext}"
    subprocess.run(["ffmpeg", "-loglevel", "error", "-y", "-i", str(source), *args, str(target)], check=True)
    decoded = decode_audio(target.read_bytes())
    assert abs(decoded.duration_ms - 2000) <= 100
