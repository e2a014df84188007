"""StudentNet (audio), TeacherNet (physiology + video), and checkpoint save/load (safetensors).

Input normalisation (train-set mean/std) is stored as buffers inside each network, so the weights
file alone reproduces inference: nothing to recompute, nothing to forget to ship.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch import nn

from stress_model.config import Config


class Standardize(nn.Module):
    """(x - mean) / std with train-set statistics; NaN (missing) -> 0, i.e. the training mean."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.register_buffer("mean", torch.zeros(dim))
        self.register_buffer("std", torch.ones(dim))

    def fit(self, x: np.ndarray) -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns are expected (missing sensors)
            mean, std = np.nanmean(x, axis=0), np.nanstd(x, axis=0)
        self.mean.copy_(torch.as_tensor(np.nan_to_num(mean), dtype=torch.float32))
        # constant or all-missing columns get std 1 so they stay at 0 instead of blowing up
        self.std.copy_(torch.as_tensor(np.where(np.nan_to_num(std) > 1e-6, std, 1.0), dtype=torch.float32))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # clamp: a wildly off-distribution input (odd microphone, clipping) must not saturate the MLP
        return torch.nan_to_num((x - self.mean) / self.std, nan=0.0).clamp(-8.0, 8.0)


class StudentNet(nn.Module):
    """MLP over an utterance embedding -> 2 logits (0 not_stressed, 1 stressed).

    forward returns (logits, feature); the feature is the penultimate layer, the one that
    distillation pulls toward the teacher's fused feature.
    """

    def __init__(self, cfg: Config) -> None:
        super().__init__()
        dim = cfg.features.dim
        if dim <= 0:
            raise ValueError("cfg.features.dim is not set: build the encoder first")
        self.norm = Standardize(dim)
        self.proj = nn.Linear(dim, cfg.student_input_dim) if cfg.student_input_dim > 0 else nn.Identity()
        width = cfg.student_input_dim or dim
        self.body = nn.Sequential(
            nn.Linear(width, cfg.student_hidden),
            nn.ReLU(),
            nn.Dropout(cfg.dropout),
            nn.Linear(cfg.student_hidden, cfg.student_feat_dim),
            nn.ReLU(),
        )
        self.head = nn.Sequential(nn.Dropout(cfg.dropout), nn.Linear(cfg.student_feat_dim, 2))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        feat = self.body(self.proj(self.norm(x)))
        return self.head(feat), feat


class TeacherNet(nn.Module):
    """Per-modality summary-feature MLP encoders -> masked concat -> fused feature -> 2 logits.

    x is the concatenation of the modality vectors in `cfg.modalities` order (those in
    cfg.teacher_inputs); mask[:, i] = 0 marks modality i as missing for that sample, and its
    encoder output is zeroed so a missing sensor is "no evidence", not garbage.
    """

    def __init__(self, cfg: Config) -> None:
        super().__init__()
        self.mods = [m for m in cfg.modalities if cfg.teacher_inputs.get(m, 0) > 0]
        if not self.mods:
            raise ValueError("teacher has no input modality (cfg.teacher_inputs is empty)")
        self.sizes = [cfg.teacher_inputs[m] for m in self.mods]
        self.norm = Standardize(sum(self.sizes))
        h = cfg.teacher_hidden
        self.enc = nn.ModuleDict(
            {m: nn.Sequential(nn.Linear(n, h), nn.ReLU()) for m, n in zip(self.mods, self.sizes, strict=True)}
        )
        self.fuse = nn.Sequential(
            nn.Dropout(cfg.dropout), nn.Linear(h * len(self.mods), cfg.teacher_feat_dim), nn.ReLU()
        )
        self.head = nn.Sequential(nn.Dropout(cfg.dropout), nn.Linear(cfg.teacher_feat_dim, 2))

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        parts = torch.split(self.norm(x), self.sizes, dim=1)
        z = torch.cat(
            [
                self.enc[m](p) * mask[:, i : i + 1]
                for i, (m, p) in enumerate(zip(self.mods, parts, strict=True))
            ],
            dim=1,
        )
        feat = self.fuse(z)
        return self.head(feat), feat


def _save(module: nn.Module, path: Path) -> None:
    state = {k: v.detach().cpu().contiguous() for k, v in module.state_dict().items()}
    save_file(state, str(path), metadata={"format": "pt"})


def save_checkpoint(
    out: Path,
    cfg: Config,
    student: StudentNet,
    teacher: TeacherNet | None = None,
    baseline: StudentNet | None = None,
) -> None:
    """config.json + model.safetensors (the deployed student) [+ teacher / no-KD baseline weights]."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    cfg.save(out / "config.json")
    _save(student, out / "model.safetensors")
    if teacher is not None:
        _save(teacher, out / "teacher.safetensors")
    if baseline is not None:
        _save(baseline, out / "student_nokd.safetensors")


def load_student(ckpt: Path, weights: str = "model.safetensors") -> tuple[Config, StudentNet]:
    ckpt = Path(ckpt)
    cfg = Config.load(ckpt / "config.json")
    net = StudentNet(cfg)
    net.load_state_dict(load_file(str(ckpt / weights)))
    return cfg, net.eval()


def load_teacher(ckpt: Path) -> TeacherNet:
    cfg = Config.load(Path(ckpt) / "config.json")
    net = TeacherNet(cfg)
    net.load_state_dict(load_file(str(Path(ckpt) / "teacher.safetensors")))
    return net.eval()
