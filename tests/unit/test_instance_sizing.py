"""process_voice_message's instance size as declared to Firebase, against the memory it was sized on
(the figures in emochat.config come from bench/bench_decode_memory.py, which prints them)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from emochat import config

FUNCTIONS = Path(__file__).resolve().parents[2] / "functions"


def declared_voice_endpoint() -> dict:
    probe = (
        "import json, main\n"
        "e = main.process_voice_message.__firebase_endpoint__\n"
        "print(json.dumps({'memory': e.availableMemoryMb, 'cpu': e.cpu, 'concurrency': e.concurrency,"
        " 'maxInstances': e.maxInstances}))"
    )
    firebase_config = json.dumps({"projectId": "demo-sizing", "storageBucket": "demo-sizing.appspot.com"})
    run = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=FUNCTIONS,
        env={**os.environ, "FIREBASE_CONFIG": firebase_config},
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return json.loads(run.stdout.strip().splitlines()[-1])


def test_the_voice_trigger_declares_its_size_explicitly() -> None:
    declared = declared_voice_endpoint()
    assert declared["memory"] == config.VOICE_MEMORY.value
    assert declared["concurrency"] == config.VOICE_CONCURRENCY > 1
    # Cloud Run refuses concurrency > 1 below one vCPU (1 GiB alone gets 0.583).
    assert declared["cpu"] == config.VOICE_CPU >= 1
    assert declared["maxInstances"] == "{{ params.MAX_VOICE_INSTANCES }}"


def test_the_worst_accepted_messages_fit_beside_the_baseline_and_headroom() -> None:
    in_flight = config.VOICE_CONCURRENCY * config.WORST_MESSAGE_MIB
    budget = config.VOICE_MEMORY.value * (1 - config.INSTANCE_HEADROOM)
    assert config.INSTANCE_BASELINE_MIB + in_flight <= budget
    # ... and one more would not: the concurrency is the most that fits, not an arbitrary lower number.
    assert config.INSTANCE_BASELINE_MIB + in_flight + config.WORST_MESSAGE_MIB > budget
