"""Load on the local stack: many voice messages uploaded at once, as many app users would.

    make exec CMD=".venv/bin/python bench/bench_load.py"            # 100 messages, 16 client threads
    make exec CMD=".venv/bin/python bench/bench_load.py --messages 20 --threads 4"

Signs in as the seed user Mina, sends one warm-up message (not counted), then uploads N short voice
messages (1–3 s of espeak-ng speech, m4a) into the seed chat from T threads through the Storage
emulator, and watches Firestore (admin reads, batched) until each message reaches a final status.
Prints how many became ready / failed / rejected, upload-to-final latency (p50/p95/max, from the
moment the upload request returned, i.e. the object was finalized), the function's own totalMs,
throughput, the Functions emulator's Python workers (peak count and memory), and how many were lost:
not final by a generous deadline (the goal is none). Printed, not asserted: the numbers depend on
the machine (the local stand-ins transcribe and score on the same CPUs as the emulators).

Outside the stack (`make bench` runs every bench/bench_*.py) it says how to run it and exits 0.
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
# The e2e tests' helpers (seed users and chat, test speech), importable as they are under pytest.
for folder in (REPO, REPO / "tests", REPO / "tests" / "e2e"):
    sys.path.insert(0, str(folder))

FINAL = {"ready", "failed", "rejected"}
FUNCTIONS_VENV = str(REPO / "functions" / "venv" / "bin" / "functions-framework").encode()
PHRASES = [
    "Running a bit late, see you soon.",
    "Can you call me back after lunch?",
    "The meeting moved to three o'clock.",
    "I miss you, talk tonight.",
    "Dinner is ready, come home.",
]


@dataclass
class Sent:
    message_id: str
    started: float  # upload request sent (monotonic)
    uploaded: float | None = None  # upload request returned: the object is finalized
    upload_error: str | None = None
    final_at: float | None = None
    status: str | None = None
    error_code: str | None = None
    total_ms: int | None = None


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100); nan for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


class WorkerSampler(threading.Thread):
    """Samples the Functions emulator's Python workers (functions-framework processes) from /proc."""

    def __init__(self, every_s: float = 0.5) -> None:
        super().__init__(daemon=True)
        self.every_s = every_s
        self.peak_workers = 0
        self.peak_rss_mb = 0.0
        self._halt = threading.Event()

    @staticmethod
    def sample() -> tuple[int, float]:
        workers, rss_kb = 0, 0
        for pid in filter(str.isdigit, os.listdir("/proc")):
            try:
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
                # `python .../functions/venv/bin/functions-framework`, not its `sh -c` wrapper.
                if FUNCTIONS_VENV not in cmdline or b"python" not in cmdline.split(b"\0")[0]:
                    continue
                status = Path(f"/proc/{pid}/status").read_text()
            except OSError:
                continue
            workers += 1
            for line in status.splitlines():
                if line.startswith("VmRSS:"):
                    rss_kb += int(line.split()[1])
        return workers, rss_kb / 1024

    def run(self) -> None:
        while not self._halt.is_set():
            workers, rss_mb = self.sample()
            self.peak_workers = max(self.peak_workers, workers)
            self.peak_rss_mb = max(self.peak_rss_mb, rss_mb)
            self._halt.wait(self.every_s)

    def stop(self) -> None:
        self._halt.set()
        self.join(timeout=5)


def function_params(names: tuple[str, ...]) -> dict[str, str]:
    """The retry-budget params the Functions emulator runs with (functions/.env.local, else default)."""
    found: dict[str, str] = {}
    env_local = REPO / "functions" / ".env.local"
    for line in env_local.read_text().splitlines() if env_local.exists() else []:
        key, sep, value = line.partition("=")
        if sep and key.strip() in names:
            found.setdefault(key.strip(), value.strip())
    return {name: found.get(name, "default") for name in names}


def make_clips(folder: Path) -> list[bytes]:
    from speech import espeak_m4a

    return [espeak_m4a(text, folder / f"clip{i}.m4a") for i, text in enumerate(PHRASES)]


