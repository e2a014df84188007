"""Held-out metrics (accuracy, macro-F1, UAR = balanced accuracy), the rich table, and the plots.

All three models are scored on the same recordings: test-subject speech tasks that also have
physiology, so teacher vs student numbers are comparable.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # headless: training runs on servers
import matplotlib.pyplot as plt
import numpy as np
import torch
from rich.table import Table
from sklearn.metrics import accuracy_score, balanced_accuracy_score, confusion_matrix, f1_score

from stress_model.config import LABELS
from stress_model.model import StudentNet, TeacherNet
from stress_model.train import Prepared, Result, kd_mse

MODELS = ("teacher", "student_nokd", "student_kd")
TITLES = {"teacher": "teacher (physio+video)", "student_nokd": "student, no KD", "student_kd": "student, KD"}


def scores(y: np.ndarray, pred: np.ndarray) -> dict:
    return {
        "accuracy": float(accuracy_score(y, pred)),
        "macro_f1": float(f1_score(y, pred, average="macro", labels=[0, 1], zero_division=0)),
        "uar": float(balanced_accuracy_score(y, pred)),
        "n": int(y.size),
        "n_stressed": int(y.sum()),
        "confusion": confusion_matrix(y, pred, labels=[0, 1]).tolist(),
    }


@torch.no_grad()
def predict(model: StudentNet | TeacherNet, d: Prepared, rows: np.ndarray) -> np.ndarray:
    """P(stressed) for the given rows."""
    if isinstance(model, TeacherNet):
        logits = model(torch.from_numpy(d.phys[rows]), torch.from_numpy(d.mask[rows]))[0]
    else:
        logits = model(torch.from_numpy(d.emb[rows]))[0]
    return torch.softmax(logits, dim=1)[:, 1].numpy()


def evaluate(res: Result, d: Prepared, subjects: list[str]) -> dict:
    rows = d.rows(subjects, audio=True, teacher=True)
    y = d.y[rows]
    out: dict = {}
    for name in MODELS:
        out[name] = scores(y, (predict(getattr(res, name), d, rows) >= 0.5).astype(int))
    out["student_kd"]["kd_mse"] = kd_mse(res.student_kd, res.proj_kd, d.emb[rows], res.t_feat[rows])
    out["student_nokd"]["kd_mse"] = kd_mse(res.student_nokd, res.proj_nokd, d.emb[rows], res.t_feat[rows])
    for name in ("student_kd", "student_nokd"):
        if "kd_mse_train" in res.history.get(name, {}):
            out[name]["kd_mse_train"] = res.history[name]["kd_mse_train"][0]
    return out


def table(metrics: dict, title: str = "held-out subjects") -> Table:
    t = Table(title=title)
    for col in ("model", "accuracy", "macro-F1", "UAR", "n (stressed)", "KD MSE train / test"):
        t.add_column(col, justify="left" if col == "model" else "right")
    for name in MODELS:
        m = metrics[name]
        kd = f"{m.get('kd_mse_train', float('nan')):.3f} / {m['kd_mse']:.3f}" if "kd_mse" in m else "-"
        t.add_row(
            TITLES[name],
            f"{m['accuracy']:.3f}",
            f"{m['macro_f1']:.3f}",
            f"{m['uar']:.3f}",
            f"{m['n']} ({m['n_stressed']})",
            kd,
        )
    return t


def plot_curves(history: dict, path: Path) -> None:
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.2), sharey=True)
    for ax, name in zip(axes, MODELS, strict=True):
        h = history[name]
        ax.plot(h["train_ce"], label="train CE")
        ax.plot(h["val_ce"], label="val CE")
        if name == "student_kd":
            ax.plot(h["train_loss"], label="train CE + alpha*KD + probe", alpha=0.6)
        ax.axvline(h["best_epoch"][0] - 1, color="gray", ls=":", lw=1)
        ax.set_title(TITLES[name])
        ax.set_xlabel("epoch")
        ax.legend(fontsize=7)
    axes[0].set_ylabel("loss")
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def plot_confusions(metrics: dict, path: Path) -> None:
    fig, axes = plt.subplots(1, 3, figsize=(10, 3.2))
    for ax, name in zip(axes, MODELS, strict=True):
        cm = np.array(metrics[name]["confusion"])
        ax.imshow(cm, cmap="Blues")
        for (i, j), v in np.ndenumerate(cm):
            ax.text(j, i, str(v), ha="center", va="center", color="white" if v > cm.max() / 2 else "black")
        ax.set_xticks([0, 1], LABELS, fontsize=8)
        ax.set_yticks([0, 1], LABELS, fontsize=8)
        ax.set_xlabel("predicted")
        ax.set_title(f"{TITLES[name]}\nUAR {metrics[name]['uar']:.2f}", fontsize=9)
    axes[0].set_ylabel("true")
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


# Texts that are NOT in the synthetic training corpus (synth.py): the demo check must generalise.
CHECK_TEXTS = (
    "I can't do this anymore, everything is going wrong",
    "Please call me back when you have a moment, there is no rush at all",
    "We should talk about the plans for next weekend",
)
CHECK_VOICES = ("en", "en-us", "en-gb-x-rp+f3")


def speech_check(ckpt: Path, workdir: Path) -> dict:
    """P(stressed) of calm vs stressed espeak-ng speech of unseen texts, through the real handler."""
    from stress_model.handler import EndpointHandler
    from stress_model.synth import speak

    h = EndpointHandler(str(ckpt))
    out: dict = {"texts": list(CHECK_TEXTS), "voices": list(CHECK_VOICES), "calm": [], "stressed": []}
    for style in ("calm", "stressed"):
        for i, text in enumerate(CHECK_TEXTS):
            for voice in CHECK_VOICES:
                wav = speak(text, style, workdir / f"{style}_{i}_{voice}.wav", voice=voice)
                out[style].append(round(h({"inputs": wav.read_bytes()})[0]["score"], 4))
    return out
