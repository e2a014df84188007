"""Helpers for the stress model tests (a uniquely named module: every test folder has a conftest.py)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

REPO = Path(__file__).resolve().parents[2]
DEMO = REPO / "stress_model" / "checkpoints" / "demo"

needs_espeak = pytest.mark.skipif(
    shutil.which("espeak-ng") is None, reason="espeak-ng not installed (apt-get install espeak-ng)"
)
needs_ffmpeg = pytest.mark.skipif(
    shutil.which("ffmpeg") is None, reason="ffmpeg not installed (apt-get install ffmpeg)"
)
needs_demo = pytest.mark.skipif(
    not (DEMO / "model.safetensors").exists(),
    reason="demo checkpoint missing (python -m stress_model train ...)",
)


def tone(freq: float, seconds: float, sr: int, amp: float = 0.5) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def ffmpeg_convert(src: Path, dst: Path, *args: str) -> Path:
    subprocess.run(
        ["ffmpeg", "-loglevel", "error", "-y", "-i", str(src), *args, str(dst)], check=True, timeout=60
    )
    return dst


def write_feature_tables(
    root: Path,
    labelled: int = 6,
    unlabelled: int = 3,
    tasks: tuple[str, ...] = ("Counting1", "Math", "Reading", "Speaking", "Stroop", "Relax"),
    seed: int = 0,
    labels_csv: bool = False,
) -> Path:
    """A small feature-table dataset in StressID's public layout, with a learnable signal.

    Stress moves audio columns 20-29 and the first column of each physiological block; Relax has no
    audio (physiology only), as in StressID. Subjects "s0.." are labelled, "u0.." are not.
    """
    from stress_model.data import PHYSIO_BLOCKS

    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    audio_rows, physio_rows, video_rows, label_rows = [], [], [], []
    subjects = [f"s{i}" for i in range(labelled)] + [f"u{i}" for i in range(unlabelled)]
    physio_cols = [c for block in PHYSIO_BLOCKS.values() for c in (block, f"{block}_x", f"{block}_y")]
    for sid in subjects:
        for k, task in enumerate(tasks):
            y = int((k + len(sid)) % 2 == 0) if sid.startswith("u") else int(k % 2 == int(sid[1:]) % 2)
            key = f"{sid}_{task}"
            if task != "Relax":
                a = rng.normal(size=140)
                a[20:30] += 1.5 * y
                audio_rows.append([f"{key}.wav", *a])
            p = rng.normal(size=len(physio_cols))
            p[::3] += 2.5 * y
            physio_rows.append([key, *p])
            if k % 2 == 0:
                video_rows.append([key, *(rng.normal(size=4) + y)])
            if sid.startswith("s"):
                label_rows.append((key, y))
    pd.DataFrame(audio_rows).to_csv(root / "HCfeatures.csv", header=False, index=False)
    pd.DataFrame(physio_rows, columns=["", *physio_cols]).to_csv(
        root / "all_physiological_features.csv", index=False
    )
    vcols = ["id", "mean_AU01_r", "mean_AU02_r", "std_AU01_r", "std_AU02_r"]
    pd.DataFrame(video_rows, columns=vcols).to_csv(root / "video11tasks_aus_gaze_mean_std.csv", index=False)
    if labels_csv:
        df = pd.DataFrame(label_rows, columns=["subject/task", "binary-stress"])
        df["affect3-class"] = 0
        df.to_csv(root / "labels.csv", index=False)
    else:
        (root / "protocol.txt").write_text("".join(f"{k}.wav,1,{y}\n" for k, y in label_rows))
    return root
