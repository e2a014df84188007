"""Stress model latency on CPU: prints (does not assert) p50/p95.

    .venv/bin/python bench/bench_stress_model.py [--repeats 20] [--skip-w2v]

Rows:
- EndpointHandler with the demo checkpoint (its encoder, today stressid_hc), 3 s and 10 s m4a clips: decode +
  resample + trim + features + StudentNet, i.e. what one HTTP request costs the stress server.
- The same handler with a wav2vec2-base-sized encoder (Wav2Vec2Config() defaults, ~95M params,
  randomly initialised and saved locally: no hub access here; a real checkpoint costs the same).
- StudentNet forward alone (batch 1).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from rich.console import Console
from rich.table import Table

from stress_model.config import Config, FeatureConfig
from stress_model.handler import EndpointHandler
from stress_model.model import StudentNet, save_checkpoint
from stress_model.synth import speak

REPO = Path(__file__).resolve().parents[1]
DEMO = REPO / "stress_model" / "checkpoints" / "demo"
TEXT = (
    "I have been trying to finish this project all week, and every time I think it is done something else "
    "breaks. The deadline is tomorrow morning and I still have to write the report and test everything again."
)


def clip(seconds: float, tmp: Path) -> bytes:
    """espeak-ng speech cut/looped to exactly `seconds`, as m4a (the app's format) when ffmpeg exists."""
    wav = speak(TEXT, "stressed", tmp / "long.wav")
    ext = "m4a" if shutil.which("ffmpeg") else "wav"
    out = tmp / f"clip_{seconds:g}s.{ext}"
    cmd = ["ffmpeg", "-loglevel", "error", "-y", "-stream_loop", "-1", "-i", str(wav), "-t", str(seconds)]
    if shutil.which("ffmpeg"):
        subprocess.run([*cmd, str(out)], check=True)
        return out.read_bytes()
    return wav.read_bytes()


def timed(fn: Callable[[], object], repeats: int, warmup: int = 2) -> tuple[float, float]:
    for _ in range(warmup):
        fn()
    ts = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        ts.append((time.perf_counter() - t) * 1000)
    return float(np.percentile(ts, 50)), float(np.percentile(ts, 95))


def w2v_base_checkpoint(tmp: Path) -> Path:
    from transformers import Wav2Vec2Config, Wav2Vec2Model

    ckpt = tmp / "w2v_base_random"
    torch.manual_seed(0)
    Wav2Vec2Model(Wav2Vec2Config()).eval().save_pretrained(ckpt / "encoder")
    feats = FeatureConfig(encoder="wav2vec2", w2v_model="encoder", w2v_layer=-1, dim=768)
    cfg = Config(features=feats, student_input_dim=512)  # the original's 512-d StudentNet input
    save_checkpoint(ckpt, cfg, StudentNet(cfg).eval())
    return ckpt


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=20)
    ap.add_argument("--skip-w2v", action="store_true", help="skip the wav2vec2-base-sized encoder rows")
    args = ap.parse_args()
    console = Console()
    table = Table(title=f"stress model latency, CPU, torch threads={torch.get_num_threads()}")
    for col in ("what", "clip", "p50 ms", "p95 ms"):
        table.add_column(col, justify="left" if col in ("what", "clip") else "right")

    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        clips = {s: clip(s, tmp) for s in (3.0, 10.0)}
        demo = EndpointHandler(str(DEMO))
        handlers = [(f"handler, demo ({demo.cfg.features.encoder})", demo, args.repeats)]
        if not args.skip_w2v:
            t = time.perf_counter()
            h = EndpointHandler(str(w2v_base_checkpoint(tmp)))
            params = sum(p.numel() for p in h.encoder.model.parameters()) / 1e6  # type: ignore[attr-defined]
            console.print(
                f"wav2vec2-base-sized encoder: {params:.1f}M params, built+loaded in "
                f"{time.perf_counter() - t:.1f} s"
            )
            handlers.append(("handler, wav2vec2-base-sized", h, max(5, args.repeats // 2)))
        for name, h, n in handlers:
            for seconds, data in clips.items():
                p50, p95 = timed(lambda h=h, data=data: h({"inputs": data}), n)
                table.add_row(name, f"{seconds:g} s", f"{p50:.1f}", f"{p95:.1f}")

    cfg = Config.load(DEMO / "config.json")
    net = StudentNet(cfg).eval()
    x = torch.randn(1, cfg.features.dim)
    with torch.inference_mode():
        p50, p95 = timed(lambda: net(x), 1000, warmup=20)
    table.add_row(f"StudentNet forward ({cfg.features.dim}-d in)", "-", f"{p50:.3f}", f"{p95:.3f}")
    console.print(table)


if __name__ == "__main__":
    main()
