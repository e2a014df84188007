"""Training: teacher on physiology (+video), then the student on audio with and without distillation.

    student loss = CE(logits, y) + alpha * MSE(P(f_student), f_teacher)

f_teacher is the frozen teacher's fused feature, standardised with train-set statistics so the MSE
is in units of "teacher-feature variance" (predicting the mean scores 1.0): alpha then means the same
thing whatever the teacher's width or activation scale. That is why alpha=1e-6 (the original's) did
nothing: the KD term was a millionth of the CE. P is a linear projection trained alongside.

P is *also* trained for the alpha=0 baseline, on detached student features: a probe that cannot move
the student, fitted on the same schedule. So `kd_mse` (MSE of P(f_student) to f_teacher) compares
like with like: how close each student's features come to the teacher's, not a trained head against
a random one.
"""

from __future__ import annotations

import copy
import multiprocessing
import random
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from stress_model.audio import BadAudioError, load
from stress_model.config import Config
from stress_model.data import Recording, read_physio, split_subjects
from stress_model.features import Encoder, build_encoder
from stress_model.model import StudentNet, TeacherNet
from stress_model.physio import physio_features

Progress = Callable[[str, int, int], None]  # (task description, done, total)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


@dataclass
class Prepared:
    """Per-recording model inputs, aligned with `recs`."""

    recs: list[Recording]
    emb: np.ndarray  # (N, D) audio embeddings, NaN rows where there is no usable audio
    has_audio: np.ndarray  # (N,) bool
    phys: np.ndarray  # (N, P) concatenated teacher inputs (NaN = missing)
    mask: np.ndarray  # (N, M) 1 = modality present
    y: np.ndarray  # (N,) int labels
    skipped: list[str] = field(default_factory=list)

    def rows(self, subjects: list[str], audio: bool = False, teacher: bool = False) -> np.ndarray:
        keep = np.array([r.subject in set(subjects) for r in self.recs])
        if audio:
            keep &= self.has_audio
        if teacher:
            keep &= self.mask.sum(1) > 0
        return np.flatnonzero(keep)


def _embed(r: Recording, cfg: Config, encoder: Encoder) -> tuple[np.ndarray | None, str | None]:
    if r.audio is None:
        return None, None
    try:
        return encoder(load(r.audio, cfg.features)), None
    except BadAudioError as e:  # a broken file in a dataset is skipped, not fatal
        return None, f"{r.key}: {e}"


def _features_of(
    r: Recording, cfg: Config, encoder: Encoder | None
) -> tuple[np.ndarray | None, str | None, dict[str, np.ndarray]]:
    emb, err = _embed(r, cfg, encoder) if encoder is not None else (None, None)
    return emb, err, physio_features(read_physio(r.physio) if r.physio else None, cfg.physio_rate)


_worker_encoder: Encoder | None = None
WEIGHT_FREE = ("handcrafted", "stressid_hc")


def _features_in_worker(r: Recording, cfg: Config) -> tuple[np.ndarray | None, str | None, dict]:
    # Only the weight-free encoders are rebuilt per process; a wav2vec2 model stays in the parent,
    # which embeds the audio itself.
    global _worker_encoder
    if _worker_encoder is None and cfg.features.encoder in WEIGHT_FREE:
        _worker_encoder = build_encoder(copy.deepcopy(cfg.features))
    return _features_of(r, cfg, _worker_encoder)


