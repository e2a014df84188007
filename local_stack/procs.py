"""Process hygiene for the local stack: start everything in its own session, end everything.

firebase-tools starts the Firestore emulator and the Python function workers *detached* (their own
sessions), and leaves the workers behind when it exits. Ending "the process group" therefore misses
them. The supervisor here finds every process it is responsible for in two independent ways:

- it makes itself a child subreaper (Linux prctl), so orphans of its children are re-parented to it
  and stay visible as its descendants in /proc;
- it tags every process it starts with an environment variable (EMOCHAT_STACK_TAG=<random id>),
  which all descendants inherit, and scans /proc/*/environ for it.

Teardown: the first signal each child asked for (SIGINT to the firebase CLI's group, so it shuts
its emulators down cleanly and its gunicorn function workers stop quickly; a second SIGINT if it
still waits for a function), then SIGINT and SIGTERM to every remaining tagged or descendant
process and its group, then SIGKILL after a grace period; zombies are reaped. A state file records
the tag, so a stack killed with SIGKILL is cleaned up by the next start (`stale_cleanup`).
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

TAG_VAR = "EMOCHAT_STACK_TAG"
PR_SET_PDEATHSIG = 1
PR_SET_CHILD_SUBREAPER = 36


def _prctl(option: int, arg: int) -> bool:
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(option, arg, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def _child_setup() -> None:  # runs in the child between fork and exec
    # If the supervisor dies without cleaning up (SIGKILL), its direct children get SIGTERM.
    _prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


# ------------------------------------------------------------------------------------------- /proc


def _proc_ppid(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # comm may contain spaces and parentheses: the fields after the last ')' are fixed.
    fields = stat[stat.rfind(")") + 2 :].split()
    return int(fields[1]) if len(fields) > 1 else None


def _proc_state(pid: int) -> str | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rfind(")") + 2 :].split()
    return fields[0] if fields else None


def _all_pids() -> list[int]:
    return [int(name) for name in os.listdir("/proc") if name.isdigit()]


def descendants(root: int) -> set[int]:
    children: dict[int, list[int]] = {}
    for pid in _all_pids():
        ppid = _proc_ppid(pid)
        if ppid is not None:
            children.setdefault(ppid, []).append(pid)
    found: set[int] = set()
    stack = [root]
    while stack:
        for child in children.get(stack.pop(), []):
            if child not in found:
                found.add(child)
                stack.append(child)
    return found


def tagged(tag: str) -> set[int]:
    needle = f"{TAG_VAR}={tag}".encode()
    found: set[int] = set()
    for pid in _all_pids():
        try:
            environ = Path(f"/proc/{pid}/environ").read_bytes()
        except OSError:
            continue
        if needle in environ.split(b"\0"):
            found.add(pid)
    return found


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return "?"


def _alive(pid: int) -> bool:
    state = _proc_state(pid)
    return state is not None and state != "Z"


def _signal(pids: Iterable[int], sig: int, *, groups: bool) -> None:
    own_group = os.getpgrp()
    for pid in pids:
        if groups:
            with contextlib.suppress(OSError):
                pgid = os.getpgid(pid)
                if pgid != own_group and pgid > 1:
                    os.killpg(pgid, sig)
        with contextlib.suppress(OSError):
            os.kill(pid, sig)


def reap() -> None:
    """Collect exited children, including orphans adopted as subreaper."""
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


# --------------------------------------------------------------------------------------- supervisor


@dataclass
class Managed:
    name: str
    popen: subprocess.Popen
    log_path: Path | None
    stop_signal: int = signal.SIGTERM
    stop_grace_s: float = 10.0
    stop_group: bool = True  # send stop_signal to the whole process group, not just the process
    repeat_after_s: float | None = None  # if still running after stop_grace_s: signal again, wait this
    log_file: IO[bytes] | None = field(default=None, repr=False)

    @property
    def pid(self) -> int:
        return self.popen.pid

    def running(self) -> bool:
        return self.popen.poll() is None


class Supervisor:
    """Starts processes in their own sessions and guarantees that none outlives `shutdown()`."""

    def __init__(self, state_file: Path, *, verbose: bool = True) -> None:
        self.tag = uuid.uuid4().hex
        self.state_file = state_file
        self.verbose = verbose
        self.children: list[Managed] = []
        self.subreaper = _prctl(PR_SET_CHILD_SUBREAPER, 1)
        self._closed = False
        state_file.parent.mkdir(parents=True, exist_ok=True)
        state_file.write_text(json.dumps({"tag": self.tag, "supervisor": os.getpid()}))

    def _say(self, message: str) -> None:
        if self.verbose:
            print(f"[local_stack] {message}", file=sys.stderr, flush=True)

    def env(self, base: Mapping[str, str] | None = None) -> dict[str, str]:
        env = dict(os.environ if base is None else base)
        env[TAG_VAR] = self.tag
        return env

    def spawn(
        self,
        name: str,
        argv: Sequence[str],
        *,
        env: Mapping[str, str],
        cwd: Path,
        log_path: Path | None = None,
        stop_signal: int = signal.SIGTERM,
        stop_grace_s: float = 10.0,
        stop_group: bool = True,
        repeat_after_s: float | None = None,
    ) -> Managed:
        """Start argv in a new session; output to log_path (appended), or inherited when None."""
        log_file = None
        if log_path is not None:
            log_path.parent.mkdir(parents=True, exist_ok=True)
            log_file = open(log_path, "ab")  # noqa: SIM115 - closed in shutdown()
        popen = subprocess.Popen(
            list(argv),
            env={**env, TAG_VAR: self.tag},
            cwd=str(cwd),
            stdin=subprocess.DEVNULL,
            stdout=log_file if log_file else None,
            stderr=subprocess.STDOUT if log_file else None,
            start_new_session=True,
            preexec_fn=_child_setup,
        )
        managed = Managed(
            name, popen, log_path, stop_signal, stop_grace_s, stop_group, repeat_after_s, log_file
        )
        self.children.append(managed)
        return managed

    def leftovers(self) -> set[int]:
        me = os.getpid()
        pids = (descendants(me) | tagged(self.tag)) - {me}
        return {pid for pid in pids if _alive(pid)}

    def shutdown(self, *, grace_s: float = 3.0) -> list[str]:
        """End every process started here and everything they started. Returns what needed SIGKILL."""
        if self._closed:
            return []
        self._closed = True
        # 1. Each child in reverse start order with the signal it wants (firebase: SIGINT).
        for child in reversed(self.children):
            if child.running():
                self._say(f"stopping {child.name} (pid {child.pid})")
                _signal([child.pid], child.stop_signal, groups=child.stop_group)
        for child in reversed(self.children):
            with contextlib.suppress(subprocess.TimeoutExpired):
                child.popen.wait(timeout=child.stop_grace_s)
            if child.repeat_after_s is not None and child.running():
                # e.g. the firebase CLI: a second SIGINT means "stop right now" (it was waiting for
                # functions still running, which a teardown does not need).
                _signal([child.pid], child.stop_signal, groups=child.stop_group)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    child.popen.wait(timeout=child.repeat_after_s)
        # 2. Everything else we are responsible for: SIGTERM, then SIGKILL after the grace period.
        killed: list[str] = []
        rest = self.leftovers()
        if rest:
            self._say(f"terminating {len(rest)} leftover process(es)")
            # SIGINT first: the function workers run under gunicorn, for which SIGTERM is a graceful
            # stop that waits up to 30 s for the emulator's keep-alive connections; SIGINT is its
            # quick stop. Then SIGTERM for everything else.
            _signal(rest, signal.SIGINT, groups=True)
            time.sleep(0.2)
            _signal({pid for pid in rest if _alive(pid)}, signal.SIGTERM, groups=True)
            deadline = time.monotonic() + grace_s
            while time.monotonic() < deadline:
                reap()
                rest = {pid for pid in rest if _alive(pid)} | self.leftovers()
                if not rest:
                    break
                time.sleep(0.1)
            for pid in rest:
                killed.append(f"{pid} {cmdline(pid)[:120]}")
            if rest:
                _signal(rest, signal.SIGKILL, groups=True)
                deadline = time.monotonic() + 5
                while time.monotonic() < deadline and self.leftovers():
                    reap()
                    time.sleep(0.05)
        for child in self.children:
            with contextlib.suppress(subprocess.TimeoutExpired):
                child.popen.wait(timeout=1)
            if child.log_file:
                child.log_file.close()
        reap()
        with contextlib.suppress(OSError):
            self.state_file.unlink()
        return killed


def stale_cleanup(state_file: Path) -> list[str]:
    """End what a previous supervisor left behind (it was SIGKILLed). Returns what was ended."""
    try:
        state = json.loads(state_file.read_text())
    except (OSError, ValueError):
        return []
    supervisor = int(state.get("supervisor", 0))
    if supervisor and _alive(supervisor) and supervisor != os.getpid():
        return []  # another stack is running; the port check will say so
    pids = {pid for pid in tagged(state["tag"]) if pid != os.getpid()}
    ended = [f"{pid} {cmdline(pid)[:120]}" for pid in sorted(pids)]
    _signal(pids, signal.SIGTERM, groups=True)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and any(_alive(p) for p in pids):
        time.sleep(0.1)
    _signal({p for p in pids if _alive(p)}, signal.SIGKILL, groups=True)
    with contextlib.suppress(OSError):
        state_file.unlink()
    return ended
