"""Pairs a person writes as a table (a manifest, the API) or as KEY=VALUE (the command line)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def pairs(value: Any, form: str, example: str) -> list[tuple[Any, Any]]:
    """Return (key, value) pairs from a table, "KEY=VALUE" or a list of either, in order.

    `form` is how one is written (`WORD=SAY`) and `example` one written so (`Neff=Neph`), for
    the ValueError that says what is wrong.
    """
    if isinstance(value, str):
        value = [value]
    if isinstance(value, Mapping):
        return list(value.items())
    if not isinstance(value, (list, tuple)):
        key, _, val = form.partition("=")
        raise ValueError(f'expected a table of {key} = "{val}", got {str(value)[:40]!r}')
    out: list[tuple[Any, Any]] = []
    for item in value:
        if isinstance(item, Mapping):
            out += list(item.items())
            continue
        key, eq, val = str(item).partition("=")
        if not eq:
            raise ValueError(f"expected {form}, like {example}, got {str(item)[:40]!r}")
        out.append((key, val))
    return out
