"""`python -m stress_model {synth,train,evaluate,predict,speak,bundle}`."""

from __future__ import annotations

import json
import platform
import shutil
import tempfile
from pathlib import Path
from typing import Annotated

import numpy as np
import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from stress_model.config import Config, FeatureConfig

app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__)
console = Console()


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description:<18}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
    )


class _Bars:
    """Adapter from the library's (desc, done, total) callback to rich progress bars."""

    def __init__(self, progress: Progress) -> None:
        self.p, self.tasks = progress, {}

    def __call__(self, desc: str, done: int, total: int) -> None:
        if desc not in self.tasks:
            self.tasks[desc] = self.p.add_task(desc, total=total)
        self.p.update(self.tasks[desc], completed=done)


@app.command()
def synth(
    out: Annotated[Path, typer.Argument(help="dataset directory to write (StressID layout)")],
    subjects: Annotated[int, typer.Option(help="number of synthetic subjects")] = 24,
    seed: int = 0,
    physio_seconds: Annotated[int, typer.Option(help="length of each physiological recording")] = 30,
    workers: Annotated[int, typer.Option(help="processes (output does not depend on it)")] = 2,
) -> None:
    """Generate a synthetic dataset in StressID's layout (espeak-ng speech + neurokit2 physiology)."""
    from stress_model.synth import generate

    with _progress() as p:
        task = p.add_task("synth (subjects)", total=None)
        generate(
            out,
            n_subjects=subjects,
            seed=seed,
            physio_seconds=physio_seconds,
            workers=workers,
            progress=lambda d, t: p.update(task, completed=d, total=t),
        )
    console.print(f"wrote {out}")


@app.command()
def train(
    data: Annotated[Path, typer.Argument(help="dataset root in StressID layout")],
    out: Annotated[Path, typer.Argument(help="checkpoint directory to write")],
    encoder: Annotated[str, typer.Option(help="handcrafted | wav2vec2")] = "handcrafted",
    w2v_model: Annotated[str, typer.Option(help="wav2vec2-family checkpoint dir or hub id")] = "",
    w2v_layer: int = -1,
    student_input_dim: Annotated[int, typer.Option(help=">0: learned projection of the embedding")] = 0,
    pitch_method: str = "yin",
    alpha: Annotated[float, typer.Option(help="distillation weight (0 = no KD)")] = Config.alpha,
    seed: int = 0,
    max_epochs: int = Config.max_epochs,
    check: Annotated[bool, typer.Option(help="score calm/stressed espeak speech of unseen texts")] = True,
    workers: Annotated[int, typer.Option(help="processes for feature extraction")] = 2,
) -> None:
    """Train teacher, student with KD and student without KD; save checkpoint, metrics and plots."""
    import torch

    from stress_model.data import load_stressid
    from stress_model.evaluate import evaluate, plot_confusions, plot_curves, speech_check, table
    from stress_model.features import build_encoder
    from stress_model.model import save_checkpoint
    from stress_model.train import prepare, save_projections, train_all

    if encoder not in ("handcrafted", "wav2vec2") or pitch_method not in ("yin", "pyin"):
        raise typer.BadParameter("--encoder is handcrafted|wav2vec2 and --pitch-method is yin|pyin")
    feats = FeatureConfig(
        encoder=encoder, w2v_model=w2v_model, w2v_layer=w2v_layer, pitch_method=pitch_method
    )
    cfg = Config(
        features=feats, student_input_dim=student_input_dim, alpha=alpha, seed=seed, max_epochs=max_epochs
    )
    recs = load_stressid(data, cfg.stress_threshold, cfg.video_features)
    enc = build_encoder(cfg.features)
    with _progress() as p:
        bars = _Bars(p)
        d = prepare(recs, cfg, enc, bars, workers=workers)
        torch.set_num_threads(1)  # the MLPs are tiny: more threads only add synchronisation overhead
        res = train_all(d, cfg, bars)
    for s in d.skipped:
        console.print(f"[yellow]skipped audio[/] {s}")
    metrics = evaluate(res, d, res.split["test"])
    metrics["split"] = res.split
    metrics["data"] = {
        "root": str(data),
        "recordings": len(recs),
        "with_audio": int(d.has_audio.sum()),
        "stressed_fraction": round(float(d.y.mean()), 3),
        "subjects": len({r.subject for r in recs}),
        "synthetic": (Path(data) / "README.txt").exists()
        and "SYNTHETIC" in (Path(data) / "README.txt").read_text(),
    }
    if (Path(data) / "synth.json").exists():
        metrics["data"]["generator"] = json.loads((Path(data) / "synth.json").read_text())
    metrics["best_epochs"] = {k: h["best_epoch"][0] for k, h in res.history.items()}
    out.mkdir(parents=True, exist_ok=True)
    save_checkpoint(out, cfg, res.student_kd, res.teacher, res.student_nokd)
    save_projections(out / "distill.safetensors", res)
    plot_curves(res.history, out / "learning_curves.png")
    plot_confusions(metrics, out / "confusion_matrices.png")
    console.print(table(metrics, f"held-out subjects: {', '.join(res.split['test'])}"))
    if check and shutil.which("espeak-ng"):
        with tempfile.TemporaryDirectory() as tmp:
            metrics["speech_check"] = speech_check(out, Path(tmp))
        sc = metrics["speech_check"]
        console.print(
            f"speech check, unseen texts: calm P(stressed) max {max(sc['calm']):.3f}, "
            f"stressed min {min(sc['stressed']):.3f}"
        )
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    (out / "README.md").write_text(model_card(cfg, metrics))
    console.print(f"saved checkpoint to {out}")


