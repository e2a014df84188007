"""Helpers for the local API stand-in tests: a real server in a thread, and the fault admin API."""

from __future__ import annotations

import threading
import time
from typing import Any

import uvicorn

# tiny.en transcribes this espeak-ng sentence exactly (some pangrams come out garbled).
SPOKEN = "Please call me back this evening. The meeting is tomorrow morning."
SPOKEN_WORDS = ("please", "call", "back", "evening", "meeting", "tomorrow", "morning")


class ThreadedServer:
    """A real uvicorn server for ``app`` on 127.0.0.1, a free port, in a background thread."""

    def __init__(self, app: Any, startup_timeout: float = 60.0) -> None:
        config = uvicorn.Config(
            app, host="127.0.0.1", port=0, log_level="warning", lifespan="on", timeout_graceful_shutdown=1
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name="local-api-server", daemon=True)
        self.startup_timeout = startup_timeout
        self.base_url = ""

    def __enter__(self) -> ThreadedServer:
        self.thread.start()
        deadline = time.monotonic() + self.startup_timeout
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                self.__exit__(None, None, None)
                raise RuntimeError("local API server did not start")
            time.sleep(0.02)
        port = self.server.servers[0].sockets[0].getsockname()[1]
        self.base_url = f"http://127.0.0.1:{port}"
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=15)
