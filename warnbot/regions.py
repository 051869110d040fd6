"""Administrative division codes (GB/T 2260 and the statistical 9/12-digit codes).

A code's *prefix* is its significant part: ``440100`` (a city) → ``4401``,
``440000`` (a province) → ``44``, ``440123001000`` (a township written in 12
digits) → ``440123001``. A region contains every code that starts with its prefix.
"""

from __future__ import annotations


def prefix(code: str) -> str:
    """The significant digits of a division code."""
    code = code.strip()
    # isascii: str.isdigit() also accepts full-width and other Unicode digits ("４４９９０１"),
    # which would pass here and then never match an ASCII code.
    if not (code.isascii() and code.isdigit()) or len(code) not in (6, 9, 12):
        raise ValueError(f"not an administrative division code: {code!r}")
    while len(code) > 6 and code.endswith("000"):
        code = code[:-3]
    while len(code) > 2 and len(code) <= 6 and code.endswith("00"):
        code = code[:-2]
    return code


def is_code(text: str) -> bool:
    """True for a well-formed 6, 9 or 12 digit division code."""
    try:
        prefix(text)
    except ValueError:
        return False
    return True


def contains(outer: str, inner: str) -> bool:
    """True when region ``inner`` lies within (or is) region ``outer``."""
    return prefix(inner).startswith(prefix(outer))


def related(a: str, b: str) -> bool:
    """True when one region contains the other: the people of an incident's region
    and of the offices above it are all concerned by it."""
    return contains(a, b) or contains(b, a)
