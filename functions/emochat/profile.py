"""One rule for a user's language and time zone, read from users/{uid}: alerts, coping suggestions
and trends all ask here, so a user hears and sees everything in the same language and local day.

Pure: the callers read the profile document; these functions only decide.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, tzinfo
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from emochat.language import language_code

# Languages with user-facing copy (catalog/alert_texts.json, catalog/coping_suggestions.json).
LANGUAGES = ("en", "ko")
# For users with no (or an unsupported) language: what the README documents for alerts.
DEFAULT_LANGUAGE = "en"


def supported_language(value: Any) -> str | None:
    """The ISO-639-1 code of "ko", "ko-KR", "en_US", ... (emochat.language's one normalisation rule)
    when EmoChat has copy in that language; None otherwise."""
    code = language_code(value)
    return code if code in LANGUAGES else None


def user_language(*candidates: Any) -> str:
    """The first supported language among `candidates` (e.g. a request's, then users/{uid}.language),
    else English."""
    for candidate in candidates:
        code = supported_language(candidate)
        if code is not None:
            return code
    return DEFAULT_LANGUAGE


def _zone(name: Any) -> tzinfo | None:
    if not isinstance(name, str) or not name:
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None


def user_zone(profile: Mapping[str, Any], default_time_zone: str) -> tuple[str, tzinfo]:
    """The user's IANA time zone (users/{uid}.timeZone), else the configured default, else UTC."""
    for name in (profile.get("timeZone"), default_time_zone):
        zone = _zone(name)
        if zone is not None:
            return name, zone
    return "UTC", UTC