def prepare(
    recs: list[Recording],
    cfg: Config,
    encoder: Encoder,
    progress: Progress | None = None,
    workers: int = 1,
) -> Prepared:
    """Compute audio embeddings and teacher inputs for every recording; fills cfg.teacher_inputs."""
    n = len(recs)
    emb = np.full((n, cfg.features.dim), np.nan, np.float32)
    has_audio = np.zeros(n, bool)
    out: list = [None] * n
    if workers > 1:
        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork")) as pool:
            futures = {pool.submit(_features_in_worker, r, cfg): i for i, r in enumerate(recs)}
            for done, fut in enumerate(as_completed(futures)):
                out[futures[fut]] = fut.result()
                if progress:
                    progress("features", done + 1, n)
    else:
        for i, r in enumerate(recs):
            out[i] = _features_of(r, cfg, encoder)
            if progress:
                progress("features", i + 1, n)
    skipped = [err for _, err, _ in out if err]
    for i, (e, _, _) in enumerate(out):
        if e is not None:
            emb[i], has_audio[i] = e, True
    if workers > 1 and cfg.features.encoder not in WEIGHT_FREE:
        for i, r in enumerate(recs):
            e, err = _embed(r, cfg, encoder)
            if e is not None:
                emb[i], has_audio[i] = e, True
            elif err:
                skipped.append(err)
    video_dim = max((r.video.size for r in recs if r.video is not None), default=0)
    feats = [o[2] for o in out]
    for f, r in zip(feats, recs, strict=True):
        f["video"] = r.video if r.video is not None else np.full(video_dim, np.nan, np.float32)
    if not cfg.teacher_inputs:  # training: use every configured modality that has any data
        cfg.teacher_inputs = {
            m: int(feats[0][m].size)
            for m in cfg.modalities
            if m in feats[0] and feats[0][m].size and any(np.isfinite(f[m]).any() for f in feats)
        }
    mods = [m for m in cfg.modalities if m in cfg.teacher_inputs]
    phys = np.stack([np.concatenate([f[m] for m in mods]) for f in feats]).astype(np.float32)
    mask = np.array([[float(np.isfinite(f[m]).any()) for m in mods] for f in feats], np.float32)
    y = np.array([r.label for r in recs], np.int64)
    return Prepared(recs, emb, has_audio, phys, mask, y, skipped)


def _class_weights(y: np.ndarray, cfg: Config) -> torch.Tensor | None:
    if not cfg.balance_classes:
        return None
    counts = np.bincount(y, minlength=2).astype(np.float32)
    return torch.tensor(counts.sum() / (2 * np.maximum(counts, 1)), dtype=torch.float32)


