"""The one REST client for the emulators (`EmulatorRest`), the Expo app built on it (`AppClient`),
and the stand-ins' fault API (`StandIn`). The demo, the seeding, the benches and the tests use them.

`EmulatorRest` speaks the REST APIs the Firebase JS SDK uses and answers with the raw
`httpx.Response` (the rules tests classify those as allowed or denied): Auth identitytoolkit
`accounts:*` (and the admin account creation with a fixed uid); Firestore `.../documents/{path}`
with `Bearer <ID token>` (rules apply) or the emulators' admin token `Bearer owner` (it bypasses
them); Firebase Storage `/v0/b/{bucket}/o` with `Firebase <ID token>`, uploads in one multipart
request as `uploadBytes` sends small files (the Storage emulator truncates resumable uploads sent in
several chunks). `AppClient` raises `AppClientError` for an error answer and decodes Firestore's
REST values into Python (timestamps: aware datetimes).
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import os
import secrets
import string
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import httpx

from local_stack import BUCKET, HOST, PROJECT_ID, STANDINS

ADMIN_TOKEN = "owner"  # the emulators' admin bearer token: bypasses security rules
AUTO_ID_ALPHABET = string.ascii_letters + string.digits
FINAL_STATUSES = frozenset({"ready", "failed", "rejected"})


class AppClientError(RuntimeError):
    """An emulator answered with an error; carries the HTTP status and body."""

    def __init__(self, message: str, status: int | None = None, body: Any = None) -> None:
        super().__init__(message)
        self.status = status
        self.body = body


class MessageTimeout(TimeoutError):
    """The message did not reach a final status in time."""


def auto_id() -> str:
    """A Firestore-style auto id (20 chars of [A-Za-z0-9]), as the client SDK's doc().id makes."""
    return "".join(secrets.choice(AUTO_ID_ALPHABET) for _ in range(20))


def voice_path(uid: str, chat_id: str, message_id: str, ext: str = "m4a") -> str:
    return f"voice/{uid}/{chat_id}/{message_id}.{ext}"


@dataclass(frozen=True)
class Session:
    uid: str
    email: str
    id_token: str


@dataclass(frozen=True)
class SentVoice:
    chat_id: str
    message_id: str
    path: str
    generation: str | None
    uploaded_at: float  # time.monotonic() when the upload request returned


@dataclass
class MessageWait:
    """What wait_for_message saw: the final document and when each status first appeared."""

    doc: dict[str, Any]
    statuses: list[tuple[str, float]] = field(default_factory=list)  # (status, seconds since start)
    elapsed_s: float = 0.0


# ------------------------------------------------------------------------------- Firestore values


_DECODE = {"nullValue": lambda _: None, "booleanValue": bool, "integerValue": int, "doubleValue": float,
           "timestampValue": dt.datetime.fromisoformat, "stringValue": str, "bytesValue": base64.b64decode,
           "referenceValue": str, "geoPointValue": dict}  # fmt: skip


def decode_value(value: Mapping[str, Any]) -> Any:
    """One Firestore REST `Value` to Python (timestamps: aware datetimes, nanoseconds cut to micro)."""
    ((kind, inner),) = value.items()
    if kind == "arrayValue":
        return [decode_value(v) for v in inner.get("values", [])]
    if kind == "mapValue":
        return decode_fields(inner.get("fields", {}))
    if kind not in _DECODE:
        raise ValueError(f"unknown Firestore value: {value!r}")
    return _DECODE[kind](inner)


def decode_fields(fields: Mapping[str, Any]) -> dict[str, Any]:
    return {key: decode_value(value) for key, value in fields.items()}


