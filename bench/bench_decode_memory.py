"""Peak memory per in-flight voice message, worst accepted input beside a typical one, and the
`concurrency` of process_voice_message that a 1 GiB instance can carry.

Run:  .venv/bin/python bench/bench_decode_memory.py      (no stack needed; printed, not asserted)

Each input runs in a fresh interpreter that imports what the deployed function imports and builds
what its first event builds (main.py, the wiring's clients, the decoder: the instance baseline),
then holds the downloaded bytes and runs the real pipeline (process_upload: decode, checks,
canonical WAV) with in-memory fakes for the store and the two services. Peak growth = VmHWM after
the message - VmRSS before the download. Not in that figure: the HTTP clients' buffers for the two
request bodies (at most the original plus the WAV), added to the per-message figure as an
allowance, and the Functions framework's own server (counted in the headroom).

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
            # The wiring's clients, built but never called: no credentials, no network.
            "GCLOUD_PROJECT": "demo-emochat",
            "FIRESTORE_EMULATOR_HOST": "127.0.0.1:1",
            "STORAGE_EMULATOR_HOST": "http://127.0.0.1:1",
            "OPENAI_API_KEY": "bench-not-a-key",
            "STRESS_ENDPOINT_URL": "http://127.0.0.1:1",
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

    import emochat.pipeline.audio  # noqa: F401  (imported in the background by the wiring)
    from emochat import wiring
    from emochat.pipeline.service import PipelineConfig, Services, Upload, process_upload

    # A serving instance holds what its first event built: the service clients (built on background
    # threads) and the decoder. Built here, unused (the fakes below stand in for the services).
    built = wiring.voice_services()
    for port in (built.transcriber, built.stress_scorer, built.audio_store):
        port._built.result(timeout=120)
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
    worst, typical = per_message[worst_name] / mib, per_message[typical_name] / mib
    print_sizing(worst_name, worst, typical, baseline / mib)


def print_sizing(worst_name: str, worst: float, typical: float, baseline: float) -> None:
    """One table: the memory figures measured here, the concurrency they allow, what
    functions/emochat/config.py declares, and why."""
    from emochat import config

    instance = config.VOICE_MEMORY.value
    usable = instance * (1 - config.INSTANCE_HEADROOM) - baseline
    fit, fit_typical = math.floor(usable / worst), math.floor(usable / typical)
    instances = config.MAX_VOICE_INSTANCES.default
    table = Table(title=f"process_voice_message sizing on a {instance} MiB instance", show_lines=False)
    for column, justify in (("", "left"), ("MiB / count", "right"), ("why", "left")):
        table.add_column(column, justify=justify)
    table.add_row("instance memory", f"{instance}", "config.VOICE_MEMORY")
    table.add_row("baseline after imports", f"{baseline:.0f}", f"config says {config.INSTANCE_BASELINE_MIB}")
    table.add_row(
        f"headroom {config.INSTANCE_HEADROOM:.0%}",
        f"{instance * config.INSTANCE_HEADROOM:.0f}",
        "framework server, fragmentation, GC slack",
    )
    table.add_row("usable for messages", f"{usable:.0f}", "memory - headroom - baseline")
    table.add_row(
        "per message, worst accepted",
        f"{worst:.1f}",
        f"{worst_name}, + request bodies; config says {config.WORST_MESSAGE_MIB}",
    )
    table.add_row("per message, typical", f"{typical:.1f}", "20 s AAC m4a")
    table.add_row("messages that fit, worst / typical", f"{fit} / {fit_typical}", "usable / per message")
    table.add_row(
        "concurrency declared",
        f"{config.VOICE_CONCURRENCY}",
        "sized on the worst input: no mix of uploads can exhaust an instance",
    )
    table.add_row(
        "cpu declared",
        f"{config.VOICE_CPU}",
        "Cloud Run needs >= 1 vCPU for concurrency > 1; decoding (ms column) is the only CPU work",
    )
    table.add_row(
        "pipelines in flight (STT rate limit)",
        f"{instances * config.VOICE_CONCURRENCY}",
        f"MAX_VOICE_INSTANCES {instances} (default) x concurrency {config.VOICE_CONCURRENCY}",
    )
    console.print(table)
    verdict = (
        "matches this measurement"
        if fit == config.VOICE_CONCURRENCY
        else f"DIFFERS from this measurement ({fit}): update the figures in functions/emochat/config.py"
    )
    console.print(f"Declared concurrency {config.VOICE_CONCURRENCY} {verdict}.")


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--child":
        child(sys.argv[2])
    else:
        main()
