"""Synthetic data in StressID's layout (see data.py), and `speak` for test/demo speech.

StressID itself needs a signed agreement, so the training code is exercised on data generated
here. Each subject has a voice and baselines (pitch, rate, pitch range, loudness, microphone gain
and noise; heart rate, skin conductance, breathing), a reactivity, and self-report biases. For
each task a latent arousal z is drawn around the task's typical stressfulness; z drives prosody
(espeak-ng rate, pitch, pitch range, amplitude, word gaps) and physiology (neurokit2 heart rate
and HRV, skin-conductance responses, breathing rate), while the *label* comes from a noisy,
biased self-report of it (stressed = report >= 5). So calm and stressed overlap across subjects
and the labels are imperfect, as with real self-reports: it is not trivially separable.

Nothing here is real physiology or real stressed speech: it only tests that the code learns what
is in the data.
"""

from __future__ import annotations

import csv
import json
import multiprocessing
import random
import shutil
import subprocess
import tempfile
import warnings
import wave
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from xml.sax.saxutils import escape

import numpy as np

SPEECH_TASKS = ("Counting1", "Counting2", "Counting3", "Stroop", "Math", "Reading", "Speaking")
SILENT_TASKS = ("Breathing", "Relax")  # physiology only, as in StressID
# typical self-reported stress (0-10) per task; roughly StressID's ordering
TASK_STRESS = {
    "Breathing": 2.0, "Relax": 1.5, "Video1": 3.0, "Video2": 4.0, "Counting1": 3.0, "Counting2": 4.5,
    "Counting3": 5.5, "Stroop": 5.0, "Speaking": 5.0, "Math": 6.0, "Reading": 2.5,
}  # fmt: skip
VOICES = (
    "en",
    "en-us",
    "en-gb-scotland",
    "en-gb-x-rp",
    "en-029",
    "en-us+f2",
    "en+f3",
    "en-us+f4",
    "en-gb-x-rp+m3",
    "en+m5",
    "en-us-nyc",
    "en-gb+f5",
)
N_VIDEO = 8

_READING = [
    "The old lighthouse stood at the edge of the cliff, watching the ships pass by.",
    "Every morning the baker opened his shop before the sun came up.",
    "The river winds slowly through the valley and past the small village.",
    "Children gathered around the fire to listen to the story of the lost city.",
    "A narrow path led from the garden gate down to the quiet lake.",
    "The library on the corner has more than ten thousand books.",
    "In autumn the leaves turn red and gold before they fall.",
    "The train leaves the station at half past seven every evening.",
    "My grandmother kept a small notebook full of recipes and letters.",
    "The museum opens a new exhibition about ancient maps next month.",
    "Farmers in the north plant their crops late because of the cold spring.",
    "A gentle wind moved through the tall grass of the meadow.",
]
_SPEAKING = [
    "I think my biggest strength is that I stay organised when there is a lot to do.",
    "In my last job I was responsible for planning the schedule of the whole team.",
    "One of my weaknesses is that I sometimes take on too many projects at once.",
    "I chose this field because I enjoy solving practical problems with other people.",
    "Five years from now I hope to be leading a small group of my own.",
    "When I disagree with a colleague I try to understand their point of view first.",
    "The project I am most proud of was finished two weeks ahead of the deadline.",
    "I learned a lot about patience when I worked in customer support.",
    "My friends would describe me as reliable and a little bit too careful.",
    "I would like this position because it matches what I studied at university.",
]
_COLOURS = ["red", "blue", "green", "yellow", "purple", "orange", "black", "white"]


def task_text(task: str, rng: random.Random) -> str:
    """A few seconds of task-appropriate text (mirrors StressID's speech tasks)."""
    if task.startswith("Counting"):
        start, step = rng.randint(900, 2100), rng.choice([7, 13, 17])
        return ", ".join(str(start - i * step) for i in range(rng.randint(3, 6))) + "."
    if task == "Math":
        parts = []
        for _ in range(rng.randint(1, 2)):
            a, b = rng.randint(12, 99), rng.randint(3, 19)
            parts.append(f"{a} times {b} is {a * b}")
        return ". ".join(parts) + "."
    if task == "Stroop":
        return ", ".join(rng.choice(_COLOURS) for _ in range(rng.randint(6, 10))) + "."
    if task == "Reading":
        return " ".join(rng.sample(_READING, rng.randint(1, 2)))
    return " ".join(rng.sample(_SPEAKING, rng.randint(1, 2)))


