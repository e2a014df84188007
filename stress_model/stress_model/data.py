"""Loaders for StressID: the raw-signal layout (below) and the published feature tables
(`load_feature_tables`, at the end: HCfeatures.csv, all_physiological_features.csv, the video table,
labels from protocol.txt or the full dataset's labels.csv), and the subject-wise split.

StressID (Chaptoukaev et al., NeurIPS 2023 Datasets & Benchmarks) is assumed to look like this,
and `synth.py` writes exactly this layout (subject ids are 4-char codes such as ``2ea4``)::

    <root>/
      Physiological/<sid>/<sid>_<Task>.txt   CSV, "," separated, header with columns ECG, EDA, RR
                                             (respiration), 500 Hz; extra columns are ignored
      Audio/<sid>/<sid>_<Task>.wav           speech tasks only (any format PyAV reads is accepted)
      Videos/<sid>/<sid>_<Task>.mp4          not read (video enters through video_features.csv)
      self_assessments.csv                   ";" separated self-reports 0-10, either orientation:
                                             rows = subjects and columns "<Task>_stress", ...
                                             or a "Tasks" column of "<Task>_stress" rows and one
                                             column per subject
      labels.csv                             "subject/task" (= "<sid>_<Task>"), "binary-stress", ...
      video_features.csv                     optional: "subject/task" index + numeric columns
                                             (e.g. the OpenFace AU/gaze statistics of the StressID
                                             repository); used by the teacher when present

Tasks are Breathing, Video1, Video2, Counting1-3, Stroop, Speaking, Math, Reading, Relax (and a
Baseline recording without self-report, which has no label and is skipped). Breathing, Relax and the
videos have no speech, so those recordings train the teacher only.

Labels: stressed = self-reported stress >= `stress_threshold` (5 of 10) when self_assessments.csv is
present (so the threshold is configurable); otherwise labels.csv's binary-stress column is used as is.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

AUDIO_EXTS = (".wav", ".m4a", ".mp3", ".ogg", ".opus", ".webm", ".flac", ".aac")
PHYSIO_COLUMNS = {"ecg": "ECG", "eda": "EDA", "rsp": "RR"}


@dataclass
class Recording:
    subject: str
    task: str
    label: int  # 1 = stressed
    stress: float | None  # the raw self-report, when known
    audio: Path | None
    physio: Path | None
    video: np.ndarray | None  # video summary features, when video_features.csv has this row

    @property
    def key(self) -> str:
        return f"{self.subject}_{self.task}"


def _stress_scores(root: Path) -> dict[str, float]:
    """subject/task -> self-reported stress, from self_assessments.csv (either orientation)."""
    path = root / "self_assessments.csv"
    if not path.exists():
        return {}
    df = pd.read_csv(path, sep=";")
    scores: dict[str, float] = {}
    if "Tasks" in df.columns:  # rows "<Task>_stress", one column per subject
        df = df.set_index("Tasks")
        for row in (r for r in df.index if str(r).endswith("_stress")):
            task = str(row)[: -len("_stress")]
            for sid, v in df.loc[row].items():
                if pd.notna(v):
                    scores[f"{sid}_{task}"] = float(v)
    else:  # rows = subjects, columns "<Task>_stress"
        df = df.set_index(df.columns[0])
        for col in (c for c in df.columns if str(c).endswith("_stress")):
            task = str(col)[: -len("_stress")]
            for sid, v in df[col].items():
                if pd.notna(v) and str(v).strip() != "":
                    scores[f"{sid}_{task}"] = float(v)
    return scores


def _find(folder: Path, sid: str, task: str, exts: tuple[str, ...]) -> Path | None:
    for ext in exts:
        p = folder / sid / f"{sid}_{task}{ext}"
        if p.exists():
            return p
    return None


def load_stressid(
    root: Path | str, stress_threshold: float = 5.0, video_features: str = "video_features.csv"
) -> list[Recording]:
    """All labelled subject/task recordings under `root`, sorted by key."""
    root = Path(root)
    scores = _stress_scores(root)
    if scores:
        labels = {k: int(v >= stress_threshold) for k, v in scores.items()}
    elif (root / "labels.csv").exists():
        df = pd.read_csv(root / "labels.csv").dropna(subset=["binary-stress"])
        labels = {str(k): int(v) for k, v in zip(df["subject/task"], df["binary-stress"], strict=True)}
    else:
        raise FileNotFoundError(f"{root}: neither self_assessments.csv nor labels.csv found")
    video: dict[str, np.ndarray] = {}
    vpath = root / video_features if video_features else None
    if vpath is not None and vpath.exists():
        vdf = pd.read_csv(vpath, index_col=0).select_dtypes("number")
        video = {str(k): row.to_numpy(np.float32) for k, row in vdf.iterrows()}
    recs = []
    for key, label in sorted(labels.items()):
        sid, task = key.split("_", 1)
        audio = _find(root / "Audio", sid, task, AUDIO_EXTS)
        physio = _find(root / "Physiological", sid, task, (".txt", ".csv"))
        if audio is None and physio is None and key not in video:
            continue  # labelled but no data on disk (StressID has a few such gaps)
        recs.append(Recording(sid, task, label, scores.get(key), audio, physio, video.get(key)))
    if not recs:
        raise FileNotFoundError(f"{root}: no recordings found in the StressID layout (see data.py)")
    return recs


def read_physio(path: Path) -> dict[str, np.ndarray]:
    """One physiological file -> {"ecg", "eda", "rsp"} arrays (missing columns are left out)."""
    df = pd.read_csv(path, sep=None, engine="python") if path.suffix != ".txt" else pd.read_csv(path, sep=",")
    cols = {c.strip().upper(): c for c in df.columns}
    return {m: df[cols[c]].to_numpy(np.float64) for m, c in PHYSIO_COLUMNS.items() if c in cols}


def split_subjects(
    recs: list[Recording], val_frac: float, test_frac: float, seed: int, tries: int = 100
) -> tuple[list[str], list[str], list[str]]:
    """Subject-wise train/val/test split; reshuffles (seeded) until val and test both hold both classes."""
    subjects = sorted({r.subject for r in recs})
    if len(subjects) < 3:
        raise ValueError(f"need at least 3 subjects for a subject-wise split, got {len(subjects)}")
    n_test = max(1, round(test_frac * len(subjects)))
    n_val = max(1, round(val_frac * len(subjects)))
    rng = random.Random(seed)
    by_subject = {s: {r.label for r in recs if r.subject == s and r.audio is not None} for s in subjects}
    for _ in range(tries):
        order = subjects[:]
        rng.shuffle(order)
        test, val, train = order[:n_test], order[n_test : n_test + n_val], order[n_test + n_val :]
        if all(set().union(*(by_subject[s] for s in part)) == {0, 1} for part in (test, val, train)):
            break
    return sorted(train), sorted(val), sorted(test)


# ------------------------------------------------------------------------ feature-table layout

PUBLIC_TABLES = Path(__file__).resolve().parents[1] / "datasets" / "stressid_public"
AUDIO_TABLE = "HCfeatures.csv"
PHYSIO_TABLE = "all_physiological_features.csv"
VIDEO_TABLE = "video11tasks_aus_gaze_mean_std.csv"
# The physiological table holds three blocks of columns, in this order; each block starts here.
PHYSIO_BLOCKS = {"ecg": "meanHR", "rsp": "meanRR", "eda": "max_eda"}


@dataclass
class FeatureTables:
    """StressID's published per-recording feature tables, indexed by "<sid>_<Task>".

    `labels` holds the labelled recordings only (binary stress, 1 = stressed); `columns` maps each
    teacher modality (ecg, eda, rsp, video) to its columns in `physio` / `video`.
    """

    audio: pd.DataFrame  # 140 handcrafted audio features (features.STRESSID_HC_NAMES)
    physio: pd.DataFrame
    video: pd.DataFrame | None
    labels: pd.Series
    columns: dict[str, list[str]]

    @staticmethod
    def subject(key: str) -> str:
        return key.split("_", 1)[0]


def _key(name: object) -> str:
    """ "2ea4_Counting1.wav" -> "2ea4_Counting1"."""
    key = str(name).strip()
    return key[: -len(".wav")] if key.endswith(".wav") else key


def read_labels(path: Path) -> pd.Series:
    """Binary stress labels: StressID's full-dataset `labels.csv` ("subject/task", "binary-stress",
    ...) or the public repository's `protocol.txt` (no header: file, 3-class affect, binary stress)."""
    path = Path(path)
    head = path.read_text().splitlines()[0] if path.stat().st_size else ""
    if "binary-stress" in head:
        df = pd.read_csv(path).dropna(subset=["binary-stress"])
        keys, values = df["subject/task"], df["binary-stress"]
    else:
        df = pd.read_csv(path, header=None)
        if df.shape[1] < 3:
            raise ValueError(f"{path}: expected <sid>_<Task>,<affect>,<binary stress> rows")
        keys, values = df[0], df[2]
    labels = pd.Series(values.astype(int).to_numpy(), index=[_key(k) for k in keys], name="stressed")
    if labels.index.has_duplicates:
        raise ValueError(f"{path}: duplicate recordings {sorted(labels.index[labels.index.duplicated()])}")
    if not set(labels.unique()) <= {0, 1}:
        raise ValueError(f"{path}: binary stress must be 0 or 1")
    return labels.sort_index()


