"""The local stack came up as `python -m local_stack exec` promises.

Emulators reachable at the contract's ports with the functions loaded, Firestore rules enforced, the
seed (emulator-data/seed.json) present in Auth and Firestore, the Storage emulator accepting an
upload as the app sends it, and the API stand-ins answering.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import socket
from pathlib import Path
from typing import Any

import httpx
import pytest

from local_stack.app_client import AppClient, AppClientError, auto_id

pytestmark = pytest.mark.stack

PROJECT = "demo-emochat"
CONTRACT_PORTS = {"auth": 9099, "firestore": 8080, "storage": 9199, "functions": 5001}
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def seed() -> dict[str, Any]:
    return json.loads(
        Path(os.environ.get("EMOCHAT_SEED_FILE", REPO / "emulator-data" / "seed.json")).read_text()
    )


@pytest.fixture
def client():
    with AppClient() as app:
        yield app


def _port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1.0)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def test_environment_points_at_the_contract_emulators() -> None:
    assert os.environ["GCLOUD_PROJECT"] == PROJECT
    assert os.environ["FIRESTORE_EMULATOR_HOST"] == "127.0.0.1:8080"
    assert os.environ["FIREBASE_AUTH_EMULATOR_HOST"] == "127.0.0.1:9099"
    assert os.environ["FIREBASE_STORAGE_EMULATOR_HOST"] == "127.0.0.1:9199"
    assert os.environ["STORAGE_EMULATOR_HOST"] == "http://127.0.0.1:9199"
    assert os.environ["EMOCHAT_BUCKET"] == "demo-emochat.appspot.com"


def test_emulators_are_running_on_the_contract_ports() -> None:
    hub = httpx.get(f"http://{os.environ['FIREBASE_EMULATOR_HUB']}/emulators", timeout=5).json()
    for name, port in CONTRACT_PORTS.items():
        assert name in hub, f"{name} emulator not running (hub lists {sorted(hub)})"
        assert hub[name]["port"] == port
        assert _port_open(port), f"{name} port {port} not accepting connections"


def test_functions_emulator_loaded_the_voice_trigger() -> None:
    backends = httpx.get("http://127.0.0.1:5001/backends", timeout=5).json()["backends"]
    triggers = [t for backend in backends for t in backend.get("functionTriggers", [])]
    names = {t.get("entryPoint") or t.get("name") for t in triggers}
    assert "process_voice_message" in names, names
    voice = next(t for t in triggers if (t.get("entryPoint") or t.get("name")) == "process_voice_message")
    assert "storage" in json.dumps(voice).lower()


def test_seeded_accounts_sign_in_with_their_uids(client: AppClient, seed: dict[str, Any]) -> None:
    for user in seed["auth"]:
        session = client.sign_in(user["email"], user["password"])
        assert session.uid == user["uid"]


def test_seeded_firestore_documents_are_present(client: AppClient, seed: dict[str, Any]) -> None:
    for path, expected in seed["firestore"].items():
        doc = client.get_doc(path, admin=True)
        assert doc is not None, f"{path} missing"
        for key, value in expected.items():
            if isinstance(value, dict) and set(value) == {"$timestamp"}:
                want = dt.datetime.fromisoformat(value["$timestamp"].replace("Z", "+00:00"))
                assert doc[key] == want, path
            else:
                assert doc[key] == value, f"{path}.{key}"


def test_seed_has_two_members_in_a_chat_with_devices(seed: dict[str, Any]) -> None:
    uids = {user["uid"] for user in seed["auth"]}
    chats = [d for p, d in seed["firestore"].items() if p.startswith("chats/") and p.count("/") == 1]
    assert any(set(chat["members"]) == uids for chat in chats)
    for uid in uids:
        assert seed["firestore"][f"users/{uid}"]["alertPrefs"]["enabled"] in (True, False)
        assert any(p.startswith(f"users/{uid}/devices/") for p in seed["firestore"])


def test_firestore_rules_refuse_an_unauthenticated_write(client: AppClient) -> None:
    fields = {"displayName": {"stringValue": "x"}}
    response = client.documents("PATCH", f"users/intruder-{auto_id()}", json={"fields": fields})
    assert response.status_code == 403, response.text


def test_firestore_rules_refuse_an_unauthenticated_read_of_a_chat(
    client: AppClient, seed: dict[str, Any]
) -> None:
    chat = next(p for p in seed["firestore"] if p.startswith("chats/") and p.count("/") == 1)
    assert client.documents("GET", chat).status_code == 403


def test_a_member_reads_their_chat_and_profile(client: AppClient, seed: dict[str, Any]) -> None:
    user = seed["auth"][0]
    session = client.sign_in(user["email"], user["password"])
    chat = next(
        p for p, d in seed["firestore"].items()
        if p.startswith("chats/") and p.count("/") == 1 and session.uid in d["members"]
    )  # fmt: skip
    assert session.uid in client.get_doc(chat)["members"]
    assert client.get_doc(f"users/{session.uid}")["displayName"] == user["displayName"]


def test_a_user_cannot_write_another_users_profile(client: AppClient, seed: dict[str, Any]) -> None:
    me, other = seed["auth"][0], seed["auth"][1]
    client.sign_in(me["email"], me["password"])
    with pytest.raises(AppClientError) as refused:
        client.set_doc(f"users/{other['uid']}", {"displayName": "hijacked"})
    assert refused.value.status == 403


def test_storage_accepts_an_upload_as_the_app_sends_it(client: AppClient, seed: dict[str, Any]) -> None:
    """Also proves the storage rules runtime (real or stand-in) answers the emulator."""
    user = seed["auth"][0]
    client.sign_in(user["email"], user["password"])
    # Not under voice/: process_voice_message ignores it.
    path = f"stack-check/{client.session.uid}/{auto_id()}.txt"
    if os.environ.get("EMOCHAT_STORAGE_RULES_ENFORCED") == "1":
        with pytest.raises(AppClientError) as refused:
            client.upload(path, b"hello", content_type="text/plain")
        assert refused.value.status == 403
    else:
        meta = client.upload(path, b"hello", content_type="text/plain", custom_metadata={"k": "v"})
        assert meta["name"] == path
        assert meta["contentType"] == "text/plain"
        assert meta["metadata"] == {"k": "v"}
        assert int(meta["size"]) == 5


@pytest.mark.parametrize("name", ["stt", "fcm"])
def test_stand_in_is_healthy(name: str) -> None:
    url = {"stt": os.environ["STT_BASE_URL"].removesuffix("/v1"), "fcm": os.environ["FCM_ENDPOINT"]}[name]
    assert httpx.get(f"{url}/health", timeout=10).status_code == 200


def test_stress_stand_in_is_healthy_when_the_checkpoint_exists() -> None:
    if not (REPO / "stress_model" / "checkpoints" / "demo").exists():
        pytest.skip("stress_model/checkpoints/demo not built yet: the stress stand-in cannot load")
    assert httpx.get(f"{os.environ['STRESS_ENDPOINT_URL']}/health", timeout=10).status_code == 200
