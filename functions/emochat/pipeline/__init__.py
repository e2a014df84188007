"""The voice pipeline: one uploaded voice file becomes one chat message with its transcript and stress
reading (the triggers process_voice_message and sweep_stuck_messages).

model.py: voice paths, upload and audio checks, scores and levels, claims and holds (pure) ·
budget.py: the clock port and the event's deadline (pure) · audio.py: PyAV decoding · ports.py:
Transcriber, StressScorer, AudioStore, MessageStore · service.py: process_upload, sweep_abandoned ·
adapters/: OpenAI, Hugging Face, Cloud Storage, Firestore.
"""
