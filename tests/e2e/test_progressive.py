"""Results as soon as they exist, end to end (issue 14): the first of speech-to-text and stress
scoring to answer is written into the message while it is still processing; the second finishes it.

A delay fault on one stand-in (local_stack/faults.py) fixes which service answers first, below the
local client timeouts in functions/.env.local, so the slow call still succeeds. The test polls the
message as the app's listener would and records every distinct state it sees.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
from e2e_helpers import MINA_UID, SEED_CHAT, STRESS, STT, espeak_m4a

from local_stack.app_client import FINAL_STATUSES, AppClient

pytestmark = [
    pytest.mark.stack,
    pytest.mark.usefixtures("clean_faults"),
]

WAIT_S = 180.0
DELAY_S = 4.0  # well below the local STT_TIMEOUT_S and STRESS_TIMEOUT_S (10 s)


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    return espeak_m4a("The lighthouse keeper waved from the rocks.", tmp_path_factory.mktemp("p") / "p.m4a")


def states_until_final(app: AppClient, message_id: str) -> list[dict[str, Any]]:
    """Every distinct (status, has text, has stress) state of the message, in order, until final."""
    path = app.message_path(SEED_CHAT, message_id)
    seen: list[dict[str, Any]] = []
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        doc = app.get_doc(path)
        if doc is not None:
            key = (doc["status"], doc.get("text") is not None, doc.get("stress") is not None)
            if (
                not seen
                or (seen[-1]["status"], seen[-1]["text"] is not None, seen[-1]["stress"] is not None) != key
            ):
                seen.append(doc)
            if doc["status"] in FINAL_STATUSES:
                return seen
        time.sleep(0.1)
    pytest.fail(f"message {message_id} not final after {WAIT_S:.0f} s: {[d['status'] for d in seen]}")


@pytest.mark.parametrize("slow", ["stt", "stress"])
def test_first_result_is_visible_while_processing(slow: str, app: AppClient, clip: bytes) -> None:
    (STT if slow == "stt" else STRESS).script([{"delay_s": DELAY_S}])
    sent = app.send_voice_message(SEED_CHAT, clip, language="en")
    states = states_until_final(app, sent.message_id)

    partial = [
        d
        for d in states
        if d["status"] == "processing" and (d["text"] is not None or d["stress"] is not None)
    ]
    assert partial, (
        f"no partial result while processing: {[(d['status'], d['text'], d['stress']) for d in states]}"
    )
    first = partial[0]
    if slow == "stt":  # stress answered first
        assert first["stress"] is not None and first["text"] is None
        assert 0 <= first["stress"]["score"] <= 100 and first["timings"]["stressMs"] > 0
    else:
        assert first["text"] is not None and first["stress"] is None
        assert "lighthouse" in first["text"].lower() and first["timings"]["sttMs"] > 0
    assert first["error"] is None and first["senderId"] == MINA_UID

    final = states[-1]
    assert final["status"] == "ready", final.get("error")
    assert "lighthouse" in final["text"].lower() and final["stress"] is not None
    # The early result is the one the message keeps.
    kept = "stress" if slow == "stt" else "text"
    assert final[kept] == first[kept]