@app.command()
def evaluate(
    ckpt: Annotated[Path, typer.Argument(help="checkpoint directory written by `train`")],
    data: Annotated[Path, typer.Argument(help="dataset root in StressID layout")],
    all_subjects: Annotated[
        bool, typer.Option(help="score every subject, not just the held-out ones")
    ] = False,
) -> None:
    """Re-score a checkpoint's teacher and students on a dataset (default: its held-out subjects)."""
    from safetensors.torch import load_file
    from torch import nn

    from stress_model.data import load_stressid
    from stress_model.evaluate import evaluate as run_eval
    from stress_model.evaluate import table
    from stress_model.features import build_encoder
    from stress_model.model import load_student, load_teacher
    from stress_model.train import Result, prepare, teacher_features

    cfg, kd = load_student(ckpt)
    _, nokd = load_student(ckpt, "student_nokd.safetensors")
    teacher = load_teacher(ckpt)
    recs = load_stressid(data, cfg.stress_threshold, cfg.video_features)
    split = json.loads((ckpt / "metrics.json").read_text())["split"]
    subjects = sorted({r.subject for r in recs}) if all_subjects else split["test"]
    recs = [r for r in recs if r.subject in set(subjects)]
    with _progress() as p:
        d = prepare(recs, cfg, build_encoder(cfg.features, base_dir=ckpt), _Bars(p))
    dist = load_file(str(ckpt / "distill.safetensors"))
    projs = []
    for name in ("kd", "nokd"):
        lin = nn.Linear(cfg.student_feat_dim, cfg.teacher_feat_dim)
        lin.load_state_dict({"weight": dist[f"{name}.weight"], "bias": dist[f"{name}.bias"]})
        projs.append(lin)
    t = teacher_features(teacher, d)
    t_feat = ((t - dist["t_mean"].numpy()) / dist["t_std"].numpy()).astype(np.float32)
    res = Result(teacher, kd, nokd, projs[0], projs[1], split, {}, t_feat)
    console.print(table(run_eval(res, d, subjects), f"{'all' if all_subjects else 'held-out'} subjects"))


@app.command()
def predict(
    ckpt: Annotated[Path, typer.Argument(help="checkpoint (or bundle) directory")],
    files: Annotated[list[Path], typer.Argument(help="audio files in any common format")],
) -> None:
    """Print P(stressed) for audio files, through the same handler the server uses."""
    from stress_model.handler import BadAudioError, EndpointHandler

    h = EndpointHandler(str(ckpt))
    for f in files:
        try:
            console.print(f"{h({'inputs': f.read_bytes()})[0]['score']:.3f}  {f}")
        except OSError as e:
            console.print(f"[red]cannot read[/]  {f}: {e.strerror}")
        except BadAudioError as e:
            console.print(f"[red]bad audio[/]  {f}: {e}")


@app.command()
def speak(
    text: str,
    out: Path,
    style: Annotated[str, typer.Option(help="calm | stressed")] = "stressed",
    voice: str = "en",
) -> None:
    """Write espeak-ng speech with calm or stressed prosody (for demos and tests)."""
    from stress_model.synth import speak as _speak

    console.print(str(_speak(text, style, out, voice=voice)))  # type: ignore[arg-type]


@app.command()
def bundle(
    ckpt: Annotated[Path, typer.Argument(help="checkpoint directory")],
    out: Annotated[Path, typer.Argument(help="folder to write: a deployable HF model repository")],
) -> None:
    """Assemble handler.py + vendored package + requirements + weights for an HF Inference Endpoint."""
    from stress_model.bundle import make_bundle

    make_bundle(ckpt, out)
    console.print(f"bundle written to {out} (push it as a model repository; handler.py is at its root)")


