"""Voice pipeline latency on the local stack: upload-to-ready, per stage, and what concurrency buys.

Run with the stack up:  make exec CMD=".venv/bin/python bench/bench_pipeline.py --uploads 5"

1. Upload-to-ready: N uploads each of a 3 s and a 10 s spoken clip through the Storage emulator as the
   app does; the time from the upload returning to the message being ready, and the message's own
   per-stage timings (sttMs, stressMs, totalMs) written by the real trigger.
2. Progressive results: the time to the first visible result (transcript or stress reading while the
   message is still processing) and to ready, side by side with their physical limits, min(stt,
   stress) and max(stt, stress), each plus the I/O.
3. Concurrent vs sequential: the same two stages, through the production adapters against the same
   stand-ins, run the way the pipeline runs them (two threads) and one after the other, side by side;
   the ratio total / max(stt, stress) is 1.0 for perfect overlap and ~2 for none.
Printed, not asserted.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import openai
import typer
from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "functions"), str(ROOT)]

from emochat.pipeline.adapters.hf_stress import HuggingFaceStressScorer  # noqa: E402
from emochat.pipeline.adapters.openai_stt import OpenAITranscriber  # noqa: E402
from emochat.pipeline.audio import decode_audio  # noqa: E402
from emochat.pipeline.ports import VoiceClip  # noqa: E402
from local_stack.app_client import AppClient  # noqa: E402

CHAT = "chat-mina-joon"
TEXT = (
    "Hi Joon, it is Mina. The meeting ran long again and the train is late, so I will be there a bit "
    "after seven. Could you order for me if the kitchen closes early? Thanks, see you soon, and sorry "
    "again for the wait, it has been one of those days at the office."
)
console = Console()


def spoken_clip(seconds: int, workdir: Path) -> bytes:
    """espeak-ng speech cut (or padded) to exactly `seconds`, as AAC in m4a."""
    wav, m4a = workdir / f"{seconds}s.wav", workdir / f"{seconds}s.m4a"
    subprocess.run(
        ["espeak-ng", "-v", "en", "-s", "165", "-w", str(wav), TEXT], check=True, capture_output=True
    )
    subprocess.run(
        [
            "ffmpeg",
            "-loglevel",
            "error",
            "-y",
            "-i",
            str(wav),
            "-af",
            "apad",
            "-t",
            str(seconds),
            "-c:a",
            "aac",
            "-b:a",
            "48k",
            str(m4a),
        ],
        check=True,
    )
    return m4a.read_bytes()


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def watch(app: AppClient, message_id: str, started: float) -> tuple[dict, float | None, float]:
    """Poll the message as the app's listener would: (final doc, ms to the first visible result —
    text or stress while processing, or the final doc — , ms to the final status)."""
    path = app.message_path(CHAT, message_id)
    first: float | None = None
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        doc = app.get_doc(path) or {}
        now = (time.monotonic() - started) * 1000
        if first is None and (doc.get("text") is not None or doc.get("stress") is not None):
            first = now
        if doc.get("status") in ("ready", "failed", "rejected"):
            return doc, first, now
        time.sleep(0.05)
    raise TimeoutError(f"message {message_id} not final after 300 s")


def upload_to_ready(app: AppClient, clip: bytes, uploads: int) -> dict[str, list[float]]:
    seen: dict[str, list[float]] = {"latency": [], "first": [], "stt": [], "stress": [], "total": []}
    for _ in range(uploads):
        sent = app.send_voice_message(CHAT, clip, content_type="audio/mp4", language="en")
        doc, first, ready = watch(app, sent.message_id, sent.uploaded_at)
        if doc.get("status") != "ready" or first is None:
            console.print(f"[red]message ended {doc.get('status')}: {doc.get('error')}[/]")
            continue
        timings = doc["timings"]
        seen["latency"].append(ready)
        seen["first"].append(first)
        seen["stt"].append(timings["sttMs"])
        seen["stress"].append(timings["stressMs"])
        seen["total"].append(timings["totalMs"])
    return seen


def side_by_side(clip: bytes, rounds: int) -> dict[str, list[float]]:
    stt = OpenAITranscriber(
        openai.OpenAI(api_key="local", base_url=os.environ.get("STT_BASE_URL", "http://127.0.0.1:8711/v1")),
        model="whisper-1",
    )
    stress = HuggingFaceStressScorer(
        httpx.Client(timeout=60), os.environ.get("STRESS_ENDPOINT_URL", "http://127.0.0.1:8712")
    )
    original = VoiceClip(clip, "clip.m4a", "audio/mp4")
    wav = VoiceClip(decode_audio(clip).to_wav(), "clip.wav", "audio/wav")

    def timed(call) -> float:
        start = time.perf_counter()
        call()
        return (time.perf_counter() - start) * 1000

    ratios: dict[str, list[float]] = {"concurrent": [], "sequential": []}
    with ThreadPoolExecutor(max_workers=2) as pool:
        for _ in range(rounds):
            start = time.perf_counter()
            a = pool.submit(timed, lambda: stt.transcribe(original, "en"))
            b = pool.submit(timed, lambda: stress.score_stress(wav))
            stt_ms, stress_ms = a.result(), b.result()
            ratios["concurrent"].append((time.perf_counter() - start) * 1000 / max(stt_ms, stress_ms))
            start = time.perf_counter()
            stt_ms = timed(lambda: stt.transcribe(original, "en"))
            stress_ms = timed(lambda: stress.score_stress(wav))
            ratios["sequential"].append((time.perf_counter() - start) * 1000 / max(stt_ms, stress_ms))
    return ratios


def main(
    uploads: int = typer.Option(5, help="uploads per clip length"),
    rounds: int = typer.Option(5, help="side-by-side rounds per clip length"),
) -> None:
    if not os.environ.get("FIRESTORE_EMULATOR_HOST"):
        raise typer.BadParameter(
            "run under the stack: make exec CMD='.venv/bin/python bench/bench_pipeline.py'"
        )
    if not (shutil.which("espeak-ng") and shutil.which("ffmpeg")):
        raise typer.BadParameter("espeak-ng and ffmpeg are needed: make bootstrap")
    latency = Table(title=f"upload-to-ready on the local stack, {uploads} uploads per clip (ms)")
    for column in ("clip", "p50", "p95", "stt p50", "stress p50", "total p50"):
        latency.add_column(column, justify="right")
    progressive = Table(
        title="progressive results (ms, p50): first visible vs ready, beside their physical limits; "
        "I/O = upload-to-ready − max(stt, stress) (upload, trigger, download, decode, writes, polling)"
    )
    for column in ("clip", "first visible", "min(stt, stress) + I/O", "ready", "max(stt, stress) + I/O"):
        progressive.add_column(column, justify="right")
    overlap = Table(title=f"total / max(stt, stress), {rounds} rounds side by side (median)")
    for column in ("clip", "concurrent (pipeline)", "sequential"):
        overlap.add_column(column, justify="right")
    with tempfile.TemporaryDirectory() as tmp, AppClient(timeout_s=120) as app:
        app.sign_in("mina@example.com", "mina-password")
        # Warm the worker and both models so the first upload's cold start does not skew the figures.
        upload_to_ready(app, spoken_clip(3, Path(tmp)), 1)
        for seconds in (3, 10):
            clip = spoken_clip(seconds, Path(tmp))
            seen = upload_to_ready(app, clip, uploads)
            latency.add_row(
                f"{seconds} s",
                *(f"{pct(seen['latency'], q):.0f}" for q in (0.5, 0.95)),
                *(f"{statistics.median(seen[k]):.0f}" for k in ("stt", "stress", "total")),
            )
            io = [r - max(a, b) for r, a, b in zip(seen["latency"], seen["stt"], seen["stress"], strict=True)]
            fastest = [min(a, b) + d for a, b, d in zip(seen["stt"], seen["stress"], io, strict=True)]
            slowest = [max(a, b) + d for a, b, d in zip(seen["stt"], seen["stress"], io, strict=True)]
            progressive.add_row(
                f"{seconds} s",
                *(f"{statistics.median(v):.0f}" for v in (seen["first"], fastest, seen["latency"], slowest)),
            )
            ratios = side_by_side(clip, rounds)
            overlap.add_row(f"{seconds} s", *(f"{statistics.median(ratios[k]):.2f}" for k in ratios))
    console.print(latency)
    console.print(progressive)
    console.print(overlap)


if __name__ == "__main__":
    typer.run(main)
