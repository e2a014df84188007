"""The local stack: `firebase emulators:exec` (Auth, Firestore, Storage, Functions) + the stand-ins.

firebase-tools does the emulator work: it starts every emulator (functions loaded), sets the
`*_EMULATOR_HOST` variables, `GCLOUD_PROJECT` and `FIREBASE_CONFIG` for its script, traps signals,
exports on exit, and shuts everything down when the script ends. Its script here is a holder
(`python -m local_stack hold`) that writes that environment to ENV_FILE and waits: what runs against
the stack (`exec`'s CMD, the demo, the seeding) runs on this terminal with that environment, while
firebase's output goes to LOG_DIR/firebase.log (the tests read the function log there).

Added here only what firebase-tools lacks offline: Java and the emulator jars (java.py), a
machine-wide lock (the ports are fixed), the stand-ins, dummy secrets, trimming the param defaults
firebase-tools appends to functions/.env.local, and process hygiene: every process starts in its own
session tagged with EMOCHAT_STACK_TAG, which all descendants inherit, so that what firebase-tools
leaves behind (its Python function workers) is found with psutil and ended.
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import hashlib
import itertools
import json
import os
import shlex
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psutil
from rich.console import Console
from rich.panel import Panel
from rich.table import Table

from local_stack import BUCKET, HOST, PROJECT_ID, STANDINS
from local_stack import java as javamod

REPO = javamod.REPO
BUILD_DIR = javamod.BUILD_DIR
LOG_DIR = BUILD_DIR / "logs"
ENV_FILE = BUILD_DIR / "stack-env.json"  # the running stack's client environment (the holder writes it)
STATE_FILE = BUILD_DIR / "stack.json"  # the running stack's tag: a SIGKILLed stack is cleaned up next time
FIREBASE_JSON = REPO / "firebase.json"
FIREBASE_BIN = REPO / "node_modules" / ".bin" / "firebase"
FUNCTIONS_VENV = REPO / "functions" / "venv"
ENV_LOCAL = REPO / "functions" / ".env.local"
# The Functions emulator appends the default of every param missing from the env files to
# .env.local. Below this marker line of the committed file, the stack removes them at start and
# stop, so the file stays as committed (and a killed run is cleaned up by the next one).
ENV_LOCAL_MARKER = "# ---- below: param defaults that firebase-tools appends"
SEED_FILE = REPO / "emulator-data" / "seed.json"
EXPORT_DIR = REPO / "emulator-data" / "export"
SEED_HASH_FILE = REPO / "emulator-data" / "export.seed-sha256"
SAMPLES_DIR = REPO / "samples"
STACK_LOCK = Path(tempfile.gettempdir()) / "emochat-local-stack.lock"  # fixed ports: one stack a machine
PORT_GRACE_S = 15.0  # after taking the lock, ports of a stack that just stopped may linger briefly
TAG_VAR = "EMOCHAT_STACK_TAG"
# Dummy secrets for the Functions emulator (functions/.secret.local, gitignored). The stand-ins accept
# any key; these can never work against the real services.
LOCAL_SECRETS = {"OPENAI_API_KEY": "sk-local-emulator-dummy-not-a-real-key",
                 "HF_TOKEN": "hf_local_emulator_dummy_not_a_real_token"}  # fmt: skip
# Variables a caller's shell may carry that would point the emulators' own clients elsewhere.
CLIENT_VARS = ("FIRESTORE_EMULATOR_HOST", "FIREBASE_AUTH_EMULATOR_HOST", "FIREBASE_STORAGE_EMULATOR_HOST",
               "STORAGE_EMULATOR_HOST", "FIREBASE_EMULATOR_HUB", "FIREBASE_CONFIG")  # fmt: skip

console = Console(stderr=True, highlight=False)


class StackError(RuntimeError):
    """The stack could not start or broke; the message says why, with the relevant log tail."""


class Terminated(KeyboardInterrupt):
    """SIGTERM/SIGHUP, turned into an exception so that `finally` blocks tear the stack down."""


def emulator_ports() -> dict[str, int]:
    """Every port the emulators listen on, from firebase.json (hub, logging, websocket included)."""
    emulators = json.loads(FIREBASE_JSON.read_text())["emulators"]
    ports = {
        name: int(spec["port"])
        for name, spec in emulators.items()
        if isinstance(spec, dict) and "port" in spec
    }
    return ports | {"firestore.websocket": int(emulators["firestore"]["websocketPort"])}


def stack_env(*, storage_rules_enforced: bool, standins: Sequence[str]) -> dict[str, str]:
    """What the stack adds to firebase-tools' environment, and so to its script's (with its own)."""
    env = {
        "GOOGLE_CLOUD_PROJECT": PROJECT_ID,
        "METADATA_SERVER_DETECTION": "none",  # saves ~2 s and a stack trace in every client
        "EMOCHAT_STACK": "1",
        "EMOCHAT_BUCKET": BUCKET,
        "EMOCHAT_STORAGE_RULES_ENFORCED": "1" if storage_rules_enforced else "0",
        "EMOCHAT_SEED_FILE": str(SEED_FILE),
        "FUNCTIONS_EMULATOR_ORIGIN": f"http://{HOST}:{emulator_ports()['functions']}",
    }
    return env | {STANDINS[n][0]: f"http://{HOST}:{STANDINS[n][1]}{STANDINS[n][2]}" for n in standins}


def load_seed() -> dict[str, Any]:
    return json.loads(SEED_FILE.read_text())


def seed_hash() -> str:
    """What emulator-data/export.seed-sha256 records: the seed the export was made from."""
    return hashlib.sha256(SEED_FILE.read_bytes()).hexdigest()


def log_tail(path: Path | None, lines: int = 40) -> str:
    if path is None or not path.exists():
        return "(no log)"
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def trim_env_local() -> list[str]:
    """Drop what follows ENV_LOCAL_MARKER in functions/.env.local; returns the names removed."""
    head, marker, tail = (ENV_LOCAL.read_text() if ENV_LOCAL.exists() else "").partition(ENV_LOCAL_MARKER)
    line, _, appended = tail.partition("\n")
    if not marker or not appended.strip():
        return []
    ENV_LOCAL.write_text(f"{head}{marker}{line}\n")
    return [entry.split("=", 1)[0] for entry in appended.splitlines() if "=" in entry]


# ------------------------------------------------------------------------------------------ processes


def port_owner(port: int) -> str | None:
    """'pid N: cmdline' of the process listening on port, or None when nothing listens."""
    for conn in psutil.net_connections(kind="inet"):
        if conn.status == psutil.CONN_LISTEN and conn.laddr and conn.laddr.port == port:
            if conn.pid is None:
                return "another user's process"
            with contextlib.suppress(psutil.Error):
                return f"pid {conn.pid}: {' '.join(psutil.Process(conn.pid).cmdline())[:150]}"
            return f"pid {conn.pid}"
    return None


def tagged(tag: str) -> list[psutil.Process]:
    """Every live process carrying EMOCHAT_STACK_TAG=tag (descendants inherit it, detached or not)."""
    found = []
    for proc in psutil.process_iter():
        with contextlib.suppress(psutil.Error):
            if proc.pid != os.getpid() and proc.environ().get(TAG_VAR) == tag:
                found.append(proc)
    return found


def end_processes(procs: Sequence[psutil.Process], grace_s: float = 3.0) -> list[str]:
    """SIGINT (gunicorn's quick stop), then SIGTERM, each with half of grace_s, then SIGKILL;
    returns what needed SIGKILL."""
    alive = list(procs)
    for sig in (signal.SIGINT, signal.SIGTERM):
        for proc in alive:
            with contextlib.suppress(psutil.Error):
                proc.send_signal(sig)
        _, alive = psutil.wait_procs(alive, timeout=grace_s / 2)
    killed = []
    for proc in alive:
        with contextlib.suppress(psutil.Error):
            killed.append(f"{proc.pid} {' '.join(proc.cmdline())[:120]}")
            proc.kill()
    psutil.wait_procs(alive, timeout=5)
    return killed


def _die_with_parent() -> None:  # runs in the child between fork and exec
    # If the stack is SIGKILLed, its direct children get SIGTERM (firebase-tools then shuts down).
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM, 0, 0, 0)  # PR_SET_PDEATHSIG


@contextlib.contextmanager
def _signal_handlers(signals: Sequence[signal.Signals], handler: Any) -> Iterator[None]:
    previous = {sig: signal.signal(sig, handler) for sig in signals}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def _raise_terminated(signum: int, _frame: object) -> None:
    raise Terminated(signal.Signals(signum).name)


# ------------------------------------------------------------------------------------------- stack


@dataclass
class StackOptions:
    only: tuple[str, ...] = ("auth", "firestore", "storage", "functions")
    import_seed: bool = True
    export_on_exit: Path | None = None
    standins: tuple[str, ...] = tuple(STANDINS)
    foreground: bool = False  # firebase output to this terminal instead of LOG_DIR/firebase.log
    ready_timeout_s: float = 180.0
    wait_s: float = 600.0  # for another local stack on this machine to finish (lock + ports)


@dataclass
class StackInfo:
    """What is running, for the banners and the commands run against it."""

    java: javamod.EmulatorJava
    env: dict[str, str] = field(default_factory=dict)  # the client environment (firebase's script's)
    standin_problems: dict[str, str] = field(default_factory=dict)
    started_in_s: float = 0.0


class Stack:
    def __init__(self, options: StackOptions) -> None:
        self.options = options
        self.tag = uuid.uuid4().hex
        self.firebase: subprocess.Popen | None = None
        self.standins: dict[str, subprocess.Popen] = {}
        self._lock_fd: int | None = None
        self.firebase_log = None if options.foreground else LOG_DIR / "firebase.log"

    def _spawn(
        self, argv: Sequence[str], env: Mapping[str, str], log: Path | None, cwd: Path
    ) -> subprocess.Popen:
        out = open(log, "wb") if log else None  # noqa: SIM115 - the child keeps it; ours closes now
        try:
            return subprocess.Popen(
                list(argv),
                env={**env, TAG_VAR: self.tag},
                cwd=cwd,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT if out else None,
                start_new_session=True,
                preexec_fn=_die_with_parent,
            )
        finally:
            if out:
                out.close()

    def start(self) -> StackInfo:
        started = time.monotonic()
        LOG_DIR.mkdir(parents=True, exist_ok=True)
        self._acquire_lock()
        with contextlib.suppress(OSError, ValueError, KeyError):  # what a SIGKILLed stack left behind
            if leftovers := tagged(json.loads(STATE_FILE.read_text())["tag"]):
                console.print(f"[yellow]ending {len(leftovers)} process(es) an earlier, killed stack left[/]")
                end_processes(leftovers)
        if not FIREBASE_BIN.exists():
            raise StackError(f"{FIREBASE_BIN.relative_to(REPO)} missing: run `make bootstrap` (npm ci).")
        if "functions" in self.options.only and not (FUNCTIONS_VENV / "bin" / "python3.11").exists():
            raise StackError("functions/venv missing: run `make bootstrap`.")
        if self.options.import_seed and not (EXPORT_DIR / "firebase-export-metadata.json").exists():
            raise StackError(f"{EXPORT_DIR.relative_to(REPO)} has no export: run `make seed`.")
        recorded = SEED_HASH_FILE.read_text().strip() if SEED_HASH_FILE.exists() else None
        if self.options.import_seed and recorded != seed_hash():
            console.print("[yellow]emulator-data/export is older than seed.json: run `make seed`[/]")
        try:
            prepared = javamod.prepare()
        except javamod.JavaSetupError as error:
            raise StackError(str(error)) from error
        info = StackInfo(java=prepared)
        self._wait_ports_free()
        storage_rules_warning(info)

        STATE_FILE.write_text(json.dumps({"tag": self.tag, "pid": os.getpid()}))
        (REPO / "functions" / ".secret.local").write_text(
            "# Written by local_stack at every start: dummy secrets for the Functions emulator.\n"
            + "".join(f"{k}={v}\n" for k, v in LOCAL_SECRETS.items())
        )
        trim_env_local()
        env = {k: v for k, v in os.environ.items() if k not in CLIENT_VARS}
        env |= stack_env(
            storage_rules_enforced=prepared.storage_rules_enforced, standins=self.options.standins
        )
        for name in self.options.standins:
            argv = [sys.executable, "-m", "local_stack", "serve", name, "--port", str(STANDINS[name][1])]
            self.standins[name] = self._spawn(
                argv, env | {"PYTHONUNBUFFERED": "1"}, LOG_DIR / f"{name}.log", REPO
            )
        self._start_firebase(env, info)
        info.env = self._wait_firebase_ready()
        info.standin_problems = self._wait_standins_ready()
        info.started_in_s = time.monotonic() - started
        return info

    def _acquire_lock(self) -> None:
        """One local stack per machine (fixed ports): wait for another one to finish, up to wait_s."""
        if os.environ.get("EMOCHAT_STACK") == "1":
            raise StackError("already inside a running local stack (EMOCHAT_STACK=1): use it, don't nest one")
        fd = os.open(STACK_LOCK, os.O_RDWR | os.O_CREAT, 0o666)
        deadline = time.monotonic() + self.options.wait_s
        for attempt in itertools.count():
            with contextlib.suppress(BlockingIOError):
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            holder = STACK_LOCK.read_text(errors="replace").strip() or "?"
            if time.monotonic() >= deadline:
                os.close(fd)
                wait = f"waited {self.options.wait_s:.0f} s (--wait / LOCAL_STACK_WAIT)"
                raise StackError(f"another local stack is running on this machine ({holder}); {wait}")
            if attempt == 0:
                console.print(f"[yellow]another local stack is running ({holder}); waiting for it[/]")
            time.sleep(0.5)
        os.ftruncate(fd, 0)
        os.write(fd, f"pid {os.getpid()} in {REPO}: {shlex.join(sys.argv)[:200]}\n".encode())
        self._lock_fd = fd

    def _wait_ports_free(self) -> None:
        ports = emulator_ports() | {f"stand-in {n}": STANDINS[n][1] for n in self.options.standins}
        deadline = time.monotonic() + PORT_GRACE_S
        while busy := {name: port for name, port in ports.items() if port_owner(port)}:
            if time.monotonic() >= deadline:
                lines = "\n".join(f"  {name} {port}: {port_owner(port)}" for name, port in busy.items())
                raise StackError(f"ports of the local stack are in use by something else:\n{lines}")
            time.sleep(0.5)

    def _start_firebase(self, env: dict[str, str], info: StackInfo) -> None:
        java_bin = info.java.java.executable.parent
        env = env | info.java.env | {
            "PATH": os.pathsep.join([str(java_bin), str(FIREBASE_BIN.parent), env.get("PATH", "")]),
            "JAVA_HOME": str(java_bin.parent),
            # Python discovery imports main.py in functions/venv; 2 slow cores need more than 10 s.
            "FUNCTIONS_DISCOVERY_TIMEOUT": "60",
            "PYTHONUNBUFFERED": "1",
        }  # fmt: skip
        ENV_FILE.unlink(missing_ok=True)
        hold = (
            shlex.join(["cd", str(REPO)]) + " && " + shlex.join([sys.executable, "-m", "local_stack", "hold"])
        )
        argv = [str(FIREBASE_BIN), "emulators:exec", hold, "--project", PROJECT_ID]
        argv += ["--config", str(FIREBASE_JSON), "--only", ",".join(self.options.only)]
        if self.options.import_seed:
            argv += ["--import", str(EXPORT_DIR)]
        if self.options.export_on_exit:
            argv += ["--export-on-exit", str(self.options.export_on_exit)]
        self.firebase = self._spawn(argv, env, self.firebase_log, LOG_DIR)  # cwd: its *-debug.log files

    def _wait_firebase_ready(self) -> dict[str, str]:
        """The holder's environment, once firebase-tools runs it (every emulator up, functions loaded)."""
        assert self.firebase
        deadline = time.monotonic() + self.options.ready_timeout_s
        while not ENV_FILE.exists():
            if self.firebase.poll() is not None or time.monotonic() >= deadline:
                what = f"exited with code {self.firebase.returncode} while starting"
                if self.firebase.returncode is None:
                    what = f"was not ready after {self.options.ready_timeout_s:.0f} s"
                raise StackError(f"the firebase CLI {what}.\n{log_tail(self.firebase_log, 60)}")
            time.sleep(0.2)
        env = json.loads(ENV_FILE.read_text())["env"]
        if "functions" in self.options.only:
            backends = httpx.get(f"{env['FUNCTIONS_EMULATOR_ORIGIN']}/backends", timeout=10).json()
            if not any(backend.get("functionTriggers") for backend in backends["backends"]):
                log = log_tail(self.firebase_log, 60)
                raise StackError(f"the Functions emulator loaded no triggers from functions/.\n{log}")
        return env

    def _wait_standins_ready(self) -> dict[str, str]:
        """What is wrong with each stand-in that did not get healthy (503 while it loads its model).
        One that fails (the stress checkpoint missing, say) is reported loudly; the stack runs on."""
        deadline, pending, problems = time.monotonic() + self.options.ready_timeout_s, set(self.standins), {}
        while pending:
            time.sleep(0.2)
            for name in sorted(pending):
                proc, log = self.standins[name], LOG_DIR / f"{name}.log"
                with contextlib.suppress(httpx.HTTPError):
                    health = httpx.get(f"http://{HOST}:{STANDINS[name][1]}/health", timeout=2.0)
                    if health.status_code != 503:
                        pending.discard(name)
                        if health.status_code != 200:
                            problems[name] = f"/health: {health.status_code} {health.text[:300]}"
                if name in pending and (proc.poll() is not None or time.monotonic() >= deadline):
                    pending.discard(name)
                    what = "not ready in time" if proc.returncode is None else f"exited ({proc.returncode})"
                    problems[name] = f"{what}:\n{log_tail(log, 15)}"
        for name, problem in problems.items():
            text = f"stand-in [bold]{name}[/] is not healthy: {problem}"
            console.print(Panel(text, title="WARNING", border_style="yellow"))
        return problems

    def stop(self) -> None:
        started = time.monotonic()
        if self.firebase is not None:
            console.print("[dim]stopping the local stack ...[/]")
            holder = json.loads(ENV_FILE.read_text())["pid"] if ENV_FILE.exists() else None
            if holder and self.firebase.poll() is None:
                # The script ends: firebase-tools exports (if asked) and shuts the emulators down.
                with contextlib.suppress(ProcessLookupError):
                    os.kill(holder, signal.SIGTERM)
            for _ in range(3):  # then SIGINT to its group: its gunicorn workers take the quick stop
                with contextlib.suppress(subprocess.TimeoutExpired):
                    self.firebase.wait(timeout=5)
                    break
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.firebase.pid, signal.SIGINT)
            for proc in self.standins.values():
                proc.terminate()
            killed = end_processes(tagged(self.tag))
            for proc in [self.firebase, *self.standins.values()]:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(timeout=5)
            if killed:
                console.print(f"[dim]{len(killed)} process(es) needed SIGKILL: {killed}[/]")
        for path in (ENV_FILE, STATE_FILE):
            path.unlink(missing_ok=True)
        if removed := trim_env_local():
            console.print(f"[dim]functions/.env.local: removed the param defaults firebase added: {removed}")
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # releases the flock
            self._lock_fd = None
        if self.firebase is not None:
            console.print(f"[dim]local stack stopped in {time.monotonic() - started:.1f} s[/]")


