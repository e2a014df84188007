"""Peak memory per in-flight voice message, worst accepted input beside a typical one, and the
`concurrency` of process_voice_message that a 1 GiB instance can carry.

Run:  .venv/bin/python bench/bench_decode_memory.py      (no stack needed; printed, not asserted)

Each input runs in a fresh interpreter that imports what the deployed function imports (main.py and
the adapters' modules: the instance baseline), then holds the downloaded bytes and runs the real
pipeline (process_upload: decode, checks, canonical WAV) with in-memory fakes for the store and the
two services. Peak growth = VmHWM after the message - VmRSS before the download. Not in that figure:
the HTTP clients' buffers for the two request bodies (at most the original plus the WAV), added to
the per-message figure as an allowance, and the Functions framework's own server (counted in the
headroom).

The worst accepted input is the largest output the limits admit from the largest upload: 120 s of
48 kHz stereo PCM (23 MB, under the 25 MiB cap; output capped at 121 s), and two other corners
(96 kHz × 8 channels at the size cap; Matroska PCM in the largest frames the decoder admits).
"""

from __future__ import annotations

import io
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import av
import numpy as np
from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tests"), str(ROOT / "functions")]

from hostile_audio import HOSTILE, proc_status_bytes, typical_m4a, wav  # noqa: E402

INSTANCE_MIB = 1024
# Kept free of messages: the Functions framework's server, allocator fragmentation, GC slack.
HEADROOM = 0.25
MAX_UPLOAD_BYTES = 25 * 2**20
console = Console(width=150)


def wav_of_size(rate: int, channels: int, seconds: float) -> bytes:
    return wav(rate, channels, int(rate * seconds))


def mkv_largest_frames(seconds: float) -> bytes:
    """Matroska PCM, 8 kHz × 8 channels s16, 65,536 samples (1 MiB) per packet: the decoder's limits."""
    buffer = io.BytesIO()
    rate, size = 8_000, 65_536
    with av.open(buffer, "w", format="matroska") as out:
        stream = out.add_stream("pcm_s16le", rate=rate, layout="7.1")
        for start in range(0, int(seconds * rate), size):
            noise = np.random.default_rng(start).integers(-3000, 3000, (1, size * 8), dtype=np.int16)
            frame = av.AudioFrame.from_ndarray(noise, format="s16", layout="7.1")
            frame.sample_rate, frame.pts = rate, start
            for packet in stream.encode(frame):
                out.mux(packet)
    return buffer.getvalue()


def inputs() -> dict[str, tuple[str, bytes]]:
    """name -> (kind, bytes). Kinds: worst-case candidates, the typical upload, refused hostile files."""
    made = {
        "120 s WAV 48 kHz stereo": ("accepted", wav_of_size(48_000, 2, 120.0)),
        "WAV 96 kHz × 8 ch at 25 MiB": (
            "accepted",
            wav_of_size(96_000, 8, (MAX_UPLOAD_BYTES - 4096) / (96_000 * 16)),
        ),
        "MKV PCM 8 ch, largest frames, 106 s": ("accepted", mkv_largest_frames(104.0)),
        "typical: 20 s AAC m4a": ("typical", typical_m4a()),
    }
    for name, case in HOSTILE.items():
        made[f"refused: {name}"] = ("refused", case.make())
    return made


