"""`python -m stress_model {synth,train,report,train-public,evaluate,predict,speak,bundle}`."""

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
from rich.table import Table

from stress_model.config import Config, FeatureConfig
from stress_model.data import PUBLIC_TABLES, FeatureTables, load_feature_tables

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
    encoder: Annotated[str, typer.Option(help="handcrafted | stressid_hc | wav2vec2")] = "handcrafted",
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

    if encoder not in ("handcrafted", "stressid_hc", "wav2vec2") or pitch_method not in ("yin", "pyin"):
        raise typer.BadParameter("--encoder is handcrafted|stressid_hc|wav2vec2, --pitch-method yin|pyin")
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


REPO_SAMPLES = Path(__file__).resolve().parents[2] / "samples"


def _public_config(tables: FeatureTables, seed: int) -> Config:
    """stressid_hc + the lab_level loudness step, its target the lab recordings' median MFCC 0."""
    target = float(np.median(tables.audio["mfcc0_mean"]))
    return Config(
        features=FeatureConfig(encoder="stressid_hc", loudness="lab_level", loudness_mfcc0=target), seed=seed
    )


@app.command()
def report(
    out: Annotated[Path, typer.Argument(help="folder for stressid_public.json and its plots")] = Path(
        "stress_model/reports"
    ),
    tables: Annotated[Path, typer.Option(help="StressID feature tables")] = PUBLIC_TABLES,
    labels: Annotated[
        Path | None, typer.Option(help="labels.csv / protocol.txt (default: in tables)")
    ] = None,
    seed: int = 0,
    seeds: Annotated[int, typer.Option(help="models per fold, averaged")] = Config.loso_seeds,
    workers: Annotated[int, typer.Option(help="processes (folds run in parallel)")] = 2,
) -> None:
    """Leave-one-subject-out on StressID's public feature tables: SVC, three students, teacher."""
    import time

    import torch

    from stress_model.audio import load
    from stress_model.features import mfcc0_mean, speech_only
    from stress_model.report import (
        ANCHORS,
        METHODS,
        best_student,
        level_normalised,
        loso,
        mfcc0_shift,
        plot,
        svc_uar,
        table_dataset,
    )

    t0 = time.perf_counter()
    t = load_feature_tables(tables, labels)
    cfg = _public_config(t, seed)
    cfg.loso_seeds = seeds
    as_recorded = table_dataset(t, cfg)
    d = level_normalised(as_recorded, cfg.features.loudness_mfcc0)
    samples = {
        p.name: mfcc0_mean(speech_only(load(p, FeatureConfig()))) for p in sorted(REPO_SAMPLES.glob("*.m4a"))
    }
    loudness = {
        "step": "lab_level",
        "mfcc0_target": cfg.features.loudness_mfcc0,
        "svc_uar_as_recorded": svc_uar(as_recorded, cfg),
        "svc_uar_lab_level": svc_uar(d, cfg),
        **mfcc0_shift(t, samples),
    }
    torch.set_num_threads(1)
    with _progress() as p:
        result = loso(d, cfg, _Bars(p), workers=workers)
    result = {m: result[m] for m in METHODS} | {
        "subjects": result["subjects"],
        "folds": result["folds"],
        "best_student": best_student(result),
        "loudness": loudness,
        "anchors": ANCHORS,
        "data": {
            "tables": "stress_model/datasets/stressid_public" if tables == PUBLIC_TABLES else str(tables),
            "labelled_recordings": int((d.y >= 0).sum()),
            "labelled_audio_recordings": int(((d.y >= 0) & d.has_audio).sum()),
            "unlabelled_pairs": int(((d.y < 0) & d.has_audio & (d.mask.sum(1) > 0)).sum()),
        },
        "config": cfg.to_dict(),
    }
    out.mkdir(parents=True, exist_ok=True)
    (out / "stressid_public.json").write_text(json.dumps(result, indent=2) + "\n")
    plot(result, out / "stressid_public_metrics.png", out / "stressid_public_folds.png")
    console.print(report_table(result))
    console.print(f"wrote {out / 'stressid_public.json'} in {time.perf_counter() - t0:.0f} s")


