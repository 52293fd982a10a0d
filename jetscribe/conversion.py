"""Turning an environment variable's text into a typed setting, with messages this project owns.

`convert(text, tp)` understands the types `Settings` uses: `str`, `int`, `float`, `bool`, `Path`,
`Literal[...]`, `tuple[T, ...]` (comma-separated), `T | None`, and `Annotated[T, msgspec.Meta(...)]`
with the bounds `ge`, `gt`, `le` and `lt`. A value it cannot convert raises InvalidValueError whose
message says what is expected, e.g. "expected a whole number from 1 to 5".
"""

from __future__ import annotations

import math
import types
from pathlib import Path
from typing import Annotated, Any, Final, Literal, Union, get_args, get_origin

import msgspec

TRUE_WORDS: Final = frozenset({"true", "1", "yes", "on"})
FALSE_WORDS: Final = frozenset({"false", "0", "no", "off"})


class InvalidValueError(ValueError):
    """The text is not a value of the wanted type; the message says what is expected."""


def convert(text: str, tp: Any) -> object:
    """`text` as a value of `tp`; InvalidValueError saying what is expected otherwise."""
    origin = get_origin(tp)
    if origin is Annotated:
        base, *metadata = get_args(tp)
        value = convert(text, base)
        for meta in metadata:
            if isinstance(meta, msgspec.Meta):
                _check_bounds(value, base, meta)
        return value
    if origin in (Union, types.UnionType):
        options = [arg for arg in get_args(tp) if arg is not type(None)]
        if len(options) != 1:
            raise TypeError(f"settings cannot have the type {tp}")
        return convert(text, options[0])
    if origin is Literal:
        choices = get_args(tp)
        if text not in choices:
            raise InvalidValueError("expected one of " + ", ".join(repr(c) for c in choices))
        return text
    if origin is tuple:
        item_type = get_args(tp)[0]
        items = [item.strip() for item in text.split(",") if item.strip()]
        converted = []
        for position, item in enumerate(items, start=1):
            try:
                converted.append(convert(item, item_type))
            except InvalidValueError as exc:
                raise InvalidValueError(f"item {position} ({item!r}): {exc}") from exc
        return tuple(converted)
    return _scalar(text.strip() if tp is not str else text, tp)


def _scalar(text: str, tp: Any) -> object:
    if tp is str:
        return text
    if tp is Path:
        return Path(text)
    if tp is bool:
        lowered = text.lower()
        if lowered in TRUE_WORDS:
            return True
        if lowered in FALSE_WORDS:
            return False
        raise InvalidValueError("expected true or false")
    if tp is int:
        try:
            return int(text)
        except ValueError:
            raise InvalidValueError("expected a whole number") from None
    if tp is float:
        try:
            value = float(text)
        except ValueError:
            raise InvalidValueError("expected a number") from None
        if not math.isfinite(value):
            raise InvalidValueError("expected a finite number")
        return value
    raise TypeError(f"settings cannot have the type {tp}")


def _check_bounds(value: object, base: Any, meta: msgspec.Meta) -> None:
    assert isinstance(value, int | float)
    low = meta.ge if meta.ge is not None else meta.gt
    high = meta.le if meta.le is not None else meta.lt
    broken = (
        (meta.ge is not None and value < meta.ge)
        or (meta.gt is not None and value <= meta.gt)
        or (meta.le is not None and value > meta.le)
        or (meta.lt is not None and value >= meta.lt)
    )
    if not broken:
        return
    kind = "a whole number" if base is int else "a number"
    if meta.ge is not None and meta.le is not None:
        raise InvalidValueError(f"expected {kind} from {meta.ge:g} to {meta.le:g}")
    parts = []
    if low is not None:
        parts.append(f">= {low:g}" if meta.ge is not None else f"> {low:g}")
    if high is not None:
        parts.append(f"<= {high:g}" if meta.le is not None else f"< {high:g}")
    raise InvalidValueError(f"expected {kind} {' and '.join(parts)}")
