"""Run one local API stand-in with uvicorn.

    python -m local_stack.serve stt    --host 127.0.0.1 --port 8711 [--api-key K] [--model-path DIR]
    python -m local_stack.serve stress --host 127.0.0.1 --port 8712 [--model-dir DIR] [--warmup-seconds N]
    python -m local_stack.serve fcm    --host 127.0.0.1 --port 8713 [--allow-anonymous]

``--port 0`` picks a free port; the one startup line (``... listening on http://HOST:PORT ...``)
names the real one. SIGTERM and SIGINT shut down gracefully (in-flight requests get a few seconds)
and exit with status 0.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
from pathlib import Path
from types import FrameType
from typing import Annotated

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
LogLevel = Annotated[str, typer.Option(help="Python log level for the server and uvicorn.")]
AccessLog = Annotated[bool, typer.Option(help="Log every HTTP request.")]
GRACEFUL_SHUTDOWN_SECONDS = 3  # cuts short scripted delays still sleeping at shutdown


class _AnnouncingServer(uvicorn.Server):
    """A uvicorn server that logs its URL once, when its socket is bound."""

    def __init__(self, config: uvicorn.Config, label: str, api_path: str) -> None:
        super().__init__(config)
        self._label = label
        self._api_path = api_path

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.should_exit or not getattr(self, "servers", None):
            return
        host, port = self.servers[0].sockets[0].getsockname()[:2]
        log.info(
            "%s listening on http://%s:%d%s (pid %d)", self._label, host, port, self._api_path, os.getpid()
        )


def _exit_zero(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(0)


@cli.callback()
def _stop_cleanly_on_signals() -> None:
    """Runs before any command, so a stop requested while models load also exits 0."""
    # uvicorn handles SIGTERM/SIGINT itself while serving, then restores these handlers and re-raises
    # the signal; ending with SystemExit(0) makes a requested stop a clean exit, not "killed by signal".
    signal.signal(signal.SIGTERM, _exit_zero)
    signal.signal(signal.SIGINT, _exit_zero)


def _serve(
    app: object, *, label: str, api_path: str, host: str, port: int, log_level: str, access_log: bool
) -> None:
    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    config = uvicorn.Config(
        app,  # type: ignore[arg-type]
        host=host,
        port=port,
        # uvicorn's own startup chatter only when debugging: our one line names the URL
        log_level=log_level.lower() if log_level.lower() == "debug" else "warning",
        log_config=None,  # keep the root logging set up above
        access_log=access_log,
        lifespan="on",
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS,
    )
    if access_log:  # Config has just set uvicorn's loggers to the level above
        logging.getLogger("uvicorn.access").setLevel(logging.INFO)
    _AnnouncingServer(config, label, api_path).run()


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
    compute_type: Annotated[str, typer.Option(help="CTranslate2 compute type.")] = "int8",
    cpu_threads: Annotated[int, typer.Option(help="CPU threads for Whisper (0: library default).")] = 0,
    log_level: LogLevel = "info",
    access_log: AccessLog = False,
) -> None:
    """OpenAI-compatible transcription server (POST /v1/audio/transcriptions), faster-whisper."""
    from local_stack.stt_server import SttSettings, create_app

    settings = SttSettings(
        model_path=model_path, api_key=api_key, compute_type=compute_type, cpu_threads=cpu_threads
    )
    _serve(
        create_app(settings),
        label="stt (OpenAI transcriptions)",
        api_path="/v1",
        host=host,
        port=port,
        log_level=log_level,
        access_log=access_log,
    )


@cli.command()
def stress(
    host: Host = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port; 0 picks a free one.")] = DEFAULT_STRESS_PORT,
    model_dir: Annotated[Path | None, typer.Option(help="Checkpoint dir given to EndpointHandler.")] = None,
    package_dir: Annotated[
        Path | None, typer.Option(help="Dir holding the stress_model package (put on sys.path).")
    ] = None,
    token: Annotated[
        str | None,
        typer.Option(envvar="EMOCHAT_STRESS_TOKEN", help="Require this bearer token (default: none)."),
    ] = None,
    warmup_seconds: Annotated[
        float, typer.Option(help="Answer 503 'currently loading' for this long after start.")
    ] = 0.0,
    log_level: LogLevel = "info",
    access_log: AccessLog = False,
) -> None:
    """Hugging Face Inference Endpoint stand-in hosting stress_model's EndpointHandler (POST /)."""
    from local_stack.stress_server import DEFAULT_MODEL_DIR, DEFAULT_PACKAGE_DIR, StressSettings, create_app

    settings = StressSettings(
        model_dir=(model_dir or DEFAULT_MODEL_DIR).resolve(),
        package_dir=(package_dir or DEFAULT_PACKAGE_DIR).resolve(),
        token=token,
        warmup_seconds=warmup_seconds,
    )
    if not settings.model_dir.is_dir():
        raise typer.BadParameter(f"no checkpoint directory at {settings.model_dir}", param_hint="--model-dir")
    _serve(
        create_app(settings),
        label="stress (HF endpoint; GET /health for readiness)",
        api_path="/",
        host=host,
        port=port,
        log_level=log_level,
        access_log=access_log,
    )


@cli.command()
def fcm(
    host: Host = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port; 0 picks a free one.")] = DEFAULT_FCM_PORT,
    allow_anonymous: Annotated[bool, typer.Option(help="Accept sends without a bearer token.")] = False,
    log_level: LogLevel = "info",
    access_log: AccessLog = False,
) -> None:
    """FCM HTTP v1 stand-in (POST /v1/projects/{project}/messages:send; GET /_emochat/sent)."""
    from local_stack.fcm_server import FcmSettings, create_app

    _serve(
        create_app(FcmSettings(allow_anonymous=allow_anonymous)),
        label="fcm (FCM HTTP v1)",
        api_path="",
        host=host,
        port=port,
        log_level=log_level,
        access_log=access_log,
    )


if __name__ == "__main__":
    cli()
