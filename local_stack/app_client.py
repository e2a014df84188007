"""Acts as the Expo app against the local emulators: sign in, upload a voice message, read the result.

Speaks the same REST APIs the Firebase JS SDK uses, so what the demo and the end-to-end tests do is
what the app does:

- Auth emulator: identitytoolkit ``accounts:signInWithPassword`` (email/password) for an ID token;
- Storage emulator: Firebase Storage ``POST /v0/b/{bucket}/o?name=...`` with
  ``X-Goog-Upload-Protocol: multipart`` (one request: metadata part + bytes part), as
  ``uploadBytes`` does, authorised by ``Authorization: Firebase <ID token>``. One request on
  purpose: the Storage emulator truncates resumable uploads sent in several chunks;
- Firestore emulator: REST ``GET .../documents/{path}`` with the ID token (rules apply), or as
  admin (``Bearer owner``, the emulator's rules bypass) for checks the app could not make.

Only ``httpx``; the values of Firestore's REST encoding are decoded into plain Python
(timestamps become aware datetimes).
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

PROJECT_ID = "demo-emochat"
BUCKET = "demo-emochat.appspot.com"
HOST = "127.0.0.1"
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
    """The message did not reach a final status in time; `last` is what was seen last (or None)."""

    def __init__(self, message: str, last: dict[str, Any] | None) -> None:
        super().__init__(message)
        self.last = last


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
    refresh_token: str


@dataclass(frozen=True)
class SentVoice:
    chat_id: str
    message_id: str
    path: str
    content_type: str
    size_bytes: int
    generation: str | None
    uploaded_at: float  # time.monotonic() when the upload request returned


@dataclass
class MessageWait:
    """What wait_for_message saw: the final document and when each status first appeared."""

    doc: dict[str, Any]
    statuses: list[tuple[str, float]] = field(default_factory=list)  # (status, seconds since start)
    elapsed_s: float = 0.0


# ------------------------------------------------------------------------------- Firestore values


def decode_value(value: Mapping[str, Any]) -> Any:
    """One Firestore REST `Value` to Python."""
    if "nullValue" in value:
        return None
    if "booleanValue" in value:
        return bool(value["booleanValue"])
    if "integerValue" in value:
        return int(value["integerValue"])
    if "doubleValue" in value:
        return float(value["doubleValue"])
    if "timestampValue" in value:
        return _parse_timestamp(value["timestampValue"])
    if "stringValue" in value:
        return value["stringValue"]
    if "bytesValue" in value:
        return base64.b64decode(value["bytesValue"])
    if "referenceValue" in value:
        return value["referenceValue"]
    if "geoPointValue" in value:
        point = value["geoPointValue"]
        return {"latitude": point.get("latitude", 0.0), "longitude": point.get("longitude", 0.0)}
    if "arrayValue" in value:
        return [decode_value(v) for v in value["arrayValue"].get("values", [])]
    if "mapValue" in value:
        return decode_fields(value["mapValue"].get("fields", {}))
    raise ValueError(f"unknown Firestore value: {value!r}")


def decode_fields(fields: Mapping[str, Any]) -> dict[str, Any]:
    return {key: decode_value(value) for key, value in fields.items()}


def encode_value(value: Any) -> dict[str, Any]:
    """Python to a Firestore REST `Value` ({"$timestamp": iso} and datetimes become timestamps)."""
    if value is None:
        return {"nullValue": None}
    if isinstance(value, bool):
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


def _parse_timestamp(text: str) -> dt.datetime:
    # RFC 3339 with up to nanoseconds; Python keeps microseconds.
    main, _, rest = text.partition(".")
    if rest:
        digits = "".join(ch for ch in rest if ch.isdigit())
        zone = rest[len(digits) :]
        text = f"{main}.{digits[:6].ljust(6, '0')}{zone}"
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


# ------------------------------------------------------------------------------------------ client


class AppClient:
    """The Expo app's view of the backend, against the local emulators."""

    def __init__(
        self,
        *,
        project_id: str = PROJECT_ID,
        bucket: str = BUCKET,
        auth_host: str = f"{HOST}:9099",
        firestore_host: str = f"{HOST}:8080",
        storage_host: str = f"{HOST}:9199",
        timeout_s: float = 30.0,
    ) -> None:
        self.project_id = project_id
        self.bucket = bucket
        self.auth_url = f"http://{auth_host}"
        self.firestore_url = f"http://{firestore_host}"
        self.storage_url = f"http://{storage_host}"
        self.http = httpx.Client(timeout=timeout_s)
        self.session: Session | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **kwargs: Any) -> AppClient:
        """Hosts from the emulator variables that `python -m local_stack exec` sets."""
        env = os.environ if env is None else env
        storage = env.get("FIREBASE_STORAGE_EMULATOR_HOST", f"{HOST}:9199")
        return cls(
            project_id=env.get("GCLOUD_PROJECT", PROJECT_ID),
            bucket=env.get("EMOCHAT_BUCKET", BUCKET),
            auth_host=env.get("FIREBASE_AUTH_EMULATOR_HOST", f"{HOST}:9099"),
            firestore_host=env.get("FIRESTORE_EMULATOR_HOST", f"{HOST}:8080"),
            storage_host=storage.removeprefix("http://"),
            **kwargs,
        )

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> AppClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------------------------- auth

    def sign_in(self, email: str, password: str) -> Session:
        response = self.http.post(
            f"{self.auth_url}/identitytoolkit.googleapis.com/v1/accounts:signInWithPassword",
            params={"key": "local-emulator-api-key"},
            json={"email": email, "password": password, "returnSecureToken": True},
        )
        body = _json(response)
        if response.status_code != 200:
            raise AppClientError(
                f"sign-in as {email} failed: {_error_message(body)}", response.status_code, body
            )
        self.session = Session(body["localId"], email, body["idToken"], body.get("refreshToken", ""))
        return self.session

    def create_user(self, *, uid: str, email: str, password: str, display_name: str | None = None) -> None:
        """Admin: create an Auth emulator account with a fixed uid (used to build the seed)."""
        payload: dict[str, Any] = {
            "localId": uid,
            "email": email,
            "password": password,
            "emailVerified": True,
        }
        if display_name:
            payload["displayName"] = display_name
        response = self.http.post(
            f"{self.auth_url}/identitytoolkit.googleapis.com/v1/projects/{self.project_id}/accounts",
            headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
            json=payload,
        )
        if response.status_code != 200:
            body = _json(response)
            raise AppClientError(
                f"creating {email} failed: {_error_message(body)}", response.status_code, body
            )

    def _token(self, id_token: str | None) -> str:
        if id_token:
            return id_token
        if self.session is None:
            raise AppClientError("not signed in: call sign_in() first")
        return self.session.id_token

    # ---------------------------------------------------------------------------------- storage

    def upload(
        self,
        path: str,
        data: bytes,
        *,
        content_type: str,
        custom_metadata: Mapping[str, str] | None = None,
        id_token: str | None = None,
        admin: bool = False,
    ) -> dict[str, Any]:
        """Firebase Storage REST single-request (multipart) upload; returns the object's metadata.
        storage.rules apply unless admin (the emulator's owner credential, which bypasses them)."""
        metadata: dict[str, Any] = {"name": path, "contentType": content_type}
        if custom_metadata:
            # The JS SDK's customMetadata travels as "metadata" on the wire (and comes back so).
            metadata["metadata"] = dict(custom_metadata)
        boundary = uuid.uuid4().hex
        body = b"".join(
            [
                f"--{boundary}\r\nContent-Type: application/json; charset=utf-8\r\n\r\n".encode(),
                json.dumps(metadata).encode(),
                f"\r\n--{boundary}\r\nContent-Type: {content_type}\r\n\r\n".encode(),
                data,
                f"\r\n--{boundary}--".encode(),
            ]
        )
        response = self.http.post(
            f"{self.storage_url}/v0/b/{self.bucket}/o",
            params={"name": path},
            headers={
                "Authorization": f"Firebase {ADMIN_TOKEN if admin else self._token(id_token)}",
                "X-Goog-Upload-Protocol": "multipart",
                "Content-Type": f"multipart/related; boundary={boundary}",
            },
            content=body,
        )
        result = _json(response)
        if response.status_code != 200:
            raise AppClientError(
                f"upload of {path} failed ({response.status_code}): {_error_message(result)}",
                response.status_code,
                result,
            )
        return result

    def send_voice_message(
        self,
        chat_id: str,
        audio: bytes,
        *,
        ext: str = "m4a",
        content_type: str = "audio/mp4",
        language: str | None = None,
        message_id: str | None = None,
        id_token: str | None = None,
        uid: str | None = None,
        admin: bool = False,
    ) -> SentVoice:
        """Upload audio as the signed-in user to voice/{uid}/{chatId}/{messageId}.{ext} (as admin,
        bypassing storage.rules, when `admin`: the path still names the signed-in user or `uid`)."""
        if uid is None:
            if self.session is None:
                raise AppClientError("not signed in: call sign_in() first")
            uid = self.session.uid
        message_id = message_id or auto_id()
        path = voice_path(uid, chat_id, message_id, ext)
        meta = self.upload(
            path,
            audio,
            content_type=content_type,
            custom_metadata={"language": language} if language else None,
            id_token=id_token,
            admin=admin,
        )
        return SentVoice(
            chat_id=chat_id,
            message_id=message_id,
            path=path,
            content_type=content_type,
            size_bytes=len(audio),
            generation=meta.get("generation"),
            uploaded_at=time.monotonic(),
        )

    # -------------------------------------------------------------------------------- firestore

    def _doc_url(self, path: str) -> str:
        # Document ids may hold any character but "/": each segment is percent-encoded ("#", "%", "?").
        encoded = "/".join(quote(segment, safe="") for segment in path.split("/"))
        return f"{self.firestore_url}/v1/projects/{self.project_id}/databases/(default)/documents/{encoded}"

    def get_doc(
        self, path: str, *, admin: bool = False, id_token: str | None = None
    ) -> dict[str, Any] | None:
        """A document's fields as Python, or None when it does not exist. Rules apply unless admin."""
        token = ADMIN_TOKEN if admin else self._token(id_token)
        response = self.http.get(self._doc_url(path), headers={"Authorization": f"Bearer {token}"})
        if response.status_code == 404:
            return None
        body = _json(response)
        if response.status_code != 200:
            raise AppClientError(f"reading {path} failed: {_error_message(body)}", response.status_code, body)
        return decode_fields(body.get("fields", {}))

    def list_docs(
        self, collection: str, *, admin: bool = False, id_token: str | None = None
    ) -> dict[str, dict[str, Any]]:
        """The documents of a collection (first page), id → fields. Rules apply unless admin."""
        token = ADMIN_TOKEN if admin else self._token(id_token)
        response = self.http.get(
            self._doc_url(collection), params={"pageSize": 300}, headers={"Authorization": f"Bearer {token}"}
        )
        body = _json(response)
        if response.status_code != 200:
            raise AppClientError(
                f"listing {collection} failed: {_error_message(body)}", response.status_code, body
            )
        return {
            doc["name"].rsplit("/", 1)[-1]: decode_fields(doc.get("fields", {}))
            for doc in body.get("documents", [])
        }

    def set_doc(
        self, path: str, data: Mapping[str, Any], *, admin: bool = False, id_token: str | None = None
    ) -> None:
        """Create or overwrite a document. Rules apply unless admin."""
        token = ADMIN_TOKEN if admin else self._token(id_token)
        response = self.http.patch(
            self._doc_url(path),
            headers={"Authorization": f"Bearer {token}"},
            json={"fields": {k: encode_value(v) for k, v in data.items()}},
        )
        if response.status_code != 200:
            body = _json(response)
            raise AppClientError(f"writing {path} failed: {_error_message(body)}", response.status_code, body)

    # ------------------------------------------------------------------------------------ chats
    # Membership needs consent (firestore.rules): a chat starts with its creator as the only member
    # and lists the others in `invited`; each invitee moves only its own uid into `members`
    # (accept) or out of `invited` (decline); a member removes only its own uid (leave). The
    # moves are array transforms, as the JS SDK's arrayUnion/arrayRemove send them, so concurrent
    # answers never overwrite each other.

    def _signed_in(self) -> Session:
        if self.session is None:
            raise AppClientError("not signed in: call sign_in() first")
        return self.session

    def _commit(self, write: dict[str, Any], what: str) -> None:
        response = self.http.post(
            f"{self.firestore_url}/v1/projects/{self.project_id}/databases/(default)/documents:commit",
            headers={"Authorization": f"Bearer {self._signed_in().id_token}"},
            json={"writes": [write]},
        )
        if response.status_code != 200:
            body = _json(response)
            raise AppClientError(f"{what} failed: {_error_message(body)}", response.status_code, body)

    def _doc_name(self, path: str) -> str:
        return f"projects/{self.project_id}/databases/(default)/documents/{path}"

    def create_chat(self, invited: list[str] | tuple[str, ...] = (), *, title: str | None = None) -> str:
        """A new chat with the signed-in user as its only member and `invited` waiting to accept."""
        chat_id = auto_id()
        fields: dict[str, Any] = {"members": [self._signed_in().uid], "invited": list(invited)}
        if title is not None:
            fields["title"] = title
        self._commit(
            {
                "update": {
                    "name": self._doc_name(f"chats/{chat_id}"),
                    "fields": {k: encode_value(v) for k, v in fields.items()},
                },
                "updateTransforms": [{"fieldPath": "createdAt", "setToServerValue": "REQUEST_TIME"}],
                "currentDocument": {"exists": False},
            },
            f"creating chat {chat_id}",
        )
        return chat_id

    def _move_own_uid(self, chat_id: str, into_members: bool, out_of: str, what: str) -> None:
        uid = encode_value([self._signed_in().uid])["arrayValue"]
        transforms = [{"fieldPath": out_of, "removeAllFromArray": uid}]
        if into_members:
            transforms.append({"fieldPath": "members", "appendMissingElements": uid})
        self._commit(
            {
                "transform": {"document": self._doc_name(f"chats/{chat_id}"), "fieldTransforms": transforms},
                "currentDocument": {"exists": True},
            },
            f"{what} chat {chat_id}",
        )

    def accept_invitation(self, chat_id: str) -> None:
        self._move_own_uid(chat_id, into_members=True, out_of="invited", what="accepting the invitation to")

    def decline_invitation(self, chat_id: str) -> None:
        self._move_own_uid(chat_id, into_members=False, out_of="invited", what="declining the invitation to")

    def leave_chat(self, chat_id: str) -> None:
        self._move_own_uid(chat_id, into_members=False, out_of="members", what="leaving")

    def invitations(self) -> dict[str, dict[str, Any]]:
        """The chats the signed-in user is invited to (id → fields): `where invited array-contains me`."""
        session = self._signed_in()
        query = {
            "from": [{"collectionId": "chats"}],
            "where": {
                "fieldFilter": {
                    "field": {"fieldPath": "invited"},
                    "op": "ARRAY_CONTAINS",
                    "value": encode_value(session.uid),
                }
            },
        }
        response = self.http.post(
            f"{self.firestore_url}/v1/{self._doc_name('').rstrip('/')}:runQuery",
            headers={"Authorization": f"Bearer {session.id_token}"},
            json={"structuredQuery": query},
        )
        body = _json(response)
        if response.status_code != 200 or not isinstance(body, list) or any("error" in r for r in body):
            raise AppClientError(
                f"listing invitations failed: {_error_message(body)}", response.status_code, body
            )
        return {
            r["document"]["name"].rsplit("/", 1)[-1]: decode_fields(r["document"].get("fields", {}))
            for r in body
            if "document" in r
        }

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
        deadline = started + timeout_s
        seen: list[tuple[str, float]] = []
        last: dict[str, Any] | None = None
        while True:
            last = self.get_doc(path, admin=admin)
            now = time.monotonic()
            status = (last or {}).get("status")
            if last is not None and (not seen or seen[-1][0] != status):
                seen.append((str(status), now - started))
            if status in FINAL_STATUSES:
                return MessageWait(doc=last or {}, statuses=seen, elapsed_s=now - started)
            if now >= deadline:
                state = "never appeared" if last is None else f"still {status!r}"
                raise MessageTimeout(
                    f"message {path} {state} after {timeout_s:.0f} s (statuses seen: "
                    f"{[s for s, _ in seen] or 'none'})",
                    last,
                )
            time.sleep(poll_s)


def _json(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return response.text


def _error_message(body: Any) -> str:
    if isinstance(body, dict):
        error = body.get("error", body)
        if isinstance(error, dict):
            return str(error.get("message") or error)
        return str(error)
    return str(body)[:500]
