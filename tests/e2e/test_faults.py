"""process_voice_message against misbehaving services, end to end.

Each test scripts faults on the local stand-ins (POST /_emochat/faults: the OpenAI-compatible STT
server and the Hugging Face stress endpoint), uploads one voice message as the app does, and checks
the message the real trigger writes: within the retry budget it recovers (ready); beyond it, it
ends failed with the failing service's code and keeps what the other service produced.

The stand-ins' fault lists are global and consumed one per API request, in order. So these tests
run one at a time (as pytest does by default: never with xdist here), every test starts and ends
with empty fault lists (the `clean_faults` fixture), only one message is in flight while faults are
scripted, and the stand-ins' request counters must show exactly the attempts that message made.

The retry budgets are the functions' params. For the timeout cases to take seconds, not minutes,
functions/.env.local sets short local values (STT_TIMEOUT_S, STRESS_TIMEOUT_S, STRESS_DEADLINE_S);
the production defaults live in functions/emochat/config.py. The tests read the values in effect.

Also here: the Functions emulator's log (what Cloud Logging would get) has one outcome line per
message, with its status and error code, and never the transcript.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from e2e_helpers import (
    SEED_CHAT,
    STRESS,
    STT,
    espeak_m4a,
    function_log,
    outcome_log_entry,
)

from local_stack.app_client import AppClient, StandIn

pytestmark = [pytest.mark.stack, pytest.mark.usefixtures("clean_faults")]

REPO = Path(__file__).resolve().parents[2]
WAIT_S = 180.0
PHRASE = "The weather is lovely today, so we will walk along the harbour to the lighthouse."


def function_param(name: str, default: int) -> int:
    """A param's value as the Functions emulator sees it: functions/.env.local, else the code default."""
    env_local = REPO / "functions" / ".env.local"
    lines = env_local.read_text().splitlines() if env_local.exists() else []
    for line in lines:
        key, sep, value = line.partition("=")
        if sep and key.strip() == name:
            return int(value.strip())
    return default


STT_TIMEOUT_S = function_param("STT_TIMEOUT_S", 60)
STT_ATTEMPTS = function_param("STT_MAX_RETRIES", 2) + 1
STRESS_TIMEOUT_S = function_param("STRESS_TIMEOUT_S", 30)
STRESS_DEADLINE_S = function_param("STRESS_DEADLINE_S", 150)
STRESS_MAX_ATTEMPTS = 6  # HuggingFaceStressScorer's default, which wiring.py keeps
LONG_TIMEOUTS = STT_TIMEOUT_S > 20 or STRESS_TIMEOUT_S > 20 or STRESS_DEADLINE_S > 60
LONG_TIMEOUTS_REASON = (
    "timeout faults wait out the client timeouts: set short STT_TIMEOUT_S, STRESS_TIMEOUT_S and "
    "STRESS_DEADLINE_S in functions/.env.local (see its fault-test lines)"
)


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    return espeak_m4a(PHRASE, tmp_path_factory.mktemp("faults") / "harbour.m4a")


def wait_for_count(service: StandIn, at_least: int, settle_s: float) -> int:
    """The stand-in's request count once it reaches `at_least` (a delayed request is counted when
    its scripted delay ends, after the client gave up on it), or whatever it is after settle_s."""
    deadline = time.monotonic() + settle_s
    while True:
        count = service.request_count()
        if count >= at_least or time.monotonic() >= deadline:
            return count
        time.sleep(0.2)


def assert_not_logged(text: str | None) -> None:
    """No transcript in the function's log: not whole, and none of its longer (distinctive) words."""
    path = function_log()
    if not text or path is None:
        return
    log = path.read_text(errors="replace").lower()
    assert text.lower() not in log
    distinctive = {w for w in re.findall(r"[a-z']+", text.lower()) if len(w) >= 7}
    leaked = {w for w in distinctive if w in log}
    assert not leaked, f"transcript words in the Functions log: {sorted(leaked)}"


# ── The fault table ───────────────────────────────────────────────────────────────────────────────