def encode_value(value: Any) -> dict[str, Any]:
    """Python to a Firestore REST `Value` ({"$timestamp": iso} and datetimes become timestamps)."""
    if value is None:
        return {"nullValue": None}
    if isinstance(value, bool):  # before int: a bool is an int
        return {"booleanValue": value}
    if isinstance(value, int):
        return {"integerValue": str(value)}
    if isinstance(value, float):
        return {"doubleValue": value}
    if isinstance(value, dt.datetime):
        return {"timestampValue": value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")}
    if isinstance(value, str):
        return {"stringValue": value}
    if isinstance(value, bytes):
        return {"bytesValue": base64.b64encode(value).decode()}
    if isinstance(value, list | tuple):
        return {"arrayValue": {"values": [encode_value(v) for v in value]}}
    if isinstance(value, Mapping):
        if set(value) == {"$timestamp"}:
            return {"timestampValue": value["$timestamp"]}
        return {"mapValue": {"fields": {k: encode_value(v) for k, v in value.items()}}}
    raise TypeError(f"cannot encode {type(value).__name__} for Firestore")


# -------------------------------------------------------------------------------------- REST client


def _bearer(token: str | None, scheme: str = "Bearer") -> dict[str, str]:
    return {"Authorization": f"{scheme} {token}"} if token else {}


class EmulatorRest:
    """The emulators' REST APIs, hosts from the variables `python -m local_stack exec` sets."""

    def __init__(self, env: Mapping[str, str] | None = None, *, timeout_s: float = 30.0) -> None:
        env = os.environ if env is None else env
        self.project_id = env.get("GCLOUD_PROJECT", PROJECT_ID)
        self.bucket = env.get("EMOCHAT_BUCKET", BUCKET)
        self.auth_url = f"http://{env.get('FIREBASE_AUTH_EMULATOR_HOST', f'{HOST}:9099')}"
        self.firestore_url = f"http://{env.get('FIRESTORE_EMULATOR_HOST', f'{HOST}:8080')}"
        storage = env.get("FIREBASE_STORAGE_EMULATOR_HOST", f"{HOST}:9199")
        self.storage_url = f"http://{storage.removeprefix('http://')}"
        self.http = httpx.Client(timeout=timeout_s)

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> Any:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def accounts(self, action: str, body: Mapping[str, Any]) -> httpx.Response:
        """identitytoolkit `accounts:{action}` (signUp, signInWithPassword), as the app calls it."""
        url = f"{self.auth_url}/identitytoolkit.googleapis.com/v1/accounts:{action}"
        return self.http.post(url, params={"key": "local-emulator-api-key"}, json=body)

    def documents(
        self, method: str, path: str = "", *, verb: str = "", token: str | None = None, **kwargs: Any
    ) -> httpx.Response:
        """Firestore REST on `path` under the database's documents, or `{path}:{verb}` (commit,
        runQuery). Document ids may hold any character but "/": each segment is percent-encoded."""
        url = f"{self.firestore_url}/v1/projects/{self.project_id}/databases/(default)/documents"
        if path:
            url += "/" + "/".join(quote(segment, safe="") for segment in path.split("/"))
        return self.http.request(method, url + (f":{verb}" if verb else ""), headers=_bearer(token), **kwargs)

    def objects(
        self, method: str, name: str = "", *, token: str | None = None, **kwargs: Any
    ) -> httpx.Response:
        """Firebase Storage REST on the bucket's objects, or on object `name`."""
        url = f"{self.storage_url}/v0/b/{self.bucket}/o" + (f"/{quote(name, safe='')}" if name else "")
        return self.http.request(method, url, headers=_bearer(token, "Firebase"), **kwargs)

    def upload(
        self, name: str, data: bytes, *, content_type: str | None,
        custom_metadata: Mapping[str, str] | None = None, token: str | None = None,
    ) -> httpx.Response:  # fmt: skip
        """A single-request (multipart) upload: metadata part, then the bytes."""
        metadata: dict[str, Any] = {"name": name}
        if content_type is not None:
            metadata["contentType"] = content_type
        if custom_metadata:  # the JS SDK's customMetadata travels as "metadata" on the wire
            metadata["metadata"] = dict(custom_metadata)
        boundary = uuid.uuid4().hex
        parts = [("application/json; charset=utf-8", json.dumps(metadata).encode()),
                 (content_type or "application/octet-stream", data)]  # fmt: skip
        body = b"".join(
            f"--{boundary}\r\nContent-Type: {kind}\r\n\r\n".encode() + part + b"\r\n" for kind, part in parts
        )
        headers = {
            "X-Goog-Upload-Protocol": "multipart",
            "Content-Type": f"multipart/related; boundary={boundary}",
        }
        headers |= _bearer(token, "Firebase")
        body += f"--{boundary}--".encode()
        return self.http.post(
            f"{self.storage_url}/v0/b/{self.bucket}/o", params={"name": name}, content=body, headers=headers
        )

    def gcs_object(self, name: str) -> httpx.Response:
        """The object's GCS JSON resource (what a storage event carries as data)."""
        return self.http.get(f"{self.storage_url}/storage/v1/b/{self.bucket}/o/{quote(name, safe='')}")


# ------------------------------------------------------------------------------------ stand-ins


class StandIn:
    """A stand-in's admin API (/_emochat, local_stack/faults.py): scripted faults, the request log,
    and the FCM stand-in's record of what it was sent. The tests' and the demo's one client for it."""

    def __init__(self, url: str, *, timeout_s: float = 10.0) -> None:
        self.url = url.removesuffix("/v1")
        self.timeout_s = timeout_s

    @classmethod
    def of(cls, name: str, env: Mapping[str, str] | None = None) -> StandIn:
        """The stack's stand-in `name` (stt, stress, fcm), at the URL the functions are given."""
        var, port, _ = STANDINS[name]
        return cls((os.environ if env is None else env).get(var) or f"http://{HOST}:{port}")

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        response = httpx.request(method, f"{self.url}/_emochat/{path}", timeout=self.timeout_s, **kwargs)
        response.raise_for_status()
        return response.json()

    def script(self, faults: list[dict[str, Any]] | dict[str, Any]) -> None:
        self._call("POST", "faults", json=faults)

    def pending(self) -> list[dict[str, Any]]:
        return self._call("GET", "faults")["pending"]

    def clear(self, *, requests: bool = True) -> None:
        """Forget the scripted faults (and the request log, unless requests=False)."""
        self._call("DELETE", "faults")
        if requests:
            self._call("DELETE", "requests")

    def requests(self) -> dict[str, Any]:
        """{"count": API requests answered, "requests": the last ones (status, fault, ...)}."""
        return self._call("GET", "requests")

    def request_count(self) -> int:
        return int(self.requests()["count"])

    def sent(self) -> list[dict[str, Any]]:
        """The FCM stand-in's record of every send request."""
        return self._call("GET", "sent")

    def clear_sent(self) -> None:
        self._call("DELETE", "sent")


# ------------------------------------------------------------------------------------------ client


class AppClient(EmulatorRest):
    """The Expo app's view of the backend, against the local emulators. Rules apply to each call
    unless `admin` (the emulators' owner credential, which bypasses them)."""

    def __init__(self, env: Mapping[str, str] | None = None, *, timeout_s: float = 30.0) -> None:
        super().__init__(env, timeout_s=timeout_s)
        self.session: Session | None = None

    def sign_in(self, email: str, password: str) -> Session:
        body = {"email": email, "password": password, "returnSecureToken": True}
        answer = _checked(self.accounts("signInWithPassword", body), f"sign-in as {email}")
        self.session = Session(answer["localId"], email, answer["idToken"])
        return self.session

    def create_user(self, *, uid: str, email: str, password: str, display_name: str | None = None) -> None:
        """Admin: create an Auth emulator account with a fixed uid (used to build the seed)."""
        account = {"localId": uid, "email": email, "password": password, "emailVerified": True}
        account |= {"displayName": display_name} if display_name else {}
        url = f"{self.auth_url}/identitytoolkit.googleapis.com/v1/projects/{self.project_id}/accounts"
        _checked(self.http.post(url, headers=_bearer(ADMIN_TOKEN), json=account), f"creating {email}")

    def _signed_in(self) -> Session:
        if self.session is None:
            raise AppClientError("not signed in: call sign_in() first")
        return self.session

    def _token(self, admin: bool) -> str:
        return ADMIN_TOKEN if admin else self._signed_in().id_token

    def upload(  # type: ignore[override]
        self, path: str, data: bytes, *, content_type: str,
        custom_metadata: Mapping[str, str] | None = None, admin: bool = False,
    ) -> dict[str, Any]:  # fmt: skip
        """Upload as the signed-in user; returns the object's metadata."""
        response = super().upload(
            path, data, content_type=content_type, custom_metadata=custom_metadata, token=self._token(admin)
        )
        return _checked(response, f"upload of {path}")

    def send_voice_message(
        self, chat_id: str, audio: bytes, *, ext: str = "m4a", content_type: str = "audio/mp4",
        language: str | None = None, message_id: str | None = None, admin: bool = False,
    ) -> SentVoice:  # fmt: skip
        """Upload audio to voice/{uid}/{chatId}/{messageId}.{ext} as the signed-in user (as admin,
        bypassing storage.rules, when `admin`: the path still names the signed-in user)."""
        message_id = message_id or auto_id()
        path = voice_path(self._signed_in().uid, chat_id, message_id, ext)
        hint = {"language": language} if language else None
        meta = self.upload(path, audio, content_type=content_type, custom_metadata=hint, admin=admin)
        return SentVoice(chat_id, message_id, path, meta.get("generation"), time.monotonic())

    def get_doc(self, path: str, *, admin: bool = False) -> dict[str, Any] | None:
        """A document's fields as Python, or None when it does not exist."""
        response = self.documents("GET", path, token=self._token(admin))
        if response.status_code == 404:
            return None
        return decode_fields(_checked(response, f"reading {path}").get("fields", {}))

    def list_docs(self, collection: str, *, admin: bool = False) -> dict[str, dict[str, Any]]:
        """The documents of a collection (first page), id → fields."""
        response = self.documents("GET", collection, token=self._token(admin), params={"pageSize": 300})
        documents = _checked(response, f"listing {collection}").get("documents", [])
        return {doc["name"].rsplit("/", 1)[-1]: decode_fields(doc.get("fields", {})) for doc in documents}

    def set_doc(self, path: str, data: Mapping[str, Any], *, admin: bool = False) -> None:
        """Create or overwrite a document."""
        fields = {k: encode_value(v) for k, v in data.items()}
        response = self.documents("PATCH", path, token=self._token(admin), json={"fields": fields})
        _checked(response, f"writing {path}")

    # ------------------------------------------------------------------------------------ chats
    # Membership needs consent (firestore.rules): a chat starts with its creator as the only member
    # and lists the others in `invited`; each invitee moves only its own uid into `members`
    # (accept) or out of `invited` (decline); a member removes only its own uid (leave). The
    # moves are array transforms, as the JS SDK's arrayUnion/arrayRemove send them, so concurrent
    # answers never overwrite each other.

    def _commit(self, write: dict[str, Any], what: str) -> None:
        response = self.documents("POST", verb="commit", token=self._token(False), json={"writes": [write]})
        _checked(response, what)

    def _chat_name(self, chat_id: str) -> str:
        return f"projects/{self.project_id}/databases/(default)/documents/chats/{chat_id}"

    def create_chat(self, invited: list[str] | tuple[str, ...] = (), *, title: str | None = None) -> str:
        """A new chat with the signed-in user as its only member and `invited` waiting to accept."""
        chat_id = auto_id()
        fields: dict[str, Any] = {"members": [self._signed_in().uid], "invited": list(invited)}
        fields |= {"title": title} if title is not None else {}
        document = {
            "name": self._chat_name(chat_id),
            "fields": {k: encode_value(v) for k, v in fields.items()},
        }
        created_at = {"fieldPath": "createdAt", "setToServerValue": "REQUEST_TIME"}
        write = {"update": document, "updateTransforms": [created_at], "currentDocument": {"exists": False}}
        self._commit(write, f"creating chat {chat_id}")
        return chat_id

    def _move_own_uid(self, chat_id: str, into_members: bool, out_of: str, what: str) -> None:
        uid = encode_value([self._signed_in().uid])["arrayValue"]
        transforms = [{"fieldPath": out_of, "removeAllFromArray": uid}]
        transforms += [{"fieldPath": "members", "appendMissingElements": uid}] if into_members else []
        transform = {"document": self._chat_name(chat_id), "fieldTransforms": transforms}
        self._commit({"transform": transform, "currentDocument": {"exists": True}}, f"{what} chat {chat_id}")

    def accept_invitation(self, chat_id: str) -> None:
        self._move_own_uid(chat_id, into_members=True, out_of="invited", what="accepting the invitation to")

    def decline_invitation(self, chat_id: str) -> None:
        self._move_own_uid(chat_id, into_members=False, out_of="invited", what="declining the invitation to")

    def leave_chat(self, chat_id: str) -> None:
        self._move_own_uid(chat_id, into_members=False, out_of="members", what="leaving")

    def invitations(self) -> dict[str, dict[str, Any]]:
        """The chats the signed-in user is invited to (id → fields): `where invited array-contains me`."""
        mine = {
            "field": {"fieldPath": "invited"},
            "op": "ARRAY_CONTAINS",
            "value": encode_value(self._signed_in().uid),
        }
        query = {"from": [{"collectionId": "chats"}], "where": {"fieldFilter": mine}}
        response = self.documents(
            "POST", verb="runQuery", token=self._token(False), json={"structuredQuery": query}
        )
        body = _checked(response, "listing invitations")
        if not isinstance(body, list) or any("error" in r for r in body):
            raise AppClientError(f"listing invitations failed: {body!r}"[:500], response.status_code, body)
        found = [r["document"] for r in body if "document" in r]
        return {doc["name"].rsplit("/", 1)[-1]: decode_fields(doc.get("fields", {})) for doc in found}

    def message_path(self, chat_id: str, message_id: str) -> str:
        return f"chats/{chat_id}/messages/{message_id}"

    def wait_for_message(
        self,
        chat_id: str,
        message_id: str,
        *,
        timeout_s: float = 120.0,
        poll_s: float = 0.25,
        admin: bool = False,
    ) -> MessageWait:
        """Poll the message until its status is ready, failed or rejected; MessageTimeout otherwise."""
        path = self.message_path(chat_id, message_id)
        started = time.monotonic()
        seen: list[tuple[str, float]] = []
        while True:
            last = self.get_doc(path, admin=admin)
            now = time.monotonic()
            status = (last or {}).get("status")
            if last is not None and (not seen or seen[-1][0] != status):
                seen.append((str(status), now - started))
            if status in FINAL_STATUSES:
                return MessageWait(doc=last or {}, statuses=seen, elapsed_s=now - started)
            if now >= started + timeout_s:
                state = "never appeared" if last is None else f"still {status!r}"
                statuses = [s for s, _ in seen] or "none"
                seen_text = f"statuses seen: {statuses}"
                raise MessageTimeout(f"message {path} {state} after {timeout_s:.0f} s ({seen_text})")
            time.sleep(poll_s)


def _checked(response: httpx.Response, what: str) -> Any:
    """The JSON body of a 200; AppClientError with the emulator's message otherwise."""
    try:
        body = response.json()
    except ValueError:
        body = response.text
    if response.status_code != 200:
        error = body.get("error", body) if isinstance(body, dict) else body
        message = error.get("message") or error if isinstance(error, dict) else str(error)[:500]
        raise AppClientError(f"{what} failed ({response.status_code}): {message}", response.status_code, body)
    return body
