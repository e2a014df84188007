"""Which language a voice message is in, as the transcription API names it: one rule, pure.

Apps send locale tags (Expo: `en-US`, Android: `en_GB`, `in-ID`), people type `EN`, and the
transcription API reports either a code (`gpt-transcribe`: `[{"code": "en"}]`) or Whisper's English
name (`whisper-1` verbose_json: `"english"`). OpenAI's transcription API takes only ISO-639-1 codes
and answers 400 to anything else, so every hint goes through `language_code` before any call, and
so does every language the API reports before it is stored.
"""

from __future__ import annotations

# The ISO-639-1 codes of the languages Whisper transcribes (OpenAI's transcription models take the
# same list), each with the lowercase English name whisper-1's verbose_json reports for it.
# Whisper's three non-ISO-639-1 codes are left out on purpose: `haw` and `yue` are ISO-639-3, and
# Whisper's `jw` for Javanese is not the ISO code (`jv`); a hint of any of them becomes no hint.
TRANSCRIBED_LANGUAGES: dict[str, str] = {
    "af": "afrikaans",
    "am": "amharic",
    "ar": "arabic",
    "as": "assamese",
    "az": "azerbaijani",
    "ba": "bashkir",
    "be": "belarusian",
    "bg": "bulgarian",
    "bn": "bengali",
    "bo": "tibetan",
    "br": "breton",
    "bs": "bosnian",
    "ca": "catalan",
    "cs": "czech",
    "cy": "welsh",
    "da": "danish",
    "de": "german",
    "el": "greek",
    "en": "english",
    "es": "spanish",
    "et": "estonian",
    "eu": "basque",
    "fa": "persian",
    "fi": "finnish",
    "fo": "faroese",
    "fr": "french",
    "gl": "galician",
    "gu": "gujarati",
    "ha": "hausa",
    "he": "hebrew",
    "hi": "hindi",
    "hr": "croatian",
    "ht": "haitian creole",
    "hu": "hungarian",
    "hy": "armenian",
    "id": "indonesian",
    "is": "icelandic",
    "it": "italian",
    "ja": "japanese",
    "ka": "georgian",
    "kk": "kazakh",
    "km": "khmer",
    "kn": "kannada",
    "ko": "korean",
    "la": "latin",
    "lb": "luxembourgish",
    "ln": "lingala",
    "lo": "lao",
    "lt": "lithuanian",
    "lv": "latvian",
    "mg": "malagasy",
    "mi": "maori",
    "mk": "macedonian",
    "ml": "malayalam",
    "mn": "mongolian",
    "mr": "marathi",
    "ms": "malay",
    "mt": "maltese",
    "my": "myanmar",
    "ne": "nepali",
    "nl": "dutch",
    "nn": "nynorsk",
    "no": "norwegian",
    "oc": "occitan",
    "pa": "punjabi",
    "pl": "polish",
    "ps": "pashto",
    "pt": "portuguese",
    "ro": "romanian",
    "ru": "russian",
    "sa": "sanskrit",
    "sd": "sindhi",
    "si": "sinhala",
    "sk": "slovak",
    "sl": "slovenian",
    "sn": "shona",
    "so": "somali",
    "sq": "albanian",
    "sr": "serbian",
    "su": "sundanese",
    "sv": "swedish",
    "sw": "swahili",
    "ta": "tamil",
    "te": "telugu",
    "tg": "tajik",
    "th": "thai",
    "tk": "turkmen",
    "tl": "tagalog",
    "tr": "turkish",
    "tt": "tatar",
    "uk": "ukrainian",
    "ur": "urdu",
    "uz": "uzbek",
    "vi": "vietnamese",
    "yi": "yiddish",
    "yo": "yoruba",
    "zh": "chinese",
}

# Other spellings of the same languages that devices and Whisper use: withdrawn ISO codes Java and
# older Android still emit (iw, in, ji), Norwegian Bokmål (nb, what iOS and Android report for
# Norwegian), Filipino's ISO-639-2 code, and Whisper's alternative names.
_ALIASES: dict[str, str] = {
    "iw": "he",
    "in": "id",
    "ji": "yi",
    "nb": "no",
    "fil": "tl",
    "burmese": "my",
    "castilian": "es",
    "flemish": "nl",
    "haitian": "ht",
    "letzeburgesch": "lb",
    "mandarin": "zh",
    "moldavian": "ro",
    "moldovan": "ro",
    "panjabi": "pa",
    "pushto": "ps",
    "sinhalese": "si",
    "valencian": "ca",
}

_BY_NAME = {name: code for code, name in TRANSCRIBED_LANGUAGES.items()}

# Longer than any tag or name above: not worth parsing (metadata is user input).
_MAX_LENGTH = 35


def language_code(value: object) -> str | None:
    """The ISO-639-1 code for a language hint or a reported language, or None when it names none.

    Takes a code in any case (`EN`), a BCP-47 or POSIX locale tag (`en-US`, `en_GB`, `zh-Hant-TW`,
    `en_US.UTF-8`), or Whisper's English name (`english`). Anything else is None: the caller then
    lets the API detect the language rather than have a whole message refused over a hint.
    """
    if not isinstance(value, str):
        return None
    text = value.strip().lower()
    if not text or len(text) > _MAX_LENGTH:
        return None
    if text in _BY_NAME:
        return _BY_NAME[text]
    primary = text.replace("_", "-").split(".", 1)[0].split("@", 1)[0].split("-", 1)[0]
    primary = _ALIASES.get(primary, primary)
    return primary if primary in TRANSCRIBED_LANGUAGES else None
