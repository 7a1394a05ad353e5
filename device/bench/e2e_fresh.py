"""A fresh, blind, held-out e2e set: spoken commands for the evaluation home, written by hand.

`e2e_cases.py` builds its set from phrasing templates; this one was written without looking at
those templates, at voxhome's sentence files or at Home Assistant's intent data, the way different
people talk to a smart speaker (fillers, politeness, word orders, indirect requests, plurals,
paraphrased device names). Every case is held out: never tune on these sentences; score them with
the held-out voices only (`voxhome bench e2e --part fresh`). The expected publishes come from the
same `Device` methods as `e2e_cases.py`, so both sets are scored alike (`e2e_score.py`).

State: the bench's home starts with every device off and no brightness, target, position or
volume known (`e2e_home.json` retains only sensor readings), and the cases of one run share the
home in random order. A relative command ("a bit brighter", "turn the heating up") therefore has
no single right value: its case accepts any level on the right device and topic, and so checks
the device and the kind of action, not the step. Ambiguous requests are left out, or expect a local
answer with no publish (asking which one is right).

`python -m device.bench.e2e_fresh` regenerates `e2e_fresh.json`; the JSON is the set.
"""

from __future__ import annotations

import json
import re
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any

from device.bench.e2e_cases import Case, load_cases
from device.bench.e2e_home import Device, Publish, build_home

FRESH_FILE = Path(__file__).with_name("e2e_fresh.json")
SPEAKABLE = re.compile(r"[A-Za-z0-9' %,?]+")
"""Words, digits and % (plus the apostrophe of a contraction and a comma or question mark for prosody)."""
KINDS = ("on_off", "toggle", "brightness", "color", "area", "cover", "climate", "fan", "scene", "media",
         "query", "time", "timer", "unknown_device", "risky", "cloud")


def _numbers(lo: int, hi: int) -> dict[str, Any]:
    """Any number in about [lo-1, hi+1]: the scorer allows ±1.01 around each, so a step of 2 leaves no gap."""
    return {"one_of": [{"number": v} for v in range(lo, hi + 1, 2)]}


def _raw(dev: Device, pct: int) -> int:
    payload = dev.brightness(pct)[0]["payload"]
    return int(payload["json"]["brightness"] if "json" in payload else payload["number"])