def measure(data: bytes, workdir: Path) -> dict:
    source = workdir / "upload.bin"
    source.write_bytes(data)
    run = subprocess.run(
        [sys.executable, __file__, "--child", str(source)],
        cwd=workdir,
        env={
            **os.environ,
            "OPENBLAS_NUM_THREADS": "1",
            "METADATA_SERVER_DETECTION": "none",
            # What the Functions runtime sets; main.py's storage trigger needs the bucket name.
            "FIREBASE_CONFIG": json.dumps(
                {"projectId": "demo-emochat", "storageBucket": "demo-emochat.appspot.com"}
            ),
        },
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    return json.loads(run.stdout.strip().splitlines()[-1])


def child(source: str) -> None:
    import main  # noqa: F401  (what the deployed function imports at cold start)
    from fakes.pipeline import FakeStressScorer, FakeTranscriber, InMemoryAudio, InMemoryMessages

    from emochat import wiring  # noqa: F401  (imported by the trigger on its first event)
    from emochat.pipeline.service import PipelineConfig, Services, Upload, process_upload

    baseline = proc_status_bytes("VmRSS")
    name = "voice/u1/c1/m1.webm"
    services = Services(
        FakeTranscriber(), FakeStressScorer(), InMemoryAudio(), InMemoryMessages({"c1": ["u1"]})
    )
    data = Path(source).read_bytes()  # the download
    services.audio_store.objects[("bucket", name)] = data
    upload = Upload("bucket", name, 1, "audio/webm", len(data))
    started = time.perf_counter()
    outcome = process_upload(upload, services, PipelineConfig())
    elapsed_ms = (time.perf_counter() - started) * 1000
    doc = services.messages.docs["chats/c1/messages/m1"]
    wav_bytes = len(services.stress_scorer.calls[0].data) if services.stress_scorer.calls else 0
    print(
        json.dumps(
            {
                "baseline": baseline,
                "growth": proc_status_bytes("VmHWM") - baseline,
                "status": outcome.status.value if outcome.status else None,
                "code": (doc.get("error") or {}).get("code"),
                "duration_ms": (doc.get("audio") or {}).get("durationMs"),
                "elapsed_ms": elapsed_ms,
                "bodies": len(data) + wav_bytes if wav_bytes else 0,
            }
        )
    )


def main() -> None:
    rows = {}
    with tempfile.TemporaryDirectory() as folder:
        for name, (kind, data) in inputs().items():
            rows[name] = (kind, len(data), measure(data, Path(folder)))
    mib = 2**20
    table = Table(title="Peak memory per in-flight message (process_upload, fresh interpreter each)")
    for column in (
        "input",
        "kind",
        "size MiB",
        "outcome",
        "audio s",
        "peak growth MiB",
        "+ bodies MiB",
        "ms",
    ):
        table.add_column(column, justify="left" if column in ("input", "kind", "outcome") else "right")
    for name, (kind, size, r) in rows.items():
        outcome = r["status"] if r["status"] == "ready" else f"{r['status']} {r['code']}"
        table.add_row(
            name,
            kind,
            f"{size / mib:.2f}",
            outcome,
            f"{(r['duration_ms'] or 0) / 1000:.1f}",
            f"{r['growth'] / mib:.1f}",
            f"{(r['growth'] + r['bodies']) / mib:.1f}",
            f"{r['elapsed_ms']:.0f}",
        )
    console.print(table)

    per_message = {
        name: r["growth"] + r["bodies"] for name, (kind, _, r) in rows.items() if kind != "refused"
    }
    worst_name = max((n for n, (k, _, _) in rows.items() if k == "accepted"), key=per_message.__getitem__)
    typical_name = next(n for n, (k, _, _) in rows.items() if k == "typical")
    baseline = max(r["baseline"] for _, _, r in rows.values())
    usable = INSTANCE_MIB * mib * (1 - HEADROOM) - baseline
    worst, typical = per_message[worst_name], per_message[typical_name]
    summary = Table(title=f"process_voice_message on a {INSTANCE_MIB} MiB instance")
    for column in ("", "worst accepted", "typical"):
        summary.add_column(column, justify="right")
    summary.add_row("input", worst_name, typical_name)
    summary.add_row("per in-flight message, MiB", f"{worst / mib:.1f}", f"{typical / mib:.1f}")
    summary.add_row("instance baseline (imports), MiB", f"{baseline / mib:.0f}", f"{baseline / mib:.0f}")
    summary.add_row(
        f"usable after {HEADROOM:.0%} headroom, MiB", f"{usable / mib:.0f}", f"{usable / mib:.0f}"
    )
    summary.add_row("messages that fit", str(math.floor(usable / worst)), str(math.floor(usable / typical)))
    console.print(summary)
    fit = math.floor(usable / worst)
    console.print(
        f"Suggested concurrency: {fit} — sized on the worst accepted input, so no mix of uploads can "
        f"exhaust the instance (the typical upload alone would allow {math.floor(usable / typical)}). "
        "Each in-flight message also holds a thread for its two network-bound service calls; decoding "
        "is the only CPU work (the ms column), so 1 vCPU serves this concurrency."
    )


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--child":
        child(sys.argv[2])
    else:
        main()
