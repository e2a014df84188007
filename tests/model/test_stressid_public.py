"""StressID's public feature tables: the stressid_hc encoder, its VAD, the loudness step, the table
loader, leave-one-subject-out without leakage, and the report pipeline on a small synthetic table."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import librosa
import numpy as np
import pytest
from model_helpers import write_feature_tables
from typer.testing import CliRunner

from stress_model.audio import BadAudioError
from stress_model.cli import app
from stress_model.config import Config, FeatureConfig
from stress_model.data import PUBLIC_TABLES, load_feature_tables
from stress_model.features import STRESSID_HC_NAMES, build_encoder, speech_frames, speech_only
from stress_model.report import METHODS, check_no_leakage, fold_rows, loso, table_dataset

SR = 16_000


def _speechlike(seconds: float, seed: int = 0) -> np.ndarray:
    """Speech stand-in: 4 Hz syllables of a gliding harmonic tone plus broadband noise (fricatives),
    with digital silence between them (as a clean recording has)."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SR)) / SR
    f0 = 140 + 30 * np.sin(2 * np.pi * 0.7 * t)
    phase = 2 * np.pi * np.cumsum(f0) / SR
    voice = sum(np.sin(k * phase) / k for k in range(1, 12))
    envelope = np.clip(np.sin(2 * np.pi * 4 * t + rng.uniform(0, 6)), 0, None) ** 0.5
    return (envelope * (0.1 * voice + 0.02 * rng.standard_normal(t.size))).astype(np.float32)


@pytest.fixture(scope="module")
def encoder():
    return build_encoder(FeatureConfig(encoder="stressid_hc"))


# ----------------------------------------------------------------------------------------- encoder


def test_encoder_gives_140_values_in_the_table_order(encoder) -> None:
    wave = _speechlike(3.0)
    out = encoder(wave)
    assert out.shape == (140,) and out.dtype == np.float32 and np.isfinite(out).all()
    assert len(STRESSID_HC_NAMES) == 140 == len(set(STRESSID_HC_NAMES))
    # The order of HCfeatures.csv: 13 MFCC means, 13 stds, then deltas, delta-deltas, then the
    # spectral blocks, each as mean then std. Spot-check each kind against librosa directly.
    y = speech_only(wave).astype(np.float64)
    mfcc = librosa.feature.mfcc(y=y, sr=SR, n_mfcc=13)
    np.testing.assert_allclose(out[:13], mfcc.mean(axis=1), rtol=1e-5)
    np.testing.assert_allclose(out[13:26], mfcc.std(axis=1), rtol=1e-5)
    d2 = librosa.feature.delta(librosa.feature.delta(mfcc))
    i = STRESSID_HC_NAMES.index("mfcc0_delta2_std")
    assert i == 65 and out[i] == pytest.approx(d2[0].std(), rel=1e-5)
    centroid = librosa.feature.spectral_centroid(y=y, sr=SR)[0]
    assert out[STRESSID_HC_NAMES.index("centroid_mean")] == pytest.approx(centroid.mean(), rel=1e-5)
    assert out[STRESSID_HC_NAMES.index("centroid_std")] == pytest.approx(centroid.std(), rel=1e-5)
    zcr = librosa.feature.zero_crossing_rate(y)[0]
    assert out[STRESSID_HC_NAMES.index("zcr_mean")] == pytest.approx(zcr.mean(), rel=1e-5)
    assert STRESSID_HC_NAMES[78:80] == ["centroid_mean", "centroid_std"]
    assert STRESSID_HC_NAMES[84:98] == [f"contrast{i}_{s}" for s in ("mean", "std") for i in range(7)]
    assert STRESSID_HC_NAMES[-26:] == [f"tempogram_ratio{i}_{s}" for s in ("mean", "std") for i in range(13)]


def test_encoder_is_deterministic(encoder) -> None:
    wave = _speechlike(2.0, seed=1)
    np.testing.assert_array_equal(encoder(wave), encoder(wave.copy()))