class _Fresh:
    def __init__(self, devices: list[Device]) -> None:
        self.dev = {d.id.split(".", 1)[1]: d for d in devices}
        self.cases: list[Case] = []
        self.count: dict[str, int] = {}

    def add(self, kind: str, text: str, outcome: str, publishes: list[Publish] | None = None,
            optional: list[Publish] | None = None) -> None:
        if kind not in KINDS or not SPEAKABLE.fullmatch(text):
            raise ValueError(f"bad fresh case {kind}: {text!r}")
        if any(c.text == text for c in self.cases):
            raise ValueError(f"the fresh set says {text!r} twice")
        if (outcome == "publish") != bool(publishes):
            raise ValueError(f"{text!r}: a publish case needs publishes, a {outcome} case none")
        n = self.count.get(kind, 0) + 1
        self.count[kind] = n
        self.cases.append(Case(f"fresh-{kind}-{n:03d}", kind, text, outcome, publishes or [], optional or [], True))

    def act(self, kind: str, text: str, publishes: list[Publish], optional: list[Publish] | None = None) -> None:
        self.add(kind, text, "publish", publishes, optional)

    # -- the expected publishes, from the home's own Device methods ------------------------------

    def on(self, *names: str) -> list[Publish]:
        return [p for n in names for p in self.dev[n].on()]

    def off(self, *names: str) -> list[Publish]:
        return [p for n in names for p in self.dev[n].off()]

    def bri(self, kind: str, text: str, names: tuple[str, ...], pct: int, lo: int | None = None,
            extra_optional: list[Publish] | None = None) -> None:
        """Brightness `pct` on each light, or any level in [lo, pct] percent when `lo` is given."""
        pubs, opt = [], list(extra_optional or [])
        for n in names:
            d = self.dev[n]
            opt += d.optional_for_brightness()
            if lo is None:
                pubs += d.brightness(pct)
                continue
            a, b = max(1, _raw(d, lo)) if lo > 0 else 1, _raw(d, pct)
            if d.style == "z2m":
                pubs.append({"topic": d.topics["cmd"], "payload": {"json": {"state": "ON", "brightness": (a + b) / 2},
                                                                    "tolerance": (b - a) / 2}})
            else:
                pubs.append({"topic": d.topics["bri"], "payload": _numbers(a + 1, b - 1)})
        self.act(kind, text, pubs, opt)

    def kelvin(self, text: str, name: str, lo: int, hi: int | None = None) -> None:
        """Colour temperature `lo` kelvin, or anything between `lo` and `hi` kelvin (warm white, cool white)."""
        d = self.dev[name]
        pub = d.color_temp(lo)[0]
        if hi is not None:
            a, b = d.color_temp(hi)[0]["payload"]["json"]["color_temp"], pub["payload"]["json"]["color_temp"]
            pub = {"topic": pub["topic"], "payload": {"json": {"state": "ON", "color_temp": (a + b) / 2},
                                                      "tolerance": (b - a) / 2 + 3}}
        self.act("color", text, [pub])

    def speed(self, text: str, name: str, pct: int | tuple[int, int]) -> None:
        """HA's fan turn_on(percentage) sends ON before the percentage, set_percentage only the percentage."""
        d = self.dev[name]
        pub = d.speed(pct) if isinstance(pct, int) else [{"topic": d.topics["pct"], "payload": _numbers(*pct)}]
        self.act("fan", text, pub, d.on())

    def target(self, text: str, name: str, degrees: float | None, mode_optional: bool = False) -> None:
        """A set point (`None`: relative, any set point in range). HA may also switch the mode to heat."""
        d = self.dev[name]
        pub = d.temperature(degrees) if degrees is not None else [{"topic": d.topics["temp"], "payload": _numbers(6, 32)}]
        self.act("climate", text, pub, d.mode("heat") if mode_optional else None)

    def local(self, kind: str, *texts: str) -> None:
        for t in texts:
            self.add(kind, t, "local")

    def cloud(self, *texts: str) -> None:
        for t in texts:
            self.add("cloud", t, "cloud")


LIGHTS = ("kitchen_light", "kitchen_spotlights", "counter_light", "living_room_lamp", "ceiling_light", "floor_lamp",
          "tv_backlight", "bedroom_light", "bedside_lamp", "desk_lamp", "office_light", "hallway_light", "porch_light",
          "bathroom_light", "mirror_light", "garage_light", "night_light", "kids_room_light")
KITCHEN = ("kitchen_light", "kitchen_spotlights", "counter_light")
LIVING = ("living_room_lamp", "ceiling_light", "floor_lamp", "tv_backlight")