def watch(db, chat_id: str, sent: list[Sent], deadline: float, poll_s: float) -> None:
    """Poll Firestore (batched admin reads) until every message is final or the deadline passes."""
    refs = {s.message_id: db.document(f"chats/{chat_id}/messages/{s.message_id}") for s in sent}
    by_id = {s.message_id: s for s in sent}
    while time.monotonic() < deadline:
        pending = [
            refs[s.message_id] for s in sent if s.final_at is None and s.upload_error is None and s.uploaded
        ]
        waiting_uploads = any(s.uploaded is None and s.upload_error is None for s in sent)
        if not pending and not waiting_uploads:
            return
        for snapshot in db.get_all(pending) if pending else []:
            data = snapshot.to_dict() if snapshot.exists else None
            if data and data.get("status") in FINAL:
                item = by_id[snapshot.id]
                item.final_at = time.monotonic()
                item.status = data["status"]
                item.error_code = (data.get("error") or {}).get("code")
                item.total_ms = (data.get("timings") or {}).get("totalMs")
        time.sleep(poll_s)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=100)
    parser.add_argument("--threads", type=int, default=16)
    parser.add_argument("--deadline-s", type=float, default=600.0, help="after the last upload")
    parser.add_argument("--poll-s", type=float, default=0.25)
    args = parser.parse_args()

    if not os.environ.get("FIRESTORE_EMULATOR_HOST"):
        print('bench_load: needs the local stack: make exec CMD=".venv/bin/python bench/bench_load.py"')
        return 0

    from e2e_helpers import MINA, SEED_CHAT
    from google.cloud import firestore

    from local_stack.app_client import AppClient, StandIn

    db = firestore.Client(project=os.environ.get("GCLOUD_PROJECT", "demo-emochat"))
    with tempfile.TemporaryDirectory(prefix="bench-load-") as tmp, AppClient(timeout_s=120) as app:
        clips = make_clips(Path(tmp))
        app.sign_in(*MINA)
        print(
            f"bench_load: {args.messages} messages, {args.threads} client threads, "
            f"clips {min(map(len, clips)) // 1024}-{max(map(len, clips)) // 1024} KiB, {os.cpu_count()} CPUs"
        )

        params = function_params(
            ("STT_TIMEOUT_S", "STT_MAX_RETRIES", "STRESS_TIMEOUT_S", "STRESS_DEADLINE_S")
        )
        print("  function params: " + ", ".join(f"{k}={v}" for k, v in params.items()))
        if params["STT_TIMEOUT_S"].isdigit() and int(params["STT_TIMEOUT_S"]) < 60:
            print(
                "  note: short local retry budgets (the fault tests' values in functions/.env.local). The\n"
                "  local STT stand-in transcribes one clip at a time, so under this load its queue outlasts\n"
                "  a short timeout: expect stt_timeout failures. Comment those lines out for production's."
            )

        warm_start = time.monotonic()
        warm = app.send_voice_message(SEED_CHAT, clips[0], language="en")
        warm_doc = app.wait_for_message(SEED_CHAT, warm.message_id, timeout_s=300, admin=True).doc
        print(f"  warm-up message: {warm_doc['status']} in {time.monotonic() - warm_start:.1f} s")

        sent = [
            Sent(message_id=f"bench-{i:03d}-{os.urandom(4).hex()}", started=math.nan)
            for i in range(args.messages)
        ]

        def upload(index: int) -> None:
            item = sent[index]
            item.started = time.monotonic()
            try:
                app.send_voice_message(
                    SEED_CHAT, clips[index % len(clips)], language="en", message_id=item.message_id
                )
                item.uploaded = time.monotonic()
            except Exception as error:  # counted and reported, the run goes on
                item.upload_error = f"{type(error).__name__}: {error}"[:200]

        standins = {name: StandIn.of(name) for name in ("stt", "stress")}
        requests_before = {name: standin.request_count() for name, standin in standins.items()}
        sampler = WorkerSampler()
        sampler.start()
        began = time.monotonic()
        watcher = threading.Thread(
            target=watch, args=(db, SEED_CHAT, sent, began + 24 * 3600, args.poll_s), daemon=True
        )
        with ThreadPoolExecutor(max_workers=args.threads, thread_name_prefix="upload") as pool:
            watcher.start()
            list(pool.map(upload, range(args.messages)))
        uploads_done = time.monotonic()
        deadline = uploads_done + args.deadline_s
        # The watcher polls until everything is final; stop waiting for it at the deadline.
        watcher.join(timeout=max(0.0, deadline - time.monotonic()))
        sampler.stop()
        requests = {
            name: standin.request_count() - requests_before[name] for name, standin in standins.items()
        }

    report(sent, began, uploads_done, sampler, requests, args)
    return 0


def report(
    sent: list[Sent],
    began: float,
    uploads_done: float,
    sampler: WorkerSampler,
    requests: dict[str, int],
    args: argparse.Namespace,
) -> None:
    uploaded = [s for s in sent if s.uploaded is not None]
    final = [s for s in uploaded if s.final_at is not None]
    statuses = Counter(s.status for s in final)
    codes = Counter(s.error_code for s in final if s.error_code)
    lost = [s for s in uploaded if s.final_at is None]
    latency = [s.final_at - s.uploaded for s in final]
    ready_latency = [s.final_at - s.uploaded for s in final if s.status == "ready"]
    upload_s = [s.uploaded - s.started for s in uploaded]
    function_s = [s.total_ms / 1000 for s in final if s.total_ms is not None]
    last_final = max((s.final_at for s in final), default=began)
    span = last_final - began

    def stats(values: list[float]) -> str:
        if not values:
            return "n/a"
        return (
            f"p50 {percentile(values, 50):.1f} s · p95 {percentile(values, 95):.1f} s · "
            f"max {max(values):.1f} s · mean {statistics.fmean(values):.1f} s"
        )

    print(f"  uploads: {len(uploaded)}/{len(sent)} ok in {uploads_done - began:.1f} s ({stats(upload_s)})")
    for s in sent:
        if s.upload_error:
            print(f"    upload failed: {s.message_id}: {s.upload_error}")
    print(
        f"  final: {len(final)}/{len(uploaded)} — ready {statuses['ready']}, failed {statuses['failed']}, "
        f"rejected {statuses['rejected']}" + (f"; codes {dict(codes)}" if codes else "")
    )
    print(f"  upload→final (all):   {stats(latency)}")
    print(f"  upload→ready:         {stats(ready_latency)}")
    print(f"  function totalMs:     {stats(function_s)}")
    if final:
        print(
            f"  throughput: {len(final) / span:.2f} messages/s "
            f"({len(final)} final in {span:.1f} s from the first upload)"
        )
    print(
        f"  stand-in API requests answered by now: STT {requests['stt']}, stress {requests['stress']} "
        f"(for {len(uploaded)} messages: more means retries; abandoned ones may still be queued)"
    )
    print(
        f"  Functions emulator workers: peak {sampler.peak_workers} Python processes, "
        f"peak {sampler.peak_rss_mb:.0f} MiB RSS together"
    )
    print(f"  lost (not final {args.deadline_s:.0f} s after the last upload): {len(lost)}")
    for s in lost[:10]:
        print(f"    {s.message_id}")


if __name__ == "__main__":
    sys.exit(main())
