"""Shared fixtures for the stress model tests: tiny data, made at test time, nothing downloaded."""

from __future__ import annotations

import io
import shutil
import subprocess
import wave
from pathlib import Path

import numpy as np
import pytest
import torch

# The models here are tiny: extra intra-op threads only add contention on small (shared) machines.
torch.set_num_threads(1)

REPO = Path(__file__).resolve().parents[2]
DEMO = REPO / "stress_model" / "checkpoints" / "demo"

needs_espeak = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng not installed (apt-get install espeak-ng)")
needs_ffmpeg = pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="ffmpeg not installed (apt-get install ffmpeg)")
needs_demo = pytest.mark.skipif(
    not (DEMO / "model.safetensors").exists(), reason="demo checkpoint missing (python -m stress_model train ...)"
)


def wav_bytes(x: np.ndarray, sr: int, channels: int = 1) -> bytes:
    """16-bit PCM WAV in memory (x: (n,) or (n, channels))."""
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(2)
        w.setframerate(sr)
        w.writeframes((np.clip(x, -1, 1) * 32767).astype(np.int16).tobytes())
    return buf.getvalue()


def tone(freq: float, seconds: float, sr: int, amp: float = 0.5) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def ffmpeg_convert(src: Path, dst: Path, *args: str) -> Path:
    subprocess.run(["ffmpeg", "-loglevel", "error", "-y", "-i", str(src), *args, str(dst)], check=True, timeout=60)
    return dst


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """10 synthetic subjects x 6 tasks in StressID layout (~10 s to generate)."""
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng not installed (apt-get install espeak-ng)")
    from stress_model.synth import generate

    root = tmp_path_factory.mktemp("stressid_tiny")
    return generate(
        root,
        n_subjects=10,
        seed=3,
        physio_seconds=12,
        speech_tasks=("Counting3", "Math", "Reading", "Speaking"),
        silent_tasks=("Relax",),
    )


@pytest.fixture(scope="session")
def speech(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Calm and stressed espeak-ng WAVs of a sentence that is not in the synthetic training corpus."""
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng not installed (apt-get install espeak-ng)")
    from stress_model.synth import speak

    d = tmp_path_factory.mktemp("speech")
    text = "I can't do this anymore, everything is going wrong"
    return {s: speak(text, s, d / f"{s}.wav") for s in ("calm", "stressed")}  # type: ignore[arg-type]