@dataclass(frozen=True)
class FaultCase:
    stt: list[dict[str, Any]] = field(default_factory=list)
    stress: list[dict[str, Any]] = field(default_factory=list)
    status: str = "ready"
    code: str | None = None
    stt_calls: int = 1  # requests the message must make to each stand-in (the faulted ones included)
    stress_calls: int | None = 1  # None: not pinned down (bounded by the deadline's backoff)
    timeouts: bool = False  # waits out client timeouts (or a deadline): needs the short local budgets
    min_stress_ms: int = 0


STT_DELAY = {"delay_s": STT_TIMEOUT_S + 2}
STRESS_DELAY = {"delay_s": STRESS_TIMEOUT_S + 2}

FAULTS = {
    # Within the budget: the message recovers.
    "stt_429_retry_after": FaultCase(stt=[{"status": 429, "retry_after": 1}], stt_calls=2),
    "stt_500_once": FaultCase(stt=[{"status": 500}], stt_calls=2),
    "stt_503_once": FaultCase(stt=[{"status": 503}], stt_calls=2),
    "stt_timeout_once": FaultCase(stt=[STT_DELAY], stt_calls=2, timeouts=True),
    "stress_429_retry_after": FaultCase(stress=[{"status": 429, "retry_after": 1}], stress_calls=2),
    "stress_500_once": FaultCase(stress=[{"status": 500}], stress_calls=2),
    # HF's scale-from-zero answer, {"estimated_time": 5.0}: waited out by the estimate, not a 1 s backoff.
    "stress_503_warming_up": FaultCase(stress=[{"status": 503}], stress_calls=2, min_stress_ms=5000),
    "stress_timeout_once": FaultCase(stress=[STRESS_DELAY], stress_calls=2, timeouts=True),
    "stress_malformed_json_once": FaultCase(stress=[{"malformed": True}], stress_calls=2),
    # Beyond it: failed with the failing service's code, the other service's result kept.
    "stt_500_exhausted": FaultCase(
        stt=[{"status": 500, "times": 10}], status="failed", code="stt_unavailable", stt_calls=STT_ATTEMPTS
    ),
    "stt_429_exhausted": FaultCase(
        stt=[{"status": 429, "retry_after": 0.5, "times": 10}],
        status="failed",
        code="stt_rate_limited",
        stt_calls=STT_ATTEMPTS,
    ),
    "stt_timeout_exhausted": FaultCase(
        stt=[{**STT_DELAY, "times": 10}],
        status="failed",
        code="stt_timeout",
        stt_calls=STT_ATTEMPTS,
        timeouts=True,
    ),
    # The openai client does not retry a 200 whose body it cannot parse; the adapter tries once more.
    "stt_malformed_json_once": FaultCase(stt=[{"malformed": True}], stt_calls=2),
    "stt_wrong_shape_once": FaultCase(stt=[{"malformed": "shape"}], stt_calls=2),
    "stt_malformed_json_exhausted": FaultCase(
        stt=[{"malformed": True, "times": 10}], status="failed", code="stt_bad_response", stt_calls=2
    ),
    "stress_500_exhausted": FaultCase(
        stress=[{"status": 500, "retry_after": 1, "times": 10}],
        status="failed",
        code="stress_unavailable",
        stress_calls=STRESS_MAX_ATTEMPTS,
    ),
    "stress_wrong_shape_exhausted": FaultCase(
        stress=[{"malformed": "shape", "times": 10}],
        status="failed",
        code="stress_bad_response",
        stress_calls=None,
        timeouts=True,  # backs off until STRESS_DEADLINE_S runs out
    ),
    "both_exhausted": FaultCase(
        stt=[{"status": 500, "times": 10}],
        stress=[{"status": 500, "retry_after": 1, "times": 10}],
        status="failed",
        code="services_unavailable",
        stt_calls=STT_ATTEMPTS,
        stress_calls=STRESS_MAX_ATTEMPTS,
    ),
}