@contextlib.contextmanager
def running_stack(options: StackOptions) -> Iterator[tuple[Stack, StackInfo]]:
    """The stack for the block; SIGTERM/SIGHUP raise Terminated; no signal interrupts the teardown."""
    stack = Stack(options)
    with _signal_handlers((signal.SIGTERM, signal.SIGHUP), _raise_terminated):
        try:
            yield stack, stack.start()
        finally:
            with _signal_handlers((signal.SIGINT, signal.SIGTERM, signal.SIGHUP), signal.SIG_IGN):
                stack.stop()


def run_command(argv: Sequence[str], env: Mapping[str, str]) -> int:
    """Run CMD in the foreground (our process group: it gets the terminal and Ctrl-C); its exit code."""
    proc = subprocess.Popen(list(argv), env=dict(env), cwd=REPO)
    try:
        code = proc.wait()
    except KeyboardInterrupt as interrupt:
        # Ctrl-C from the terminal reached CMD too: give it a moment. SIGTERM/SIGHUP came to us alone.
        if isinstance(interrupt, Terminated):
            proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        raise
    return 128 - code if code < 0 else code


# ------------------------------------------------------------------------------------ presentation


def storage_rules_warning(info: StackInfo) -> None:
    if not info.java.storage_rules_enforced:
        console.print(
            Panel(
                "[bold]STORAGE RULES ARE NOT ENFORCED[/] in this local stack.\n"
                "firebase-tools' Cloud Storage rules runtime is not cached on this machine and the "
                "Firebase rules engine (Debian google-cloud-cli-firestore-emulator) is missing, so the "
                f"Storage emulator runs with a permit-all stand-in ({info.java.storage_rules}).\n"
                "Any upload is accepted: storage.rules is NOT checked. process_voice_message's own checks "
                "(path owner, chat membership, content type, size) are the only guard here. Firestore "
                "rules ARE enforced.",
                title="WARNING",
                border_style="bold red",
            )
        )


