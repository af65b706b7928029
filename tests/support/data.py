"""Exact comparison of session values, for the tests of the data path."""

from __future__ import annotations

import typing as t
from datetime import datetime


def same(a: t.Any, b: t.Any) -> bool:
    """Equal, and of the same types all the way down: ``-0.0`` is not ``0.0``,
    a tuple not a list, a naive datetime not an aware one, a datetime in one
    zone not the same instant in another.
    """
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        return repr(a) == repr(b)
    if isinstance(a, datetime):
        return bool(
            a == b and a.tzinfo == b.tzinfo and a.fold == b.fold and a.isoformat() == b.isoformat()
        )
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)
