"""How values and key paths are shown in problem messages (short, and safe for any input)."""

from __future__ import annotations

import math


def _join(path: str, key) -> str:
    key = _key_text(key)
    return f"{path}.{key}" if path else key


def _key_text(key) -> str:
    """A key as it appears in a path; a blank key is quoted so that the path still shows it."""
    if isinstance(key, str):
        return key if key.strip() else repr(key)
    if isinstance(key, int) and not isinstance(key, bool) and abs(key) >= 10**40:
        return _repr(key)
    return str(key)


def _repr(value, limit: int = 60) -> str:
    """repr() for messages: short, and safe for huge integers and self-referencing containers."""
    if isinstance(value, (dict, list, tuple, set)):
        return _describe(value)
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 10**40:
        return f"an integer of {int(math.log10(abs(value))) + 1} digits"
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _known(ids) -> str:
    names = ", ".join(sorted(map(str, ids)))
    return f" (defined: {names})" if names else ""


def _describe(value) -> str:
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return f"a boolean ({value})"
    if isinstance(value, str):
        shown = value if len(value) <= 40 else value[:37] + "..."
        return f"the text {shown!r}"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, (tuple, set)):
        return f"a {type(value).__name__}"
    return f"{type(value).__name__} {_repr(value)}"


def _fmt(v) -> str:
    if isinstance(v, float) and v.is_integer() and abs(v) < 1e15:
        return str(int(v))
    if isinstance(v, int) and not isinstance(v, bool) and abs(v) >= 10**40:
        return _repr(v)
    text = str(v)
    return text if len(text) <= 60 else text[:57] + "..."

