"""The e2e evaluation set: spoken commands for the evaluation home and what must happen for each.

Cases are built deterministically from phrasing templates × devices of `e2e_home` and written to
`e2e_cases.json` (`python -m device.bench.e2e_cases` regenerates it; the JSON is the set). Each
case says what a correct speaker does: exactly these MQTT publishes ("publish"), no publish and a
local answer ("local": state, time, timers, unknown devices, risky actions that must ask first),
or the cloud ("cloud"). About a third of the phrasings of every kind are HELD OUT: never tune on
those sentences (`held_out`); the held-out voices are `voices.HELD_OUT_VOICES`.
"""

from __future__ import annotations

import json
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from device.bench.e2e_home import COLORS, Device, Publish, build_home, discovery_file

CASES_FILE = Path(__file__).with_name("e2e_cases.json")
HOME_FILE = Path(__file__).with_name("e2e_home.json")


@dataclass(frozen=True, slots=True)
class Case:
    id: str
    kind: str
    text: str
    outcome: str
    """'publish', 'local' or 'cloud'"""
    publishes: list[Publish] = field(default_factory=list)
    optional: list[Publish] = field(default_factory=list)
    """publishes that may also appear (HA's 'ON after brightness')"""
    held_out: bool = False


def _spoken(name: str) -> str:
    return name.lower()


def _pick(devices: list[Device], **want: Any) -> list[Device]:
    out = []
    for d in devices:
        if all((getattr(d, k) == v) if not isinstance(v, tuple) else (getattr(d, k) in v) for k, v in want.items()):
            out.append(d)
    return out


