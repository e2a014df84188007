"""Deploy-time configuration: Firebase params and secrets, read only when a function runs.

Set them with `firebase deploy` prompts, functions/.env.<project>, or Secret Manager
(`firebase functions:secrets:set OPENAI_API_KEY`). Locally, functions/.env.local points the
services at the stand-in servers of the local stack.
"""

from __future__ import annotations

from firebase_functions.params import IntParam, SecretParam, StringParam

OPENAI_API_KEY = SecretParam("OPENAI_API_KEY", description="OpenAI API key for speech-to-text")
HF_TOKEN = SecretParam("HF_TOKEN", description="Hugging Face token for the stress endpoint")

STT_MODEL = StringParam("STT_MODEL", default="whisper-1", description="OpenAI transcription model")
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

STRESS_MODERATE_AT = IntParam("STRESS_MODERATE_AT", default=30, description="Score where moderate starts")
STRESS_HIGH_AT = IntParam("STRESS_HIGH_AT", default=60, description="Score where high starts")
MAX_AUDIO_SECONDS = IntParam("MAX_AUDIO_SECONDS", default=120, description="Longest voice message accepted")

# Every retry budget above must fit inside this: STT (timeout × (retries + 1)) and stress deadline.
PROCESS_TIMEOUT_S = 300
