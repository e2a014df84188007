"""The offline local stack: Firebase emulators (`firebase emulators:exec`) and stand-ins for the paid
APIs (stt: OpenAI transcription, stress: a Hugging Face endpoint, fcm: FCM HTTP v1), each speaking its
real wire format so the production adapters run unchanged. See local_stack/README.md."""

PROJECT_ID = "demo-emochat"
BUCKET = f"{PROJECT_ID}.appspot.com"
HOST = "127.0.0.1"
# name -> (the variable the functions read its URL from, port, path the clients add to the origin)
STANDINS = {
    "stt": ("STT_BASE_URL", 8711, "/v1"),
    "stress": ("STRESS_ENDPOINT_URL", 8712, ""),
    "fcm": ("FCM_ENDPOINT", 8713, ""),
}
