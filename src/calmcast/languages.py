"""Languages: the tags a practice is written in, and numbers and lengths said in words.

A practice's language is a BCP 47 tag (`en`, `de`, `es-419`): its front matter's
`language`, else the folder it sits in when that folder is named for a language
(`practices/de/settling.j2`), else English. Comparisons use the primary subtag, so an
`en-gb` voice speaks an `en` practice.
"""

from __future__ import annotations

import re
from functools import lru_cache

#: ISO 639-1 code -> (ISO 639-2/T code, English name), for the tags ID3 carries (TLAN,
#: COMM, USLT) and the folder rule. The languages espeak-ng and Piper speak, and more.
CODES: dict[str, tuple[str, str]] = {
    "af": ("afr", "Afrikaans"), "am": ("amh", "Amharic"), "ar": ("ara", "Arabic"),
    "as": ("asm", "Assamese"), "az": ("aze", "Azerbaijani"), "be": ("bel", "Belarusian"),
    "bg": ("bul", "Bulgarian"), "bn": ("ben", "Bengali"), "bs": ("bos", "Bosnian"),
    "ca": ("cat", "Catalan"), "cs": ("ces", "Czech"), "cy": ("cym", "Welsh"),
    "da": ("dan", "Danish"), "de": ("deu", "German"), "el": ("ell", "Greek"),
    "en": ("eng", "English"), "eo": ("epo", "Esperanto"), "es": ("spa", "Spanish"),
    "et": ("est", "Estonian"), "eu": ("eus", "Basque"), "fa": ("fas", "Persian"),
    "fi": ("fin", "Finnish"), "fr": ("fra", "French"), "ga": ("gle", "Irish"),
    "gd": ("gla", "Scottish Gaelic"), "gl": ("glg", "Galician"), "gu": ("guj", "Gujarati"),
    "he": ("heb", "Hebrew"), "hi": ("hin", "Hindi"), "hr": ("hrv", "Croatian"),
    "hu": ("hun", "Hungarian"), "hy": ("hye", "Armenian"), "id": ("ind", "Indonesian"),
    "is": ("isl", "Icelandic"), "it": ("ita", "Italian"), "ja": ("jpn", "Japanese"),
    "ka": ("kat", "Georgian"), "kk": ("kaz", "Kazakh"), "kn": ("kan", "Kannada"),
    "ko": ("kor", "Korean"), "ky": ("kir", "Kyrgyz"), "la": ("lat", "Latin"),
    "lb": ("ltz", "Luxembourgish"), "lt": ("lit", "Lithuanian"), "lv": ("lav", "Latvian"),
    "mk": ("mkd", "Macedonian"), "ml": ("mal", "Malayalam"), "mr": ("mar", "Marathi"),
    "ms": ("msa", "Malay"), "mt": ("mlt", "Maltese"), "my": ("mya", "Burmese"),
    "nb": ("nob", "Norwegian Bokmål"), "ne": ("nep", "Nepali"), "nl": ("nld", "Dutch"),
    "no": ("nor", "Norwegian"), "pa": ("pan", "Punjabi"), "pl": ("pol", "Polish"),
    "pt": ("por", "Portuguese"), "ro": ("ron", "Romanian"), "ru": ("rus", "Russian"),
    "si": ("sin", "Sinhala"), "sk": ("slk", "Slovak"), "sl": ("slv", "Slovenian"),
    "sq": ("sqi", "Albanian"), "sr": ("srp", "Serbian"), "sv": ("swe", "Swedish"),
    "sw": ("swa", "Swahili"), "ta": ("tam", "Tamil"), "te": ("tel", "Telugu"),
    "th": ("tha", "Thai"), "tr": ("tur", "Turkish"), "uk": ("ukr", "Ukrainian"),
    "ur": ("urd", "Urdu"), "uz": ("uzb", "Uzbek"), "vi": ("vie", "Vietnamese"),
    "zh": ("zho", "Chinese"),
}  # fmt: skip

#: A language tag as a manifest, a request or front matter gives it.
TAG = r"[A-Za-z]{2,3}([-_][A-Za-z0-9]{1,8})*"
DEFAULT = "en"


def normal(tag: str | None) -> str:
    """Return a language tag in one spelling: `en_GB` -> `en-gb`; empty -> English."""
    return (tag or DEFAULT).strip().replace("_", "-").lower() or DEFAULT


def primary(tag: str | None) -> str:
    """Return a tag's language alone: `es-419` -> `es`."""
    return normal(tag).split("-")[0]


def same(a: str | None, b: str | None) -> bool:
    """Return whether two tags name the same language (regions aside)."""
    return primary(a) == primary(b)