def test_encoder_values_sit_in_the_published_table_range(encoder) -> None:
    """A wrong column order would put values far outside the columns they land in."""
    table = load_feature_tables(PUBLIC_TABLES).audio
    out = encoder(_speechlike(4.0, seed=2))
    lo, hi = table.quantile(0.001).to_numpy(), table.quantile(0.999).to_numpy()
    span = hi - lo
    scale_free = [i for i, n in enumerate(STRESSID_HC_NAMES) if n != "mfcc0_mean" and "delta" not in n]
    inside = (out[scale_free] >= lo[scale_free] - span[scale_free]) & (
        out[scale_free] <= hi[scale_free] + span[scale_free]
    )
    assert inside.mean() > 0.9, [STRESSID_HC_NAMES[scale_free[i]] for i in np.flatnonzero(~inside)]


def test_too_little_speech_is_bad_audio(encoder) -> None:
    with pytest.raises(BadAudioError, match="too little speech"):
        encoder(_speechlike(0.2))


# --------------------------------------------------------------------------------------------- VAD


def test_vad_drops_silence_around_speech() -> None:
    speech = _speechlike(1.0)
    wave = np.concatenate([np.zeros(SR // 2, np.float32), speech, np.zeros(SR // 2, np.float32)])
    flags = speech_frames(wave)
    starts = np.flatnonzero(flags) * 80  # frame k starts at k * 5 ms
    assert starts.min() >= SR // 2 - 320 and starts.max() <= SR // 2 + SR
    # the output is the kept frames, overlap-added at the hop: 80 samples per frame plus one frame
    assert speech_only(wave).size == flags.sum() * 80 + 320


def test_vad_smooths_runs_shorter_than_50_ms() -> None:
    tone = (0.3 * np.sin(2 * np.pi * 200 * np.arange(SR) / SR)).astype(np.float32)
    with_gap = tone.copy()
    with_gap[8000 : 8000 + 480] = 0  # a 30 ms pause inside speech stays speech
    assert speech_frames(with_gap)[105:110].all()
    click = np.zeros(SR, np.float32)
    click[: SR // 2] = tone[: SR // 2]
    click[12000 : 12000 + 480] = 0.3  # a 30 ms burst in silence is not speech
    flags = speech_frames(click)
    assert not flags[(12000 // 80) + 2 : (12480 // 80) - 2].any()
    assert flags[10:90].all()


def test_vad_levels_are_relative_to_the_loudest_and_floored_at_minus_55_db() -> None:
    t = np.arange(SR) / SR
    loud = 0.5 * np.sin(2 * np.pi * 200 * t)
    quiet = loud * 10 ** (-45 / 20)  # 45 dB below the loudest: not speech
    flags = speech_frames(np.concatenate([loud, quiet]).astype(np.float32))
    assert flags[: SR // 80 - 4].all() and not flags[SR // 80 + 4 :].any()
    faint = (loud * 10 ** (-60 / 20)).astype(np.float32)  # loudest frame, but below -55 dB
    assert not speech_frames(faint).any()


# ----------------------------------------------------------------------------------- loudness step


def test_gain_moves_only_mfcc0_and_the_lab_level_step_removes_it() -> None:
    # Loud enough that the VAD's absolute -55 dB floor binds at neither level (its relative
    # threshold, 40 dB below the loudest frame, does): the VAD then keeps the same frames.
    wave = 10 * _speechlike(3.0, seed=3)  # loudest frame near 0 dBFS
    quieter = wave * np.float32(10 ** (-6 / 20))
    plain = build_encoder(FeatureConfig(encoder="stressid_hc"))
    a, b = plain(wave), plain(quieter)
    assert a[0] - b[0] == pytest.approx(6 * np.sqrt(128), rel=0.01)  # MFCC 0 follows the level ...
    np.testing.assert_allclose(a[1:], b[1:], rtol=1e-3, atol=1e-3)  # ... and nothing else does
    level = build_encoder(FeatureConfig(encoder="stressid_hc", loudness="lab_level", loudness_mfcc0=-320.0))
    c, d = level(wave), level(quieter)
    assert c[0] == pytest.approx(-320.0, abs=0.5) and d[0] == pytest.approx(-320.0, abs=0.5)
    np.testing.assert_allclose(c[1:], a[1:], rtol=1e-3, atol=1e-3)


# ------------------------------------------------------------------------------------------ loader


@pytest.mark.parametrize("labels_csv", [False, True])
def test_feature_table_loader(tmp_path: Path, labels_csv: bool) -> None:
    root = write_feature_tables(tmp_path / "t", labelled=2, unlabelled=1, labels_csv=labels_csv)
    t = load_feature_tables(root)
    assert list(t.audio.columns) == STRESSID_HC_NAMES and t.audio.shape == (15, 140)
    assert "s0_Math" in t.audio.index and not any(k.endswith(".wav") for k in t.audio.index)
    assert t.physio.shape == (18, 9) and t.video is not None and t.video.shape[1] == 4
    assert t.columns["ecg"] == ["meanHR", "meanHR_x", "meanHR_y"]
    assert t.columns["rsp"][0] == "meanRR" and t.columns["eda"][0] == "max_eda"
    assert len(t.labels) == 12 and set(t.labels.unique()) == {0, 1}
    assert not any(k.startswith("u") for k in t.labels.index)


def test_loader_reads_the_vendored_release() -> None:
    t = load_feature_tables(PUBLIC_TABLES)
    assert t.audio.shape == (378, 140) and len(t.labels) == 196
    assert {t.subject(k) for k in t.labels.index} == set(t.labels.index.str.split("_").str[0])
    assert len({t.subject(k) for k in t.labels.index if k in t.audio.index}) == 10


def test_loader_errors_are_clear(tmp_path: Path) -> None:
    root = write_feature_tables(tmp_path / "t", labelled=2, unlabelled=0)
    (root / "protocol.txt").unlink()
    with pytest.raises(FileNotFoundError, match=r"labels\.csv nor protocol\.txt"):
        load_feature_tables(root)


# ------------------------------------------------------------------------------- folds and report


@pytest.fixture(scope="module")
def table(tmp_path_factory: pytest.TempPathFactory):
    t = load_feature_tables(write_feature_tables(tmp_path_factory.mktemp("tables")))
    cfg = Config(features=FeatureConfig(encoder="stressid_hc"), max_epochs=60, patience=15, loso_seeds=1)
    return table_dataset(t, cfg), cfg


def test_no_subject_leaks_into_its_fold(table) -> None:
    d, cfg = table
    subjects = {r.subject for r in d.recs if r.label >= 0}
    for s in sorted(subjects):
        rows = fold_rows(d, s, cfg)
        assert rows.test.size and {d.recs[i].subject for i in rows.test} == {s}
        for name in ("train", "val", "norm", "unlabelled", "teacher_train", "teacher_val"):
            assert s not in {d.recs[i].subject for i in getattr(rows, name)}, name
        assert rows.unlabelled.size and (d.y[rows.unlabelled] == -1).all()
        assert not set(rows.train) & set(rows.val)
    leaky = replace(rows, norm=np.concatenate([rows.norm, rows.test]))
    with pytest.raises(AssertionError, match="leaks into norm"):
        check_no_leakage(d, leaky)


def test_loso_scores_every_method_on_identical_folds(table) -> None:
    d, cfg = table
    out = loso(d, cfg)
    assert out["subjects"]["audio"] == out["subjects"]["teacher"] == [f"s{i}" for i in range(6)]
    assert [f["subject"] for f in out["folds"]] == out["subjects"]["audio"]
    for m in METHODS:
        assert set(out[m]) >= {"uar", "macro_f1", "weighted_f1", "accuracy", "uar_fold_mean", "uar_fold_std"}
        assert out[m]["n"] == (36 if m == "teacher" else 30)
    # the synthetic table carries a strong signal in physiology and a clear one in audio
    assert out["teacher"]["uar"] > 0.8 and out["svc_hc"]["uar"] > 0.6


def test_report_cli_writes_the_json_and_plots(tmp_path: Path) -> None:
    root = write_feature_tables(tmp_path / "t", labelled=4, unlabelled=2)
    res = CliRunner().invoke(
        app, ["report", str(tmp_path / "r"), "--tables", str(root), "--seeds", "1", "--workers", "1"]
    )
    assert res.exit_code == 0, res.output + repr(res.exception)
    out = json.loads((tmp_path / "r" / "stressid_public.json").read_text())
    for m in ("svc_hc", "student_nokd", "student_kd_labelled", "student_kd_all", "teacher"):
        assert {"uar", "macro_f1", "weighted_f1", "accuracy"} <= set(out[m])
    assert out["subjects"]["audio"] == ["s0", "s1", "s2", "s3"] and len(out["folds"]) == 4
    assert out["config"]["features"]["loudness"] == "lab_level"
    assert (tmp_path / "r" / "stressid_public_metrics.png").stat().st_size > 1000