class _Builder:
    def __init__(self) -> None:
        self.cases: list[Case] = []
        self.count: dict[str, int] = {}

    def add(self, kind: str, text: str, outcome: str, publishes: list[Publish] | None = None,
            optional: list[Publish] | None = None, *, held_out: bool) -> None:
        if any(c.text == text for c in self.cases):
            return  # two templates can meet on the same words
        n = self.count.get(kind, 0) + 1
        self.count[kind] = n
        self.cases.append(Case(f"{kind}-{n:03d}", kind, text, outcome, publishes or [], optional or [], held_out))

    def templated(self, kind: str, templates: list[str], items: list[Any], render: Any, held_from: int) -> None:
        """Every template × items in rotation; templates from index `held_from` on are held out."""
        for i, item in enumerate(items):
            for j in (i % len(templates), (i + len(templates) // 2) % len(templates)):
                text, outcome, pubs, opt = render(templates[j], item)
                self.add(kind, text, outcome, pubs, opt, held_out=j >= held_from)


def build_cases(devices: list[Device]) -> list[Case]:
    b = _Builder()
    lights = _pick(devices, component="light")
    switches = _pick(devices, component="switch")
    on_t = ["turn on the {n}", "switch on the {n}", "{n} on", "please turn the {n} on", "could you switch the {n} on",
            "put the {n} on", "start the {n}", "power up the {n}"]
    off_t = ["turn off the {n}", "switch off the {n}", "kill the {n}", "shut off the {n}", "{n} off please",
             "turn the {n} off", "could you power down the {n}", "cut the {n}"]
    b.templated("on_off", on_t, lights + switches, lambda t, d: (t.format(n=_spoken(d.name)), "publish", d.on(), []), 6)
    b.templated("on_off", off_t, lights + switches, lambda t, d: (t.format(n=_spoken(d.name)), "publish", d.off(), []), 6)
    toggle_t = ["toggle the {n}", "flip the {n}", "toggle {n}", "switch the {n} over"]
    b.templated("toggle", toggle_t, lights[:8] + switches[:3], lambda t, d: (t.format(n=_spoken(d.name)), "publish", d.toggle(), []), 3)

    dimmable = [d for d in lights if d.style == "z2m" or "brightness" in d.features]
    levels = [30, 50, 75, 20, 60, 10, 80, 40, 25, 90, 70, 15]
    bri_t = ["set the {n} to {v} percent", "dim the {n} to {v}", "{n} brightness {v} percent", "make the {n} {v} percent",
             "brighten the {n} to {v} percent", "change the {n} to {v} percent brightness"]

    def bri(t: str, item: tuple[Device, int]) -> tuple[str, str, list[Publish], list[Publish]]:
        d, v = item
        return t.format(n=_spoken(d.name), v=v), "publish", d.brightness(v), d.optional_for_brightness()

    b.templated("brightness", bri_t, [(d, levels[i % len(levels)]) for i, d in enumerate(dimmable * 2)], bri, 4)
    extremes = [("set the {n} to full brightness", 100), ("{n} to maximum", 100), ("dim the {n} all the way down", 1),
                ("set the {n} to half brightness", 50), ("put the {n} at minimum brightness", 1)]
    for i, d in enumerate(dimmable[:10]):
        t, v = extremes[i % len(extremes)]
        b.add("brightness", t.format(n=_spoken(d.name)), "publish", d.brightness(v), d.optional_for_brightness(), held_out=i % 5 >= 3)

    colored = [d for d in lights if "color" in d.features]
    col_t = ["make the {n} {c}", "set the {n} to {c}", "turn the {n} {c}", "change the {n} colour to {c}", "{n} {c} please"]
    names = list(COLORS)
    b.templated("color", col_t, [(d, names[i % len(names)]) for i, d in enumerate(colored * 4)],
                lambda t, it: (t.format(n=_spoken(it[0].name), c=it[1]), "publish", it[0].color(it[1]), []), 3)
    warm = [d for d in lights if "color_temp" in d.features]
    ct_t = [("make the {n} warm white", 2700), ("set the {n} to cool white", 4000), ("set the {n} to 4000 kelvin", 4000),
            ("make the {n} daylight", 6500), ("the {n} warmer please", 2700)]
    for i, d in enumerate(warm * 3):
        t, k = ct_t[i % len(ct_t)]
        b.add("color", t.format(n=_spoken(d.name)), "publish", d.color_temp(k), held_out=i % 5 >= 3)

    covers = [d for d in _pick(devices, component="cover") if d.extra.get("device_class") != "garage"]
    cov_t = [("open the {n}", "open"), ("close the {n}", "close"), ("raise the {n}", "open"), ("lower the {n}", "close"),
             ("stop the {n}", "stop"), ("shut the {n}", "close"), ("pull up the {n}", "open"), ("draw the {n}", "close")]
    for i, d in enumerate(covers * 4):
        t, a = cov_t[i % len(cov_t)]
        b.add("cover", t.format(n=_spoken(d.name)), "publish", d.cover(a), held_out=i % 8 >= 5)
    pos_t = ["set the {n} to {v} percent", "open the {n} to {v} percent", "move the {n} to {v} percent"]
    positioned = [d for d in covers if "position" in d.features]
    for i, d in enumerate(positioned * 3):
        v = [40, 70, 25, 60, 80, 30][i % 6]
        b.add("cover", pos_t[i % 3].format(n=_spoken(d.name), v=v), "publish", d.position(v), held_out=i % 3 == 2)

    climates = _pick(devices, component="climate")
    temps: list[float] = [21, 19.5, 22, 18, 20.5, 23, 17, 21.5]
    cl_t = ["set the {n} to {v} degrees", "{n} to {v}", "make the {n} {v} degrees", "change the {n} to {v} degrees",
            "set the temperature of the {n} to {v}"]
    for i, (d, temp) in enumerate([(d, temps[k % len(temps)]) for k, d in enumerate(climates * 4)]):
        spoken_v = f"{temp:g}".replace(".5", " point five")
        b.add("climate", cl_t[i % len(cl_t)].format(n=_spoken(d.name), v=spoken_v), "publish", d.temperature(temp),
              held_out=i % 5 >= 3)
    mode_t = [("turn off the {n}", "off"), ("set the {n} to heat", "heat"), ("switch the {n} to auto", "auto"),
              ("{n} heating off", "off"), ("put the {n} in heating mode", "heat")]
    for i, d in enumerate(climates * 2):
        t, m = mode_t[i % len(mode_t)]
        b.add("climate", t.format(n=_spoken(d.name)), "publish", d.mode(m), held_out=i % 5 >= 3)

    fans = _pick(devices, component="fan")
    for i, d in enumerate(fans * 2):
        t = ["turn on the {n}", "start the {n}", "stop the {n}", "turn off the {n}"][i % 4]
        pubs = d.on() if i % 4 < 2 else d.off()
        b.add("fan", t.format(n=_spoken(d.name)), "publish", pubs, held_out=i % 4 == 3)
    speedy = [d for d in fans if "percentage" in d.features]
    for i, d in enumerate(speedy * 3):
        v = [50, 100, 25, 75][i % 4]
        t = ["set the {n} speed to {v} percent", "{n} to {v} percent", "run the {n} at {v} percent"][i % 3]
        b.add("fan", t.format(n=_spoken(d.name), v=v), "publish", d.speed(v), held_out=i % 3 == 2)
    for d in (d for d in fans if "presets" in d.features):
        for j, p in enumerate(d.extra["presets"]):
            b.add("fan", f"set the {_spoken(d.name)} to {p} mode", "publish", d.preset(p), held_out=j == 2)

    scenes = _pick(devices, component="scene")
    sc_t = ["activate {n}", "turn on {n}", "start the {n} scene", "{n} scene please", "set the scene to {n}", "run {n}"]
    for i, d in enumerate(scenes * 3):
        b.add("scene", sc_t[i % len(sc_t)].format(n=_spoken(d.name)), "publish", d.activate(), held_out=i % 6 >= 4)

    areas = sorted({d.area for d in lights})
    ar_t = [("turn off all the lights in the {a}", "off"), ("turn on the lights in the {a}", "on"),
            ("{a} lights off", "off"), ("switch on every light in the {a}", "on"), ("lights out in the {a}", "off")]
    for i, area in enumerate(areas * 2):
        t, a = ar_t[i % len(ar_t)]
        pubs = [p for d in lights if d.area == area for p in (d.on() if a == "on" else d.off())]
        b.add("area", t.format(a=area.lower()), "publish", pubs, held_out=i % 5 >= 3)
    for i, (t, a) in enumerate([("turn off all the lights", "off"), ("turn on all the lights", "on"),
                                ("switch off every light in the house", "off"), ("all lights off", "off")]):
        pubs = [p for d in lights for p in (d.on() if a == "on" else d.off())]
        b.add("area", t, "publish", pubs, held_out=i >= 3)

    queries = [("is the {n} on", "light"), ("is the {n} locked", "lock"), ("is the {n} open", "cover"),
               ("what is the {n}", "sensor"), ("is the {n} open", "binary_sensor"), ("is the {n} running", "switch")]
    qi = 0
    for t, comp in queries:
        for d in _pick(devices, component=comp)[:5]:
            b.add("query", t.format(n=_spoken(d.name)), "local", held_out=qi % 3 == 2)
            qi += 1
    for i, t in enumerate(["what's the temperature in the living room", "how warm is it in the office",
                           "what is the humidity in the bathroom", "how humid is the bedroom",
                           "what's the battery level of the gate sensor", "is anything on in the kitchen"]):
        b.add("query", t, "local", held_out=i >= 4)

    media = _pick(devices, component="media_player")
    med_t: list[tuple[str, str, int | None]] = [("pause the {n}", "pause", None), ("resume the {n}", "play", None), ("next track on the {n}", "next", None),
             ("play the {n}", "play", None), ("skip this song on the {n}", "next", None),
             ("set the {n} volume to {v} percent", "volume", 40), ("previous track on the {n}", "previous", None)]
    for i, d in enumerate(media * 5):
        t, verb, vol = med_t[i % len(med_t)]
        b.add("media", t.format(n=_spoken(d.name), v=vol), "publish", d.media(verb, vol), held_out=i % 7 >= 5)

    for i, t in enumerate(["what time is it", "what's the time", "what is today's date", "what day is it today",
                           "tell me the time", "what's the date"]):
        b.add("time", t, "local", held_out=i >= 4)
    timer_t = ["set a timer for five minutes", "start a ten minute timer", "set a pasta timer for twelve minutes",
               "how much time is left on my timer", "cancel the timer", "pause the timer", "resume the timer",
               "set a timer for thirty seconds", "start a timer for one hour", "stop the timer",
               "set a tea timer for three minutes", "how long is left on the pasta timer"]
    for i, t in enumerate(timer_t):
        b.add("timer", t, "local", held_out=i % 3 == 2)

    unknown = ["turn off the basement light", "turn on the sauna", "open the attic window", "set the pool heater to 28 degrees",
               "switch on the hot tub", "turn on the garage heater", "dim the patio lights to 40 percent",
               "turn off the dining room lamp", "start the robot vacuum", "open the cat flap", "turn on the aquarium light",
               "close the skylight", "switch off the christmas tree", "turn on the basement fan",
               "set the wine cellar to 12 degrees", "turn on the lights in the attic", "turn off the lights in the basement",
               "lock the shed", "open the pool cover", "turn on the balcony light"]
    for i, t in enumerate(unknown):
        b.add("unknown_device", t, "local", held_out=i % 3 == 2)

    for d in [d for d in devices if d.component == "lock"] + [d for d in devices if d.extra.get("device_class") == "garage"]:
        if d.component == "lock":
            b.add("risky", f"lock the {_spoken(d.name)}", "publish", d.lock(), held_out=False)
            b.add("risky", f"unlock the {_spoken(d.name)}", "local", held_out=False)
            b.add("risky", f"unlock the {_spoken(d.name)} please", "local", held_out=True)
        else:
            b.add("risky", f"open the {_spoken(d.name)}", "local", held_out=False)
            b.add("risky", f"close the {_spoken(d.name)}", "publish", d.cover("close"), held_out=True)

    cloud = ["what is the tallest mountain in the world", "tell me a joke", "who wrote pride and prejudice",
             "what's the weather like tomorrow", "how far away is the moon", "what is the capital of australia",
             "play some jazz music", "translate good morning into spanish", "how many ounces are in a pound",
             "what should i cook for dinner tonight", "who won the world cup in two thousand eighteen",
             "explain how a rainbow forms", "what is the square root of one hundred forty four",
             "remind me to call my mother tomorrow", "what's the news today", "how do you spell necessary",
             "recommend a good book", "what is photosynthesis", "how long should i boil an egg",
             "what is the population of canada", "tell me something interesting", "what does a kilowatt hour mean",
             "how tall is the eiffel tower", "who painted the mona lisa", "what is the speed of light",
             "can you help me plan a trip to rome", "what rhymes with orange", "how many days until christmas",
             "why is the sky blue", "write a short poem about autumn"]
    for i, t in enumerate(cloud):
        b.add("cloud", t, "cloud", held_out=i % 3 == 2)
    return b.cases


def write_files() -> tuple[int, int]:
    devices = build_home()
    HOME_FILE.write_text(json.dumps(discovery_file(devices), indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    cases = build_cases(devices)
    CASES_FILE.write_text(json.dumps([asdict(c) for c in cases], indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return len(devices), len(cases)


def load_cases(path: Path = CASES_FILE) -> list[Case]:
    from device.errors import ConfigError

    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        return [Case(**item) for item in raw]
    except (OSError, ValueError, TypeError) as err:
        raise ConfigError("bench-cases", f"can't read the e2e cases {path}: {err}") from None


if __name__ == "__main__":
    n_devices, n_cases = write_files()
    sys.stdout.write(f"{HOME_FILE}: {n_devices} devices; {CASES_FILE}: {n_cases} cases\n")
