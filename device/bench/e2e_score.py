"""Scoring one e2e turn: right, miss, or WRONG PUBLISH (anything published that was not expected).

Pure functions over what was observed (the publishes on command topics, the route the turn took)
and the case's expectation. A wrong publish is counted whatever else happened: it is the worst
outcome (a device moved that nobody asked to move), worse than doing nothing.
"""

from __future__ import annotations

import colorsys
import json
import math
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from device.bench.e2e_cases import Case


@dataclass(frozen=True, slots=True)
class Observed:
    publishes: tuple[tuple[str, str], ...] = ()
    route: str | None = None
    """'local', 'cloud', 'drop' or None (nothing happened)"""
    woke: bool = True
    transcript: str = ""


@dataclass(frozen=True, slots=True)
class Verdict:
    result: str
    """'right', 'miss' or 'wrong_publish'"""
    wake_miss: bool = False
    detail: str = ""


def _hue_of(payload: Any) -> float | None:
    """Hue in degrees of an rgb 'r,g,b' string or a JSON colour (rgb, hs, xy)."""
    if isinstance(payload, dict):
        color = payload.get("color")
        if isinstance(color, dict):
            if {"r", "g", "b"} <= color.keys():
                return _rgb_hue(color["r"], color["g"], color["b"])
            if "h" in color:
                return float(color["h"])
            if {"x", "y"} <= color.keys():
                x, y = float(color["x"]), float(color["y"])
                z = 1.0 - x - y
                big_x, big_z = x / max(y, 1e-6), z / max(y, 1e-6)
                r = 3.2406 * big_x - 1.5372 - 0.4986 * big_z
                g = -0.9689 * big_x + 1.8758 + 0.0415 * big_z
                b = 0.0557 * big_x - 0.2040 + 1.0570 * big_z
                return _rgb_hue(max(r, 0), max(g, 0), max(b, 0))
        return None
    if isinstance(payload, str) and payload.count(",") == 2:
        try:
            r, g, b = (float(p) for p in payload.split(","))
        except ValueError:
            return None
        return _rgb_hue(r, g, b)
    return None


def _rgb_hue(r: float, g: float, b: float) -> float:
    top = max(r, g, b, 1e-9)
    h, _s, _v = colorsys.rgb_to_hsv(r / top, g / top, b / top)
    return h * 360.0


def payload_matches(spec: Any, payload: str) -> bool:
    if isinstance(spec, str):
        return payload.strip() == spec
    if not isinstance(spec, dict):
        return False
    if "one_of" in spec:
        return any(payload_matches(s, payload) for s in spec["one_of"])
    if "number" in spec:
        try:
            return math.isclose(float(payload), float(spec["number"]), abs_tol=1.01)
        except ValueError:
            return False
    body: Any = payload
    if "json" in spec:
        try:
            body = json.loads(payload)
        except ValueError:
            return False
        if not isinstance(body, dict):
            return False
        tolerance = float(spec.get("tolerance", 2))
        for key, want in spec["json"].items():
            got = body.get(key)
            if isinstance(want, (int, float)) and not isinstance(want, bool):
                if not isinstance(got, (int, float)) or abs(got - want) > tolerance:
                    return False
            elif str(got).upper() != str(want).upper():
                return False
    if "hue" in spec:
        hue = _hue_of(body)
        if hue is None:
            return False
        diff = abs((hue - float(spec["hue"]) + 180) % 360 - 180)
        return diff <= 25
    return True


def score(case: Case, seen: Observed) -> Verdict:
    pending = list(case.publishes)
    done: list[dict[str, Any]] = []
    unexpected = []
    for topic, payload in seen.publishes:
        match = next((p for p in pending if p["topic"] == topic and payload_matches(p["payload"], payload)), None)
        if match is not None:
            pending.remove(match)
            done.append(match)
            continue
        again = any(p["topic"] == topic and payload_matches(p["payload"], payload) for p in done + case.optional)
        if not again:  # a repeat of a wanted publish (QoS 1) or an allowed extra is harmless
            unexpected.append(f"{topic}={payload[:60]}")
    wake_miss = not seen.woke
    if unexpected:
        return Verdict("wrong_publish", wake_miss, "; ".join(unexpected))
    if case.outcome == "publish":
        ok = not pending and bool(case.publishes)
        return Verdict("right" if ok else "miss", wake_miss, "" if ok else f"missing {len(pending)} publish(es)")
    if seen.publishes:
        return Verdict("wrong_publish", wake_miss, "published for a non-publishing case")
    if seen.route == case.outcome:
        return Verdict("right", wake_miss)
    return Verdict("miss", wake_miss, f"route {seen.route}, expected {case.outcome}")


@dataclass
class Tally:
    n: int = 0
    right: int = 0
    miss: int = 0
    wrong: int = 0
    wake_miss: int = 0
    woke_n: int = 0
    woke_right: int = 0

    def add(self, verdict: Verdict) -> None:
        self.n += 1
        self.right += verdict.result == "right"
        self.miss += verdict.result == "miss"
        self.wrong += verdict.result == "wrong_publish"
        self.wake_miss += verdict.wake_miss
        if not verdict.wake_miss:
            self.woke_n += 1
            self.woke_right += verdict.result == "right"

    def cells(self) -> str:
        acc = 100.0 * self.right / self.n if self.n else 0.0
        woke = 100.0 * self.woke_right / self.woke_n if self.woke_n else 0.0
        return f"{self.n:5d} {acc:6.1f}% {woke:6.1f}% {self.wake_miss:5d} {self.wrong:5d}"


@dataclass
class Report:
    """Tallies by (part, condition) and (part, kind) for one system."""

    by_condition: dict[tuple[str, str], Tally] = field(default_factory=lambda: defaultdict(Tally))
    by_kind: dict[tuple[str, str], Tally] = field(default_factory=lambda: defaultdict(Tally))
    wrong: list[str] = field(default_factory=list)

    def add(self, part: str, condition: str, case: Case, verdict: Verdict, label: str = "") -> None:
        for key in ((part, condition), (part, "ALL")):
            self.by_condition[key].add(verdict)
        for key in ((part, case.kind), (part, "ALL")):
            self.by_kind[key].add(verdict)
        if verdict.result == "wrong_publish":
            self.wrong.append(f"{part}/{condition}/{label} {case.id} {case.text!r}: {verdict.detail}")


HEADER = "    n    acc  acc|woke  wake-miss  wrong-publish"
