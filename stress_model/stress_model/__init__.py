"""EmoChat voice stress model: P(stressed) from a voice message.

Light on import: the handler and the HTTP server import submodules directly
(`from stress_model.handler import EndpointHandler, BadAudioError`).
"""

__version__ = "0.1.0"
