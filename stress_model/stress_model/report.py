"""Leave-one-subject-out evaluation on StressID's public feature tables (`make model-report`).

Methods, all on identical folds (one labelled audio subject held out per fold):

    svc_hc               StressID's classical baseline: RBF SVC on standardised stressid_hc features
    student_nokd         StudentNet over stressid_hc, cross-entropy only
    student_kd_labelled  + alpha * distillation toward the frozen teacher on the labelled pairs
    student_kd_all       + the same on every audio+physiology pair, the unlabelled ones included
    teacher              TeacherNet on physiology (+ video where present), its own LOSO over the
                         labelled subjects (18); the fold's teacher is the one the students distil from

Nothing a fold's test subject contributed reaches that fold: not the normalisation statistics, not
the teacher, not the unlabelled pairs, not early stopping (`fold_rows` builds every row set and
`check_no_leakage` asserts it). Early stopping uses labelled training subjects held out inside the
fold (validation), chosen by seed. The `lab_level` loudness step sets MFCC 0 to one constant for
every recording; which constant (the table's median) cannot matter to a fold: a constant column
standardises to zero.
"""

from __future__ import annotations

import multiprocessing
import random
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
from sklearn.metrics import accuracy_score, balanced_accuracy_score, f1_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC

from stress_model.config import Config
from stress_model.data import FeatureTables, Recording
from stress_model.evaluate import predict
from stress_model.features import MFCC0_PER_DB, STRESSID_HC_NAMES
from stress_model.train import (
    Prepared,
    Progress,
    teacher_features,
    teacher_stats,
    train_student,
    train_teacher,
)

METHODS = ("svc_hc", "student_nokd", "student_kd_labelled", "student_kd_all", "teacher")
STUDENTS = ("student_nokd", "student_kd_labelled", "student_kd_all")
METRICS = ("uar", "macro_f1", "weighted_f1", "accuracy")
MFCC0 = STRESSID_HC_NAMES.index("mfcc0_mean")
# Published anchors (binary stress): StressID (Chaptoukaev et al. 2023, weighted F1, their 10 random
# subject-grouped splits) and the seed StudentNet (accuracy / macro-F1 / UAR).
ANCHORS = {
    "stressid_audio_handcrafted_f1": (0.67, 0.04),
    "stressid_audio_deep_f1": (0.72, 0.07),
    "stressid_physiological_f1": (0.75, 0.04),
    "seed_student": {"accuracy": 0.76, "macro_f1": 0.74, "uar": 0.73},
}


def table_dataset(t: FeatureTables, cfg: Config) -> Prepared:
    """One row per recording that is labelled, or that pairs audio with physiology (label -1).

    Fills cfg.features.dim and cfg.teacher_inputs. Physiology-only unlabelled recordings are left
    out: nothing trains on them (the teacher is supervised; distillation needs audio).
    """
    keys = sorted(set(t.labels.index) | (set(t.audio.index) & set(t.physio.index)))
    n = len(keys)
    emb = np.full((n, t.audio.shape[1]), np.nan, np.float32)
    has_audio = np.array([k in t.audio.index for k in keys])
    emb[has_audio] = t.audio.loc[[k for k, a in zip(keys, has_audio, strict=True) if a]].to_numpy()
    mods = [m for m in cfg.modalities if m in t.columns]
    parts, mask = [], np.zeros((n, len(mods)), np.float32)
    for i, m in enumerate(mods):
        src = t.video if m == "video" else t.physio
        block = src[t.columns[m]].reindex(keys).to_numpy(np.float32)
        mask[:, i] = np.isfinite(block).any(axis=1)
        parts.append(block)
    cfg.features.dim = emb.shape[1]
    cfg.teacher_inputs = {m: len(t.columns[m]) for m in mods}
    y = np.array([int(t.labels.get(k, -1)) for k in keys], np.int64)
    recs = [
        Recording(*k.split("_", 1), int(lab), None, None, None, None) for k, lab in zip(keys, y, strict=True)
    ]
    return Prepared(recs, emb, has_audio, np.concatenate(parts, axis=1), mask, y)


def level_normalised(d: Prepared, target: float) -> Prepared:
    """The "lab_level" loudness step applied to a table: every recording's MFCC 0 mean becomes the
    target, exactly what scaling its speech to that level does (the other 139 values do not move)."""
    emb = d.emb.copy()
    emb[d.has_audio, MFCC0] = target
    return replace(d, emb=emb)


