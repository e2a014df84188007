"""`python -m local_stack.serve {stt,stress,fcm} [--host H] [--port N]`: one stand-in under uvicorn.

`--port 0` picks a free port; one startup line (`NAME listening on http://HOST:PORT`) names the real
one. SIGTERM and SIGINT stop it gracefully, with exit status 0.
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

log = logging.getLogger("local_stack.serve")
cli = typer.Typer(add_completion=False, no_args_is_help=True, help="Run one local API stand-in.")
Host = Annotated[str, typer.Option(help="Interface to bind.")]
Port = Annotated[int, typer.Option(help="Port; 0 picks a free one.")]


class _AnnouncingServer(uvicorn.Server):
    async def startup(self, sockets: Any = None) -> None:
        await super().startup(sockets)
        if not self.should_exit and getattr(self, "servers", None):
            host, port = self.servers[0].sockets[0].getsockname()[:2]
            log.info("%s listening on http://%s:%d (pid %d)", sys.argv[1], host, port, os.getpid())


@cli.callback()
def _stop_cleanly_on_signals() -> None:
    # Before any command, so a stop while a model loads exits 0 too. uvicorn handles the signals
    # while serving, then restores these handlers and re-raises: a requested stop is a clean exit.
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: sys.exit(0))


def _serve(app: Any, host: str, port: int) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # Graceful shutdown cut at 3 s, which also ends scripted delays still sleeping.
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level="warning",
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=3,
    )
    _AnnouncingServer(config).run()


@cli.command()
def stt(
    host: Host = "127.0.0.1",
    port: Port = STANDINS["stt"][1],
    api_key: Annotated[
        str | None, typer.Option(envvar="EMOCHAT_STT_API_KEY", help="Require this key.")
    ] = None,
    model_path: Annotated[
        str | None, typer.Option(envvar="EMOCHAT_STT_MODEL_PATH", help="Whisper dir.")
    ] = None,
) -> None:
    """OpenAI transcription stand-in (POST /v1/audio/transcriptions) on faster-whisper."""
    from local_stack.stt_server import SttSettings, create_app

    _serve(create_app(SttSettings(model_path=model_path, api_key=api_key)), host, port)


@cli.command()
def stress(
    host: Host = "127.0.0.1",
    port: Port = STANDINS["stress"][1],
    model_dir: Annotated[Path | None, typer.Option(help="Checkpoint dir for EndpointHandler.")] = None,
    token: Annotated[str | None, typer.Option(envvar="EMOCHAT_STRESS_TOKEN", help="Require it.")] = None,
    warmup_seconds: Annotated[float, typer.Option(help="Answer 503 'loading' this long.")] = 0.0,
) -> None:
    """Hugging Face Inference Endpoint stand-in hosting stress_model's EndpointHandler (POST /)."""
    from local_stack.stress_server import DEFAULT_MODEL_DIR, StressSettings, create_app

    model_dir = (model_dir or DEFAULT_MODEL_DIR).resolve()
    if not model_dir.is_dir():
        raise typer.BadParameter(f"no checkpoint directory at {model_dir}", param_hint="--model-dir")
    _serve(create_app(StressSettings(model_dir, token=token, warmup_seconds=warmup_seconds)), host, port)


@cli.command()
def fcm(
    host: Host = "127.0.0.1",
    port: Port = STANDINS["fcm"][1],
    allow_anonymous: Annotated[bool, typer.Option(help="Accept sends without a bearer token.")] = False,
) -> None:
    """FCM HTTP v1 stand-in (POST /v1/projects/{project}/messages:send)."""
    from local_stack.fcm_server import create_app

    _serve(create_app(allow_anonymous=allow_anonymous), host, port)


if __name__ == "__main__":
    cli()
