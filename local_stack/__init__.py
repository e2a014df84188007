"""Local stand-ins for the paid cloud APIs EmoChat calls in production.

Each server speaks its real API's wire format, so the production adapters run unchanged against it:

- ``stt_server``: OpenAI ``POST /v1/audio/transcriptions`` backed by faster-whisper;
- ``stress_server``: a Hugging Face Inference Endpoint hosting the project's ``EndpointHandler``;
- ``fcm_server``: FCM HTTP v1 ``messages:send``.

All three share one scripted fault mechanism (``faults``) for reliability tests, and run through
``python -m local_stack.serve {stt,stress,fcm}``.
"""

DEFAULT_STT_PORT = 8711
DEFAULT_STRESS_PORT = 8712
DEFAULT_FCM_PORT = 8713