@dataclass
class Prosody:
    rate: int  # words per minute (espeak-ng -s)
    pitch: int  # 0-99 (-p)
    range_pct: int  # pitch range, % of the voice's default (SSML prosody range; espeak-ng caps at 200)
    amplitude: int  # 0-200 (-a)
    gap: int  # extra pause between words, 10 ms units (-g)


@dataclass
class Voice:
    rate: float = 165.0
    pitch: float = 48.0
    range_pct: float = 95.0
    amplitude: float = 100.0
    reactivity: float = 1.0


def prosody(z: float, v: Voice) -> Prosody:
    """Arousal z (about -1.5 calm .. +1.5 stressed) -> espeak-ng settings for this voice."""
    k = v.reactivity * z
    return Prosody(
        rate=int(np.clip(v.rate * (1 + 0.15 * k), 80, 320)),
        pitch=int(np.clip(v.pitch + 14 * k, 0, 99)),
        range_pct=int(np.clip(v.range_pct * (1 + 0.5 * k), 20, 200)),
        amplitude=int(np.clip(v.amplitude * (1 + 0.2 * k), 20, 200)),
        gap=int(np.clip(round(-4 * k), 0, 8)),
    )


# speak(): a typical voice at the calm / stressed ends of the training distribution
STYLE_Z = {"calm": -1.4, "stressed": 1.5}


def _espeak(text: str, voice: str, p: Prosody, path: Path) -> Path:
    exe = shutil.which("espeak-ng")
    if exe is None:
        raise RuntimeError("espeak-ng is not installed (Debian: apt-get install espeak-ng)")
    ssml = f'<speak><prosody range="{p.range_pct}%">{escape(text)}</prosody></speak>'
    cmd = [
        exe,
        "-m",
        "--stdin",
        "-v",
        voice,
        "-s",
        str(p.rate),
        "-p",
        str(p.pitch),
        "-a",
        str(p.amplitude),
        "-g",
        str(p.gap),
        "-w",
        str(path),
    ]
    subprocess.run(cmd, input=ssml, text=True, check=True, capture_output=True, timeout=60)
    return path


def speak(text: str, style: Literal["calm", "stressed"], path: Path, voice: str = "en") -> Path:
    """Write `text` spoken with calm or stressed prosody to a WAV file via espeak-ng; returns path."""
    if style not in STYLE_Z:
        raise ValueError(f"style must be 'calm' or 'stressed', not {style!r}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return _espeak(text, voice, prosody(STYLE_Z[style], Voice()), path)


def _read_wav(path: Path) -> tuple[np.ndarray, int]:
    with wave.open(str(path)) as w:
        x = np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16).astype(np.float32) / 32768
        return x, w.getframerate()


