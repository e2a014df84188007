"""Clients that reach the emulators the way the app does, so that security rules are evaluated.

- Auth emulator: users are signed up through the identitytoolkit REST API and get real emulator ID
  tokens (unsigned JWTs the other emulators accept).
- Firestore emulator: the Firestore REST API with `Authorization: Bearer <idToken>` (no header =
  unauthenticated). The Admin SDK would bypass the rules, so it only seeds and inspects.
- Storage emulator: the Firebase Storage REST API (`/v0/b/{bucket}/o`) the Firebase SDKs use, with
  `Authorization: Firebase <idToken>`.

All three go through local_stack's one REST client for the emulators (`EmulatorRest`).

Every request is classified as ALLOW (2xx) or DENY (403 PERMISSION_DENIED). Anything else (400, 404,
409, 5xx) raises: a malformed request must not pass for a denial, nor a missing document for an
allowed read.
"""

from __future__ import annotations

import base64
import json
import uuid
from dataclasses import dataclass
from typing import Any

import httpx

from local_stack.app_client import EmulatorRest, encode_value

ALLOW = "allow"
DENY = "deny"


class UnexpectedResponse(AssertionError):
    """The emulator answered neither 'allowed' nor 'permission denied'."""


def outcome(response: httpx.Response) -> str:
    """ALLOW or DENY for a rules-evaluated request; raises for any other answer."""
    if response.is_success:
        body = _json_or_none(response)
        # runQuery streams a JSON array; a failure can come inside a 200.
        if isinstance(body, list):
            for item in body:
                if isinstance(item, dict) and "error" in item:
                    return _error_outcome(response, item["error"])
        return ALLOW
    if response.status_code == 403:
        return DENY
    raise UnexpectedResponse(
        f"{response.request.method} {response.request.url} -> {response.status_code}: {response.text[:500]}"
    )


def _error_outcome(response: httpx.Response, error: dict) -> str:
    if error.get("code") == 403 or error.get("status") == "PERMISSION_DENIED":
        return DENY
    raise UnexpectedResponse(f"{response.request.method} {response.request.url} -> error {error}")