@dataclass
class FoldRows:
    """Row indices (into Prepared) for one held-out subject."""

    test_subject: str
    test: np.ndarray  # the subject's labelled audio recordings (students, SVC)
    train: np.ndarray  # labelled audio recordings of the other subjects (CE), minus validation
    val: np.ndarray  # labelled audio recordings of the validation subjects (early stopping)
    norm: np.ndarray  # audio rows that fit the students' input standardisation
    unlabelled: np.ndarray  # audio+physiology pairs without labels (distillation only)
    teacher_train: np.ndarray
    teacher_val: np.ndarray


def _subjects(d: Prepared, rows: np.ndarray) -> set[str]:
    return {d.recs[i].subject for i in rows}


def _pick_val(d: Prepared, subjects: list[str], n: int, seed: int, audio: bool) -> list[str]:
    """n validation subjects whose labelled recordings hold both classes together (seeded); fewer
    when there are few subjects, so that at least half of them still train."""
    n = min(n, max(1, (len(subjects) - 1) // 2))
    rng = random.Random(seed)
    for _ in range(100):
        pick = sorted(rng.sample(subjects, n))
        rows = [i for i, r in enumerate(d.recs) if r.subject in pick and r.label >= 0]
        if audio:
            rows = [i for i in rows if d.has_audio[i]]
        if len({int(d.y[i]) for i in rows}) == 2:
            return pick
    return pick


def fold_rows(d: Prepared, test_subject: str, cfg: Config) -> FoldRows:
    subj = np.array([r.subject for r in d.recs])
    labelled, audio, physio = d.y >= 0, d.has_audio, d.mask.sum(1) > 0
    others = subj != test_subject
    audio_subjects = sorted(set(subj[labelled & audio & others]))
    val_s = _pick_val(d, audio_subjects, cfg.loso_val_subjects, cfg.seed, audio=True)
    in_val = np.isin(subj, val_s)
    teacher_subjects = sorted(set(subj[labelled & physio & others]))
    t_val_s = _pick_val(d, teacher_subjects, cfg.loso_teacher_val_subjects, cfg.seed, audio=False)
    t_in_val = np.isin(subj, t_val_s)
    rows = FoldRows(
        test_subject,
        test=np.flatnonzero(~others & labelled & audio),
        train=np.flatnonzero(others & labelled & audio & ~in_val),
        val=np.flatnonzero(others & labelled & audio & in_val),
        norm=np.flatnonzero(others & audio),
        unlabelled=np.flatnonzero(others & ~labelled & audio & physio),
        teacher_train=np.flatnonzero(others & labelled & physio & ~t_in_val),
        teacher_val=np.flatnonzero(others & labelled & physio & t_in_val),
    )
    check_no_leakage(d, rows)
    return rows


def check_no_leakage(d: Prepared, rows: FoldRows) -> None:
    """Raise if a row set that shapes the fold's models holds a recording of its test subject."""
    for name in ("train", "val", "norm", "unlabelled", "teacher_train", "teacher_val"):
        if rows.test_subject in _subjects(d, getattr(rows, name)):
            raise AssertionError(f"fold {rows.test_subject}: its test subject leaks into {name}")
    if _subjects(d, rows.test) - {rows.test_subject}:
        raise AssertionError(f"fold {rows.test_subject}: test rows from another subject")
    if (d.y[rows.unlabelled] >= 0).any() or (d.y[rows.train] < 0).any():
        raise AssertionError(f"fold {rows.test_subject}: labelled and unlabelled rows mixed up")


def scores(y: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    return {
        "uar": float(balanced_accuracy_score(y, pred)) if len(set(y)) > 1 else float((pred == y).mean()),
        "macro_f1": float(f1_score(y, pred, average="macro", labels=[0, 1], zero_division=0)),
        "weighted_f1": float(f1_score(y, pred, average="weighted", labels=[0, 1], zero_division=0)),
        "accuracy": float(accuracy_score(y, pred)),
    }


def summarise(y: np.ndarray, pred: np.ndarray, subjects: np.ndarray) -> dict:
    """Pooled metrics over every held-out recording, and mean ± std over the per-subject folds.

    A subject whose recordings are all one class has a per-fold UAR equal to its accuracy (the
    recall of its only class) and a macro-F1 that averages in the absent class's zero: the per-fold
    numbers are noisier and lower than the pooled ones for that reason alone.
    """
    per = [scores(y[subjects == s], pred[subjects == s]) for s in sorted(set(subjects))]
    out = scores(y, pred)
    for m in METRICS:
        vals = [p[m] for p in per]
        out[f"{m}_fold_mean"], out[f"{m}_fold_std"] = float(np.mean(vals)), float(np.std(vals))
    out["n"], out["n_stressed"] = int(y.size), int(y.sum())
    return out


def svc_predict(d: Prepared, train: np.ndarray, test: np.ndarray) -> np.ndarray:
    """0/1 predictions of an RBF SVC on standardised features, classes balanced (the metric is UAR)."""
    clf = make_pipeline(StandardScaler(), SVC(kernel="rbf", class_weight="balanced"))
    clf.fit(d.emb[train], d.y[train])
    return clf.predict(d.emb[test])


def run_fold(d: Prepared, test_subject: str, cfg: Config) -> dict:
    """Every method's P(stressed) on the subject's held-out rows, averaged over cfg.loso_seeds seeds
    (each seed draws other validation subjects and initialisations)."""
    seeds = [replace(cfg, seed=cfg.seed + k) for k in range(cfg.loso_seeds)]
    acc: dict[str, list[np.ndarray]] = {}
    for c in seeds:
        rows = fold_rows(d, test_subject, c)
        teacher, _ = train_teacher(d, rows.teacher_train, rows.teacher_val, c)
        t_rows = _teacher_test_rows(d, test_subject)
        acc.setdefault("teacher", []).append(predict(teacher, d, t_rows))
        if rows.test.size == 0:  # a physiology-only subject: the teacher's fold only
            continue
        t_raw = teacher_features(teacher, d)
        kd_rows = np.concatenate([rows.train[d.mask[rows.train].sum(1) > 0], rows.unlabelled])
        mu, sd = teacher_stats(t_raw, kd_rows)
        t_feat = ((t_raw - mu) / sd).astype(np.float32)
        for name, alpha, extra in (
            ("student_nokd", 0.0, None),
            ("student_kd_labelled", c.alpha, None),
            ("student_kd_all", c.alpha, rows.unlabelled),
        ):
            net, _, _ = train_student(
                d, rows.train, rows.val, c, alpha, t_feat, name, extra_kd=extra, norm_rows=rows.norm
            )
            acc.setdefault(name, []).append(predict(net, d, rows.test))
    out = {"subject": test_subject, "teacher_rows": _teacher_test_rows(d, test_subject)}
    out["p"] = {m: np.mean(v, axis=0) for m, v in acc.items()}
    if rows.test.size:
        out["test_rows"] = rows.test
        out["p"]["svc_hc"] = svc_predict(d, np.concatenate([rows.train, rows.val]), rows.test).astype(float)
        out["info"] = {
            "train_subjects": len(_subjects(d, rows.train)) + len(_subjects(d, rows.val)),
            "unlabelled_pairs": int(rows.unlabelled.size),
        }
    return out


def _teacher_test_rows(d: Prepared, subject: str) -> np.ndarray:
    return np.flatnonzero(np.array([r.subject == subject for r in d.recs]) & (d.y >= 0) & (d.mask.sum(1) > 0))


def _run_fold_in_worker(args: tuple[Prepared, str, Config]) -> dict:
    torch.set_num_threads(1)
    return run_fold(*args)


def loso(d: Prepared, cfg: Config, progress: Progress | None = None, workers: int = 1) -> dict:
    """Every method over the labelled audio subjects; the teacher over all labelled subjects."""
    subj = np.array([r.subject for r in d.recs])
    labelled = d.y >= 0
    audio_subjects = sorted(set(subj[labelled & d.has_audio]))
    teacher_subjects = sorted(set(subj[labelled & (d.mask.sum(1) > 0)]))
    jobs = [(d, s, cfg) for s in teacher_subjects]
    if workers > 1:
        ctx = multiprocessing.get_context("fork")
        with ctx.Pool(workers) as pool:
            results = []
            for k, r in enumerate(pool.imap(_run_fold_in_worker, jobs)):
                results.append(r)
                if progress:
                    progress("LOSO folds", k + 1, len(jobs))
    else:
        results = []
        for k, job in enumerate(jobs):
            results.append(run_fold(*job))
            if progress:
                progress("LOSO folds", k + 1, len(jobs))
    preds: dict[str, dict[int, float]] = {m: {} for m in METHODS}
    folds = []
    for r in results:
        preds["teacher"].update(zip(r["teacher_rows"].tolist(), r["p"]["teacher"].tolist(), strict=True))
        if "test_rows" not in r:
            continue
        test = r["test_rows"]
        for m in (*STUDENTS, "svc_hc"):
            preds[m].update(zip(test.tolist(), r["p"][m].tolist(), strict=True))
        y = d.y[test]
        folds.append(
            {
                "subject": r["subject"],
                "n": int(test.size),
                "n_stressed": int(y.sum()),
                **r["info"],
                **{m: scores(y, (r["p"][m] >= 0.5).astype(int)) for m in ("svc_hc", *STUDENTS)},
                "teacher": scores(d.y[r["teacher_rows"]], (r["p"]["teacher"] >= 0.5).astype(int)),
            }
        )
    out: dict = {}
    for m in METHODS:
        idx = np.array(sorted(preds[m]))
        out[m] = summarise(d.y[idx], (np.array([preds[m][i] for i in idx]) >= 0.5).astype(int), subj[idx])
    out["subjects"] = {"audio": audio_subjects, "teacher": teacher_subjects}
    out["folds"] = folds
    return out


def svc_uar(d: Prepared, cfg: Config) -> float:
    """Pooled LOSO UAR of the SVC alone (cheap: for the loudness comparison)."""
    subj = np.array([r.subject for r in d.recs])
    ys, ps = [], []
    for s in sorted(set(subj[(d.y >= 0) & d.has_audio])):
        rows = fold_rows(d, s, cfg)
        ys.append(d.y[rows.test])
        ps.append(svc_predict(d, np.concatenate([rows.train, rows.val]), rows.test))
    return float(balanced_accuracy_score(np.concatenate(ys), np.concatenate(ps)))


def mfcc0_shift(t: FeatureTables, sample_mfcc0: dict[str, float]) -> dict:
    """Where given recordings' MFCC 0 mean falls against the lab's: in lab standard deviations and dB."""
    lab = t.audio["mfcc0_mean"].to_numpy()
    med, sd = float(np.median(lab)), float(lab.std())
    return {
        "lab_median": med,
        "lab_std": sd,
        "lab_p5_p95": [float(np.percentile(lab, 5)), float(np.percentile(lab, 95))],
        "samples": {
            name: {"mfcc0_mean": v, "z": (v - med) / sd, "db_above_lab_median": (v - med) / MFCC0_PER_DB}
            for name, v in sample_mfcc0.items()
        },
    }


def best_student(result: dict) -> str:
    """Highest pooled UAR, then macro-F1; a tie goes to the simpler method (fewer ingredients)."""
    return max(STUDENTS, key=lambda m: (result[m]["uar"], result[m]["macro_f1"], -STUDENTS.index(m)))


def plot(result: dict, path_metrics: Path, path_folds: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 3.6))
    width = 0.2
    for k, metric in enumerate(METRICS):
        x = np.arange(len(METHODS)) + (k - 1.5) * width
        ax.bar(
            x,
            [result[m][metric] for m in METHODS],
            width,
            yerr=[result[m][f"{metric}_fold_std"] for m in METHODS],
            capsize=2,
            label=metric,
        )
    f1, sd = ANCHORS["stressid_audio_handcrafted_f1"]
    ax.axhline(f1, color="gray", ls="--", lw=1, label=f"StressID audio HC weighted F1 {f1} ± {sd}")
    ax.axhline(0.5, color="black", ls=":", lw=1)
    ax.set_xticks(np.arange(len(METHODS)), METHODS, fontsize=8)
    ax.set_ylim(0, 1)
    ax.set_title("StressID public tables, leave-one-subject-out (pooled; bars: per-fold std)", fontsize=9)
    ax.legend(fontsize=7, ncols=3, loc="upper left")
    fig.tight_layout()
    fig.savefig(path_metrics, dpi=80)
    plt.close(fig)

    folds = result["folds"]
    fig, ax = plt.subplots(figsize=(9, 3.2))
    for k, m in enumerate(("svc_hc", *STUDENTS)):
        ax.plot(np.arange(len(folds)) + (k - 1.5) * 0.08, [f[m]["uar"] for f in folds], "o", label=m, ms=4)
    ax.set_xticks(np.arange(len(folds)), [f"{f['subject']}\n{f['n_stressed']}/{f['n']}" for f in folds])
    ax.axhline(0.5, color="black", ls=":", lw=1)
    ax.set_ylabel("UAR of the held-out subject")
    ax.set_title("per fold (subject, stressed/recordings)", fontsize=9)
    ax.legend(fontsize=7, ncols=4)
    fig.tight_layout()
    fig.savefig(path_folds, dpi=80)
    plt.close(fig)
