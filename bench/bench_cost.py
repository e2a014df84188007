"""Cost per voice message, on paper, from measured figures and cited list prices.

Inputs, all in bench/cost_inputs.json (vendored as data, each price with its source and the date it
was read; nothing here is a price of its own):
- measured: wall and CPU seconds of process_upload for a 10 s and a 60 s message (`--measure`);
- firestore_ops.counted: the reads and writes one message, its trend update and its alert make,
  counted against the emulator and asserted by tests/integration/test_firestore_ops.py;
- prices: Cloud Run (functions 2nd gen) per vCPU-second, GiB-second and request; Firestore per
  read and write; each transcription model per minute; the stress endpoint's instance-hour.

    .venv/bin/python bench/bench_cost.py                 # print the table from the inputs
    .venv/bin/python bench/bench_cost.py --update-readme # ... and write it into README.md
    make exec CMD=".venv/bin/python bench/bench_cost.py --measure"   # re-measure (stand-ins needed)

How --measure measures: in this process, the production pipeline (process_upload) with the real
decoder and the real OpenAI and Hugging Face adapters against the local stand-ins (Whisper tiny.en,
our EndpointHandler); the message store and the download are in memory (their round trips are
small next to the two services and are counted as Firestore operations instead). Wall time is what
Cloud Run bills (request-based billing: allocated vCPU and memory while the request runs); CPU time
(user + sys of this process, not the stand-ins) is what the function itself computes. Against the
real APIs the wall time follows OpenAI's and the endpoint's latency instead of the stand-ins'.
Printed, not asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
INPUTS = ROOT / "bench" / "cost_inputs.json"
README = ROOT / "README.md"
sys.path[:0] = [str(ROOT / "tests"), str(ROOT / "functions")]

# The voice function's size, as declared (functions/emochat/config.py): what Cloud Run bills.
from emochat.config import VOICE_CONCURRENCY, VOICE_CPU, VOICE_MEMORY  # noqa: E402

START, END = "<!-- cost-table:start -->", "<!-- cost-table:end -->"
CLIPS_S = (10, 60)
SENTENCE = "I have been thinking about the trip all week and I am not sure we are ready for it. "


def speech_m4a(seconds: float, folder: Path) -> bytes:
    """espeak-ng English, looped to exactly `seconds`, as a phone sends it (AAC in m4a)."""
    wav, m4a = folder / "speech.wav", folder / f"speech-{seconds}.m4a"
    subprocess.run(["espeak-ng", "-v", "en", "-s", "170", "-w", str(wav), SENTENCE * 3], check=True)
    subprocess.run(
        [
            *("ffmpeg", "-loglevel", "error", "-y", "-stream_loop", "-1", "-i", str(wav)),
            *("-t", str(seconds), "-c:a", "aac", "-b:a", "48k", str(m4a)),
        ],
        check=True,
    )
    return m4a.read_bytes()


def measure(runs: int) -> dict:
    import httpx
    import openai
    from fakes.pipeline import InMemoryAudio, InMemoryMessages

    from emochat import config
    from emochat.pipeline.adapters.hf_stress import HuggingFaceStressScorer
    from emochat.pipeline.adapters.openai_stt import OpenAITranscriber
    from emochat.pipeline.service import PipelineConfig, Services, Upload, process_upload

    stt_url = os.environ.get("STT_BASE_URL", "http://127.0.0.1:8711/v1")
    stress_url = os.environ.get("STRESS_ENDPOINT_URL", "http://127.0.0.1:8712")
    http = httpx.Client(timeout=300)
    stt = OpenAITranscriber(
        openai.OpenAI(api_key="local", base_url=stt_url, http_client=http, timeout=300, max_retries=0),
        model=config.STT_MODEL.default,
    )
    stress = HuggingFaceStressScorer(http, stress_url, read_timeout_s=300, deadline_s=600)
    measured = {}
    with tempfile.TemporaryDirectory() as folder:
        for seconds in CLIPS_S:
            data = speech_m4a(seconds, Path(folder))
            samples = []
            warm_up = 0 if measured else 1  # one warm-up run of the stand-ins, not counted
            for run in range(1 - warm_up, runs + 1):
                name = f"voice/u1/c1/m{run}.m4a"
                audio = InMemoryAudio()
                audio.objects[("bucket", name)] = data
                services = Services(stt, stress, audio, InMemoryMessages({"c1": ["u1"]}))
                cpu0, wall0 = _cpu_s(), time.perf_counter()
                outcome = process_upload(
                    Upload("bucket", name, 1, "audio/mp4", len(data)), services, PipelineConfig()
                )
                wall, cpu = time.perf_counter() - wall0, _cpu_s() - cpu0
                assert outcome.status is not None and outcome.status.value == "ready", outcome
                doc = services.messages.docs[f"chats/c1/messages/m{run}"]
                if run:
                    samples.append((wall, cpu, doc["audio"]["durationMs"], doc["timings"]))
            samples.sort()
            wall, cpu, duration_ms, timings = samples[len(samples) // 2]
            measured[f"{seconds} s"] = {
                "audio_s": round(duration_ms / 1000, 1),
                "wall_s": round(wall, 3),
                "cpu_s": round(cpu, 3),
                "stt_s": round(timings["sttMs"] / 1000, 3),
                "stress_s": round(timings["stressMs"] / 1000, 3),
            }
    return {
        "date": date.today().isoformat(),
        "how": (
            f"bench/bench_cost.py --measure: process_upload with the real decoder and adapters against "
            f"the local stand-ins, median of {runs} runs after one warm-up, load average "
            f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores"
        ),
        "messages": measured,
    }


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def money(value: float) -> str:
    return f"${value:.6f}" if value < 0.01 else f"${value:.4f}"


def table(inputs: dict) -> str:
    prices, ops, measured = inputs["prices"], inputs["firestore_ops"], inputs["measured"]
    run, fs = prices["cloud_run"], prices["firestore"]
    counted, triggers = ops["counted"], ops["invocations_per_message"]
    gib, vcpu, concurrency = VOICE_MEMORY.value / 1024, VOICE_CPU, VOICE_CONCURRENCY
    clips = list(measured["messages"].items())

    def firestore_cost(*names: str) -> float:
        reads = sum(counted[n]["reads"] for n in names)
        writes = sum(counted[n]["writes"] for n in names)
        deletes = sum(counted[n]["deletes"] for n in names)
        return (reads * fs["read_usd"] + writes * fs["write_usd"] + deletes * fs["delete_usd"]) / 100_000

    rows: list[tuple[str, list[str]]] = []
    per_clip = [m for _, m in clips]
    rows.append(("audio (s)", [f"{m['audio_s']:.1f}" for m in per_clip]))
    rows.append(
        (
            "function wall time / CPU time (s), measured",
            [f"{m['wall_s']:.2f} / {m['cpu_s']:.2f}" for m in per_clip],
        )
    )
    rows.append(
        (
            "GiB-s / vCPU-s billed (memory, cpu × wall)",
            [f"{gib * m['wall_s']:.2f} / {vcpu * m['wall_s']:.2f}" for m in per_clip],
        )
    )
    compute = [m["wall_s"] * (gib * run["gib_second_usd"] + vcpu * run["vcpu_second_usd"]) for m in per_clip]
    rows.append(("function compute, alone on its instance", [money(c) for c in compute]))
    rows.append(
        (
            f"... sharing it with {concurrency - 1} others (concurrency {concurrency})",
            [money(c / concurrency) for c in compute],
        )
    )
    invocations = sum(triggers.values()) * run["request_usd_per_million"] / 1e6
    rows.append(
        (
            f"invocations ({sum(triggers.values())}: {', '.join(f'{k} {v}' for k, v in triggers.items())})",
            [money(invocations)] * len(clips),
        )
    )
    no_alert = firestore_cost("voice message", "trend update", "ready message, no alert")
    alert_extra = firestore_cost("alert, chat of 2") - firestore_cost("ready message, no alert")
    rows.append(("Firestore: message, trend, baseline (no alert)", [money(no_alert)] * len(clips)))
    rows.append(("Firestore: an alert to a chat of 2, in addition", [money(alert_extra)] * len(clips)))
    for model, price in prices["transcription_per_minute_usd"].items():
        rows.append(
            (
                f"speech-to-text `{model}` (${price['usd']} / min)",
                [money(m["audio_s"] / 60 * price["usd"]) for m in per_clip],
            )
        )
    endpoint = prices["stress_endpoint"]
    hour = endpoint["usd_per_hour"]
    rows.append(
        (
            f"stress endpoint busy time ({endpoint['instance']}, ${hour} / h, fully used)",
            [money(m["stress_s"] * hour / 3600) for m in per_clip],
        )
    )
    default = inputs["default_stt_model"]
    stt_default = prices["transcription_per_minute_usd"][default]["usd"]
    totals = [
        c + invocations + no_alert + m["audio_s"] / 60 * stt_default + m["stress_s"] * hour / 3600
        for c, m in zip(compute, per_clip, strict=True)
    ]
    rows.append(
        (
            f"**total, `{default}`, no alert, function alone on its instance**",
            [f"**{money(t)}**" for t in totals],
        )
    )

    header = "| per message | " + " | ".join(f"{name} message" for name, _ in clips) + " |"
    lines = [header, "|---|" + "---|" * len(clips)]
    lines += [f"| {label} | " + " | ".join(values) + " |" for label, values in rows]
    lines.append("")
    lines.append(
        f"Measured {measured['date']} ({measured['how']}). An always-on endpoint replica costs "
        f"${hour * 24 * 30:.2f} per 30 days whatever the traffic; scaled to zero it costs only its busy "
        f"minutes (billed per minute) plus a cold start on the first message after idling."
    )
    lines.append("")
    lines.append("Prices, as data in `bench/cost_inputs.json`, each read on the date given:")
    for source in inputs["sources"]:
        lines.append(f"- {source}")
    return "\n".join(lines)


def update_readme(text: str) -> None:
    readme = README.read_text()
    block = f"{START}\n{text}\n{END}"
    if START not in readme:
        raise SystemExit(f"README.md has no {START} ... {END} block to replace")
    README.write_text(re.sub(re.escape(START) + ".*?" + re.escape(END), lambda _: block, readme, flags=re.S))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--measure", action="store_true", help="re-measure against the stand-ins")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--update-readme", action="store_true")
    args = parser.parse_args()
    inputs = json.loads(INPUTS.read_text())
    if args.measure:
        inputs["measured"] = measure(args.runs)
        INPUTS.write_text(json.dumps(inputs, indent=2, ensure_ascii=False) + "\n")
    text = table(inputs)
    print(text)
    if args.update_readme:
        update_readme(text)


if __name__ == "__main__":
    main()
