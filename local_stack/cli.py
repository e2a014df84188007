"""`python -m local_stack ...`: the local stack's command line (typer)."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shlex
import shutil
import signal
import sys
import time
from collections.abc import Iterator
from typing import Annotated, Any

import typer

from local_stack import STANDINS, stack
from local_stack.stack import REPO, StackOptions, console

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="EmoChat local stack: Firebase emulators + API stand-ins, offline. See also the Makefile.",
)

StandinsOpt = Annotated[bool, typer.Option("--standins/--no-standins", help="Start the API stand-ins.")]
ImportOpt = Annotated[
    bool, typer.Option("--seed/--no-seed", help="Start with emulator-data/export imported.")
]
WaitOpt = Annotated[
    float,
    typer.Option(envvar="LOCAL_STACK_WAIT", help="Seconds to wait for another local stack here to finish."),
]


def _options(standins: bool, seed: bool, wait: float, **kwargs: Any) -> StackOptions:
    return StackOptions(standins=tuple(STANDINS) if standins else (), import_seed=seed, wait_s=wait, **kwargs)


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
def emulators(
    standins: StandinsOpt = True,
    seed: ImportOpt = True,
    wait: WaitOpt = 600.0,
) -> None:
    """Run the stack in the foreground (for the Expo app and manual work) until Ctrl-C."""
    options = _options(standins, seed, wait, foreground=True)
    # Ctrl-C (or SIGTERM) is how this command ends: a clean stop, exit 0.
    with (
        _exit_codes(),
        contextlib.suppress(KeyboardInterrupt),
        stack.running_stack(options) as (running, info),
    ):
        stack.print_connection_info(info, options.standins)
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
    standins: StandinsOpt = True,
    seed: ImportOpt = True,
    wait: WaitOpt = 600.0,
) -> None:
    """Run CMD with the whole stack up and the emulator variables set; exit with CMD's code."""
    argv = ["bash", "-c", cmd[0]] if len(cmd) == 1 and re.search(r"[\s;&|<>$`'\"]", cmd[0]) else cmd
    with _exit_codes(), stack.running_stack(_options(standins, seed, wait)) as (_stack, info):
        console.print(f"{stack.ready_line(info)}; running: {shlex.join(argv)}")
        code = stack.run_command(argv, info.env)
    raise typer.Exit(code)


@app.command(hidden=True)
def hold() -> None:
    """firebase emulators:exec's script: hand its environment to the stack, then wait to be stopped."""
    tmp = stack.ENV_FILE.with_suffix(".tmp")
    tmp.write_text(json.dumps({"pid": os.getpid(), "env": dict(os.environ)}))
    tmp.replace(stack.ENV_FILE)
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: sys.exit(0))
    while True:
        signal.pause()


@app.command()
def demo(
    alert: Annotated[
        bool, typer.Option(help="Also send the stressed sample: the high-stress alert path.")
    ] = True,
    standins: StandinsOpt = True,
    wait: WaitOpt = 600.0,
) -> None:
    """Start the stack, send a voice message as the app would, print the result, stop everything."""
    from local_stack.demo import run_demo

    with _exit_codes():
        code = run_demo(alert=alert, options=_options(standins, True, wait))
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
        AppClient.from_env(info.env) as client,
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
