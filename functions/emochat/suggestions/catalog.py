"""The coping-suggestion catalog: the versioned repo file (catalog/coping_suggestions.json) and
the documents seeded from it, parsed and validated into `Catalog`. Pure, apart from reading the
bundled file in `load_catalog_file`.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from emochat.suggestions.bandit import Context

BUNDLED_CATALOG = Path(__file__).resolve().parents[2] / "catalog" / "coping_suggestions.json"
TIMES_OF_DAY = ("night", "morning", "afternoon", "evening")  # [0, 6), [6, 12), [12, 18), [18, 24)
_ID = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
_KIND = re.compile(r"^[a-z][a-z_]{0,31}$")

# ── Catalog ──────────────────────────────────────────────────────────────────────────────────────


class CatalogError(ValueError):
    """The catalog file or documents do not describe a usable catalog."""


@dataclass(frozen=True)
class Suggestion:
    """One self-care suggestion, in every catalog language."""

    id: str
    kind: str  # breathing, walk, music, reach_out, screen_break, ...
    title: Mapping[str, str]  # language → text
    text: Mapping[str, str]
    duration_min: int
    setting: tuple[str, ...] = ("anywhere",)  # anywhere, indoors, outdoors, private
    tags: tuple[str, ...] = ()
    times_of_day: frozenset[str] = frozenset()  # empty: any time
    prior_helpful: float | None = None  # editorial guess at the helpful rate, before any feedback
    active: bool = True

    def suits(self, context: Context) -> bool:
        return self.active and (not self.times_of_day or context.time_of_day in self.times_of_day)

    def language_for(self, language: str | None) -> str:
        if language in self.title:
            return language
        return "en" if "en" in self.title else next(iter(self.title))

    def localized(self, language: str | None) -> dict[str, Any]:
        """What the app shows, in `language` (or English, or whatever the catalog has)."""
        lang = self.language_for(language)
        return {
            "suggestionId": self.id,
            "kind": self.kind,
            "title": self.title[lang],
            "text": self.text[lang],
            "language": lang,
            "durationMin": self.duration_min,
            "setting": list(self.setting),
            "tags": list(self.tags),
        }

    def as_doc(self, version: str) -> dict[str, Any]:
        """catalog/{version}/suggestions/{id}."""
        return {
            "id": self.id,
            "version": version,
            "kind": self.kind,
            "title": dict(self.title),
            "text": dict(self.text),
            "durationMin": self.duration_min,
            "setting": list(self.setting),
            "tags": list(self.tags),
            "timesOfDay": sorted(self.times_of_day),
            "priorHelpful": self.prior_helpful,
            "active": self.active,
        }


def _suggestion(raw: Mapping[str, Any], languages: Sequence[str]) -> Suggestion:
    sid = raw.get("id")
    if not isinstance(sid, str) or not _ID.match(sid):
        raise CatalogError(f"suggestion id {sid!r} must be lowercase letters, digits and dashes")
    kind = raw.get("kind")
    if not isinstance(kind, str) or not _KIND.match(kind):
        raise CatalogError(f"{sid}: kind {kind!r} must be lowercase letters and underscores")
    texts = {}
    for name in ("title", "text"):
        value = raw.get(name)
        if not isinstance(value, Mapping) or any(
            not isinstance(value.get(lang), str) or not value.get(lang).strip() for lang in languages
        ):
            raise CatalogError(f"{sid}: {name} needs a non-empty text for each of {list(languages)}")
        texts[name] = {lang: str(text) for lang, text in value.items()}
    duration = raw.get("durationMin")
    if not isinstance(duration, int) or isinstance(duration, bool) or not 0 < duration <= 120:
        raise CatalogError(f"{sid}: durationMin must be whole minutes in 1..120")
    times = frozenset(raw.get("timesOfDay") or ())
    if not times <= set(TIMES_OF_DAY):
        raise CatalogError(f"{sid}: timesOfDay must be among {TIMES_OF_DAY}")
    prior = raw.get("priorHelpful")
    if prior is not None and (not isinstance(prior, int | float) or not 0.0 < prior < 1.0):
        raise CatalogError(f"{sid}: priorHelpful must be within (0, 1)")
    return Suggestion(
        id=sid,
        kind=kind,
        title=texts["title"],
        text=texts["text"],
        duration_min=duration,
        setting=tuple(raw.get("setting") or ("anywhere",)),
        tags=tuple(raw.get("tags") or ()),
        times_of_day=times,
        prior_helpful=float(prior) if prior is not None else None,
        active=bool(raw.get("active", True)),
    )


@dataclass(frozen=True)
class Catalog:
    version: str
    suggestions: tuple[Suggestion, ...]
    languages: tuple[str, ...] = ("ko", "en")

    def by_id(self, suggestion_id: str) -> Suggestion | None:
        return next((s for s in self.suggestions if s.id == suggestion_id), None)

    def eligible(self, context: Context) -> list[Suggestion]:
        return [s for s in self.suggestions if s.suits(context)]


def parse_catalog(data: Mapping[str, Any]) -> Catalog:
    """The repo's catalog file (functions/catalog/coping_suggestions.json), validated."""
    version = data.get("version")
    if not isinstance(version, str) or not _ID.match(version):
        raise CatalogError(f"catalog version {version!r} must be a short lowercase id such as 'v1'")
    languages = tuple(data.get("languages") or ("ko", "en"))
    raw = data.get("suggestions")
    if not isinstance(raw, list) or not raw:
        raise CatalogError("the catalog has no suggestions")
    suggestions = tuple(_suggestion(item, languages) for item in raw)
    ids = [s.id for s in suggestions]
    if len(set(ids)) != len(ids):
        raise CatalogError(f"duplicate suggestion ids: {sorted({i for i in ids if ids.count(i) > 1})}")
    return Catalog(version=version, suggestions=suggestions, languages=languages)


def catalog_from_docs(version: str, docs: Mapping[str, Mapping[str, Any]]) -> Catalog:
    """A catalog read back from catalog/{version}/suggestions (ordered by id)."""
    suggestions = []
    for doc_id in sorted(docs):
        doc = docs[doc_id]
        languages = tuple(doc.get("title") or ())
        suggestions.append(_suggestion({**doc, "id": doc_id}, languages))
    return Catalog(version=version, suggestions=tuple(suggestions))


def load_catalog_file(path: Path = BUNDLED_CATALOG) -> tuple[Catalog, dict[str, Any]]:
    """The versioned repo file, validated, and where it came from (for catalog/{version})."""
    raw = path.read_bytes()
    catalog = parse_catalog(json.loads(raw))
    return catalog, {"file": path.name, "sha256": hashlib.sha256(raw).hexdigest()}
