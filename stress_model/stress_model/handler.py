"""Hugging Face Inference Endpoints custom handler (also hosted locally by local_stack/stress_server.py).

    h = EndpointHandler("stress_model/checkpoints/demo")
    h({"inputs": raw_audio_bytes})  # or a base64 string
    -> [{"label": "stressed", "score": p}, {"label": "not_stressed", "score": 1 - p}]

Everything heavy (config, weights, encoder) loads once in __init__. __call__ touches no shared
mutable state (the networks are in eval mode and run under inference_mode), so concurrent calls
from several threads are safe. Bad input raises BadAudioError (a ValueError) with a one-line
message for the caller; anything else is a server fault and propagates as is.
"""

from __future__ import annotations

import base64
import binascii
from pathlib import Path
from typing import Any

import numpy as np
import torch

from stress_model.audio import BadAudioError, load
from stress_model.features import build_encoder
from stress_model.model import load_student

__all__ = ["BadAudioError", "EndpointHandler"]

DEFAULT_CHECKPOINT = Path(__file__).resolve().parents[1] / "checkpoints" / "demo"


def _audio_bytes(data: Any) -> bytes:
    if not isinstance(data, dict) or "inputs" not in data:
        raise BadAudioError("request must be a JSON object with an 'inputs' field holding audio")
    inputs = data["inputs"]
    if isinstance(inputs, bytes | bytearray | memoryview):
        return bytes(inputs)
    if isinstance(inputs, str):
        s = inputs.strip()
        if s.startswith("data:") and "," in s:  # data URL: "data:audio/m4a;base64,...."
            s = s.split(",", 1)[1]
        try:
            return base64.b64decode(s, validate=True)
        except (binascii.Error, ValueError):
            raise BadAudioError("'inputs' is a string but not valid base64 audio") from None
    raise BadAudioError(f"'inputs' must be audio bytes or a base64 string, not {type(inputs).__name__}")


class EndpointHandler:
    def __init__(self, path: str = "") -> None:
        self.path = Path(path) if path else DEFAULT_CHECKPOINT
        self.cfg, self.model = load_student(self.path)
        self.encoder = build_encoder(self.cfg.features, base_dir=self.path)
        # warm-up: first calls into librosa/numba (and torch) compile/allocate; pay it here, not per request
        t = np.arange(self.cfg.features.sample_rate) / self.cfg.features.sample_rate
        self._score(0.3 * np.sin(2 * np.pi * 150 * t).astype(np.float32) * (1 + np.sin(2 * np.pi * 3 * t)))

    @torch.inference_mode()
    def _score(self, wave: np.ndarray) -> float:
        emb = torch.from_numpy(np.asarray(self.encoder(wave), dtype=np.float32))[None]
        return float(torch.softmax(self.model(emb)[0], dim=1)[0, 1])

    def predict_wave(self, wave: np.ndarray) -> float:
        """P(stressed) for 16 kHz mono float32 that has already been through audio.prepare."""
        return self._score(wave)

    def __call__(self, data: dict[str, Any]) -> list[dict[str, Any]]:
        # "parameters" is accepted for HF compatibility and ignored: nothing a caller could set may
        # change the features the model was trained on.
        if isinstance(data, dict) and not isinstance(data.get("parameters") or {}, dict):
            raise BadAudioError("'parameters' must be an object")
        raw = _audio_bytes(data)
        wave = load(raw, self.cfg.features)  # raises BadAudioError: undecodable, empty, silent, too short
        p = self._score(wave)
        return [{"label": "stressed", "score": p}, {"label": "not_stressed", "score": 1.0 - p}]
