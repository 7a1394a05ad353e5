"""Numbers said as words ("twenty one", "a hundred", "seventy five point five") → digits. Pure."""

from __future__ import annotations

_UNITS = {
    "zero": 0, "oh": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7,
    "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14,
    "fifteen": 15, "sixteen": 16, "seventeen": 17, "eighteen": 18, "nineteen": 19,
}
_TENS = {"twenty": 20, "thirty": 30, "forty": 40, "fifty": 50, "sixty": 60, "seventy": 70, "eighty": 80, "ninety": 90}
_WORDS = set(_UNITS) | set(_TENS) | {"hundred", "a", "point", "and"}


def words_to_digits(tokens: list[str]) -> list[str]:
    """Replace each run of number words by its value; other tokens pass through unchanged."""
    out: list[str] = []
    i = 0
    while i < len(tokens):
        value, used = _parse_number(tokens, i)
        if used:
            out.append(_fmt(value))
            i += used
        else:
            out.append(tokens[i])
            i += 1
    return out


def _parse_number(tokens: list[str], start: int) -> tuple[float, int]:
    i, seen = start, False
    total: float = 0
    current: float = 0
    while i < len(tokens):
        t = tokens[i]
        if t in _UNITS and (current % 10 == 0 or current < 20) and not (current and current < 20):
            current += _UNITS[t]
        elif t in _TENS and current == 0:
            current += _TENS[t]
        elif t == "hundred" and (seen or (i > start and tokens[i - 1] == "a")):
            current = max(current, 1) * 100
        elif t == "a" and i + 1 < len(tokens) and tokens[i + 1] == "hundred" and not seen:
            i += 1
            continue
        elif t == "and" and seen and i + 1 < len(tokens) and (tokens[i + 1] in _UNITS or tokens[i + 1] in _TENS):
            total += current
            current = 0
            i += 1
            continue
        elif t == "point" and seen and i + 1 < len(tokens) and tokens[i + 1] in _UNITS:
            total += current + _UNITS[tokens[i + 1]] / 10
            return total, i + 2 - start
        else:
            break
        seen = True
        i += 1
    if not seen:
        return 0, 0
    return total + current, i - start


def _fmt(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"
