"""Cold start of the voice path: import of functions/main.py plus wiring of the remote backends,
before and after the lazy wiring, side by side in one run; then where the time goes.

Runs in functions/venv (what the Functions runtime has, no torch), every sample in a fresh
interpreter, the "before" and "after" samples interleaved so both see the same machine load:

- after:  this tree's functions/;
- before: functions/ of BEFORE_REV (main as merged into this branch, the last eager wiring: every
  feature's adapters imported by emochat.wiring, the OpenAI client on its own HTTP stack), extracted
  with `git archive` into a temporary folder and run with the same interpreter and environment.

Each sample times, from a fresh interpreter: the firebase_functions SDK (what any main.py declaring
these triggers pays), the rest of `import main`, what the trigger imports on its first event
(`emochat.wiring`, `emochat.pipeline.service`), and `wiring.voice_services()` — the first voice
event's critical path ends there. The lazy wiring builds the HTTP, OpenAI and Storage clients and
imports the decoder (PyAV, numpy) on background threads that overlap the event's first Firestore
round trips; the last row waits for them too (the whole cost, paid or hidden). Wall and CPU time (user +
sys of the process) are both printed: on a loaded shared machine wall time swells with the load.

Printed, not asserted.   functions/venv/bin/python bench/bench_import.py [--runs 7] [--before REV]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
from io import BytesIO
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PYTHON = ROOT / "functions" / "venv" / "bin" / "python"
BEFORE_REV = "6bcee18be41f56cb167b54fecb3d7b8d790eea64"

# One fresh interpreter: timestamps (wall, cpu) after each step of the first voice event's cold path.
PROBE = """
import json, resource, sys, time
def now():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return time.perf_counter(), r.ru_utime + r.ru_stime
marks = [now()]
import firebase_functions.storage_fn, firebase_functions.firestore_fn
import firebase_functions.https_fn, firebase_functions.scheduler_fn
marks.append(now())
import main
marks.append(now())
from emochat import wiring
from emochat.pipeline.service import Upload, process_upload  # what the trigger imports
marks.append(now())
services = wiring.voice_services()
marks.append(now())
critical = sorted(m for m in ("openai", "google.cloud.storage", "emochat.alerts.adapters.fcm_notifier",
                              "firebase_admin.messaging", "av", "numpy") if m in sys.modules)
for port in (services.transcriber, services.stress_scorer, services.audio_store):
    built = getattr(port, "_built", None)
    if built is not None:
        built.result()
