"""StressID loader on a hand-made fixture in the released layout, and the subject-wise split."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from model_helpers import tone
from wavs import wav_bytes

from stress_model.data import load_stressid, read_physio, split_subjects


def _physio_file(path: Path, seconds: int = 2, sr: int = 500) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    t = np.arange(seconds * sr) / sr
    rows = np.stack([np.sin(2 * np.pi * 1.2 * t), 5 + 0.1 * t, np.sin(2 * np.pi * 0.25 * t)], axis=1)
    np.savetxt(path, rows, delimiter=",", header="ECG,EDA,RR", comments="", fmt="%.5f")


@pytest.fixture
def stressid_fixture(tmp_path: Path) -> Path:
    """Two subjects, StressID layout; self_assessments.csv in the 'Tasks'-rows orientation."""
    for sid in ("ab12", "cd34"):
        for task in ("Relax", "Math", "Speaking", "Baseline"):
            _physio_file(tmp_path / "Physiological" / sid / f"{sid}_{task}.txt")
        for task in ("Math", "Speaking"):  # Relax has no speech, as in StressID
            p = tmp_path / "Audio" / sid / f"{sid}_{task}.wav"
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_bytes(wav_bytes(tone(180.0, 1.0, 44_100), 44_100))
    (tmp_path / "self_assessments.csv").write_text(
        "Tasks;ab12;cd34\n"
        "Relax_relax;9;8\nRelax_stress;1;5\n"  # cd34 reports exactly 5 -> stressed (>= 5)
        "Math_relax;3;6\nMath_stress;7;4\n"
        "Speaking_relax;4;\nSpeaking_stress;6;\n"  # cd34 skipped the Speaking questionnaire
    )
    (tmp_path / "video_features.csv").write_text("subject/task,AU01_mean,AU02_mean\nab12_Math,0.5,1.5\n")
    return tmp_path


def test_loader_reads_layout_labels_and_modalities(stressid_fixture: Path) -> None:
    recs = {r.key: r for r in load_stressid(stressid_fixture)}
    # Baseline has no self-report -> no label -> skipped; cd34_Speaking has no report -> skipped
    assert sorted(recs) == ["ab12_Math", "ab12_Relax", "ab12_Speaking", "cd34_Math", "cd34_Relax"]
    assert [recs[k].label for k in ("ab12_Relax", "ab12_Math", "cd34_Relax", "cd34_Math")] == [0, 1, 1, 0]
    assert recs["ab12_Math"].stress == 7.0
    assert recs["ab12_Relax"].audio is None and recs["ab12_Relax"].physio is not None
    assert recs["ab12_Math"].audio is not None and recs["ab12_Math"].audio.name == "ab12_Math.wav"
    np.testing.assert_allclose(recs["ab12_Math"].video, [0.5, 1.5])
    assert recs["cd34_Math"].video is None
    # the threshold is configurable because the raw self-reports are read
    assert load_stressid(stressid_fixture, stress_threshold=6)[0].label == 1  # ab12_Math: 7 >= 6


def test_loader_accepts_subject_rows_orientation_and_labels_csv(stressid_fixture: Path) -> None:
    (stressid_fixture / "self_assessments.csv").write_text(
        "subject;Relax_stress;Math_stress;Speaking_stress\nab12;1;7;6\ncd34;5;4;\n"
    )
    recs = {r.key: r.label for r in load_stressid(stressid_fixture)}
    assert recs == {"ab12_Math": 1, "ab12_Relax": 0, "ab12_Speaking": 1, "cd34_Math": 0, "cd34_Relax": 1}
    # without self-reports, labels.csv's binary-stress column is used as released
    (stressid_fixture / "self_assessments.csv").unlink()
    (stressid_fixture / "labels.csv").write_text(
        "subject/task,binary-stress,affect3-class\nab12_Math,1,2\ncd34_Relax,0,0\n"
    )
    assert {r.key: r.label for r in load_stressid(stressid_fixture)} == {"ab12_Math": 1, "cd34_Relax": 0}


def test_read_physio_columns(stressid_fixture: Path) -> None:
    sig = read_physio(stressid_fixture / "Physiological" / "ab12" / "ab12_Math.txt")
    assert set(sig) == {"ecg", "eda", "rsp"} and all(v.size == 1000 for v in sig.values())


def test_missing_layout_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"labels\.csv"):
        load_stressid(tmp_path)


def test_split_is_subject_wise_and_seeded(tiny_dataset: Path) -> None:
    recs = load_stressid(tiny_dataset)
    a = split_subjects(recs, 0.2, 0.3, seed=0)
    assert a == split_subjects(recs, 0.2, 0.3, seed=0)
    train, val, test = (set(x) for x in a)
    assert not (train & val or train & test or val & test)
    assert train | val | test == {r.subject for r in recs}
    for part in (val, test):  # both classes present where metrics are computed
        assert {r.label for r in recs if r.subject in part and r.audio is not None} == {0, 1}
