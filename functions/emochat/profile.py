"""One rule for a user's language and time zone, read from users/{uid}: alerts, coping suggestions
and trends all ask here, so a user hears and sees everything in the same language and local day.

Pure: the callers read the profile document; these functions only decide.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from datetime import UTC, tzinfo
from typing import Any
from zoneinfo import ZoneInfo, available_timezones

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


# The longest IANA name is 32 characters; the rules side caps users/{uid}.timeZone too.
MAX_TIME_ZONE_CHARS = 64


@functools.cache
def _known_zones() -> frozenset[str]:
    return frozenset(available_timezones())


def valid_time_zone(name: Any) -> bool:
    """A real IANA zone name. Checked against the zone list before ZoneInfo ever sees it: ZoneInfo
    opens a file named after its argument and raises OSError for "America" (a directory) or a
    300-character name, which crashed the trend trigger and the callables."""
    return isinstance(name, str) and 0 < len(name) <= MAX_TIME_ZONE_CHARS and name in _known_zones()


def _zone(name: Any) -> tzinfo | None:
    return ZoneInfo(name) if valid_time_zone(name) else None


def user_zone(profile: Mapping[str, Any], default_time_zone: str) -> tuple[str, tzinfo]:
    """The user's IANA time zone (users/{uid}.timeZone), else the configured default, else UTC."""
    for name in (profile.get("timeZone"), default_time_zone):
        zone = _zone(name)
        if zone is not None:
            return name, zone
    return "UTC", UTC
