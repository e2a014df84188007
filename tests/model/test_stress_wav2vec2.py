"""A tiny random wav2vec2 encoder, saved locally and used through the config path (no hub access)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch
from model_helpers import tone
from wavs import wav_bytes

from stress_model.bundle import make_bundle
from stress_model.config import Config, FeatureConfig
from stress_model.features import build_encoder
from stress_model.handler import EndpointHandler
from stress_model.model import StudentNet, save_checkpoint


@pytest.fixture(scope="module")
def w2v_ckpt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Checkpoint dir with a tiny random Wav2Vec2Model in encoder/ (path stored relative to it)."""
    from transformers import Wav2Vec2Config, Wav2Vec2Model

    ckpt = tmp_path_factory.mktemp("w2v_ckpt")
    torch.manual_seed(0)
    tiny = Wav2Vec2Config(
        hidden_size=16, num_hidden_layers=2, num_attention_heads=2, intermediate_size=32,
        conv_dim=(16, 16), conv_stride=(5, 4), conv_kernel=(10, 8), num_conv_pos_embeddings=16,
        num_conv_pos_embedding_groups=2, do_stable_layer_norm=False, feat_extract_norm="group",
    )  # fmt: skip
    Wav2Vec2Model(tiny).eval().save_pretrained(ckpt / "encoder")
    feats = FeatureConfig(encoder="wav2vec2", w2v_model="encoder", w2v_layer=1, min_seconds=0.3)
    build_encoder(feats, base_dir=ckpt)  # sets feats.dim = 16
    cfg = Config(features=feats, student_input_dim=8)  # projected 16 -> 8, like 768 -> 512
    torch.manual_seed(0)
    save_checkpoint(ckpt, cfg, StudentNet(cfg).eval())
    return ckpt


def test_encoder_from_config_path(w2v_ckpt: Path) -> None:
    cfg = Config.load(w2v_ckpt / "config.json")
    assert cfg.features.encoder == "wav2vec2" and cfg.features.dim == 16
    enc = build_encoder(cfg.features, base_dir=w2v_ckpt)
    wave = tone(180.0, 1.0, 16_000)
    emb = enc(wave)
    assert emb.shape == (16,) and np.isfinite(emb).all()
    np.testing.assert_allclose(enc(wave), emb, rtol=1e-5, atol=1e-6)  # deterministic (eval mode)
    other = build_encoder(dataclasses.replace(cfg.features, w2v_layer=-1, dim=0), base_dir=w2v_ckpt)
    assert not np.allclose(other(wave), emb)  # the configured layer is the one pooled


def test_handler_runs_the_wav2vec2_checkpoint(w2v_ckpt: Path) -> None:
    h = EndpointHandler(str(w2v_ckpt))
    out = h({"inputs": wav_bytes(tone(220.0, 1.0, 44_100), 44_100)})
    assert [o["label"] for o in out] == ["stressed", "not_stressed"]
    assert 0.0 <= out[0]["score"] <= 1.0


def test_bundle_ships_the_local_encoder(w2v_ckpt: Path, tmp_path: Path) -> None:
    out = make_bundle(w2v_ckpt, tmp_path / "bundle")
    assert (out / "handler.py").exists() and (out / "encoder" / "config.json").exists()
    assert "transformers" in (out / "requirements.txt").read_text()
    assert Config.load(out / "config.json").features.w2v_model == "encoder"  # relative: the bundle is movable
    # test_stress_cli runs a bundle's root handler.py in a fresh interpreter; here: the encoder loads
    moved = out.rename(tmp_path / "moved")
    out_ = EndpointHandler(str(moved))({"inputs": wav_bytes(tone(220.0, 1.0, 16_000), 16_000)})
    assert 0.0 <= out_[0]["score"] <= 1.0
