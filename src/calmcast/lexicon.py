"""Pronunciation: words a voice says wrong, respelled for the voice alone.

A practice's front matter (`[pronounce]`), a course manifest and `--pronounce WORD=SAY` give
respellings: `"eyes close" = "eyes cloze"`, `Neff = "Neph"`. They change only the text handed
to the voice, so they are part of the speech cache's key; captions, the transcript and the
plan keep the words as written. A key matches whole words, in any case; the longest key
wins where two overlap, and a match at a capital keeps its capital.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from .pairs import pairs

#: The most respellings one session takes, and their sizes (characters).
MAX_ENTRIES = 500
MAX_WORDS = 100
MAX_SAYING = 200

_UNSAYABLE = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\[\]{}<>]")


def check(value: Any) -> dict[str, str]:
    """Return respellings checked, from a table (a manifest), "WORD=SAY" or a list of those.

    Raise ValueError saying what is wrong.
    """
    given = pairs(value, "WORD=SAY", "Neff=Neph")
    if len(given) > MAX_ENTRIES:
        raise ValueError(f"at most {MAX_ENTRIES} respellings, got {len(given)}")
    out = {}
    for word, saying in given:
        if not isinstance(word, str) or not isinstance(saying, str):
            raise ValueError(f"{word!r}: expected text to say, got {saying!r}")
        word, saying = " ".join(word.split()), " ".join(saying.split())
        if not re.search(r"\w", word) or len(word) > MAX_WORDS:
            raise ValueError(f"{word[:40]!r}: expected a word or a few, at most {MAX_WORDS} "
                             "characters")  # fmt: skip
        if not saying or len(saying) > MAX_SAYING or _UNSAYABLE.search(saying + word):
            raise ValueError(
                f"{word[:40]}: the respelling must be plain text of 1 to {MAX_SAYING} "
                "characters, with no brackets or control characters"
            )
        out[word] = saying
    return out


class Lexicon:
    """Respellings applied to what a voice is given to say."""

    def __init__(self, *tables: Mapping[str, str] | None) -> None:
        merged: dict[str, str] = {}
        for table in tables:  # later tables win: the practice, then the course, then --pronounce
            for word, saying in (table or {}).items():
                merged[word.lower()] = saying
        self.entries = merged
        keys = sorted(merged, key=len, reverse=True)
        pattern = "|".join(r"\s+".join(map(re.escape, k.split())) for k in keys)
        self._match = re.compile(rf"(?<!\w)(?:{pattern})(?!\w)", re.IGNORECASE) if keys else None

    def __bool__(self) -> bool:
        return bool(self.entries)

    def say(self, text: str) -> str:
        """Return `text` as the voice should be given it."""
        if self._match is None:
            return text
        return self._match.sub(self._respelt, text)

    def say_all(self, texts: Iterable[str]) -> list[str]:
        return [self.say(t) for t in texts]

    def _respelt(self, m: re.Match[str]) -> str:
        saying = self.entries[" ".join(m.group(0).lower().split())]
        if m.group(0)[:1].isupper() and saying[:1].islower():
            return saying[:1].upper() + saying[1:]
        return saying
