"""Test speech: espeak-ng English, encoded as a phone would (AAC in m4a), made at test time."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest


def espeak_m4a(text: str, path: Path, *, speed: int = 170, pitch: int = 50) -> bytes:
    if not (shutil.which("espeak-ng") and shutil.which("ffmpeg")):
        pytest.fail("espeak-ng and ffmpeg are required: run `make bootstrap`")
    wav = path.with_suffix(".wav")
    subprocess.run(
        ["espeak-ng", "-v", "en", "-s", str(speed), "-p", str(pitch), "-w", str(wav), text],
        check=True,
        capture_output=True,
    )
    subprocess.run(
        ["ffmpeg", "-loglevel", "error", "-y", "-i", str(wav), "-c:a", "aac", "-b:a", "48k", str(path)],
        check=True,
    )
    return path.read_bytes()