@pytest.mark.parametrize("case", [pytest.param(c, id=k) for k, c in FAULTS.items()])
def test_fault(case: FaultCase, app: AppClient, clip: bytes) -> None:
    if case.timeouts and LONG_TIMEOUTS:
        pytest.skip(LONG_TIMEOUTS_REASON)
    stt_before, stress_before = STT.request_count(), STRESS.request_count()
    STT.script(case.stt)
    STRESS.script(case.stress)

    sent = app.send_voice_message(SEED_CHAT, clip, language="en")
    doc = app.wait_for_message(SEED_CHAT, sent.message_id, timeout_s=WAIT_S).doc

    assert doc["status"] == case.status, doc.get("error")
    stt_failed = case.code is not None and case.code.startswith(("stt_", "services_"))
    stress_failed = case.code is not None and case.code.startswith(("stress_", "services_"))
    if case.status == "ready":
        assert doc["error"] is None
    else:
        assert doc["error"]["code"] == case.code and doc["error"]["message"], doc["error"]
    # What the other service produced is kept; a failed service leaves its field null.
    if stt_failed:
        assert doc["text"] is None
    else:
        assert "lighthouse" in doc["text"].lower(), doc["text"]
    if stress_failed:
        assert doc["stress"] is None
    else:
        assert 0 <= doc["stress"]["score"] <= 100 and doc["stress"]["level"] in {"low", "moderate", "high"}
    assert doc["timings"]["sttMs"] >= 0 and doc["timings"]["stressMs"] >= case.min_stress_ms

    # Each scripted fault went to this message: it made exactly the expected attempts, and the
    # faults meant for it were consumed (leftovers only from "times": 10 beyond the budget).
    settle = max(STT_TIMEOUT_S, STRESS_TIMEOUT_S) + 5 if case.timeouts else 2.0
    assert wait_for_count(STT, stt_before + case.stt_calls, settle) - stt_before == case.stt_calls
    stress_calls = STRESS.request_count() - stress_before
    if case.stress_calls is None:
        assert 2 <= stress_calls <= STRESS_MAX_ATTEMPTS
    else:
        assert wait_for_count(STRESS, stress_before + case.stress_calls, settle) - stress_before == (
            case.stress_calls
        )
    if case.status == "ready":
        assert STT.pending() == [] and STRESS.pending() == []

    entry = outcome_log_entry(sent.path)
    assert entry["status"] == case.status and entry["errorCode"] == case.code
    assert_not_logged(doc["text"])


# ── An empty transcript ───────────────────────────────────────────────────────────────────────────


def test_empty_transcript_is_a_ready_message_without_words(app: AppClient, clip: bytes) -> None:
    """Product decision: speech that gave no words is ready, with text "" and its stress reading.

    The audio already passed the duration and silence checks, so it is real sound from the sender
    (a sigh, laughter, crying, humming, a language the model does not know). The stress reading
    comes from the voice, not the words, and is what the message is for; failing it would hide a
    valid reading, show an error, and invite resending audio that would transcribe the same way.
    "" (transcribed: no words) stays distinct from null (no transcript: the service failed).
    """
    STT.script([{"empty_transcript": True}])
    sent = app.send_voice_message(SEED_CHAT, clip, language="en")
    doc = app.wait_for_message(SEED_CHAT, sent.message_id, timeout_s=WAIT_S).doc
    assert doc["status"] == "ready", doc.get("error")
    assert doc["text"] == "" and doc["error"] is None
    assert doc["stress"] is not None and doc["language"] == "en"
    assert STT.pending() == []


# ── Logging ───────────────────────────────────────────────────────────────────────────────────────


def test_outcome_is_logged_without_the_transcript(app: AppClient, clip: bytes) -> None:
    sent = app.send_voice_message(SEED_CHAT, clip, language="en")
    doc = app.wait_for_message(SEED_CHAT, sent.message_id, timeout_s=WAIT_S).doc
    assert doc["status"] == "ready", doc.get("error")
    assert "lighthouse" in doc["text"].lower()

    entry = outcome_log_entry(sent.path)
    assert entry["severity"] == "INFO" and entry["status"] == "ready" and entry["errorCode"] is None
    assert entry["claim"] == "start" and entry["generation"] == int(sent.generation)
    assert {"sttMs", "stressMs", "totalMs"} <= set(entry["timings"])
    assert_not_logged(doc["text"])
    for secret in ("sk-local-emulator-dummy", "hf_local_emulator_dummy"):  # the stack's dummy secrets
        assert secret not in function_log().read_text(errors="replace")