def print_connection_info(info: StackInfo) -> None:
    """How to reach the stack: the seeded accounts, the stand-ins, the Expo app's emulator calls."""
    seed, ports = load_seed(), emulator_ports()
    accounts = Table("uid", "email", "password", title="Seeded test accounts", title_justify="left")
    for user in seed["auth"]:
        accounts.add_row(user["uid"], user["email"], user["password"])
    health = {n: "[red]NOT HEALTHY[/]" if n in info.standin_problems else "ok" for n in STANDINS}
    console.print(
        accounts,
        f"Stand-ins: {', '.join(f'{n} :{STANDINS[n][1]} {ok}' for n, ok in health.items())}\n"
        "[bold]Expo app[/] (Firebase JS SDK), with the device/emulator able to reach this host:\n"
        f"  connectAuthEmulator(auth, 'http://{HOST}:{ports['auth']}')\n"
        f"  connectFirestoreEmulator(db, '{HOST}', {ports['firestore']})\n"
        f"  connectStorageEmulator(storage, '{HOST}', {ports['storage']})\n"
        f"  connectFunctionsEmulator(functions, '{HOST}', {ports['functions']})\n"
        f"  firebaseConfig: projectId '{PROJECT_ID}', storageBucket '{BUCKET}', apiKey any string\n"
        "  (from an Android emulator use 10.0.2.2 for the host; from a phone on the LAN, change the "
        "emulators' host in firebase.json to 0.0.0.0)",
    )
