"""The small subset of Home Assistant's Jinja templates that devices actually publish.

Discovery payloads carry `value_template`s such as ``{{ value_json.state }}`` and
`command_template`s such as ``{{ value }}``. We evaluate only plain value/attribute lookups (with an
optional ``| int``/``| float``/``| lower``/``| upper`` filter) and refuse everything else with
`None`, so a hostile template can never run code: there is no Jinja here at all.
"""

from __future__ import annotations

import json
import re
from typing import Any

_EXPR = re.compile(
    r"""^\s*\{\{\s*
    (?P<root>value_json|value)
    (?P<path>(?:\.[A-Za-z_][A-Za-z0-9_]*|\[\s*(?:'[^'\]]*'|"[^"\]]*"|\d+)\s*\])*)
    \s*(?:\|\s*(?P<filter>int|float|lower|upper|string|round))?\s*\}\}\s*$""",
    re.VERBOSE,
)
_STEP = re.compile(r"""\.([A-Za-z_][A-Za-z0-9_]*)|\[\s*(?:'([^'\]]*)'|"([^"\]]*)"|(\d+))\s*\]""")

MISSING = object()
"""Returned when a template can't be evaluated for this payload (unsupported or absent key)."""


def is_simple(template: str) -> bool:
    return _EXPR.match(template) is not None


def render_value(template: str | None, payload: str) -> Any:
    """Evaluate a state `value_template` against a received payload; MISSING when it can't."""
    if template is None:
        return payload
    match = _EXPR.match(template)
    if match is None:
        return MISSING
    value: Any
    if match["root"] == "value_json":
        try:
            value = json.loads(payload)
        except ValueError:
            return MISSING
    else:
        value = payload
    for step in _STEP.finditer(match["path"] or ""):
        key = step.group(1) or step.group(2) or step.group(3)
        index = step.group(4)
        if index is not None and isinstance(value, list):
            i = int(index)
            if i >= len(value):
                return MISSING
            value = value[i]
        elif isinstance(value, dict) and key is not None and key in value:
            value = value[key]
        else:
            return MISSING
    return _apply_filter(value, match["filter"])


def render_command(template: str | None, value: Any) -> str | None:
    """Fill a `command_template` with `value`; None when the template is not a plain ``{{ value }}``."""
    if template is None:
        return str(value)
    match = _EXPR.match(template)
    if match is None or match["root"] != "value" or match["path"]:
        return None
    out = _apply_filter(value, match["filter"])
    return None if out is MISSING else str(out)


def _apply_filter(value: Any, name: str | None) -> Any:
    try:
        match name:
            case None | "string":
                return value
            case "int":
                return int(float(value))
            case "float":
                return float(value)
            case "round":
                return round(float(value))
            case "lower":
                return str(value).lower()
            case "upper":
                return str(value).upper()
    except (TypeError, ValueError):
        return MISSING
    return MISSING


_PLACEHOLDER = re.compile(r"\{\{\s*([a-z_]+)\s*(?:\|\s*(int|float|round|string))?\s*\}\}")
_HEX = re.compile(r"""^\s*\{\{\s*(['"])(#?)%02x%02x%02x\1\s*\|\s*format\(\s*red\s*,\s*green\s*,\s*blue\s*\)\s*\}\}\s*$""")


def render_fields(template: str | None, variables: dict[str, Any], default: str) -> str | None:
    """Fill a colour `command_template` (``{{ red }},{{ green }},{{ blue }}``, ``{{ hue }},{{ sat }}``)
    from named numbers; also the hex form HA's docs show (``'%02x%02x%02x' | format(red, green, blue)``).
    None when the template uses anything else: we never evaluate Jinja."""
    if template is None:
        template = default
    hexed = _HEX.match(template)
    if hexed is not None:
        return hexed.group(2) + "".join(f"{int(variables[k]):02x}" for k in ("red", "green", "blue"))
    out, end = [], 0
    for m in _PLACEHOLDER.finditer(template):
        literal = template[end:m.start()]
        if "{" in literal or "}" in literal:
            return None
        if m.group(1) not in variables:
            return None
        value = _apply_filter(variables[m.group(1)], m.group(2))
        if value is MISSING:
            return None
        out += [literal, f"{value:g}" if isinstance(value, float) else str(value)]
        end = m.end()
    tail = template[end:]
    if "{" in tail or "}" in tail:
        return None
    return "".join(out) + tail
