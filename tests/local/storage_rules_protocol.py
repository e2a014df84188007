"""A Storage rules runtime jar driven the way firebase-tools' Storage emulator drives it.

Started as the emulator starts it (`java -Djava.security.manager=disallow -Duser.language=en -jar
<jar> serve`), spoken to in its line-delimited JSON protocol: `load_ruleset`, `verify` with the
request variables built as firebase-tools builds them (lib/emulator/storage/rules/runtime.js:
toExpressionValue, createRequestExpressionValue; the stored object as StoredFileMetadata.
asRulesResource gives it), and the emulator's side of `fetch_firestore_document`: the runtime asks,
this client answers from a dict of Firestore documents, as the emulator answers from the Firestore
emulator. Works with any runtime jar that speaks the protocol: ours, or firebase-tools' own.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import queue
import subprocess
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from local_stack.app_client import encode_value

PROJECT = "demo-emochat"
BUCKET = f"{PROJECT}.appspot.com"
REPLY_TIMEOUT_S = 60.0


# Firestore REST value kinds (app_client.encode_value) under the runtime's ExpressionValue names.
EXPRESSION_KINDS = {"nullValue": "null_value", "booleanValue": "bool_value", "integerValue": "int_value",
                    "doubleValue": "float_value", "stringValue": "string_value"}  # fmt: skip


def expression_value(value: Any) -> dict[str, Any]:
    """Python to the runtime's ExpressionValue JSON, as firebase-tools' toExpressionValue does: the
    Firestore REST value under the runtime's names, with integers as numbers and millisecond times."""
    if isinstance(value, dt.datetime):
        return {
            "timestamp_value": value.astimezone(dt.UTC)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z")
        }
    if isinstance(value, list | tuple):
        return {"list_value": {"values": [expression_value(v) for v in value]}}
    if isinstance(value, Mapping):
        return {"map_value": {"fields": {k: expression_value(v) for k, v in value.items()}}}
    ((kind, encoded),) = encode_value(value).items()
    if kind not in EXPRESSION_KINDS:
        raise TypeError(f"no expression value for {type(value).__name__}")
    return {EXPRESSION_KINDS[kind]: int(encoded) if kind == "integerValue" else encoded}


def stored_object(
    name: str, *, size: int, content_type: str, metadata: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """An object's rules resource as the emulator makes it (StoredFileMetadata.asRulesResource)."""
    now = dt.datetime.now(dt.UTC)
    return {
        "name": name,
        "bucket": BUCKET,
        "generation": 1_764_000_000_000,
        "metageneration": 1,
        "size": size,
        "timeCreated": now,
        "updated": now,
        "md5Hash": "1B2M2Y8AsgTpgAmY7PhCfg==",
        "crc32c": "AAAAAA==",
        "etag": "etag",
        "contentDisposition": "inline",
        "contentEncoding": "identity",
        "contentType": content_type,
        "metadata": dict(metadata or {}),
    }


def auth_value(uid: str | None) -> dict[str, Any] | None:
    """request.auth for an Auth-emulator ID token of `uid` (uid + the token's claims), or None."""
    if uid is None:
        return None
    token = {
        "user_id": uid,
        "sub": uid,
        "email": f"{uid}@example.com",
        "email_verified": False,
        "firebase": {"identities": {"email": [f"{uid}@example.com"]}, "sign_in_provider": "password"},
    }
    return {"uid": uid, "token": token}


@dataclass
class Verdict:
    reply: dict[str, Any]
    fetched: list[str] = field(default_factory=list)  # Firestore documents the runtime asked for

    @property
    def permit(self) -> bool | None:
        """True or False as the runtime answered; None when it answered with errors (a deny)."""
        if self.reply.get("errors"):
            return None
        return self.reply["result"]["permit"]


class RulesRuntime:
    """One running runtime process; use as a context manager (the process ends with it)."""

    def __init__(self, java: Path, jar: Path) -> None:
        self.argv = [
            str(java),
            "-Djava.security.manager=disallow",
            "-Duser.language=en",
            "-jar",
            str(jar),
            "serve",
        ]
        self.ids = itertools.count()
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.proc: subprocess.Popen[str] | None = None

    def __enter__(self) -> RulesRuntime:
        self.proc = subprocess.Popen(
            self.argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
        )
        threading.Thread(target=self._read, daemon=True).start()
        ready = self.receive()
        assert ready == {"id": -1, "status": "ok"}, ready
        return self

    def __exit__(self, *exc: object) -> None:
        assert self.proc is not None
        if self.proc.stdin:
            self.proc.stdin.close()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def _read(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line)
        self.lines.put(None)

    def send(self, message: Mapping[str, Any]) -> None:
        assert self.proc is not None and self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(message) + "\n")
        self.proc.stdin.flush()

    def receive(self) -> dict[str, Any]:
        """The next JSON line (other lines are information, as firebase-tools logs them)."""
        while True:
            line = self.lines.get(timeout=REPLY_TIMEOUT_S)
            if line is None:
                raise AssertionError("the rules runtime exited")
            try:
                return json.loads(line)
            except ValueError:
                continue

    def load(self, source: str, name: str = "storage.rules") -> tuple[str, dict[str, Any]]:
        """load_ruleset; returns the ruleset's name and the runtime's reply."""
        request_id = next(self.ids)
        ruleset = str(request_id)
        self.send(
            {
                "action": "load_ruleset",
                "context": {"rulesetName": ruleset, "source": {"files": [{"name": name, "content": source}]}},
                "id": request_id,
            }
        )
        reply = self.receive()
        assert reply["id"] == request_id, reply
        return ruleset, reply

    def verify(
        self,
        ruleset: str,
        method: str,
        object_name: str,
        *,
        uid: str | None,
        after: Mapping[str, Any] | None = None,
        before: Mapping[str, Any] | None = None,
        documents: Mapping[str, Mapping[str, Any] | None] | None = None,
        firestore_status: str | None = None,
        variables: Mapping[str, Any] | None = None,
    ) -> Verdict:
        """verify, as the emulator sends it; fetch_firestore_document requests are answered from
        `documents` (path → fields; missing → not_found), or with `firestore_status` if given."""
        path = f"/b/{BUCKET}/o/{object_name}"
        request = {
            "map_value": {
                "fields": {
                    "path": {"path_value": {"segments": [{"simple": s} for s in path.split("/") if s]}},
                    "time": expression_value(dt.datetime.now(dt.UTC)),
                    "resource": expression_value(after),
                    "auth": expression_value(auth_value(uid)),
                }
            }
        }
        request_id = next(self.ids)
        context = {
            "rulesetName": ruleset,
            "service": "firebase.storage",
            "path": path,
            "method": method,
            "variables": dict(variables)
            if variables is not None
            else {
                "resource": expression_value(before),
                "request": request,
            },
        }
        self.send({"action": "verify", "context": context, "id": request_id})
        fetched: list[str] = []
        while True:
            reply = self.receive()
            if reply.get("action") != "fetch_firestore_document":
                assert reply["id"] == request_id, reply
                return Verdict(reply, fetched)
            document = reply["context"]["path"]
            fetched.append(document)
            answer_id = reply["server_request_id"]
            fields = (documents or {}).get(document)
            if firestore_status is not None:
                answer = {"status": firestore_status}
            elif fields is None:
                answer = {"status": "not_found"}
            else:
                answer = {
                    "status": "ok",
                    "result": {
                        "name": f"projects/{PROJECT}{document}",
                        "fields": {k: encode_value(v) for k, v in fields.items()},
                    },
                }
            self.send({**answer, "warnings": [], "errors": [], "id": answer_id})
