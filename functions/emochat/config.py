"""Deploy-time configuration: Firebase params and secrets, read only when a function runs.

Set them with `firebase deploy` prompts, functions/.env.<project>, or Secret Manager
(`firebase functions:secrets:set OPENAI_API_KEY`). Locally, functions/.env.local points the
services at the stand-in servers of the local stack.
"""

from __future__ import annotations

from firebase_functions.params import BoolParam, IntParam, SecretParam, StringParam

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
# Per-user daily budget (UTC days) of voice messages that reach the paid services, and of their audio.
VOICE_DAILY_MESSAGES = IntParam(
    "VOICE_DAILY_MESSAGES", default=200, description="Voice messages one user may send per UTC day"
)
VOICE_DAILY_AUDIO_MINUTES = IntParam(
    "VOICE_DAILY_AUDIO_MINUTES",
    default=60,
    description="Minutes of voice audio one user may send per UTC day",
)

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
    description="At most one alert per (recipient, sender) per this many minutes, unless alertPrefs differs",
)
ALERT_MAX_PER_HOUR = IntParam(
    "ALERT_MAX_PER_HOUR",
    default=6,
    description="Most alert pushes one person gets in an hour, across all senders (1..60)",
)
ALERT_MAX_DEVICES = IntParam(
    "ALERT_MAX_DEVICES",
    default=5,
    description="Alert pushes go to at most this many of a person's most recently updated devices (1..20)",
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

# The alert trigger's timeout. Its per-message claim holds this plus ALERT_LEASE_MARGIN_S before the
# sweeper (sweep_stuck_alerts, every 5 minutes, its own timeout ALERT_SWEEP_TIMEOUT_S) retakes it.
ALERT_TIMEOUT_S = 300
ALERT_LEASE_MARGIN_S = 60
ALERT_SWEEP_TIMEOUT_S = 540
# firebase_admin's HTTP timeout for FCM calls (per connect and per read, each of its retries).
FCM_HTTP_TIMEOUT_S = 5

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

# ── Callables: per-user rate limit and App Check ─────────────────────────────────────────────────

CALLABLE_CALLS_PER_MINUTE = IntParam(
    "CALLABLE_CALLS_PER_MINUTE",
    default=30,
    description="Calls one user may make to each callable per minute; more are refused resource-exhausted",
)
# firebase-functions 0.6.0 reads on_call(enforce_app_check=...) as a plain bool when the module is
# imported, so a param cannot go there: the callables check the request's App Check token themselves
# when this is true (the SDK verifies the token and sets req.app; a missing or invalid one leaves None).
ENFORCE_APP_CHECK = BoolParam(
    "ENFORCE_APP_CHECK",
    default=False,
    description="Refuse callable requests without a valid App Check token (on once the app sends them)",
)