def _write_wav(path: Path, x: np.ndarray, sr: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(sr)
        w.writeframes((np.clip(x, -1, 1) * 32767).astype(np.int16).tobytes())


@dataclass
class Subject:
    sid: str
    voice: str
    prosody: Voice
    gain_db: float
    snr_db: float  # inf = no added noise
    trait: float  # true anxiety offset (moves arousal)
    report_bias: float  # self-report offset (moves only the label)
    hr0: float
    scl0: float
    scr0: float
    rr0: float
    video0: np.ndarray


def _subject(sid: str, rng: np.random.Generator) -> Subject:
    return Subject(
        sid=sid,
        voice=str(rng.choice(VOICES)),
        prosody=Voice(
            rate=rng.uniform(145, 185),
            pitch=rng.uniform(30, 65),
            range_pct=rng.uniform(70, 120),
            amplitude=rng.uniform(80, 120),
            reactivity=rng.uniform(0.6, 1.4),
        ),
        gain_db=rng.uniform(-6, 6),
        snr_db=float(rng.uniform(15, 40)) if rng.random() < 0.7 else np.inf,
        trait=rng.normal(0, 1.0),
        report_bias=rng.normal(0, 0.8),
        hr0=rng.normal(72, 7),
        scl0=rng.uniform(2, 12),
        scr0=rng.uniform(1, 4),
        rr0=rng.normal(14, 2),
        video0=rng.normal(0, 1, N_VIDEO),
    )


def _physio(s: Subject, z: float, seconds: int, sr: int, rng: np.random.Generator) -> np.ndarray:
    import neurokit2 as nk  # imported lazily: speak() must not pay for it

    k = s.prosody.reactivity * z
    seed = int(rng.integers(2**31))
    hr = float(np.clip(s.hr0 + 10 * k + rng.normal(0, 2), 45, 140))
    n_scr = int(max(0, round((s.scr0 + 2.5 * k + rng.normal(0, 1)) * seconds / 30)))
    rr = float(np.clip(s.rr0 + 4 * k + rng.normal(0, 1), 6, 30))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ecg = nk.ecg_simulate(
            duration=seconds,
            sampling_rate=sr,
            heart_rate=hr,
            heart_rate_std=float(np.clip(5 - 2 * z, 1, 8)),
            method="ecgsyn",
            random_state=seed,
        )
        eda = nk.eda_simulate(
            duration=seconds, sampling_rate=sr, scr_number=n_scr, drift=-0.01, noise=0.01, random_state=seed
        )
        rsp = nk.rsp_simulate(
            duration=seconds, sampling_rate=sr, respiratory_rate=rr, method="breathmetrics", random_state=seed
        )
    n = int(seconds * sr)

    def fit(x: np.ndarray) -> np.ndarray:  # the simulators may be off by a few samples
        return np.pad(x[:n], (0, max(0, n - len(x))), mode="edge")

    eda = fit(eda) + s.scl0 + 1.5 * k
    rsp = fit(rsp) * (1 - 0.2 * np.tanh(k))
    return np.stack([fit(ecg), eda, rsp], axis=1)


def _record_subject(
    s: Subject,
    seed: int,
    tasks: list[str],
    speech_tasks: tuple[str, ...],
    w: np.ndarray,
    out: Path,
    physio_seconds: int,
    physio_rate: int,
) -> tuple[dict[str, float], list[list]]:
    """All tasks of one subject; its own seeded RNGs make the output independent of worker count."""
    rng = np.random.default_rng([seed, int.from_bytes(s.sid.encode(), "big")])
    trng = random.Random(f"{seed}/{s.sid}")
    reports, video_rows = {}, []
    with tempfile.TemporaryDirectory() as tmp:
        for task in tasks:
            z = (TASK_STRESS[task] + s.trait + rng.normal(0, 1.5) - 4.5) / 3  # true arousal
            reports[task] = float(np.clip(round(4.5 + 3 * z + s.report_bias + rng.normal(0, 0.8)), 0, 10))
            key = f"{s.sid}_{task}"
            phys = out / "Physiological" / s.sid / f"{key}.txt"
            phys.parent.mkdir(parents=True, exist_ok=True)
            x = _physio(s, z, physio_seconds, physio_rate, rng)
            np.savetxt(phys, x, delimiter=",", header="ECG,EDA,RR", comments="", fmt="%.5f")
            video = s.video0 + 0.8 * s.prosody.reactivity * z * w + rng.normal(0, 0.7, N_VIDEO)
            video_rows.append([key, *video])
            if task not in speech_tasks:
                continue
            p = prosody(z + rng.normal(0, 0.15), s.prosody)
            y, sr = _read_wav(_espeak(task_text(task, trng), s.voice, p, Path(tmp) / "u.wav"))
            y = y * 10 ** (s.gain_db / 20)
            if np.isfinite(s.snr_db):  # some subjects record in a quiet room: clean audio is in range too
                snr = s.snr_db + rng.normal(0, 2)
                y = y + rng.normal(0, np.sqrt(np.mean(y**2) + 1e-12) * 10 ** (-snr / 20), y.size)
            _write_wav(out / "Audio" / s.sid / f"{key}.wav", y, sr)
    return reports, video_rows


def generate(
    out: Path | str,
    n_subjects: int = 24,
    seed: int = 0,
    physio_seconds: int = 30,
    speech_tasks: tuple[str, ...] = SPEECH_TASKS,
    silent_tasks: tuple[str, ...] = SILENT_TASKS,
    physio_rate: int = 500,
    workers: int = 1,
    progress: Callable[[int, int], None] | None = None,
) -> Path:
    """Write a synthetic dataset in StressID's layout under `out` (see data.py for the layout)."""
    import neurokit2  # noqa: F401  (import once here, so forked workers inherit it)

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    trng = random.Random(seed)
    alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
    sids: list[str] = []
    while len(sids) < n_subjects:
        sid = "".join(trng.choice(alphabet) for _ in range(4))
        if sid not in sids:
            sids.append(sid)
    subjects = [_subject(sid, rng) for sid in sids]
    tasks = list(silent_tasks) + list(speech_tasks)
    w = rng.choice([-1.0, 1.0], N_VIDEO)  # how each "facial action unit" moves with arousal
    args = [(s, seed, tasks, speech_tasks, w, out, physio_seconds, physio_rate) for s in subjects]
    if workers > 1:
        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork")) as pool:
            futures = [pool.submit(_record_subject, *a) for a in args]
            for i, _ in enumerate(as_completed(futures)):
                if progress:
                    progress(i + 1, len(futures))
            results = [f.result() for f in futures]
    else:
        results = []
        for i, a in enumerate(args):
            results.append(_record_subject(*a))
            if progress:
                progress(i + 1, len(args))
    reports = {s.sid: r for s, (r, _) in zip(subjects, results, strict=True)}
    _write_tables(out, tasks, reports, [row for _, rows in results for row in rows])
    params = {
        "n_subjects": n_subjects, "seed": seed, "physio_seconds": physio_seconds, "physio_rate": physio_rate,
        "speech_tasks": list(speech_tasks), "silent_tasks": list(silent_tasks), "voices": list(VOICES),
        "task_stress": {t: TASK_STRESS[t] for t in tasks},
    }  # fmt: skip
    (out / "synth.json").write_text(json.dumps(params, indent=2) + "\n")  # what the model card cites
    return out


def _write_tables(
    out: Path, tasks: list[str], reports: dict[str, dict[str, float]], video_rows: list
) -> None:
    # self_assessments.csv: ";" separated, one row per subject, "<Task>_stress" / "<Task>_relax" columns
    with open(out / "self_assessments.csv", "w", newline="") as f:
        wr = csv.writer(f, delimiter=";")
        wr.writerow(["subject", *[f"{t}_{q}" for t in tasks for q in ("relax", "stress")]])
        for sid, rep in reports.items():
            wr.writerow([sid, *[v for t in tasks for v in (int(10 - rep[t]), int(rep[t]))]])
    with open(out / "labels.csv", "w", newline="") as f:
        wr = csv.writer(f)
        wr.writerow(["subject/task", "binary-stress"])
        for sid, rep in reports.items():
            for t in tasks:
                wr.writerow([f"{sid}_{t}", int(rep[t] >= 5)])
    with open(out / "video_features.csv", "w", newline="") as f:
        wr = csv.writer(f)
        wr.writerow(["subject/task", *[f"AU{i:02d}_mean" for i in range(N_VIDEO)]])
        for row in video_rows:
            wr.writerow([row[0], *(f"{v:.4f}" for v in row[1:])])
    (out / "README.txt").write_text(
        "SYNTHETIC data in StressID's layout, written by `python -m stress_model synth`.\n"
        "espeak-ng speech and neurokit2-simulated physiology; no real person is in it.\n"
    )
