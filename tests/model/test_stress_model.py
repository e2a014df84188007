"""Networks, checkpoints, determinism and distillation, on small in-memory data (no audio needed)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch

from stress_model.config import Config, FeatureConfig
from stress_model.data import Recording
from stress_model.evaluate import evaluate
from stress_model.model import StudentNet, TeacherNet, load_student, load_teacher, save_checkpoint
from stress_model.train import Prepared, train_all, train_student


def small_cfg(**kw: object) -> Config:
    cfg = Config(
        features=FeatureConfig(dim=12),
        modalities=("ecg", "eda"),
        teacher_inputs={"ecg": 5, "eda": 5},
        max_epochs=120,
        patience=30,
    )
    return dataclasses.replace(cfg, **kw)  # type: ignore[arg-type]


def latent_data(
    n_subjects: int = 24, per_subject: int = 12, seed: int = 0, label_noise: float = 0.15
) -> Prepared:
    """Audio embeddings and physiology as two noisy views of one latent state; label from the latent,
    with some labels flipped (self-reports are noisy). The physiological view is cleaner, as in the
    real setting (teacher > student).
    """
    rng = np.random.default_rng(seed)
    n = n_subjects * per_subject
    z = rng.normal(size=(n, 4))
    y = (z[:, 0] + 0.5 * z[:, 1] > 0).astype(np.int64)
    y = np.where(rng.random(n) < label_noise, 1 - y, y)
    emb = (z @ rng.normal(size=(4, 12)) + rng.normal(0, 1.5, (n, 12))).astype(np.float32)
    phys = (z @ rng.normal(size=(4, 10)) + rng.normal(0, 0.3, (n, 10))).astype(np.float32)
    recs = [
        Recording(
            f"s{i // per_subject:02d}", f"t{i % per_subject}", int(y[i]), None, Path("x.wav"), None, None
        )
        for i in range(n)
    ]
    return Prepared(recs, emb, np.ones(n, bool), phys, np.ones((n, 2), np.float32), y)


def test_student_shapes_and_projection() -> None:
    net = StudentNet(small_cfg()).eval()
    logits, feat = net(torch.randn(5, 12))
    assert logits.shape == (5, 2) and feat.shape == (5, 32)
    proj = StudentNet(small_cfg(student_input_dim=8)).eval()  # e.g. 768 -> 512 for a wav2vec2-base encoder
    assert isinstance(proj.proj, torch.nn.Linear) and proj.proj.out_features == 8
    assert proj(torch.randn(3, 12))[0].shape == (3, 2)


def test_teacher_shapes_and_missing_modality() -> None:
    torch.manual_seed(0)
    net = TeacherNet(small_cfg()).eval()
    x = torch.randn(4, 10)
    mask = torch.tensor([[1.0, 1.0], [1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    logits, feat = net(x, mask)
    assert logits.shape == (4, 2) and feat.shape == (4, 32)
    x2 = x.clone()
    x2[1:3, 5:] = 1e3  # garbage in a modality marked missing must not change the output
    torch.testing.assert_close(net(x2, mask)[0][1:3], logits[1:3])
    x3 = x.clone()
    x3[0, 5:] = float("nan")  # NaN (sensor dropout) is treated as the training mean
    assert torch.isfinite(net(x3, mask)[0]).all()


def test_nan_and_extreme_embeddings_stay_finite() -> None:
    net = StudentNet(small_cfg()).eval()
    x = torch.randn(2, 12)
    x[0, 3] = float("nan")
    x[1, 4] = 1e9
    assert torch.isfinite(net(x)[0]).all()


def test_save_load_round_trip(tmp_path: Path) -> None:
    cfg = small_cfg()
    torch.manual_seed(1)
    student, teacher = StudentNet(cfg), TeacherNet(cfg)
    student.norm.fit(np.random.default_rng(0).normal(3, 2, (50, 12)))
    save_checkpoint(tmp_path, cfg, student.eval(), teacher.eval())
    cfg2, student2 = load_student(tmp_path)
    assert cfg2 == cfg
    x = torch.randn(6, 12)
    torch.testing.assert_close(student2(x)[0], student(x)[0], rtol=0, atol=0)
    torch.testing.assert_close(
        student2.norm.mean, student.norm.mean
    )  # normalisation travels with the weights
    m = torch.ones(6, 2)
    torch.testing.assert_close(
        load_teacher(tmp_path)(x[:, :10], m)[1], teacher(x[:, :10], m)[1], rtol=0, atol=0
    )


def test_training_is_deterministic() -> None:
    d, cfg = latent_data(n_subjects=8, per_subject=8), small_cfg(max_epochs=15)
    rows = np.arange(40)
    a, _, _ = train_student(d, rows, np.arange(40, 64), cfg, alpha=0.0, t_feat=None)
    b, _, _ = train_student(d, rows, np.arange(40, 64), cfg, alpha=0.0, t_feat=None)
    c, _, _ = train_student(
        d, rows, np.arange(40, 64), dataclasses.replace(cfg, seed=1), alpha=0.0, t_feat=None
    )
    for k, v in a.state_dict().items():
        torch.testing.assert_close(v, b.state_dict()[k], rtol=0, atol=0)
    assert any(not torch.equal(v, c.state_dict()[k]) for k, v in a.state_dict().items())


@pytest.fixture(scope="module")
def trained() -> tuple[Prepared, object, dict]:
    d = latent_data()
    res = train_all(d, small_cfg(alpha=3.0))
    return d, res, evaluate(res, d, res.split["test"])


def test_distillation_pulls_student_features_toward_teacher(trained: tuple) -> None:
    _, _, m = trained
    kd, nokd = m["student_kd"], m["student_nokd"]
    # Both students have a trained projection P (for alpha=0 a probe on detached features, same
    # schedule), so the gap is the student's own features moving toward the teacher's.
    assert kd["kd_mse_train"] < 0.8 * nokd["kd_mse_train"], (kd, nokd)
    assert kd["kd_mse"] < 0.95 * nokd["kd_mse"], (kd, nokd)  # and it carries over to held-out subjects


def test_teacher_and_students_beat_chance_on_held_out_subjects(trained: tuple) -> None:
    _, res, m = trained
    assert not set(res.split["test"]) & set(res.split["train"])
    for name in ("teacher", "student_kd", "student_nokd"):
        assert m[name]["uar"] > 0.6, (name, m[name])
    assert m["teacher"]["uar"] >= m["student_nokd"]["uar"] - 0.05