def fit(
    modules: nn.Module,
    batch_loss: Callable[[np.ndarray], tuple[torch.Tensor, float]],
    val_ce: Callable[[], float],
    n_train: int,
    cfg: Config,
    desc: str,
    progress: Progress | None = None,
) -> dict[str, list[float]]:
    """AdamW minibatch training with early stopping on validation CE; restores the best epoch."""
    opt = torch.optim.AdamW(modules.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    rng = np.random.default_rng(cfg.seed)
    hist: dict[str, list[float]] = {"train_loss": [], "train_ce": [], "val_ce": []}
    best, best_state, wait = float("inf"), copy.deepcopy(modules.state_dict()), 0
    for epoch in range(cfg.max_epochs):
        modules.train()
        perm = rng.permutation(n_train)
        tot = ce_sum = 0.0
        for i in range(0, n_train, cfg.batch_size):
            idx = perm[i : i + cfg.batch_size]
            loss, ce = batch_loss(idx)
            opt.zero_grad()
            loss.backward()
            opt.step()
            tot += loss.item() * idx.size
            ce_sum += ce * idx.size
        modules.eval()
        with torch.no_grad():
            v = val_ce()
        hist["train_loss"].append(tot / n_train)
        hist["train_ce"].append(ce_sum / n_train)
        hist["val_ce"].append(v)
        if v < best - 1e-4:
            best, best_state, wait = v, copy.deepcopy(modules.state_dict()), 0
        else:
            wait += 1
        if progress:
            progress(desc, epoch + 1, cfg.max_epochs)
        if wait >= cfg.patience:
            break
    modules.load_state_dict(best_state)
    modules.eval()
    hist["best_epoch"] = [len(hist["val_ce"]) - wait]
    return hist


def train_teacher(
    d: Prepared, train: np.ndarray, val: np.ndarray, cfg: Config, progress: Progress | None = None
) -> tuple[TeacherNet, dict]:
    seed_everything(cfg.seed)
    net = TeacherNet(cfg)
    net.norm.fit(d.phys[train])
    X, M, Y = (torch.from_numpy(a) for a in (d.phys, d.mask, d.y))
    w = _class_weights(d.y[train], cfg)

    def batch_loss(idx: np.ndarray) -> tuple[torch.Tensor, float]:
        rows = train[idx]
        logits, _ = net(X[rows], M[rows])
        ce = F.cross_entropy(logits, Y[rows], weight=w)
        return ce, ce.item()

    def val_ce() -> float:
        return F.cross_entropy(net(X[val], M[val])[0], Y[val], weight=w).item()

    hist = fit(net, batch_loss, val_ce, train.size, cfg, "teacher", progress)
    return net, hist


@torch.no_grad()
def teacher_features(teacher: TeacherNet, d: Prepared) -> np.ndarray:
    return teacher(torch.from_numpy(d.phys), torch.from_numpy(d.mask))[1].numpy()


def train_student(
    d: Prepared,
    train: np.ndarray,
    val: np.ndarray,
    cfg: Config,
    alpha: float,
    t_feat: np.ndarray | None,
    desc: str = "student",
    progress: Progress | None = None,
    extra_kd: np.ndarray | None = None,
    norm_rows: np.ndarray | None = None,
) -> tuple[StudentNet, nn.Linear, dict]:
    """Student on audio embeddings; alpha > 0 adds the distillation term toward t_feat (standardised).

    `train` rows carry labels (CE, and KD where they have physiology). `extra_kd` rows need no
    label: each step adds a batch of them to the KD term only, so the CE schedule is the same with
    or without them. `norm_rows` (default `train`) fit the input standardisation.
    """
    seed_everything(cfg.seed)
    net = StudentNet(cfg)
    net.norm.fit(d.emb[train if norm_rows is None else norm_rows])
    proj = nn.Linear(cfg.student_feat_dim, cfg.teacher_feat_dim)
    E, Y = torch.from_numpy(d.emb), torch.from_numpy(d.y)
    has_t = (
        torch.from_numpy(d.mask.sum(1) > 0) if t_feat is not None else torch.zeros(len(d.y), dtype=torch.bool)
    )
    T = torch.from_numpy(np.nan_to_num(t_feat)) if t_feat is not None else None
    extra = np.asarray([] if extra_kd is None or T is None else extra_kd, dtype=np.int64)
    rng = np.random.default_rng(cfg.seed + 1)
    w = _class_weights(d.y[train], cfg)

    def jitter(x: torch.Tensor) -> torch.Tensor:
        # jitter in standardised units: a cheap regulariser for small tabular data
        return x + cfg.input_noise * net.norm.std * torch.randn_like(x) if cfg.input_noise > 0 else x

    def batch_loss(idx: np.ndarray) -> tuple[torch.Tensor, float]:
        rows = torch.from_numpy(train[idx])
        logits, f = net(jitter(E[rows]))
        ce = F.cross_entropy(logits, Y[rows], weight=w)
        loss = ce
        sel = rows[has_t[rows]]  # distil only where the recording has physiology
        f_sel = f[has_t[rows]]
        if extra.size:
            more = torch.from_numpy(rng.choice(extra, size=min(cfg.batch_size, extra.size), replace=False))
            sel, f_sel = torch.cat([sel, more]), torch.cat([f_sel, net(jitter(E[more]))[1]])
        if T is not None and sel.numel():
            loss = loss + F.mse_loss(proj(f_sel.detach()), T[sel])  # probe: moves P only
            if alpha > 0:
                loss = loss + alpha * F.mse_loss(proj(f_sel), T[sel])
        return loss, ce.item()

    def val_ce() -> float:
        return F.cross_entropy(net(E[val])[0], Y[val], weight=w).item()

    hist = fit(nn.ModuleList([net, proj]), batch_loss, val_ce, train.size, cfg, desc, progress)
    return net, proj, hist


@torch.no_grad()
def kd_mse(net: StudentNet, proj: nn.Linear, emb: np.ndarray, t_feat: np.ndarray) -> float:
    """MSE between P(student feature) and the standardised teacher feature (1.0 = the mean's score)."""
    f = net(torch.from_numpy(emb))[1]
    return F.mse_loss(proj(f), torch.from_numpy(t_feat)).item()


def teacher_stats(t_raw: np.ndarray, train_rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-dimension mean/std of teacher features on the student's training rows.

    The std is floored at a tenth of the median: a ReLU unit that is almost never active in training
    would otherwise turn one held-out activation into a huge z-score and dominate the MSE.
    """
    mu, sd = t_raw[train_rows].mean(0), t_raw[train_rows].std(0)
    sd = np.maximum(sd, 0.1 * np.median(sd) + 1e-6)
    return mu.astype(np.float32), sd.astype(np.float32)


@dataclass
class Result:
    teacher: TeacherNet
    student_kd: StudentNet
    student_nokd: StudentNet
    proj_kd: nn.Linear  # P: student feature -> teacher feature (a detached probe for the no-KD student)
    proj_nokd: nn.Linear
    split: dict[str, list[str]]
    history: dict[str, dict]
    t_feat: np.ndarray  # standardised teacher features for every recording
    t_stats: tuple[np.ndarray, np.ndarray] | None = None  # (mean, std) used to standardise them


def train_all(d: Prepared, cfg: Config, progress: Progress | None = None) -> Result:
    """Subject-wise split -> teacher -> student with KD (alpha=cfg.alpha) and without (alpha=0)."""
    tr_s, va_s, te_s = split_subjects(d.recs, cfg.val_frac, cfg.test_frac, cfg.seed)
    teacher, h_t = train_teacher(d, d.rows(tr_s, teacher=True), d.rows(va_s, teacher=True), cfg, progress)
    s_train, s_val = d.rows(tr_s, audio=True), d.rows(va_s, audio=True)
    if s_train.size == 0 or s_val.size == 0:
        raise ValueError("no audio recordings in the train or validation subjects")
    t_raw = teacher_features(teacher, d)
    mu, sd = teacher_stats(t_raw, d.rows(tr_s, audio=True, teacher=True))
    t_feat = ((t_raw - mu) / sd).astype(np.float32)
    kd, p_kd, h_kd = train_student(d, s_train, s_val, cfg, cfg.alpha, t_feat, "student (KD)", progress)
    nokd, p_nokd, h_nokd = train_student(d, s_train, s_val, cfg, 0.0, t_feat, "student (no KD)", progress)
    rows = d.rows(tr_s, audio=True, teacher=True)  # the mechanism check: on the data KD was applied to
    h_kd["kd_mse_train"] = [kd_mse(kd, p_kd, d.emb[rows], t_feat[rows])]
    h_nokd["kd_mse_train"] = [kd_mse(nokd, p_nokd, d.emb[rows], t_feat[rows])]
    return Result(
        teacher,
        kd,
        nokd,
        p_kd,
        p_nokd,
        {"train": tr_s, "val": va_s, "test": te_s},
        {"teacher": h_t, "student_kd": h_kd, "student_nokd": h_nokd},
        t_feat,
        (mu, sd),
    )


def save_projections(path: Path, res: Result) -> None:
    """Projections P + teacher-feature statistics: what `evaluate` needs to recompute kd_mse."""
    from safetensors.torch import save_file

    state = {
        f"{name}.{k}": v.detach().contiguous()
        for name, p in (("kd", res.proj_kd), ("nokd", res.proj_nokd))
        for k, v in p.state_dict().items()
    }
    if res.t_stats is not None:
        state["t_mean"], state["t_std"] = (torch.from_numpy(a) for a in res.t_stats)
    save_file(state, str(path), metadata={"format": "pt"})
