"""Colour names and the conversions lights speak (hue/saturation, rgb, CIE xy). Pure.

A spoken colour is a hue and a saturation; a light wants whichever of hs, rgb or xy its discovery
says it supports, and reports its colour back in any of them. Whites are colour temperatures
(kelvin), so a light with white channels shows them properly; one without gets the nearest rgb.
"""

from __future__ import annotations

import colorsys
import math
import re
from dataclasses import dataclass

from device.errors import ToolError


@dataclass(frozen=True, slots=True)
class Color:
    name: str
    hue: float
    """degrees, 0..360"""
    saturation: float
    """percent, 0..100"""
    kelvin: int | None = None
    """a white: best shown as a colour temperature where the light has one"""

    @property
    def rgb(self) -> tuple[int, int, int]:
        """At full value: the colour, not its brightness (that stays the light's own)."""
        if self.kelvin is not None:
            return kelvin_to_rgb(self.kelvin)
        r, g, b = colorsys.hsv_to_rgb(self.hue / 360.0, self.saturation / 100.0, 1.0)
        return round(r * 255), round(g * 255), round(b * 255)

    @property
    def xy(self) -> tuple[float, float]:
        return rgb_to_xy(*self.rgb)


# The hue wheel's names, as people say them; saturation below 100 where the name means a paler tint.
_TABLE: tuple[tuple[str, float, float, int | None], ...] = (
    ("red", 0, 100, None),
    ("orange", 30, 100, None),
    ("amber", 45, 100, None),
    ("yellow", 60, 100, None),
    ("lime", 90, 100, None),
    ("green", 120, 100, None),
    ("turquoise", 170, 75, None),
    ("cyan", 180, 100, None),
    ("sky blue", 200, 60, None),
    ("blue", 240, 100, None),
    ("violet", 270, 100, None),
    ("purple", 280, 100, None),
    ("magenta", 300, 100, None),
    ("pink", 330, 60, None),
    ("white", 0, 0, None),
    ("warm white", 0, 0, 2700),
    ("soft white", 0, 0, 3000),
    ("cool white", 0, 0, 6500),
    ("daylight", 0, 0, 5000),
)


def _entry(name: str, hue: float, saturation: float, kelvin: int | None) -> Color:
    if kelvin is not None:
        # A white's hue and saturation are its black body's, so hs, rgb and xy lights agree.
        hue, saturation = rgb_to_hs(*kelvin_to_rgb(kelvin))
    return Color(name, hue, saturation, kelvin)


def nearest_name(hue: float, saturation: float) -> str:
    """What to call a reported colour: the named hue nearest to it, or white when it is pale."""
    if saturation < 15:
        return "white"
    hues = [c for c in COLORS.values() if c.kelvin is None and c.saturation >= 15]
    return min(hues, key=lambda c: (abs((c.hue - hue + 180) % 360 - 180), -c.saturation)).name


def color_named(text: str) -> Color:
    """'Red', 'warm-white', 'the blue' → a Color; ToolError('unknown-color') names what it didn't know."""
    key = re.sub(r"[^a-z]+", " ", text.lower()).strip()
    key = re.sub(r"^(the|a|an)\s+", "", key)
    key = re.sub(r"\s+(colou?r|light)$", "", key)
    key = _ALIASES.get(key, key)
    color = COLORS.get(key)
    if color is None:
        # Said back to the user: short, and without the whole table.
        raise ToolError("unknown-color", f"I don't know the colour {text[:40]}.")
    return color


def color_from_rgb(rgb: tuple[int, int, int]) -> Color:
    """A colour given as [r, g, b] (0..255 each; the JSON schema has checked the range)."""
    h, s = rgb_to_hs(*rgb)
    return Color("", h, s)  # no name: the reply says "changed the colour"


def rgb_to_hs(r: float, g: float, b: float) -> tuple[float, float]:
    top = max(r, g, b)
    if top <= 0:
        return 0.0, 0.0
    h, s, _v = colorsys.rgb_to_hsv(r / top, g / top, b / top)
    return round(h * 360.0, 1) % 360.0, round(s * 100.0, 1)


# sRGB (IEC 61966-2-1, D65) to CIE XYZ and back: the chromaticity of the colour a screen shows.
_TO_XYZ = ((0.4124, 0.3576, 0.1805), (0.2126, 0.7152, 0.0722), (0.0193, 0.1192, 0.9505))
_FROM_XYZ = ((3.2406, -1.5372, -0.4986), (-0.9689, 1.8758, 0.0415), (0.0557, -0.2040, 1.0570))


def _to_linear(c: float) -> float:
    return ((c + 0.055) / 1.055) ** 2.4 if c > 0.04045 else c / 12.92


