"""End to end through the CLI: tiny synthetic StressID -> train -> evaluate -> bundle -> bundled handler."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from model_helpers import REPO, needs_espeak
from typer.testing import CliRunner

from stress_model.cli import app
from stress_model.config import Config
from stress_model.data import load_stressid

pytestmark = needs_espeak
runner = CliRunner()


@pytest.fixture(scope="module")
def ckpt(tiny_dataset: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("ckpt")
    r = runner.invoke(app, ["train", str(tiny_dataset), str(out), "--max-epochs", "150", "--no-check"])
    assert r.exit_code == 0, r.output + repr(r.exception)
    return out


def test_synth_layout(tiny_dataset: Path) -> None:
    recs = load_stressid(tiny_dataset)
    assert len(recs) == 10 * 5 and len({r.subject for r in recs}) == 10
    assert sum(r.audio is not None for r in recs) == 10 * 4  # Relax has no speech
    assert all(r.physio is not None and r.video is not None for r in recs)
    assert 0.2 < sum(r.label for r in recs) / len(recs) < 0.8
    assert "SYNTHETIC" in (tiny_dataset / "README.txt").read_text()


def test_train_writes_checkpoint_and_beats_chance(ckpt: Path) -> None:
    for name in (
        "config.json",
        "model.safetensors",
        "teacher.safetensors",
        "student_nokd.safetensors",
        "distill.safetensors",
        "metrics.json",
        "learning_curves.png",
        "confusion_matrices.png",
        "README.md",
    ):
        assert (ckpt / name).stat().st_size > 0, name
    m = json.loads((ckpt / "metrics.json").read_text())
    assert not set(m["split"]["test"]) & (set(m["split"]["train"]) | set(m["split"]["val"]))
    for name in ("teacher", "student_kd", "student_nokd"):
        assert {"accuracy", "macro_f1", "uar", "confusion"} <= set(m[name])
    assert m["teacher"]["uar"] > 0.5 and m["student_kd"]["uar"] > 0.5, m
    cfg = Config.load(ckpt / "config.json")
    assert cfg.features.encoder == "handcrafted" and cfg.features.dim > 0 and cfg.teacher_inputs
    assert "NOT a validated or clinical stress model" in (ckpt / "README.md").read_text()


def test_evaluate_reproduces_training_metrics(ckpt: Path, tiny_dataset: Path) -> None:
    r = runner.invoke(app, ["evaluate", str(ckpt), str(tiny_dataset)])
    assert r.exit_code == 0, r.output + repr(r.exception)
    m = json.loads((ckpt / "metrics.json").read_text())
    assert f"{m['student_kd']['uar']:.3f}" in r.output and f"{m['teacher']['uar']:.3f}" in r.output


def test_predict_and_bundle_standalone(ckpt: Path, speech: dict[str, Path], tmp_path: Path) -> None:
    r = runner.invoke(app, ["predict", str(ckpt), str(speech["calm"]), str(tmp_path / "missing.wav")])
    assert r.exit_code == 0 and "cannot read" in r.output  # reported, not a crash trace
    r = runner.invoke(app, ["predict", str(ckpt), str(speech["calm"])])
    assert r.exit_code == 0 and "calm.wav" in r.output
    out = tmp_path / "bundle"
    r = runner.invoke(app, ["bundle", str(ckpt), str(out)])
    assert r.exit_code == 0, r.output
    assert {p.name for p in out.iterdir()} >= {
        "handler.py",
        "stress_model",
        "requirements.txt",
        "config.json",
        "model.safetensors",
        "README.md",
    }
    assert "torch==2.13.0" in (out / "requirements.txt").read_text()
    # The backend's guarded decode ships as a file (the repo's symlink would dangle on the endpoint).
    shipped = out / "stress_model" / "guarded_decode.py"
    assert not shipped.is_symlink()
    assert shipped.read_bytes() == (REPO / "functions/emochat/pipeline/guarded_decode.py").read_bytes()
    # a fresh interpreter inside the bundle, as HF runs it: the root handler.py + the vendored package
    code = (
        "import handler, stress_model, pathlib, sys\n"
        "here = pathlib.Path(stress_model.__file__).parent.parent\n"
        "assert here == pathlib.Path.cwd(), here\n"
        "print(handler.EndpointHandler('')({'inputs': pathlib.Path(sys.argv[1]).read_bytes()}))\n"
    )
    p = subprocess.run(
        [sys.executable, "-c", code, str(speech["calm"])],
        cwd=out,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert p.returncode == 0, p.stderr[-2000:]
    assert "'label': 'stressed'" in p.stdout
