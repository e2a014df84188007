"""`python -m local_stack.serve {stt,stress,fcm} [--host H] [--port N] [--model-dir D]`: one stand-in
under uvicorn. `--port 0` picks a free port; a startup line (`NAME listening on http://HOST:PORT`) names
the real one. SIGTERM and SIGINT stop it gracefully, with exit status 0.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
import uvicorn

from local_stack import STANDINS


class _AnnouncingServer(uvicorn.Server):
    async def startup(self, sockets: Any = None) -> None:
        await super().startup(sockets)
        if not self.should_exit and getattr(self, "servers", None):
            host, port = self.servers[0].sockets[0].getsockname()[:2]
            logging.getLogger("local_stack.serve").info(
                "%s listening on http://%s:%d (pid %d)", sys.argv[1], host, port, os.getpid()
            )


def serve(
    name: Annotated[str, typer.Argument(help=f"One of {', '.join(STANDINS)}.")],
    host: Annotated[str, typer.Option(help="Interface to bind.")] = "127.0.0.1",
    port: Annotated[int | None, typer.Option(help="Port (default: the stack's); 0 picks a free one.")] = None,
    model_dir: Annotated[
        Path | None, typer.Option(help="stress: checkpoint dir for EndpointHandler.")
    ] = None,
) -> None:
    """Run one local API stand-in: stt (OpenAI transcription on faster-whisper), stress (a Hugging Face
    endpoint hosting stress_model's EndpointHandler), fcm (FCM HTTP v1)."""
    # Set before a model loads, so a stop meanwhile exits 0 too. uvicorn handles the signals while
    # serving, then restores these handlers and re-raises: a requested stop is a clean exit.
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: sys.exit(0))
    if name == "stt":
        from local_stack.stt_server import create_app

        app = create_app()
    elif name == "stress":
        from local_stack.stress_server import DEFAULT_MODEL_DIR, StressSettings, create_app

        model_dir = (model_dir or DEFAULT_MODEL_DIR).resolve()
        if not model_dir.is_dir():
            raise typer.BadParameter(f"no checkpoint directory at {model_dir}", param_hint="--model-dir")
        app = create_app(StressSettings(model_dir))
    elif name == "fcm":
        from local_stack.fcm_server import create_app

        app = create_app()
    else:
        raise typer.BadParameter(f"unknown stand-in {name!r}", param_hint="NAME")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # Graceful shutdown cut at 3 s, which also ends scripted delays still sleeping.
    port = STANDINS[name][1] if port is None else port
    config = uvicorn.Config(app, host=host, port=port, log_level="warning", log_config=None,
                            access_log=False, timeout_graceful_shutdown=3)  # fmt: skip
    _AnnouncingServer(config).run()


if __name__ == "__main__":
    typer.run(serve)