def load_feature_tables(root: Path | str = PUBLIC_TABLES, labels: Path | str | None = None) -> FeatureTables:
    """The feature tables under `root`; labels from `labels` if given, else root/labels.csv (the full
    dataset's), else root/protocol.txt (the public repository's)."""
    root = Path(root)
    if labels is None:
        labels = next((root / n for n in ("labels.csv", "protocol.txt") if (root / n).exists()), None)
        if labels is None:
            raise FileNotFoundError(f"{root}: neither labels.csv nor protocol.txt found")
    audio = pd.read_csv(root / AUDIO_TABLE, header=None, index_col=0)
    audio.index = [_key(k) for k in audio.index]
    from stress_model.features import STRESSID_HC_NAMES  # features imports librosa: only when needed

    if audio.shape[1] != len(STRESSID_HC_NAMES):
        raise ValueError(f"{AUDIO_TABLE}: {audio.shape[1]} values per row, expected {len(STRESSID_HC_NAMES)}")
    audio.columns = STRESSID_HC_NAMES
    physio = pd.read_csv(root / PHYSIO_TABLE, index_col=0)
    physio.index = [_key(k) for k in physio.index]
    starts = [physio.columns.get_loc(c) for c in PHYSIO_BLOCKS.values()]
    if starts != sorted(starts):
        raise ValueError(f"{PHYSIO_TABLE}: column blocks not in the order {list(PHYSIO_BLOCKS)}")
    bounds = [*starts, physio.shape[1]]
    cols = list(physio.columns)
    columns = {m: cols[bounds[i] : bounds[i + 1]] for i, m in enumerate(PHYSIO_BLOCKS)}
    video = None
    if (root / VIDEO_TABLE).exists():
        video = pd.read_csv(root / VIDEO_TABLE, index_col=0).select_dtypes("number")
        video.index = [_key(k) for k in video.index]
        columns["video"] = list(video.columns)
    for name, df in (("audio", audio), ("physio", physio), ("video", video)):
        if df is not None and df.index.has_duplicates:
            raise ValueError(f"{name} table: duplicate recordings")
    return FeatureTables(
        audio.sort_index().astype(np.float32),
        physio.sort_index().astype(np.float32),
        None if video is None else video.sort_index().astype(np.float32),
        read_labels(Path(labels)),
        columns,
    )
