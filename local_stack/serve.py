"""Run one local API stand-in with uvicorn.

    python -m local_stack.serve stt    [--host H] [--port 8711] [--api-key K] [--model-path DIR]
    python -m local_stack.serve stress [--host H] [--port 8712] [--model-dir DIR] [--warmup-seconds N]
    python -m local_stack.serve fcm    [--host H] [--port 8713] [--allow-anonymous]

``--port 0`` picks a free port; the one startup line (``... listening on http://HOST:PORT ...``)
names the real one. SIGTERM and SIGINT shut down gracefully (in-flight requests get a few seconds)
and exit with status 0.
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

from local_stack import DEFAULT_FCM_PORT, DEFAULT_STRESS_PORT, DEFAULT_STT_PORT

log = logging.getLogger("local_stack.serve")
cli = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Run one local API stand-in (stt, stress or fcm) with uvicorn; SIGTERM/SIGINT stop it cleanly.",
)
Host = Annotated[str, typer.Option(help="Interface to bind.")]


class _AnnouncingServer(uvicorn.Server):
    """A uvicorn server that logs its URL once, when its socket is bound."""

    async def startup(self, sockets: Any = None) -> None:
        await super().startup(sockets)
        if not self.should_exit and getattr(self, "servers", None):
            host, port = self.servers[0].sockets[0].getsockname()[:2]
            log.info("%s listening on http://%s:%d (pid %d)", sys.argv[1], host, port, os.getpid())


@cli.callback()
def _stop_cleanly_on_signals() -> None:
    """Runs before any command, so a stop requested while models load also exits 0."""
    # uvicorn handles SIGTERM/SIGINT itself while serving, then restores these handlers and re-raises
    # the signal; ending with SystemExit(0) makes a requested stop a clean exit, not "killed by signal".
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: sys.exit(0))


def _serve(app: object, host: str, port: int) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # uvicorn's own startup chatter off (our one line names the URL); graceful shutdown cut at 3 s,
    # which also ends scripted delays still sleeping.
    config = uvicorn.Config(
        app,  # type: ignore[arg-type]
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
    port: Annotated[int, typer.Option(help="Port; 0 picks a free one.")] = DEFAULT_STT_PORT,
    api_key: Annotated[
        str | None, typer.Option(envvar="EMOCHAT_STT_API_KEY", help="Require this bearer key (default: any).")
    ] = None,
    model_path: Annotated[
        str | None,
        typer.Option(
            envvar="EMOCHAT_STT_MODEL_PATH", help="CTranslate2 Whisper model dir (default: tiny.en)."
        ),
    ] = None,
) -> None:
    """OpenAI-compatible transcription server (POST /v1/audio/transcriptions), faster-whisper."""
    from local_stack.stt_server import SttSettings, create_app

    _serve(create_app(SttSettings(model_path=model_path, api_key=api_key)), host, port)


@cli.command()
def stress(
    host: Host = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port; 0 picks a free one.")] = DEFAULT_STRESS_PORT,
    model_dir: Annotated[Path | None, typer.Option(help="Checkpoint dir given to EndpointHandler.")] = None,
    token: Annotated[
        str | None,
        typer.Option(envvar="EMOCHAT_STRESS_TOKEN", help="Require this bearer token (default: none)."),
    ] = None,
    warmup_seconds: Annotated[
        float, typer.Option(help="Answer 503 'currently loading' for this long after start.")
    ] = 0.0,
) -> None:
    """Hugging Face Inference Endpoint stand-in hosting stress_model's EndpointHandler (POST /)."""
    from local_stack.stress_server import DEFAULT_MODEL_DIR, StressSettings, create_app

    settings = StressSettings(
        model_dir=(model_dir or DEFAULT_MODEL_DIR).resolve(), token=token, warmup_seconds=warmup_seconds
    )
    if not settings.model_dir.is_dir():
        raise typer.BadParameter(f"no checkpoint directory at {settings.model_dir}", param_hint="--model-dir")
    _serve(create_app(settings), host, port)


@cli.command()
def fcm(
    host: Host = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port; 0 picks a free one.")] = DEFAULT_FCM_PORT,
    allow_anonymous: Annotated[bool, typer.Option(help="Accept sends without a bearer token.")] = False,
) -> None:
    """FCM HTTP v1 stand-in (POST /v1/projects/{project}/messages:send; GET /_emochat/sent)."""
    from local_stack.fcm_server import FcmSettings, create_app

    _serve(create_app(FcmSettings(allow_anonymous=allow_anonymous)), host, port)


if __name__ == "__main__":
    cli()
