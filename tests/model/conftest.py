"""Shared fixtures for the stress model tests: tiny data, made at test time, nothing downloaded."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

# The models here are tiny: extra intra-op threads only add contention on small (shared) machines.
torch.set_num_threads(1)


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """10 synthetic subjects x 5 tasks (Relax + 4 speech tasks) in StressID layout (~10 s)."""
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
