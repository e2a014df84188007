"""Cold-start cost of the functions codebase: import time and peak memory of functions/main.py.

Runs in functions/venv (what the Functions runtime has, no torch) in a fresh interpreter per
sample, with the remote backends wired (OpenAI client, httpx, Firestore and Storage clients built).
Printed, not asserted.

    functions/venv/bin/python bench/bench_import.py [--runs 5]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PROBE = """
import json, resource, sys, time
t0 = time.perf_counter()
import main
t1 = time.perf_counter()
from emochat import wiring
wiring.voice_services()
t2 = time.perf_counter()
print(json.dumps({"import_s": t1 - t0, "wire_s": t2 - t1,
                  "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "torch_loaded": "torch" in sys.modules}))
"""


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    python = ROOT / "functions" / "venv" / "bin" / "python"
    env = {
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
    samples = []
    for _ in range(args.runs):
        out = subprocess.run(
            [str(python), "-c", PROBE],
            cwd=ROOT / "functions",
            env=env,
            check=True,
            capture_output=True,
            text=True,
        )
        samples.append(json.loads(out.stdout.strip().splitlines()[-1]))
    med = {k: statistics.median(s[k] for s in samples) for k in ("import_s", "wire_s", "peak_rss_mib")}
    print(f"functions/main.py cold start over {args.runs} fresh interpreters (median):")
    print(f"  import main            {med['import_s'] * 1000:7.0f} ms")
    print(f"  wire remote backends   {med['wire_s'] * 1000:7.0f} ms")
    print(f"  peak RSS               {med['peak_rss_mib']:7.1f} MiB")
    print(f"  torch imported         {any(s['torch_loaded'] for s in samples)}")


if __name__ == "__main__":
    sys.exit(main())
