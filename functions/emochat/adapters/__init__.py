"""Adapters: the real services behind the ports (OpenAI, Hugging Face, Firestore, Cloud Storage, FCM)."""
