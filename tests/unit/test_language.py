"""The one rule for language hints and reported languages (emochat.language), exhaustively."""

from __future__ import annotations

import pytest

from emochat.language import TRANSCRIBED_LANGUAGES, language_code


@pytest.mark.parametrize("code", sorted(TRANSCRIBED_LANGUAGES))
def test_every_code_in_every_form_apps_send(code: str) -> None:
    forms = [code, code.upper(), f" {code} ", f"{code}-XX", f"{code}_XX", f"{code}-Latn-XX"]
    forms += [f"{code}_XX.UTF-8", f"{code}_XX@euro"]
    for form in forms:
        assert language_code(form) == code, form


@pytest.mark.parametrize(("code", "name"), sorted(TRANSCRIBED_LANGUAGES.items()))
def test_every_name_whisper_reports(code: str, name: str) -> None:
    assert language_code(name) == code
    assert language_code(name.title()) == code


def test_codes_are_two_letter_iso_639_1_and_names_unique() -> None:
    assert all(len(code) == 2 and code.isalpha() and code.islower() for code in TRANSCRIBED_LANGUAGES)
    assert len(set(TRANSCRIBED_LANGUAGES.values())) == len(TRANSCRIBED_LANGUAGES)


@pytest.mark.parametrize(
    ("value", "code"),
    [
        ("en-US", "en"),
        ("en_GB", "en"),
        ("EN", "en"),
        ("ko-KR", "ko"),
        ("zh-Hant-TW", "zh"),
        ("zh-Hans", "zh"),
        ("sr-Latn-RS", "sr"),
        # withdrawn codes older Android and Java still emit
        ("iw-IL", "he"),
        ("in-ID", "id"),
        ("ji", "yi"),
        # Norwegian Bokmål, what phones report for Norwegian
        ("nb-NO", "no"),
        ("nb", "no"),
        ("fil-PH", "tl"),
        # Whisper's alternative names
        ("castilian", "es"),
        ("valencian", "ca"),
        ("flemish", "nl"),
        ("mandarin", "zh"),
        ("burmese", "my"),
        ("sinhalese", "si"),
        ("haitian", "ht"),
        ("Haitian Creole", "ht"),
    ],
)
def test_known_variants(value: str, code: str) -> None:
    assert language_code(value) == code


@pytest.mark.parametrize(
    "value",
    [
        None,
        "",
        "   ",
        "e",
        "x",
        "xx",
        "xx-YY",
        "eng",  # ISO-639-2: not what the API takes, and not ours to guess
        "kor",
        "haw",  # Whisper knows Hawaiian and Cantonese only by ISO-639-3 codes
        "yue",
        "jw",  # Whisper's Javanese code is not ISO's (jv); neither is sent
        "jv",
        "und",  # BCP-47 "undetermined"
        "-en",
        "en US",
        "klingon",
        "english!",
        "a" * 300,
        "en-" + "x" * 40,
        42,
        b"en",
        ["en"],
    ],
)
def test_anything_else_is_no_language(value: object) -> None:
    assert language_code(value) is None
