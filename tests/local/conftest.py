"""Fixtures for the local API stand-in tests: test speech made with espeak-ng and ffmpeg."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from local_stack_support import SPOKEN


@pytest.fixture(scope="session")
def speech_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    missing = [tool for tool in ("espeak-ng", "ffmpeg") if shutil.which(tool) is None]
    if missing:
        pytest.skip(
            f"needs {' and '.join(missing)} to make test speech (apt-get install -y espeak-ng ffmpeg)"
        )
    directory = tmp_path_factory.mktemp("speech")
    wav = directory / "speech.wav"
    subprocess.run(["espeak-ng", "-v", "en", "-s", "170", "-w", str(wav), SPOKEN], check=True)
    m4a = directory / "speech.m4a"
    subprocess.run(
        ["ffmpeg", "-loglevel", "error", "-y", "-i", str(wav), "-c:a", "aac", "-b:a", "64k", str(m4a)],
        check=True,
    )
    return directory


@pytest.fixture(scope="session")
def speech_m4a(speech_dir: Path) -> Path:
    return speech_dir / "speech.m4a"


@pytest.fixture(scope="session")
def speech_wav(speech_dir: Path) -> Path:
    return speech_dir / "speech.wav"
