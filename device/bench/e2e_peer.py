"""The peer of `bench e2e`: Home Assistant's stock voice path over the same home and audio.

faster-whisper tiny.en int8 (the same packaged CTranslate2 weights our factory builds from) on
the utterance cut at the wake word's known end, then hassil with home-assistant-intents over the
home's names and areas (HA's default conversation agent, `best_slot_name="name"` as HA does), then
what HA's MQTT integration publishes for the recognised intent (`e2e_home.Device`). No match goes
to HA's fallback conversation agent (the cloud); an intent naming a device or area the home lacks
gets HA's local "not aware of" answer.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np

from device.bench.e2e_home import COLORS, Device, Publish

_CONTROL = {"HassTurnOn", "HassTurnOff", "HassToggle", "HassLightSet", "HassSetPosition", "HassClimateSetTemperature",
            "HassFanSetSpeed", "HassMediaPause", "HassMediaUnpause", "HassMediaNext", "HassMediaPrevious", "HassSetVolume"}


class HassPeer:
    def __init__(self, devices: list[Device]) -> None:
        from hassil import Intents, TextSlotList
        from home_assistant_intents import get_intents

        data = get_intents("en")
        if data is None:
            raise RuntimeError("home-assistant-intents has no English sentences")
        self._intents = Intents.from_dict(data)
        self._skip = data.get("skip_words", [])
        self.devices = devices
        self._by_id = {d.id: d for d in devices}
        names = [(d.name.lower(), d.id, {"domain": d.component}) for d in devices]
        self._lists: dict[str, Any] = {
            "name": TextSlotList.from_tuples(names),
            "area": TextSlotList.from_strings(sorted({d.area.lower() for d in devices})),
        }
        self._text_list = TextSlotList

    def _recognize(self, text: str, **options: Any) -> Any:
        from hassil import recognize_best
        from hassil.errors import MissingListError

        while True:
            try:
                return recognize_best(text, self._intents, slot_lists=self._lists, skip_words=self._skip,
                                      best_slot_name="name", language="en", **options)
            except MissingListError as err:  # lists HA fills from other integrations (floors, zones)
                found = re.search(r"\{(\w+)\}", str(err))
                if not found:
                    raise
                self._lists[found.group(1)] = self._text_list.from_strings([])

    def understand(self, text: str) -> tuple[str, list[Publish]]:
        """→ (route, publishes): route 'local' or 'cloud'; publishes as HA would send them."""
        result = self._recognize(text)
        if result is None:
            loose = self._recognize(text, allow_unmatched_entities=True)
            if loose is not None and loose.intent.name in _CONTROL and any(
                u.name in ("name", "area") and str(getattr(u, "text", "")).strip() not in ("", "<missing>")
                for u in loose.unmatched_entities_list
            ):
                return "local", []
            return "cloud", []
        return "local", self._act(result.intent.name, {k: v.value for k, v in result.entities.items()})

    def _targets(self, slots: dict[str, Any], domains: tuple[str, ...]) -> list[Device]:
        if "name" in slots and slots["name"] in self._by_id:
            return [self._by_id[slots["name"]]]
        domain = slots.get("domain")
        wanted = (domain,) if isinstance(domain, str) and domain else domains
        area = str(slots.get("area", "")).lower()
        if not area:
            return [d for d in self.devices if d.component in wanted] if domain else []
        return [d for d in self.devices if d.area.lower() == area and d.component in wanted]

    def _act(self, intent: str, slots: dict[str, Any]) -> list[Publish]:
        out: list[Publish] = []
        switchable = ("light", "switch", "fan", "cover", "lock", "scene", "climate")
        if intent in ("HassTurnOn", "HassTurnOff", "HassToggle"):
            for d in self._targets(slots, switchable):
                on = intent == "HassTurnOn"
                if d.component == "cover":
                    out += d.cover("open" if on else "close")
                elif d.component == "lock":
                    out += [{"topic": d.topics["cmd"], "payload": "LOCK" if on else "UNLOCK"}]
                elif d.component in ("sensor", "binary_sensor", "media_player"):
                    continue
                elif intent == "HassToggle":
                    out += d.toggle()
                else:
                    out += d.on() if on else d.off()
        elif intent == "HassLightSet":
            for d in self._targets(slots, ("light",)):
                if "brightness" in slots:
                    out += d.brightness(int(slots["brightness"]))
                elif "color" in slots and str(slots["color"]) in COLORS:
                    out += d.color(str(slots["color"]))
                elif "temperature" in slots:
                    out += d.color_temp(int(slots["temperature"]))
        elif intent == "HassSetPosition":
            for d in self._targets(slots, ("cover",)):
                out += d.position(int(slots.get("position", 0)))
        elif intent == "HassClimateSetTemperature":
            targets = self._targets(slots, ("climate",)) or [d for d in self.devices if d.component == "climate"][:1]
            for d in targets:
                out += d.temperature(float(slots.get("temperature", 0)))
        elif intent == "HassFanSetSpeed":
            for d in self._targets(slots, ("fan",)):
                out += d.speed(int(slots.get("percentage", 0)))
        elif intent in ("HassMediaPause", "HassMediaUnpause", "HassMediaNext", "HassMediaPrevious", "HassSetVolume"):
            verb = {"HassMediaPause": "pause", "HassMediaUnpause": "play", "HassMediaNext": "next",
                    "HassMediaPrevious": "previous", "HassSetVolume": "volume"}[intent]
            for d in self._targets(slots, ("media_player",)) or [d for d in self.devices if d.component == "media_player"][:1]:
                out += d.media(verb, int(slots.get("volume_level", 0)) if verb == "volume" else None)
        # Everything else HA recognises (state, time, timers, weather, nevermind) answers locally.
        return out


def concrete(publishes: list[Publish]) -> tuple[tuple[str, str], ...]:
    """HA's publishes as (topic, payload) wire messages, for the same scorer as ours."""
    import json

    out = []
    for p in publishes:
        spec = p["payload"]
        if isinstance(spec, str):
            out.append((p["topic"], spec))
        elif "one_of" in spec:
            first = spec["one_of"][0]
            out.append((p["topic"], first if isinstance(first, str) else json.dumps(first["json"])))
        elif "number" in spec:
            out.append((p["topic"], f"{spec['number']:g}"))
        elif "hue" in spec:
            r, g, b = _hue_rgb(float(spec["hue"]))
            if "json" in spec:
                out.append((p["topic"], json.dumps({**spec["json"], "color": {"r": r, "g": g, "b": b}})))
            else:
                out.append((p["topic"], f"{r},{g},{b}"))
        else:
            out.append((p["topic"], json.dumps(spec["json"])))
    return tuple(out)


def _hue_rgb(hue: float) -> tuple[int, int, int]:
    import colorsys

    r, g, b = colorsys.hsv_to_rgb(hue / 360.0, 1.0, 1.0)
    return round(r * 255), round(g * 255), round(b * 255)


class WhisperPeer:
    """faster-whisper tiny.en int8 on the packaged CTranslate2 weights."""

    def __init__(self) -> None:
        from faster_whisper import WhisperModel

        from models.asr.factory import packaged_model_dir

        self._model = WhisperModel(str(packaged_model_dir()), device="cpu", compute_type="int8", cpu_threads=1)

    def transcribe(self, audio: np.ndarray) -> str:
        samples = audio.astype(np.float32) / 32768.0 if audio.dtype == np.int16 else audio.astype(np.float32)
        segments, _info = self._model.transcribe(samples, language="en", beam_size=1, vad_filter=False)
        return " ".join(s.text.strip() for s in segments).strip()


def normalize(text: str) -> str:
    """What HA does before matching: lower case, punctuation off."""
    return re.sub(r"[^\w\s%']", " ", text.lower()).strip()
