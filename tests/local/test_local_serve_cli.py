"""``python -m local_stack serve`` as the stack runner uses it: one URL line, clean stop on signals."""

from __future__ import annotations

import queue
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
URL_LINE = re.compile(r"Uvicorn running on (http://127\.0\.0\.1:\d+)")


@contextmanager
def serve(*args: str) -> Iterator[tuple[subprocess.Popen[str], str]]:
    """Start the CLI, wait for its URL line; the process never outlives the block."""
    process = subprocess.Popen(
        [sys.executable, "-m", "local_stack", "serve", *args],
        cwd=REPO_ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in process.stderr], daemon=True).start()  # type: ignore[union-attr]
    try:
        deadline = time.monotonic() + 30
        while (match := URL_LINE.search(lines.get(timeout=max(deadline - time.monotonic(), 0.1)))) is None:
            pass
        yield process, match.group(1)
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=10)


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_fcm_server_starts_on_a_free_port_and_stops_cleanly(stop_signal: signal.Signals) -> None:
    with serve("fcm", "--host", "127.0.0.1", "--port", "0") as (process, url):
        assert httpx.get(f"{url}/health").json() == {"status": "ok"}
        process.send_signal(stop_signal)
        assert process.wait(timeout=10) == 0


def test_stress_server_refuses_a_missing_checkpoint(tmp_path: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "local_stack",
            "serve",
            "stress",
            "--port",
            "0",
            "--model-dir",
            str(tmp_path / "none"),
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert "no checkpoint directory" in result.stderr