def report_table(result: dict) -> Table:
    from stress_model.report import METHODS, METRICS

    tab = Table(title="StressID public tables, leave-one-subject-out (pooled | per-fold mean ± std)")
    tab.add_column("method")
    tab.add_column("n")
    for m in METRICS:
        tab.add_column(m, justify="right")
    for name in METHODS:
        r = result[name]
        cells = [f"{r[m]:.3f} | {r[m + '_fold_mean']:.2f} ± {r[m + '_fold_std']:.2f}" for m in METRICS]
        tab.add_row(name, str(r["n"]), *cells)
    return tab


@app.command("train-public")
def train_public(
    out: Annotated[Path, typer.Argument(help="checkpoint directory to write")] = Path(
        "stress_model/checkpoints/demo"
    ),
    report_json: Annotated[
        Path, typer.Option("--report", help="stressid_public.json (picks the method)")
    ] = Path("stress_model/reports/stressid_public.json"),
    tables: Annotated[Path, typer.Option(help="StressID feature tables")] = PUBLIC_TABLES,
    seed: int = 0,
) -> None:
    """Train the report's best student on all of the public data and write a served checkpoint."""
    import torch

    from stress_model.model import save_checkpoint
    from stress_model.report import fold_rows, level_normalised, table_dataset
    from stress_model.train import teacher_features, teacher_stats, train_student, train_teacher

    figures = json.loads(report_json.read_text())
    method = figures["best_student"]
    t = load_feature_tables(tables)
    cfg = _public_config(t, seed)
    d = level_normalised(table_dataset(t, cfg), cfg.features.loudness_mfcc0)
    torch.set_num_threads(1)
    rows = fold_rows(d, test_subject="", cfg=cfg)  # no subject held out: every labelled subject trains
    teacher, _ = train_teacher(d, rows.teacher_train, rows.teacher_val, cfg)
    t_raw = teacher_features(teacher, d)
    mu, sd = teacher_stats(
        t_raw, np.concatenate([rows.train[d.mask[rows.train].sum(1) > 0], rows.unlabelled])
    )
    alpha = 0.0 if method == "student_nokd" else cfg.alpha
    extra = rows.unlabelled if method == "student_kd_all" else None
    cfg.alpha = alpha
    net, _, hist = train_student(
        d,
        rows.train,
        rows.val,
        cfg,
        alpha,
        ((t_raw - mu) / sd).astype(np.float32),
        method,
        extra_kd=extra,
        norm_rows=rows.norm,
    )
    save_checkpoint(out, cfg, net, teacher)
    for stale in (
        "student_nokd.safetensors",
        "distill.safetensors",
        "learning_curves.png",
        "confusion_matrices.png",
    ):
        (out / stale).unlink(missing_ok=True)
    metrics = {
        "method": method,
        "loso": {
            m: figures[m]
            for m in ("svc_hc", "student_nokd", "student_kd_labelled", "student_kd_all", "teacher")
        },
        "trained_on": {
            "labelled_audio_recordings": int(rows.train.size + rows.val.size),
            "train_subjects": sorted({d.recs[i].subject for i in rows.train}),
            "val_subjects": sorted({d.recs[i].subject for i in rows.val}),
            "unlabelled_pairs": int(rows.unlabelled.size) if extra is not None else 0,
            "best_epoch": hist["best_epoch"][0],
        },
        "loudness": figures["loudness"],
    }
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    (out / "README.md").write_text(public_model_card(cfg, metrics))
    console.print(f"saved {method} to {out}")


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

    if "split" not in json.loads((ckpt / "metrics.json").read_text()):
        raise typer.BadParameter(f"{ckpt} has no held-out split (train-public checkpoints: see `report`)")
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
    enc = {
        "handcrafted": f"handcrafted prosody/spectrum statistics ({f.dim} values, pitch by {f.pitch_method})",
        "stressid_hc": f"StressID's handcrafted audio features ({f.dim} values, loudness step {f.loudness})",
    }.get(f.encoder, f"{f.w2v_model}, layer {f.w2v_layer}, mean-pooled ({f.dim} values)")
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