def _json_or_none(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def unique_id(prefix: str = "") -> str:
    return f"{prefix}{uuid.uuid4().hex[:20]}"


# ── Auth emulator ────────────────────────────────────────────────────────────────────────────────


@dataclass(frozen=True)
class User:
    uid: str
    id_token: str
    email: str


def sign_up(rest: EmulatorRest, email: str, password: str = "rules-test-pw") -> User:
    """A new email/password user on the Auth emulator, signed in: its uid and ID token."""
    response = rest.accounts("signUp", {"email": email, "password": password, "returnSecureToken": True})
    response.raise_for_status()
    body = response.json()
    return User(uid=body["localId"], id_token=body["idToken"], email=email)


def token_claims(id_token: str) -> dict:
    payload = id_token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


# ── Rules compiler ───────────────────────────────────────────────────────────────────────────────

COMPILE_PROJECT = "emochat-rules-compile-check"  # a scratch project: the app's rules stay loaded


@dataclass(frozen=True)
class Issue:
    line: int
    severity: str
    description: str


def compile_rules(rest: EmulatorRest, file_name: str, source: str) -> list[Issue]:
    """Compiles a rules file with the Firestore emulator's rules compiler (the rules language is the
    same for Storage, only the service's variables differ) into a scratch project.

    Returns the compiler's issues; raises when the source does not compile at all."""
    response = rest.http.put(
        f"{rest.firestore_url}/emulator/v1/projects/{COMPILE_PROJECT}:securityRules",
        json={"rules": {"files": [{"name": file_name, "content": source}]}},
    )
    if response.status_code != 200:
        raise AssertionError(f"{file_name} does not compile: {response.status_code} {response.text[:2000]}")
    return [
        Issue(
            line=int(issue.get("sourcePosition", {}).get("line", 0)),
            severity=issue.get("severity", ""),
            description=issue.get("description", ""),
        )
        for issue in response.json().get("issues", [])
    ]


# The identities of the access matrices: nobody signed in, the owner, a fellow chat member, a stranger;
# the Firestore matrix adds someone invited to the chat who has not accepted.
ANON, OWNER, MEMBER, OUTSIDER = "anonymous", "owner", "member", "non_member"
IDENTITIES = (ANON, OWNER, MEMBER, OUTSIDER)
INVITEE = "invitee"


# ── Firestore REST ───────────────────────────────────────────────────────────────────────────────


class RequestTime:
    """Stands for the server's request time (a REQUEST_TIME transform, i.e. serverTimestamp())."""


REQUEST_TIME = RequestTime()


def _split_transforms(data: dict) -> tuple[dict, list[dict]]:
    fields = {k: encode_value(v) for k, v in data.items() if not isinstance(v, RequestTime)}
    transforms = [
        {"fieldPath": k, "setToServerValue": "REQUEST_TIME"}
        for k, v in data.items()
        if isinstance(v, RequestTime)
    ]
    return fields, transforms


class FirestoreRest:
    """The Firestore REST API on the emulator as one identity (None = unauthenticated)."""

    def __init__(self, rest: EmulatorRest, id_token: str | None) -> None:
        self._rest = rest
        self._token = id_token
        self._root = f"projects/{rest.project_id}/databases/(default)/documents"

    def _name(self, path: str) -> str:
        return f"{self._root}/{path}"

    def get(self, path: str) -> str:
        return outcome(self._rest.documents("GET", path, token=self._token))

    def list(self, collection_path: str) -> str:
        return outcome(self._rest.documents("GET", collection_path, token=self._token))

    def query(
        self, parent: str, collection_id: str, where: dict | None = None, all_descendants: bool = False
    ) -> str:
        """runQuery on `collection_id` under `parent` ("" for top level); `where` is a
        structuredQuery filter, e.g. array_contains("members", uid); all_descendants makes it a
        collection-group query."""
        source: dict[str, Any] = {"collectionId": collection_id}
        if all_descendants:
            source["allDescendants"] = True
        query: dict[str, Any] = {"from": [source]}
        if where is not None:
            query["where"] = where
        return outcome(
            self._rest.documents(
                "POST", parent, verb="runQuery", token=self._token, json={"structuredQuery": query}
            )
        )

    def commit(self, write: dict) -> str:
        return outcome(
            self._rest.documents("POST", verb="commit", token=self._token, json={"writes": [write]})
        )

    def create(self, path: str, data: dict) -> str:
        fields, transforms = _split_transforms(data)
        write: dict[str, Any] = {
            "update": {"name": self._name(path), "fields": fields},
            "currentDocument": {"exists": False},
        }
        if transforms:
            write["updateTransforms"] = transforms
        return self.commit(write)

    def update(self, path: str, data: dict) -> str:
        """Changes the given top-level fields of an existing document (a merge)."""
        fields, transforms = _split_transforms(data)
        write: dict[str, Any] = {
            "update": {"name": self._name(path), "fields": fields},
            "updateMask": {"fieldPaths": list(fields)},
            "currentDocument": {"exists": True},
        }
        if transforms:
            write["updateTransforms"] = transforms
        return self.commit(write)

    def delete(self, path: str) -> str:
        return self.commit({"delete": self._name(path), "currentDocument": {"exists": True}})


def array_contains(field: str, value: str) -> dict:
    return {
        "fieldFilter": {"field": {"fieldPath": field}, "op": "ARRAY_CONTAINS", "value": encode_value(value)}
    }


# ── Storage REST (Firebase Storage API, as the SDKs use it) ─────────────────────────────────────


class StorageRest:
    """The Firebase Storage REST API on the emulator as one identity (None = unauthenticated)."""

    def __init__(self, rest: EmulatorRest, id_token: str | None) -> None:
        self._rest = rest
        self._token = id_token

    def upload(
        self, name: str, data: bytes, content_type: str | None, custom_metadata: dict | None = None
    ) -> str:
        """One-request multipart upload, as the Firebase SDKs send small files."""
        return outcome(
            self._rest.upload(
                name, data, content_type=content_type, custom_metadata=custom_metadata, token=self._token
            )
        )

    def get_metadata(self, name: str) -> str:
        return outcome(self._rest.objects("GET", name, token=self._token))

    def download(self, name: str) -> str:
        return outcome(self._rest.objects("GET", name, token=self._token, params={"alt": "media"}))

    def update_metadata(self, name: str, metadata: dict) -> str:
        return outcome(self._rest.objects("PATCH", name, token=self._token, json=metadata))

    def delete(self, name: str) -> str:
        return outcome(self._rest.objects("DELETE", name, token=self._token))

    def list(self, prefix: str) -> str:
        """One level of a folder, as the SDKs' listAll pages it (prefix ends with "/")."""
        params = {"prefix": prefix, "delimiter": "/"}
        return outcome(self._rest.objects("GET", token=self._token, params=params))
