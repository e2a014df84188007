"""Deploy-time configuration: Firebase params and secrets, read only when a function runs.

Set them with `firebase deploy` prompts, functions/.env.<project>, or Secret Manager
(`firebase functions:secrets:set OPENAI_API_KEY`). Locally, functions/.env.local points the
services at the stand-in servers of the local stack.
"""

from __future__ import annotations

from firebase_functions.params import IntParam, SecretParam, StringParam

OPENAI_API_KEY = SecretParam("OPENAI_API_KEY", description="OpenAI API key for speech-to-text")
HF_TOKEN = SecretParam("HF_TOKEN", description="Hugging Face token for the stress endpoint")

STT_MODEL = StringParam(
    "STT_MODEL",
    default="gpt-transcribe",
    description="Transcription model: gpt-transcribe, gpt-4o-mini-transcribe, gpt-4o-transcribe, whisper-1",
)
STT_BASE_URL = StringParam(
    "STT_BASE_URL", default="", description="OpenAI-compatible base URL; empty means OpenAI itself"
)
STT_TIMEOUT_S = IntParam("STT_TIMEOUT_S", default=60, description="Per-request speech-to-text timeout")
STT_MAX_RETRIES = IntParam("STT_MAX_RETRIES", default=2, description="Speech-to-text retries")

STRESS_ENDPOINT_URL = StringParam(
    "STRESS_ENDPOINT_URL", description="URL of the Hugging Face Inference Endpoint serving the stress model"
)
STRESS_MODEL_NAME = StringParam(
    "STRESS_MODEL_NAME", default="emochat-stress-demo", description="Stored with each reading"
)
STRESS_TIMEOUT_S = IntParam("STRESS_TIMEOUT_S", default=30, description="Per-request stress-model timeout")
STRESS_DEADLINE_S = IntParam(
    "STRESS_DEADLINE_S", default=150, description="Total time for stress retries, incl. endpoint warm-up"
)
# Sent as X-Scale-Up-Timeout once the endpoint has answered 503; each attempt asks for at most what
# the deadline leaves after STRESS_TIMEOUT_S, so the defaults (120 + 30) fill STRESS_DEADLINE_S.
STRESS_SCALE_UP_TIMEOUT_S = IntParam(
    "STRESS_SCALE_UP_TIMEOUT_S",
    default=120,
    description="Seconds a scaled-to-zero stress endpoint may hold a request while it starts (0: off)",
)

STRESS_MODERATE_AT = IntParam("STRESS_MODERATE_AT", default=30, description="Score where moderate starts")
STRESS_HIGH_AT = IntParam("STRESS_HIGH_AT", default=60, description="Score where high starts")
MAX_AUDIO_SECONDS = IntParam("MAX_AUDIO_SECONDS", default=120, description="Longest voice message accepted")

MAX_VOICE_INSTANCES = IntParam(
    "MAX_VOICE_INSTANCES",
    default=50,
    description="Most process_voice_message instances at once: keep bursts within the STT rate limit",
)

# Every retry budget above must fit inside this: STT (timeout × (retries + 1)) and stress deadline.
PROCESS_TIMEOUT_S = 300

# ── Stress alerts (alert_on_high_stress) ─────────────────────────────────────────────────────────

FCM_ENDPOINT = StringParam(
    "FCM_ENDPOINT",
    default="",
    description="FCM base URL (e.g. the local stand-in http://127.0.0.1:8713); empty means Google's FCM",
)
FCM_MAX_ATTEMPTS = IntParam(
    "FCM_MAX_ATTEMPTS", default=3, description="Sends per token when FCM answers 429 or 5xx"
)
ALERT_COOLDOWN_MINUTES = IntParam(
    "ALERT_COOLDOWN_MINUTES",
    default=30,
    description="At most one alert per person per this many minutes, unless alertPrefs says otherwise",
)
ALERT_BASELINE_MIN_SAMPLES = IntParam(
    "ALERT_BASELINE_MIN_SAMPLES",
    default=5,
    description="Readings a person needs before their own baseline, not the fixed threshold, decides",
)
# A string: firebase-tools has no float params yet. Parsed (and checked) in wiring.alert_config.
ALERT_Z_THRESHOLD = StringParam(
    "ALERT_Z_THRESHOLD",
    default="1.0",
    description="A high reading alerts when it is this many standard deviations above the person's mean",
)

# The alert trigger's timeout; also how long its per-message claim holds before a redelivery retakes it.
ALERT_TIMEOUT_S = 120

# ── Wellbeing: coping suggestions and stress trends ──────────────────────────────────────────────

CATALOG_VERSION = StringParam(
    "CATALOG_VERSION",
    default="v1",
    description="Coping-suggestion catalog served: catalog/{version} (seeded from functions/catalog)",
)
DEFAULT_TIME_ZONE = StringParam(
    "DEFAULT_TIME_ZONE",
    default="Asia/Seoul",
    description="IANA time zone for users without users/{uid}.timeZone: their trend days and time of day",
)
RECOMMEND_EXPLORE_PERCENT = IntParam(
    "RECOMMEND_EXPLORE_PERCENT",
    default=10,
    description="Share of suggestion slots filled at random (1..50): the bandit's exploration floor",
)
# Callables and the trend trigger: a few Firestore round trips each.
WELLBEING_TIMEOUT_S = 60