def iso639_2(tag: str | None) -> str:
    """Return the three-letter code ID3 uses for a language, `und` when it is not known."""
    code = primary(tag)
    if len(code) == 3:
        return code
    return CODES.get(code, ("und", ""))[0]


def name_of(tag: str | None) -> str:
    """Return a language's English name, or its tag when calmcast does not know it."""
    return CODES.get(primary(tag), ("", normal(tag)))[1]


def folder_language(folder: str) -> str | None:
    """Return the language a folder is named for (`de`, `pt-br`), or None."""
    if re.fullmatch(r"[a-z]{2}(-[a-z0-9]{2,8})?", folder) and folder[:2] in CODES:
        return folder
    return None


# Lengths said in words. For each language: the word for "and", then for each unit the
# singular with its own "one" and the plural (German "eine Minute", Spanish "un minuto").
_UNITS: dict[str, tuple[str, dict[str, tuple[str, str]]]] = {
    "en": ("and", {"hour": ("one hour", "hours"), "minute": ("one minute", "minutes"),
                   "second": ("one second", "seconds")}),
    "de": ("und", {"hour": ("eine Stunde", "Stunden"), "minute": ("eine Minute", "Minuten"),
                   "second": ("eine Sekunde", "Sekunden")}),
    "es": ("y", {"hour": ("una hora", "horas"), "minute": ("un minuto", "minutos"),
                 "second": ("un segundo", "segundos")}),
    "fr": ("et", {"hour": ("une heure", "heures"), "minute": ("une minute", "minutes"),
                  "second": ("une seconde", "secondes")}),
    "it": ("e", {"hour": ("un'ora", "ore"), "minute": ("un minuto", "minuti"),
                 "second": ("un secondo", "secondi")}),
    "pt": ("e", {"hour": ("uma hora", "horas"), "minute": ("um minuto", "minutos"),
                 "second": ("um segundo", "segundos")}),
    "nl": ("en", {"hour": ("één uur", "uur"), "minute": ("één minuut", "minuten"),
                  "second": ("één seconde", "seconden")}),
}  # fmt: skip
#: The languages calmcast can say a length in.
SPOKEN = tuple(_UNITS)


class UnsupportedLanguage(ValueError):
    """A number or length asked for in a language calmcast cannot say them in."""


def say_number(value: float, tag: str | None) -> str:
    """Return a whole number in words in the language: 20 -> "twenty", "zwanzig", "veinte"."""
    from num2words import num2words

    code = primary(tag)
    if isinstance(value, bool) or value != value or abs(value) >= 10**9:
        raise ValueError(f"cannot say {value!r} as a number")
    number = round(value)
    try:
        return str(num2words(number, lang=code))
    except NotImplementedError:
        raise UnsupportedLanguage(f"numbers cannot be said in {normal(tag)}") from None


def say_duration(seconds: float, tag: str | None) -> str:
    """Return a length in words, to the second: 1230 -> "twenty minutes and thirty seconds"."""
    code = primary(tag)
    if code not in _UNITS:
        raise UnsupportedLanguage(
            f"lengths are said in {', '.join(SPOKEN)}, not in {normal(tag)}"
        )
    if isinstance(seconds, bool) or not 0 <= seconds < 10**7:
        raise ValueError(f"cannot say {seconds!r} as a length")
    whole = round(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [_amount(n, unit, code) for n, unit in ((hours, "hour"), (minutes, "minute"),
                                                    (secs, "second")) if n]  # fmt: skip
    if not parts:
        return f"{say_number(0, code)} {_UNITS[code][1]['second'][1]}"
    joiner = _UNITS[code][0]
    return parts[0] if len(parts) == 1 else f"{', '.join(parts[:-1])} {joiner} {parts[-1]}"


#: The last word of a number, agreeing with the noun after it: (language, feminine) ->
#: {word: agreed}. "veintiuno" -> "veintiún minutos", "veintiuna horas", "duas horas".
_AGREE = {
    ("es", False): {"uno": "un", "veintiuno": "veintiún"},
    ("es", True): {"uno": "una", "veintiuno": "veintiuna"},
    ("pt", True): {"um": "uma", "dois": "duas"},
    ("fr", True): {"un": "une"},
}
_FEMININE = {("es", "hour"), ("pt", "hour"), ("fr", "hour"), ("fr", "minute"), ("fr", "second")}


@lru_cache(maxsize=512)
def _amount(n: int, unit: str, code: str) -> str:
    one, many = _UNITS[code][1][unit]
    if n == 1:
        return one
    head, sep, last = say_number(n, code).rpartition(" ")
    last = _AGREE.get((code, (code, unit) in _FEMININE), {}).get(last, last)
    words = head + sep + last
    return f"{words} {many}"