def build_fresh(devices: list[Device]) -> list[Case]:
    f = _Fresh(devices)
    d = f.dev
    for text, pubs in [
        ("kitchen light on please", f.on("kitchen_light")),
        ("could you turn on the kitchen light for me", f.on("kitchen_light")),
        ("could you switch off the counter light", f.off("counter_light")),
        ("uh can you switch the counter light on", f.on("counter_light")),
        ("um turn the kitchen spotlights on", f.on("kitchen_spotlights")),
        ("spotlights in the kitchen off", f.off("kitchen_spotlights")),
        ("get the coffee maker going", f.on("coffee_maker")),
        ("can you put the coffee machine on", f.on("coffee_maker")),
        ("switch the coffee maker off now", f.off("coffee_maker")),
        ("switch the dishwasher on", f.on("dishwasher")),
        ("turn the dishwasher off please", f.off("dishwasher")),
        ("living room lamp on", f.on("living_room_lamp")),
        ("living room lamp off thanks", f.off("living_room_lamp")),
        ("floor lamp on", f.on("floor_lamp")),
        ("kill the floor lamp", f.off("floor_lamp")),
        ("switch on the lights behind the tv", f.on("tv_backlight")),
        ("turn the tv backlight off", f.off("tv_backlight")),
        ("turn on the ceiling light in the living room", f.on("ceiling_light")),
        ("please turn the bedroom light off", f.off("bedroom_light")),
        ("bedside lamp on", f.on("bedside_lamp")),
        ("could you turn off my bedside light", f.off("bedside_lamp")),
        ("hey, turn on the electric blanket", f.on("electric_blanket")),
        ("switch my electric blanket off", f.off("electric_blanket")),
        ("desk lamp on", f.on("desk_lamp")),
        ("turn the office light off", f.off("office_light")),
        ("power on the monitor", f.on("monitor")),
        ("turn off the printer in the office", f.off("printer")),
        ("would you mind switching the printer on", f.on("printer")),
        ("hallway light on please", f.on("hallway_light")),
        ("switch the hallway light off", f.off("hallway_light")),
        ("porch light on", f.on("porch_light")),
        ("could you turn the porch light off", f.off("porch_light")),
        ("bathroom light on", f.on("bathroom_light")),
        ("turn off the mirror light", f.off("mirror_light")),
        ("switch on the towel rail", f.on("towel_rail")),
        ("turn the heated towel rail off", f.off("towel_rail")),
        ("turn on the extractor fan", f.on("extractor_fan")),
        ("switch off the fan in the bathroom", f.off("extractor_fan")),
        ("garage light on", f.on("garage_light")),
        ("turn off the light in the garage", f.off("garage_light")),
        ("turn the garden lights on", f.on("garden_lights")),
        ("um switch off the garden lights", f.off("garden_lights")),
        ("turn on the sprinkler", f.on("sprinkler")),
        ("stop the sprinklers", f.off("sprinkler")),
        ("night light on", f.on("night_light")),
        ("could you switch the kids room light off", f.off("kids_room_light")),
        ("can you get the living room fan going", f.on("living_room_fan")),
        ("bedroom fan off", f.off("bedroom_fan")),
        ("turn the kids room fan on", f.on("kids_room_fan")),
        # Indirect: the request names one thing that can do it.
        ("it's getting dark in the garage", f.on("garage_light")),
        ("the bathroom is all steamy", f.on("extractor_fan")),
        ("I need some light on my desk", f.on("desk_lamp")),
        ("can you water the garden", f.on("sprinkler")),
    ]:
        f.act("on_off", text, pubs)

    for text, name in [
        ("toggle the desk lamp", "desk_lamp"), ("flip the porch light", "porch_light"),
        ("toggle the kitchen spotlights", "kitchen_spotlights"), ("toggle the bedside lamp please", "bedside_lamp"),
        ("can you toggle the garden lights", "garden_lights"), ("toggle the monitor", "monitor"),
        ("toggle the mirror light", "mirror_light"), ("hey toggle the living room lamp", "living_room_lamp"),
        ("toggle my electric blanket", "electric_blanket"), ("toggle the night light in the kids room", "night_light"),
    ]:
        f.act("toggle", text, d[name].toggle())

    for text, name, pct in [
        ("set the kitchen light to 40 percent", "kitchen_light", 40),
        ("dim the counter light to 25%", "counter_light", 25),
        ("living room lamp at 60 percent please", "living_room_lamp", 60),
        ("can you make the floor lamp 30 percent", "floor_lamp", 30),
        ("put the ceiling light at 75 percent", "ceiling_light", 75),
        ("bring the tv backlight down to 10 percent", "tv_backlight", 10),
        ("bedroom light to 20 percent", "bedroom_light", 20),
        ("set the desk lamp brightness to 80 percent", "desk_lamp", 80),
        ("office light 55 percent", "office_light", 55),
        ("turn the hallway light down to 15 percent", "hallway_light", 15),
        ("bathroom light at 90%", "bathroom_light", 90),
        ("change the night light to 5 percent", "night_light", 5),
        ("kids room light to 70 percent", "kids_room_light", 70),
        ("um could you set the brightness of the living room lamp to 35 percent", "living_room_lamp", 35),
        ("dim the bedroom light down to 12 percent", "bedroom_light", 12),
        ("turn the office light all the way up", "office_light", 100),
        ("floor lamp to full brightness", "floor_lamp", 100),
        ("make the bathroom light as bright as it goes", "bathroom_light", 100),
        ("set the kitchen light to maximum", "kitchen_light", 100),
        ("put the desk lamp on half", "desk_lamp", 50),
        ("hallway light at half brightness", "hallway_light", 50),
        ("set the ceiling light to half", "ceiling_light", 50),
    ]:
        f.bri("brightness", text, (name,), pct)
    for text, name in [  # the lowest level: anything up to 5 percent
        ("night light as low as it goes", "night_light"),
        ("turn the bedroom light down to the lowest setting", "bedroom_light"),
        ("counter light to minimum", "counter_light"),
    ]:
        f.bri("brightness", text, (name,), 5, lo=0)
    for text, name in [  # relative: the level before is unknown (see the module doc), any level is accepted
        ("dim the living room lamp a bit", "living_room_lamp"),
        ("make the kids room light a little brighter", "kids_room_light"),
        ("turn the tv backlight up", "tv_backlight"),
        ("the office light is too bright", "office_light"),
        ("brighten the desk lamp", "desk_lamp"),
        ("turn up the bathroom light by 20 percent", "bathroom_light"),
    ]:
        f.bri("brightness", text, (name,), 100, lo=0)

    for text, name, color in [
        ("make the ceiling light blue", "ceiling_light", "blue"),
        ("turn the tv backlight red", "tv_backlight", "red"),
        ("change the desk lamp to green", "desk_lamp", "green"),
        ("set the night light to purple", "night_light", "purple"),
        ("can you make the night light pink", "night_light", "pink"),
        ("I'd like the ceiling light orange", "ceiling_light", "orange"),
        ("tv backlight yellow please", "tv_backlight", "yellow"),
        ("turn the desk lamp cyan", "desk_lamp", "cyan"),
        ("make the lights behind the tv blue", "tv_backlight", "blue"),
        ("switch the kids night light to red", "night_light", "red"),
        ("change the colour of the ceiling light to green", "ceiling_light", "green"),
        ("living room ceiling light purple please", "ceiling_light", "purple"),
    ]:
        f.act("color", text, d[name].color(color))
    f.kelvin("set the bedroom light to 2700 kelvin", "bedroom_light", 2700)
    f.kelvin("kitchen light at 4000 kelvin", "kitchen_light", 4000)
    f.kelvin("ceiling light 5000 kelvin please", "ceiling_light", 5000)
    f.kelvin("make the ceiling light warm white", "ceiling_light", 2200, 3000)  # warm white: 2200 to 3000 K
    f.kelvin("set the kitchen light to warm white please", "kitchen_light", 2200, 3000)
    f.kelvin("change the bedroom light to a cool white", "bedroom_light", 4000, 6500)  # cool white: 4000 to 6500 K

    for text, pubs, opt in [
        ("switch off all the kitchen lights please", f.off(*KITCHEN), []),
        ("kitchen lights on", f.on(*KITCHEN), []),
        ("switch on the living room lights", f.on(*LIVING), []),
        ("all the lights off in the living room please", f.off(*LIVING), []),
        ("turn the bedroom lights off", f.off("bedroom_light", "bedside_lamp"), []),
        ("lights on in the bathroom", f.on("bathroom_light", "mirror_light"), []),
        ("turn off every light in the office", f.off("desk_lamp", "office_light"), []),
        ("can you turn on the lights in the kids room", f.on("night_light", "kids_room_light"), []),
        # The porch light is in the Hallway area; "hallway lights" may or may not mean it.
        ("hallway lights off", f.off("hallway_light"), f.off("porch_light")),
        ("lights off in the garage", f.off("garage_light"), []),
        # The garden lights are a switch, not a light: HA's "all lights" leaves them, a person may not.
        ("turn off all the lights in the house", f.off(*LIGHTS), f.off("garden_lights")),
        ("switch every light off please", f.off(*LIGHTS), f.off("garden_lights")),
        ("it's too dark in the bathroom", f.on("bathroom_light", "mirror_light"), []),
        ("it's pitch black in the kids room", f.on("night_light", "kids_room_light"), []),
        # "Everything": the lights and the plugged-in things; the heaters may be included too.
        ("everything off in the office", f.off("desk_lamp", "office_light", "monitor", "printer"), f.off("office_heater")),
        ("turn everything off in the bedroom", f.off("bedroom_light", "bedside_lamp", "bedroom_fan", "electric_blanket"),
         f.off("bedroom_radiator")),
    ]:
        f.act("area", text, pubs, opt)
    f.bri("area", "set the living room lights to 40 percent", LIVING, 40)
    # The spotlights have no brightness: HA's turn_on(brightness) on the area just switches them on.
    f.bri("area", "dim the kitchen lights to 30 percent", ("kitchen_light", "counter_light"), 30, extra_optional=f.on("kitchen_spotlights"))

    blinds = ("kitchen_blind", "living_room_blinds", "office_blinds")
    for text, pubs, opt in [
        ("open up the kitchen blind", d["kitchen_blind"].cover("open"), []),
        ("close the blind in the kitchen", d["kitchen_blind"].cover("close"), []),
        ("raise the living room blinds", d["living_room_blinds"].cover("open"), []),
        ("bring the office blinds down", d["office_blinds"].cover("close"), []),
        ("could you open the bedroom curtains", d["bedroom_curtains"].cover("open"), []),
        ("shut the bedroom curtains", d["bedroom_curtains"].cover("close"), []),
        ("stop the living room blinds", d["living_room_blinds"].cover("stop"), []),
        ("stop the curtains", d["bedroom_curtains"].cover("stop"), []),
        ("hold on, pause the office blinds", d["office_blinds"].cover("stop"), []),
        ("set the living room blinds to 30 percent", d["living_room_blinds"].position(30), []),
        ("open the bedroom curtains halfway", d["bedroom_curtains"].position(50), []),
        ("office blinds to 75 percent", d["office_blinds"].position(75), []),
        ("put the living room blinds at half", d["living_room_blinds"].position(50), []),
        ("open the blinds in the office a quarter of the way", d["office_blinds"].position(25), []),
        ("open the bedroom curtains to 20 percent", d["bedroom_curtains"].position(20), []),
        ("it's too sunny in the office", d["office_blinds"].cover("close"), []),
        # The curtains are not blinds, but closing them too is no harm; the garage door is never included.
        ("close all the blinds", [p for n in blinds for p in d[n].cover("close")], d["bedroom_curtains"].cover("close")),
    ]:
        f.act("cover", text, pubs, opt)

    f.target("set the thermostat to 21", "thermostat", 21)
    f.target("thermostat to 22 and a half please", "thermostat", 22.5)
    f.target("can you set the bedroom radiator to 19 point 5", "bedroom_radiator", 19.5)
    f.target("make it 20 degrees in the office", "office_heater", 20, mode_optional=True)
    f.target("office heater to 18 and a half degrees", "office_heater", 18.5)
    f.target("bedroom radiator to 17 degrees", "bedroom_radiator", 17)
    f.target("warm the office up to 23 degrees", "office_heater", 23, mode_optional=True)
    f.target("thermostat down to 19 degrees please", "thermostat", 19)
    f.target("turn the heating up in the bedroom", "bedroom_radiator", None, mode_optional=True)  # relative
    f.target("turn the thermostat down a couple of degrees", "thermostat", None)  # relative
    f.target("could you make the thermostat a bit warmer", "thermostat", None, mode_optional=True)  # relative
    for text, name, mode in [
        ("switch the office heater to cooling", "office_heater", "cool"),
        ("put the thermostat on auto", "thermostat", "auto"),
        ("turn off the heating in the bedroom", "bedroom_radiator", "off"),
        ("heating off in the office", "office_heater", "off"),
        ("set the thermostat to heat", "thermostat", "heat"),
        ("switch the bedroom radiator on", "bedroom_radiator", "heat"),
        ("turn the thermostat off", "thermostat", "off"),
    ]:
        f.act("climate", text, d[name].mode(mode))
    f.act("climate", "I'm freezing in the office", d["office_heater"].on(),
          [{"topic": d["office_heater"].topics["temp"], "payload": _numbers(6, 32)}])

    f.speed("set the living room fan to 40 percent", "living_room_fan", 40)
    f.speed("kids room fan at half speed", "kids_room_fan", 50)
    f.speed("turn the living room fan up to full", "living_room_fan", 100)
    f.speed("turn the kids room fan down to 20 percent", "kids_room_fan", 20)
    f.speed("bedroom fan speed 70 percent", "bedroom_fan", 70)
    f.speed("set the fan in the kids room to 60 percent", "kids_room_fan", 60)
    f.speed("turn the bedroom fan to maximum speed", "bedroom_fan", 100)
    f.speed("set the living room fan to low", "living_room_fan", (2, 39))  # low: up to 40 percent
    f.speed("kids room fan on high please", "kids_room_fan", (67, 100))  # high: 66 percent and up
    f.speed("slow down the living room fan a little", "living_room_fan", (1, 99))  # relative: any speed
    for text, preset in [("bedroom fan on sleep mode", "sleep"), ("put the bedroom fan on breeze", "breeze"),
                         ("switch the bedroom fan to auto", "auto")]:
        f.act("fan", text, d["bedroom_fan"].preset(preset), d["bedroom_fan"].on())

    for text, name in [
        ("movie night please", "movie_night"), ("start the movie night scene", "movie_night"),
        ("time for movie night", "movie_night"), ("switch to reading time", "reading_time"),
        ("set the reading time scene please", "reading_time"), ("can you put reading time on", "reading_time"),
        ("run the good night scene", "good_night"), ("activate good night", "good_night"),
    ]:
        f.act("scene", text, d[name].activate())

    radio, speaker = d["kitchen_radio"], d["living_room_speaker"]
    any_volume = [{"topic": radio.topics["volume"], "payload": _numbers(1, 99)}]
    for text, pubs in [
        ("pause the radio in the kitchen", radio.media("pause")),
        ("stop the music in the kitchen", radio.media("pause")),
        ("pause the music in the living room", speaker.media("pause")),
        ("carry on playing on the living room speaker", speaker.media("play")),
        ("unpause the kitchen radio", radio.media("play")),
        ("next song on the living room speaker", speaker.media("next")),
        ("skip this track in the kitchen", radio.media("next")),
        ("go back one song on the living room speaker", speaker.media("previous")),
        ("go back to the previous track on the kitchen radio", radio.media("previous")),
        ("set the kitchen radio volume to 30 percent", radio.media("volume", 30)),
        ("living room speaker volume 50", speaker.media("volume", 50)),
        ("turn the kitchen radio down", any_volume),  # relative: any volume
        ("louder on the living room speaker please", [{"topic": speaker.topics["volume"], "payload": _numbers(1, 99)}]),
    ]:
        f.act("media", text, pubs)

    f.local("query",
            "hey is the front door locked or not", "did I lock the front door", "has someone left the back door open", "is the back door shut",
            "what's the temperature in the kitchen", "how warm is it in the living room",
            "what temperature is it in the office", "how cold is it in the garden", "what's the temperature in the hallway",
            "what's the humidity in the bathroom", "how humid is it in the bedroom right now", "what's the humidity like in the living room",
            "how much battery does the gate sensor have left", "what's the gate sensor battery at",
            "did I leave the kitchen light on", "are any lights on in the living room", "is the coffee maker on",
            "is there any motion in the hall", "what's the thermostat set to", "is the garage door still open",
            "are the bedroom curtains open", "is the sprinkler running")
    f.local("time",
            "what time is it right now", "what's the time please", "do you know what time it is", "what's today's date",
            "sorry what day is it", "what's the date today please", "what day of the week is it", "um what month is it")
    f.local("timer",
            "set a timer for 10 minutes", "start a 5 minute timer", "timer for 30 seconds please",
            "set a pasta timer for 12 minutes", "can you start a timer called laundry for 45 minutes",
            "set a timer for an hour and a half", "cancel my timer please", "stop the pasta timer",
            "how much longer on the timer", "how long until the laundry timer goes off", "pause my timer for a sec",
            "resume my timer", "cancel all my timers", "what timers do I have", "add 2 minutes to the timer")
    f.local("unknown_device",
            "heat up the sauna", "switch off the dining room lights", "roll back the pool cover", "turn the basement light on",
            "turn everything off upstairs", "turn on the washing machine", "turn off the tv", "set the oven to 180 degrees",
            "close the garage window", "turn on the christmas lights", "start the vacuum cleaner", "switch the kettle on",
            "open the skylight", "turn on the lights in the nursery", "is the patio door locked", "turn on the hot tub",
            "dim the lights in the attic", "what's the temperature in the wine cellar",
            "turn on the air purifier in the bedroom", "turn on the lamp in the guest room")
    # Opening the house must be confirmed first (no publish before the yes); locking and closing are safe.
    f.local("risky",
            "can you unlock the front door", "unlock the door please", "open the garage door please", "open the garage",
            "hey could you open up the garage for me", "unlock the front door for the delivery guy",
            "raise the garage door", "open the garage door halfway", "open the front door")
    f.act("risky", "lock the front door for me", d["front_door"].lock())
    f.act("risky", "lock the door please", d["front_door"].lock())
    f.act("risky", "close the garage door now", d["garage_door"].cover("close"))
    f.act("risky", "please shut the garage", d["garage_door"].cover("close"))
    f.cloud(
        "what's the weather going to be like tomorrow", "will it rain this afternoon", "do I need an umbrella today",
        "what's the temperature going to be tomorrow", "tell me something funny", "who was the author of pride and prejudice",
        "how far is it to the moon", "how do I make pancakes", "what's 17 times 23", "how are you doing today",
        "what's the capital of australia", "can you recommend a good movie for tonight", "what should I cook for dinner",
        "how many calories are in a banana", "how do you say good morning in spanish", "what's the latest news",
        "play some jazz", "order more coffee pods", "call my mom", "why is the sea salty",
        "what time does the supermarket close", "what time is it in tokyo", "how long do I boil a soft egg for",
        "explain how a heat pump works", "what's a good name for a goldfish", "who won the football last night",
        "send a text to sarah saying I'm running late", "how do I get a red wine stain out of the carpet")
    return f.cases


def write_file(path: Path = FRESH_FILE) -> int:
    cases = build_fresh(build_home())
    path.write_text(json.dumps([asdict(c) for c in cases], indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return len(cases)


def load_fresh(path: Path = FRESH_FILE) -> list[Case]:
    """The fresh held-out cases (a ConfigError with code bench-cases when the file is unreadable)."""
    return load_cases(path)


if __name__ == "__main__":
    sys.stdout.write(f"{FRESH_FILE}: {write_file()} cases\n")