import emochat.pipeline.audio  # the decoder, imported in the background (waits for that import)
marks.append(now())
print(json.dumps({"marks": marks, "loaded_on_critical_path": critical,
                  "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "torch_loaded": "torch" in sys.modules}))
"""
STEPS = (
    "firebase_functions SDK",
    "rest of import main",
    "import wiring, pipeline.service",
    "voice_services()",
)

# Components, each timed alone in a fresh interpreter after its prerequisites (this tree's venv).
SDK = "import firebase_functions.storage_fn, firebase_functions.firestore_fn, firebase_functions.https_fn"
COMPONENTS = {
    "firebase_functions SDK (floor)": ("", SDK),
    "rest of import main (firebase_admin default app)": (SDK, "import main"),
    "emochat.pipeline.service": (f"{SDK}; import main", "import emochat.pipeline.service"),
    "emochat.pipeline.audio (PyAV, numpy)": (
        f"{SDK}; import main; import emochat.pipeline.service",
        "import emochat.pipeline.audio",
    ),
    "import openai": (f"{SDK}; import main", "import openai"),
    "openai.OpenAI() on its own httpx2 stack": (
        f"{SDK}; import main; import openai",
        "openai.OpenAI(api_key='k', base_url='http://127.0.0.1:8711/v1', timeout=60, max_retries=2)",
    ),
    "openai.OpenAI(http_client=shared)": (
        f"{SDK}; import main; import openai, httpx; shared = httpx.Client()",
        "openai.OpenAI(api_key='k', timeout=60, max_retries=2, http_client=shared)",
    ),
    "httpx.Client() (TLS context)": (f"{SDK}; import main; import httpx", "httpx.Client(timeout=30)"),
    "google.cloud.storage + storage.Client()": (
        f"{SDK}; import main",
        "from google.cloud import storage; storage.Client()",
    ),
    "firestore.Client()": (f"{SDK}; import main; from google.cloud import firestore", "firestore.Client()"),
    "other features' adapters (alerts, suggestions, trends, accounts, rate limits)": (
        f"{SDK}; import main; import emochat.pipeline.service, emochat.pipeline.audio",
        "import emochat.alerts.adapters.fcm_notifier, emochat.alerts.adapters.firestore_store, "
        "emochat.suggestions.adapters.firestore_store, emochat.trends.adapters.firestore_store, "
        "emochat.accounts.adapters.firebase_accounts, emochat.accounts.adapters.firestore_store, "
        "emochat.accounts.adapters.voice_objects, emochat.ratelimit.adapters.firestore_store",
    ),
}
COMPONENT_PROBE = """
import json, resource, time
def now():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return time.perf_counter(), r.ru_utime + r.ru_stime
{pre}
t0, c0 = now()
{step}
t1, c1 = now()
print(json.dumps({{"wall": t1 - t0, "cpu": c1 - c0}}))
"""


def environment() -> dict[str, str]:
    return {
        **os.environ,
        "FIREBASE_CONFIG": json.dumps(
            {"projectId": "demo-emochat", "storageBucket": "demo-emochat.appspot.com"}
        ),
        "GCLOUD_PROJECT": "demo-emochat",
        "FIRESTORE_EMULATOR_HOST": os.environ.get("FIRESTORE_EMULATOR_HOST", "127.0.0.1:8080"),
        "STORAGE_EMULATOR_HOST": os.environ.get("STORAGE_EMULATOR_HOST", "http://127.0.0.1:9199"),
        "OPENAI_API_KEY": "bench-not-a-key",
        "STRESS_ENDPOINT_URL": "http://127.0.0.1:8712",
        "METADATA_SERVER_DETECTION": "none",
    }


def run_probe(code: str, functions_dir: Path) -> dict:
    out = subprocess.run(
        [str(PYTHON), "-c", code],
        cwd=functions_dir,
        env=environment(),
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def extract_functions(rev: str, into: Path) -> Path:
    archive = subprocess.run(
        ["git", "archive", rev, "functions"], cwd=ROOT, check=True, capture_output=True
    ).stdout
    with tarfile.open(fileobj=BytesIO(archive)) as tar:
        tar.extractall(into, filter="data")
    return into / "functions"


def cold_path(sample: dict) -> dict[str, tuple[float, float]]:
    """ms (wall, cpu) per step, the critical path's total and the total with background builds."""
    marks = sample["marks"]
    steps = {
        name: ((b[0] - a[0]) * 1000, (b[1] - a[1]) * 1000)
        for name, a, b in zip(STEPS, marks, marks[1:], strict=False)
    }
    critical, done = marks[len(STEPS)], marks[-1]
    steps["import + wiring: the first event's critical path"] = (
        (critical[0] - marks[0][0]) * 1000,
        (critical[1] - marks[0][1]) * 1000,
    )
    steps["... and until the background builds are done"] = (
        (done[0] - marks[0][0]) * 1000,
        (done[1] - marks[0][1]) * 1000,
    )
    return steps


def median_steps(samples: list[dict]) -> dict[str, tuple[float, float]]:
    per = [cold_path(s) for s in samples]
    return {
        k: (statistics.median(p[k][0] for p in per), statistics.median(p[k][1] for p in per)) for k in per[0]
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--before", default=BEFORE_REV, help="revision whose functions/ is the baseline")
    parser.add_argument("--no-components", action="store_true")
    args = parser.parse_args()
    load_start = os.getloadavg()[0]
    samples: dict[str, list[dict]] = {"before": [], "after": []}
    with tempfile.TemporaryDirectory() as folder:
        trees = {"before": extract_functions(args.before, Path(folder)), "after": ROOT / "functions"}
        for _ in range(args.runs):
            for name, tree in trees.items():
                samples[name].append(run_probe(PROBE, tree))
    before, after = median_steps(samples["before"]), median_steps(samples["after"])

    print(
        f"Cold start of the voice path, median of {args.runs} fresh interpreters each, interleaved "
        f"(load average {load_start:.1f} at start, {os.getloadavg()[0]:.1f} at end, "
        f"{os.cpu_count()} cores)."
    )
    print(f"before: functions/ at {args.before[:10]} (eager wiring); after: this tree.\n")
    width = max(len(k) for k in before)
    print(f"{'step':<{width}}  {'before ms':>10} {'after ms':>9}  {'before CPU':>10} {'after CPU':>9}")
    for key in before:
        (bw, bc), (aw, ac) = before[key], after[key]
        print(f"{key:<{width}}  {bw:10.0f} {aw:9.0f}  {bc:10.0f} {ac:9.0f}")
    for name in ("before", "after"):
        s = samples[name]
        print(
            f"{name}: peak RSS {statistics.median(x['peak_rss_mib'] for x in s):.0f} MiB; "
            f"torch imported: {any(x['torch_loaded'] for x in s)}; "
            f"loaded when voice_services() returns: {', '.join(s[0]['loaded_on_critical_path']) or '-'}"
        )

    if args.no_components:
        return
    print(f"\nWhere the time goes (each alone in a fresh interpreter, median of {args.runs}):")
    rows: dict[str, list[dict]] = {k: [] for k in COMPONENTS}
    for _ in range(args.runs):
        for key, (pre, step) in COMPONENTS.items():
            rows[key].append(run_probe(COMPONENT_PROBE.format(pre=pre, step=step), ROOT / "functions"))
    width = max(len(k) for k in rows)
    print(f"{'component':<{width}}  {'wall ms':>8} {'CPU ms':>7}")
    for key, values in rows.items():
        wall = statistics.median(v["wall"] for v in values) * 1000
        cpu = statistics.median(v["cpu"] for v in values) * 1000
        print(f"{key:<{width}}  {wall:8.0f} {cpu:7.0f}")


if __name__ == "__main__":
    sys.exit(main())
