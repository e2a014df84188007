"""The alerts' user-facing copy, kept as data beside the coping catalog (catalog/alert_texts.json).

Loaded once per instance, on first use; every language in `profile.LANGUAGES` must have every text.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from pathlib import Path

from emochat.profile import DEFAULT_LANGUAGE, LANGUAGES

ALERT_TEXTS_FILE = Path(__file__).resolve().parents[2] / "catalog" / "alert_texts.json"
KEYS = frozenset({"self_title", "self_body", "member_title", "member_body", "someone", "try_this"})


@functools.cache
def alert_texts(path: Path = ALERT_TEXTS_FILE) -> dict[str, dict[str, str]]:
    """Language → texts, validated: a missing text would otherwise surface as a failed alert."""
    by_language = json.loads(path.read_text(encoding="utf-8"))["languages"]
    for language in LANGUAGES:
        texts = by_language.get(language)
        missing = KEYS - set(texts or ())
        if missing:
            raise ValueError(f"{path.name}: language {language!r} lacks {sorted(missing)}")
    return by_language


def texts_for(language: str) -> Mapping[str, str]:
    """The texts in `language` (a `profile.user_language` code), English for anything else."""
    texts = alert_texts()
    return texts.get(language, texts[DEFAULT_LANGUAGE])