def model_card(cfg: Config, m: dict) -> str:
    rows = "\n".join(
        f"| {name} | {m[k]['accuracy']:.3f} | {m[k]['macro_f1']:.3f} | {m[k]['uar']:.3f} |"
        for k, name in (
            ("teacher", "teacher (ECG+EDA+RSP+video)"),
            ("student_nokd", "student, no KD"),
            ("student_kd", "student, KD (this model)"),
        )
    )
    f = cfg.features
    enc = (
        f"handcrafted prosodic/spectral statistics ({f.dim} values, pitch by {f.pitch_method})"
        if f.encoder == "handcrafted"
        else f"{f.w2v_model}, layer {f.w2v_layer}, mean-pooled ({f.dim} values)"
    )
    check = ""
    if "speech_check" in m:
        sc = m["speech_check"]
        line = "| {} | {:.3f} | {:.3f} | {:.3f} |\n"
        check = (
            "\n## Calm vs stressed espeak-ng speech (texts not in the training data)\n\n"
            f"Texts: {'; '.join(repr(t) for t in sc['texts'])}. Voices: {', '.join(sc['voices'])}.\n\n"
            "| style | mean P(stressed) | min | max |\n|---|---|---|---|\n"
            + "".join(line.format(s, np.mean(sc[s]), min(sc[s]), max(sc[s])) for s in ("calm", "stressed"))
        )
    data, split, kd, nokd = m["data"], m["split"], m["student_kd"], m["student_nokd"]
    if data["synthetic"]:
        g = data.get("generator", {})
        cmd = (
            f"python -m stress_model synth DIR --subjects {g['n_subjects']} --seed {g['seed']} "
            f"--physio-seconds {g['physio_seconds']}"
            if g
            else "python -m stress_model synth"
        )
        kind = (
            f"**synthetic** data in StressID's layout, generated by `{cmd}` (espeak-ng speech in "
            f"{len(g.get('voices', [])) or 'several'} voices for the speech tasks, neurokit2-simulated "
            "ECG/EDA/respiration, simulated facial-action-unit video features)"
        )
        caveat = (
            " It was trained only on synthetic espeak-ng speech and simulated physiology: it has\n"
            "learnt what calm and stressed *espeak-ng prosody* (rate, pitch, pitch range, loudness)\n"
            "looks like in that generator, and nothing about real people."
        )
    else:
        kind, caveat = f"`{data['root']}`", ""
    return f"""---
license: mit
tags: [audio-classification, stress, demo, synthetic-data]
---
# EmoChat stress model: {"demo checkpoint" if data["synthetic"] else "checkpoint"}

**This is NOT a validated or clinical stress model.** It must not be used to assess anyone's health
or wellbeing.{caveat}
It exists so the EmoChat pipeline can be demonstrated and tested end to end.

- Output: P(stressed) from a voice message; labels `not_stressed` (logit 0), `stressed` (logit 1).
- Audio: any common format, decoded with PyAV to 16 kHz mono, leading/trailing silence trimmed
  (top_db {f.trim_top_db:g}), first {f.max_seconds:g} s used, at least {f.min_seconds:g} s of sound required.
- Encoder: {enc}. Stored in `config.json`, so inference always matches training.
- Student: MLP {f.dim} -> {cfg.student_hidden} -> {cfg.student_feat_dim} -> 2, trained with distillation
  (alpha = {cfg.alpha:g}) from a teacher over ECG, EDA, respiration and video summary features.

## Training data

{kind}: {data["subjects"]} subjects, {data["recordings"]} labelled subject/task recordings
({data["with_audio"]} with speech), {data["stressed_fraction"]:.0%} labelled stressed
(self-reported stress >= 5 of 10). Split by subject (seed {cfg.seed}): train {len(split["train"])},
validation {len(split["val"])}, test {len(split["test"])} subjects ({", ".join(split["test"])}).

## Held-out metrics

Test subjects' speech recordings (n = {kd["n"]}, {kd["n_stressed"]} stressed); all three models
score the same recordings. With so few held-out recordings one recording is ~{100 / max(kd["n"], 1):.0f}
points of accuracy: differences of a few points are noise.

| model | accuracy | macro-F1 | UAR |
|---|---|---|---|
{rows}

Distillation MSE, P(student feature) vs standardised teacher feature (1.0 = no better than the mean;
for the no-KD student P is a probe on detached features), held-out subjects:
KD {kd["kd_mse"]:.3f}, no KD {nokd["kd_mse"]:.3f}.
{check}
## Files

`config.json` (features + model config), `model.safetensors` (deployed student, with its input
normalisation), `student_nokd.safetensors`, `teacher.safetensors`, `distill.safetensors`
(projections P for the KD feature MSE), `metrics.json`, `learning_curves.png`, `confusion_matrices.png`.
Made with torch {_torch_version()} on Python {platform.python_version()}.
"""


def _torch_version() -> str:
    import torch

    return torch.__version__
