"""`python -m local_stack ...`: the local stack's command line (typer)."""

from __future__ import annotations

import contextlib
import importlib
import json
import logging
import os
import re
import shlex
import shutil
import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

import typer

from local_stack import HOST, STANDINS, stack
from local_stack.stack import REPO, StackOptions, console

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="EmoChat local stack: Firebase emulators + API stand-ins, offline. See also the Makefile.",
)

ImportOpt = Annotated[
    bool, typer.Option("--seed/--no-seed", help="Start with emulator-data/export imported.")
]
WaitOpt = Annotated[
    float,
    typer.Option(envvar="LOCAL_STACK_WAIT", help="Seconds to wait for another local stack here to finish."),
]


@contextlib.contextmanager
def _exit_codes() -> Iterator[None]:
    """StackError → its message and exit 1; Ctrl-C → 130; SIGTERM/SIGHUP → 143."""
    try:
        yield
    except stack.StackError as error:
        console.print(f"[bold red]local stack: {error}[/]")
        raise typer.Exit(1) from None
    except KeyboardInterrupt as interrupt:
        raise typer.Exit(143 if isinstance(interrupt, stack.Terminated) else 130) from None


@app.command()
def emulators(seed: ImportOpt = True, wait: WaitOpt = 600.0) -> None:
    """Run the stack in the foreground (for the Expo app and manual work) until Ctrl-C."""
    options = StackOptions(import_seed=seed, wait_s=wait, foreground=True)
    # Ctrl-C (or SIGTERM) is how this command ends: a clean stop, exit 0.
    with (
        _exit_codes(),
        contextlib.suppress(KeyboardInterrupt),
        stack.running_stack(options) as (running, info),
    ):
        stack.print_connection_info(info)
        stack.storage_rules_warning(info)  # again: firebase's output has scrolled the first one away
        console.print("[bold green]Stack is up.[/] Ctrl-C stops everything.")
        assert running.firebase
        while running.firebase.poll() is None:
            time.sleep(0.5)
        console.print(f"[red]the firebase CLI exited ({running.firebase.returncode})[/]")
        raise typer.Exit(1)


@app.command("exec")
def exec_(
    cmd: Annotated[list[str], typer.Argument(help="Command; one argument is run with bash -c.")],
    seed: ImportOpt = True,
    wait: WaitOpt = 600.0,
) -> None:
    """Run CMD with the whole stack up and the emulator variables set; exit with CMD's code."""
    argv = ["bash", "-c", cmd[0]] if len(cmd) == 1 and re.search(r"[\s;&|<>$`'\"]", cmd[0]) else cmd
    with _exit_codes(), stack.running_stack(StackOptions(import_seed=seed, wait_s=wait)) as (_stack, info):
        console.print(f"[green]stack ready in {info.started_in_s:.1f} s[/]; running: {shlex.join(argv)}")
        code = stack.run_command(argv, info.env)
    raise typer.Exit(code)


def _stop_means_exit_0() -> None:
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: sys.exit(0))


@app.command(hidden=True)
def hold() -> None:
    """firebase emulators:exec's script: hand its environment to the stack, then wait to be stopped."""
    tmp = stack.ENV_FILE.with_suffix(".tmp")
    tmp.write_text(json.dumps({"pid": os.getpid(), "env": dict(os.environ)}))
    tmp.replace(stack.ENV_FILE)
    _stop_means_exit_0()
    while True:
        signal.pause()


@app.command(hidden=True)
def serve(
    name: Annotated[str, typer.Argument(help=f"One of {', '.join(STANDINS)}.")],
    host: Annotated[str, typer.Option(help="Interface to bind.")] = HOST,
    port: Annotated[int | None, typer.Option(help="Default: the stack's; 0 picks a free one.")] = None,
    model_dir: Annotated[Path | None, typer.Option(help="stress: the checkpoint directory.")] = None,
) -> None:
    """One API stand-in under uvicorn: stt (OpenAI transcription on faster-whisper), stress (a Hugging
    Face endpoint hosting stress_model's EndpointHandler), fcm (FCM HTTP v1). Logs uvicorn's `Uvicorn
    running on URL` once it serves; SIGTERM and SIGINT stop it gracefully, with exit status 0."""
    _stop_means_exit_0()  # before a model loads; while serving, uvicorn handles them and re-raises
    if name not in STANDINS:
        raise typer.BadParameter(f"unknown stand-in {name!r}", param_hint="NAME")
    server = importlib.import_module(f"local_stack.{name}_server")
    if name == "stress":
        model_dir = (model_dir or server.DEFAULT_MODEL_DIR).resolve()
        if not model_dir.is_dir():
            raise typer.BadParameter(f"no checkpoint directory at {model_dir}", param_hint="--model-dir")
        api = server.create_app(server.StressSettings(model_dir))
    else:
        api = server.create_app()
    import uvicorn

    # uvicorn's info log names the bound URL ("Uvicorn running on http://...", the real port for 0).
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # The graceful shutdown is cut at 3 s, which also ends scripted delays still sleeping.
    port = STANDINS[name][1] if port is None else port
    config = uvicorn.Config(api, host=host, port=port, log_level="info", log_config=None,
                            access_log=False, timeout_graceful_shutdown=3)  # fmt: skip
    uvicorn.Server(config).run()


@app.command()
def demo(
    alert: Annotated[
        bool, typer.Option(help="Also send the stressed sample: the high-stress alert path.")
    ] = True,
    wait: WaitOpt = 600.0,
) -> None:
    """Start the stack, send a voice message as the app would, print the result, stop everything."""
    from local_stack.demo import run_demo

    with _exit_codes():
        code = run_demo(alert=alert, options=StackOptions(wait_s=wait))
    raise typer.Exit(code)


@app.command("seed-export")
def seed_export(wait: WaitOpt = 600.0) -> None:
    """Rebuild emulator-data/export from emulator-data/seed.json (firebase's --export-on-exit)."""
    from local_stack.app_client import AppClient

    seed, tmp = stack.load_seed(), stack.BUILD_DIR / f"export-{os.getpid()}"
    options = StackOptions(
        ("auth", "firestore", "storage"), import_seed=False, export_on_exit=tmp, standins=(), wait_s=wait
    )
    with (
        _exit_codes(),
        stack.running_stack(options) as (_stack, info),
        AppClient(info.env) as client,
    ):
        for user in seed["auth"]:
            account = {key: user[key] for key in ("uid", "email", "password")}
            client.create_user(**account, display_name=user.get("displayName"))
        for path, data in seed["firestore"].items():
            client.set_doc(path, data, admin=True)
    if not (tmp / "firebase-export-metadata.json").exists():
        console.print(f"[bold red]local stack: firebase wrote no export to {tmp}[/]")
        raise typer.Exit(1)
    shutil.rmtree(stack.EXPORT_DIR, ignore_errors=True)
    shutil.move(tmp, stack.EXPORT_DIR)
    stack.SEED_HASH_FILE.write_text(stack.seed_hash() + "\n")
    console.print(
        f"[green]wrote {stack.EXPORT_DIR.relative_to(REPO)} from {stack.SEED_FILE.relative_to(REPO)}[/]"
    )


def main() -> None:
    app()