def _to_gamma(c: float) -> float:
    return 1.055 * c ** (1 / 2.4) - 0.055 if c > 0.0031308 else 12.92 * c


def rgb_to_xy(r: float, g: float, b: float) -> tuple[float, float]:
    lin = [_to_linear(c / 255.0) for c in (r, g, b)]
    x_, y_, z_ = (sum(m * c for m, c in zip(row, lin, strict=True)) for row in _TO_XYZ)
    total = x_ + y_ + z_
    if total <= 0:
        return 0.3127, 0.3290  # black has no chromaticity: the white point
    return round(x_ / total, 4), round(y_ / total, 4)


def xy_to_rgb(x: float, y: float) -> tuple[int, int, int]:
    y = max(y, 1e-6)
    xyz = (x / y, 1.0, (1.0 - x - y) / y)
    lin = [max(0.0, sum(m * c for m, c in zip(row, xyz, strict=True))) for row in _FROM_XYZ]
    top = max(*lin, 1e-9)
    return tuple(round(255 * _to_gamma(c / top)) for c in lin)  # type: ignore[return-value]


def kelvin_to_rgb(kelvin: int) -> tuple[int, int, int]:
    """The rgb of a black body at `kelvin` (Tanner Helland's fit), for lights with no white channel."""
    t = max(1000, min(40000, kelvin)) / 100.0
    r = 255.0 if t <= 66 else 329.698727446 * (t - 60) ** -0.1332047592
    g = 99.4708025861 * math.log(t) - 161.1195681661 if t <= 66 else 288.1221695283 * (t - 60) ** -0.0755148492
    b = 255.0 if t >= 66 else (0.0 if t <= 19 else 138.5177312231 * math.log(t - 10) - 305.0447927307)
    return tuple(round(max(0.0, min(255.0, c))) for c in (r, g, b))  # type: ignore[return-value]


def state_from_parts(kind: str, parts: list[float]) -> dict[str, float]:
    """hue/saturation from a reported colour: kind 'hs' (h, s), 'rgb' (r, g, b) or 'xy' (x, y)."""
    if any(not math.isfinite(p) for p in parts):
        return {}
    if kind == "hs" and len(parts) >= 2:
        h, s = parts[0] % 360.0, max(0.0, min(100.0, parts[1]))
    elif kind == "rgb" and len(parts) >= 3:
        if any(not 0 <= p <= 255 for p in parts[:3]):
            return {}
        h, s = rgb_to_hs(*parts[:3])
    elif kind == "xy" and len(parts) >= 2:
        if not (0 <= parts[0] <= 1 and 0 < parts[1] <= 1):
            return {}
        h, s = rgb_to_hs(*xy_to_rgb(parts[0], parts[1]))
    else:
        return {}
    return {"hue": round(h) % 360, "saturation": round(s)}


def state_from_text(kind: str, text: str) -> dict[str, float]:
    """'255,0,0' on an rgb state topic, '240,100' on an hs one, '0.15,0.06' on an xy one."""
    try:
        parts = [float(p) for p in text.replace(" ", "").strip("[]()").split(",")]
    except ValueError:
        return {}
    return state_from_parts(kind, parts)


def state_from_json(color: object) -> dict[str, float]:
    """The `color` object of a JSON light's state (zigbee2mqtt sends xy and often hue/saturation)."""
    if not isinstance(color, dict):
        return {}

    def number(*keys: str) -> float | None:
        for k in keys:
            v = color.get(k)
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                return float(v)
        return None

    h, s = number("h", "hue"), number("s", "saturation")
    if h is not None and s is not None:
        return state_from_parts("hs", [h, s])
    r, g, b = number("r"), number("g"), number("b")
    if r is not None and g is not None and b is not None:
        return state_from_parts("rgb", [r, g, b])
    x, y = number("x"), number("y")
    if x is not None and y is not None:
        return state_from_parts("xy", [x, y])
    return {}


def hue_window(hue: float, tolerance: int = 15) -> tuple[int, ...]:
    """The reported hues that confirm `hue`: devices round, and bulbs clamp xy to their gamut."""
    centre = round(hue)
    return tuple(sorted({(centre + d) % 360 for d in range(-tolerance, tolerance + 1)}))


COLORS: dict[str, Color] = {name: _entry(name, h, s, k) for name, h, s, k in _TABLE}
_ALIASES = {"grey": "white", "gray": "white", "aqua": "cyan", "indigo": "violet", "lilac": "violet",
            "rose": "pink", "warm": "warm white", "cold white": "cool white", "cool": "cool white"}