def public_model_card(cfg: Config, m: dict) -> str:
    loso, tr, loud = m["loso"], m["trained_on"], m["loudness"]
    rows = "\n".join(
        f"| {name}{' (this model)' if name == m['method'] else ''} | {loso[name]['n']} | "
        + " | ".join(f"{loso[name][k]:.3f}" for k in ("uar", "macro_f1", "weighted_f1", "accuracy"))
        + f" | {loso[name]['uar_fold_mean']:.2f} ± {loso[name]['uar_fold_std']:.2f} |"
        for name in ("svc_hc", "student_nokd", "student_kd_labelled", "student_kd_all", "teacher")
    )
    shifts = "; ".join(
        f"`{k}` {v['db_above_lab_median']:+.0f} dB ({v['z']:+.1f} lab std)"
        for k, v in loud["samples"].items()
    )
    kd = "" if m["method"] == "student_nokd" else f" + {cfg.alpha:g} x distillation toward the teacher"
    return f"""---
license: mit
tags: [audio-classification, stress, stressid, not-clinical]
---
# EmoChat stress model: StudentNet on StressID's public features

**This is NOT a validated or clinical instrument.** It must not be used to assess anyone's health
or wellbeing. It was trained on **10 labelled speakers** (70 lab recordings); measured by
leave-one-subject-out it separates their self-reported stress only modestly above chance (below).
It exists so that EmoChat serves a model that has seen human voices, with its limits in plain view.

- Output: P(stressed) from a voice message; labels `not_stressed` (logit 0), `stressed` (logit 1).
- Method: `{m["method"]}` (the best of the three students in the leave-one-subject-out report,
  by pooled UAR; a tie goes to the simpler method). StudentNet MLP 140 -> {cfg.student_hidden} ->
  {cfg.student_feat_dim} -> 2, class-weighted cross-entropy{kd}.
- Audio: any common format, decoded with PyAV to 16 kHz mono, leading/trailing silence trimmed,
  first {cfg.features.max_seconds:g} s used.
- Encoder `stressid_hc`: StressID's 140 handcrafted values (energy VAD, then mean/std of 13 MFCCs,
  deltas, delta-deltas, spectral centroid, bandwidth, flatness, contrast, rolloff, tonnetz, ZCR,
  tempogram ratio, librosa defaults), the same columns as the training table.
- Loudness step `lab_level` (ours, not StressID's): the speech is scaled so its MFCC 0 mean is the
  lab recordings' median ({cfg.features.loudness_mfcc0:.1f}); in training that column is set to the
  same constant, so the recording level carries no information either way. Why: MFCC 0 follows
  absolute level, and the repo's m4a samples sit far above the lab recordings: {shifts}.
  Removing the level cost the SVC baseline nothing in leave-one-subject-out UAR
  ({loud["svc_uar_as_recorded"]:.3f} as recorded, {loud["svc_uar_lab_level"]:.3f} level-normalised).

## Training data

StressID (Chaptoukaev et al., NeurIPS 2023 Datasets and Benchmarks), its public feature release
(BSD-3-Clause, vendored in `stress_model/datasets/stressid_public/` with its licence and a note):
lab recordings made in France of the speech tasks Counting1-3, Math, Reading, Speaking and Stroop,
16 kHz lab microphone, the protocol's language (French as far as we know; the tables do not say).
Labels: the subjects' own stress rating after each task, binary (>= 5 of 10); 18 subjects are
labelled, 10 of them with audio. This model: the {tr["labelled_audio_recordings"]} labelled audio
recordings of those 10 subjects (validation for early stopping: {", ".join(tr["val_subjects"])};
best epoch {tr["best_epoch"]}), input standardisation from all 377 audio recordings (54 subjects),
{tr["unlabelled_pairs"]} unlabelled audio+physiology pairs for distillation. `teacher.safetensors`:
the teacher over ECG, EDA, respiration and video features of the 196 labelled recordings.

## Measured (leave-one-subject-out, `make model-report`)

Pooled over every held-out recording; last column per-fold mean ± std. Students and SVC: the 10
audio subjects, 70 recordings; teacher: 18 subjects, 196 recordings.

| method | n | UAR | macro-F1 | weighted F1 | accuracy | UAR per fold |
|---|---|---|---|---|---|---|
{rows}

Published anchors (binary stress, StressID's own random subject-grouped splits, weighted F1): audio
handcrafted 0.67 ± 0.04, audio deep embeddings 0.72 ± 0.07, physiological 0.75 ± 0.04.

## What it is not

- Not validated, not clinical, not a diagnosis; 10 labelled speakers cannot represent anyone else.
- Lab speech from a lab microphone, one language, long task recordings; EmoChat scores short phone
  messages in other languages, through a phone codec: outside the training distribution.
- Self-reported stress after lab tasks is not stress in daily life.

## Files

`config.json` (features, loudness step and model config), `model.safetensors` (this student, with
its input standardisation), `teacher.safetensors`, `metrics.json` (the figures above).
Made with torch {_torch_version()} on Python {platform.python_version()}.
"""
