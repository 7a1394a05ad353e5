"""The evaluation home: 50 devices over 8 areas, and what Home Assistant would publish for each command.

`build_home()` gives the devices; `discovery_file(devices)` the Home Assistant MQTT discovery
payloads for `voxhome sim home --discovery` (shapes as zigbee2mqtt, Tasmota, ESPHome and HA's
docs publish them, see /work/shared/reference/mqtt-discovery-examples.json). Each `Device` also
knows, independently of voxhome's own tools, what HA's MQTT integration publishes for an action
(HA's light/cover/climate/fan/lock/scene behaviour): the expected outcomes of the evaluation
cases are written from this, and the peer (HA's stock path) is scored through it.

Media players: stock HA has no MQTT media_player platform; these follow the community
`mqtt_media_player` convention (one topic per verb) so the cases are well defined either way.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

Publish = dict[str, Any]
"""{"topic": str, "payload": matcher}: a string (exact), {"json": {...}}, {"number": x}, {"one_of": [...]}."""

COLORS = {"red": 0, "orange": 30, "yellow": 60, "green": 120, "cyan": 180, "blue": 240, "purple": 280, "pink": 330}
"""colour name → hue in degrees (what a colour command must produce, within tolerance)."""


@dataclass(frozen=True, slots=True)
class Device:
    id: str
    """the entity id HA would give it (component.object)"""
    name: str
    area: str
    component: str
    style: str
    """'z2m', 'tasmota', 'esphome', 'ha' (docs shape), 'mmp' (mqtt_media_player)"""
    topics: dict[str, str] = field(default_factory=dict)
    features: tuple[str, ...] = ()
    """'brightness', 'color', 'color_temp', 'position', 'presets', 'percentage'"""
    extra: dict[str, Any] = field(default_factory=dict)

    # -- what HA publishes -------------------------------------------------------------------

    def on(self) -> list[Publish]:
        if self.component == "climate":
            return [{"topic": self.topics["mode"], "payload": "heat"}]
        if self.style == "z2m" and self.component == "light":
            return [{"topic": self.topics["cmd"], "payload": {"json": {"state": "ON"}}}]
        if self.component == "scene":
            return self.activate()
        return [{"topic": self.topics["cmd"], "payload": self.extra.get("on", "ON")}]

    def off(self) -> list[Publish]:
        if self.component == "climate":
            return [{"topic": self.topics["mode"], "payload": "off"}]
        if self.style == "z2m" and self.component == "light":
            return [{"topic": self.topics["cmd"], "payload": {"json": {"state": "OFF"}}}]
        return [{"topic": self.topics["cmd"], "payload": self.extra.get("off", "OFF")}]

    def toggle(self) -> list[Publish]:
        # The outcome depends on the state left by earlier cases: either absolute value is right.
        on, off = self.on()[0], self.off()[0]
        if isinstance(on["payload"], str):
            return [{"topic": on["topic"], "payload": {"one_of": [on["payload"], off["payload"]]}}]
        return [{"topic": on["topic"], "payload": {"one_of": [on["payload"], off["payload"]]}}]

    def brightness(self, pct: int) -> list[Publish]:
        scale = int(self.extra.get("scale", 255))
        raw = max(1, round(pct * scale / 100))
        if self.style == "z2m":
            return [{"topic": self.topics["cmd"], "payload": {"json": {"state": "ON", "brightness": raw}}}]
        return [{"topic": self.topics["bri"], "payload": {"number": raw}}]

    def optional_for_brightness(self) -> list[Publish]:
        """HA's default-schema lights (on_command_type 'last') also send ON after the brightness."""
        return [] if self.style == "z2m" else [{"topic": self.topics["cmd"], "payload": self.extra.get("on", "ON")}]

    def color(self, name: str) -> list[Publish]:
        if self.style == "z2m":
            return [{"topic": self.topics["cmd"], "payload": {"json": {"state": "ON"}, "hue": COLORS[name]}}]
        return [{"topic": self.topics["rgb"], "payload": {"hue": COLORS[name]}}]

    def color_temp(self, kelvin: int) -> list[Publish]:
        lo, hi = int(self.extra.get("min_mireds", 153)), int(self.extra.get("max_mireds", 500))
        mireds = max(lo, min(hi, round(1_000_000 / kelvin)))
        return [{"topic": self.topics["cmd"], "payload": {"json": {"state": "ON", "color_temp": mireds}, "tolerance": 3}}]

    def cover(self, action: str) -> list[Publish]:
        return [{"topic": self.topics["cmd"], "payload": {"open": "OPEN", "close": "CLOSE", "stop": "STOP"}[action]}]

    def position(self, pct: int) -> list[Publish]:
        return [{"topic": self.topics["pos"], "payload": {"number": pct}}]

    def temperature(self, degrees: float) -> list[Publish]:
        return [{"topic": self.topics["temp"], "payload": {"number": degrees}}]

    def mode(self, mode: str) -> list[Publish]:
        return [{"topic": self.topics["mode"], "payload": mode}]

    def speed(self, pct: int) -> list[Publish]:
        return [{"topic": self.topics["pct"], "payload": {"number": pct}}]

    def preset(self, name: str) -> list[Publish]:
        return [{"topic": self.topics["preset"], "payload": name}]

    def activate(self) -> list[Publish]:
        return [{"topic": self.topics["cmd"], "payload": "ON"}]

    def lock(self) -> list[Publish]:
        return [{"topic": self.topics["cmd"], "payload": "LOCK"}]

    def media(self, verb: str, value: int | None = None) -> list[Publish]:
        if verb == "volume":
            return [{"topic": self.topics["volume"], "payload": {"number": value}}]
        return [{"topic": self.topics[verb], "payload": verb}]

    # -- discovery ---------------------------------------------------------------------------

    def discovery(self) -> dict[str, Any]:
        t, c = self.topics, self.component
        obj = self.id.split(".", 1)[1]
        dev = {"identifiers": [f"{self.style}_{obj}"], "name": self.name, "suggested_area": self.area}
        if self.style == "z2m":
            ieee = self.extra["ieee"]
            payload: dict[str, Any] = {
                "name": None,
                "object_id": obj,
                "unique_id": f"{ieee}_{c}",
                "command_topic": t.get("cmd"),
                "state_topic": t.get("state"),
                "availability": [{"topic": "zigbee2mqtt/bridge/state", "value_template": "{{ value_json.state }}"}],
                "device": {"identifiers": [f"zigbee2mqtt_{ieee}"], "name": self.name, "manufacturer": self.extra.get("mf", "IKEA"),
                           "model": self.extra.get("model", "TRADFRI"), "suggested_area": self.area},
            }
            if c == "light":
                modes: list[str] = [m for m in ("xy", "color_temp") if (m == "xy" and "color" in self.features) or (m == "color_temp" and "color_temp" in self.features)]
                payload |= {"schema": "json", "brightness": True, "brightness_scale": self.extra.get("scale", 254),
                            "supported_color_modes": modes or ["brightness"], "state_topic": t["state"]}
                if "color_temp" in self.features:
                    payload |= {"min_mireds": self.extra.get("min_mireds", 153), "max_mireds": self.extra.get("max_mireds", 500)}
            elif c == "cover":
                payload |= {"device_class": self.extra.get("device_class", "blind"), "position_topic": t["position_state"],
                            "set_position_topic": t["pos"]}
            elif c == "climate":
                payload = {k: v for k, v in payload.items() if k not in ("command_topic", "state_topic")}
                payload |= {"temperature_command_topic": t["temp"], "temperature_state_topic": t["state"],
                            "temperature_state_template": "{{ value_json.current_heating_setpoint }}",
                            "current_temperature_topic": t["state"], "current_temperature_template": "{{ value_json.local_temperature }}",
                            "mode_command_topic": t["mode"], "mode_state_topic": t["state"],
                            "mode_state_template": "{{ value_json.system_mode }}", "modes": ["off", "heat", "auto"],
                            "min_temp": 5, "max_temp": 30, "temp_step": 0.5, "temperature_unit": "C"}
            return {"topic": f"homeassistant/{c}/{ieee}/{c}/config", "payload": payload}
        if self.style == "tasmota":
            payload = {"name": self.name, "uniq_id": f"tasmota_{obj}", "cmd_t": t["cmd"], "stat_t": t["state"],
                       "pl_on": "ON", "pl_off": "OFF", "avty_t": f"tele/{obj}/LWT", "pl_avail": "Online",
                       "pl_not_avail": "Offline", "dev": {"ids": [f"tasmota_{obj}"], "name": self.name, "mf": "Tasmota", "sa": self.area}}
            return {"topic": f"homeassistant/{c}/{obj}/config", "payload": payload}
        if self.style == "esphome":
            base = f"esphome/{obj}"
            payload = {"~": base, "name": self.name, "uniq_id": f"esp_{obj}", "cmd_t": "~/set", "stat_t": "~/state",
                       "avty_t": "~/status", "dev": {"ids": [f"esp_{obj}"], "name": self.name, "mf": "ESPHome", "sa": self.area}}
            if "brightness" in self.features:
                payload |= {"bri_cmd_t": "~/brightness/set", "bri_stat_t": "~/brightness", "bri_scl": self.extra.get("scale", 100)}
            if c == "fan" and "percentage" in self.features:
                payload |= {"pct_cmd_t": "~/speed/set", "pct_stat_t": "~/speed"}
            return {"topic": f"homeassistant/{c}/{obj}/config", "payload": payload}
        if self.style == "mmp":
            payload = {"name": self.name, "unique_id": f"mmp_{obj}", "state_topic": t["state"],
                       "play_topic": t["play"], "pause_topic": t["pause"], "next_topic": t["next"],
                       "previous_topic": t["previous"], "volumeset_topic": t["volume"], "device": dev}
            return {"topic": f"homeassistant/media_player/{obj}/config", "payload": payload}
        # 'ha': the shapes of Home Assistant's own docs, unabbreviated.
        payload = {"name": self.name, "unique_id": obj, "device": dev}
        if "cmd" in t:
            payload["command_topic"] = t["cmd"]
        if "state" in t:
            payload["state_topic"] = t["state"]
        if c == "light":
            if "brightness" in self.features:
                payload |= {"brightness_command_topic": t["bri"], "brightness_state_topic": t["bri_state"],
                            "brightness_scale": self.extra.get("scale", 255)}
            if "color" in self.features:
                payload |= {"rgb_command_topic": t["rgb"], "rgb_state_topic": t["rgb_state"]}
            payload |= {"payload_on": "ON", "payload_off": "OFF", "optimistic": False}
        elif c == "switch":
            payload |= {"payload_on": self.extra.get("on", "ON"), "payload_off": self.extra.get("off", "OFF")}
        elif c == "cover":
            payload |= {"device_class": self.extra.get("device_class", "shade"), "payload_open": "OPEN",
                        "payload_close": "CLOSE", "payload_stop": "STOP"}
            if "position" in self.features:
                payload |= {"position_topic": t["position_state"], "set_position_topic": t["pos"]}
        elif c == "climate":
            payload |= {"modes": ["off", "heat", "cool", "auto"], "mode_command_topic": t["mode"],
                        "mode_state_topic": t["mode_state"], "temperature_command_topic": t["temp"],
                        "temperature_state_topic": t["temp_state"], "current_temperature_topic": t["current"],
                        "min_temp": 7, "max_temp": 32, "temp_step": 0.5, "precision": 0.5}
        elif c == "fan":
            payload |= {"percentage_command_topic": t["pct"], "percentage_state_topic": t["pct_state"]}
            if "presets" in self.features:
                payload |= {"preset_mode_command_topic": t["preset"], "preset_mode_state_topic": t["preset_state"],
                            "preset_modes": list(self.extra["presets"])}
        elif c == "lock":
            payload |= {"payload_lock": "LOCK", "payload_unlock": "UNLOCK", "state_locked": "LOCKED", "state_unlocked": "UNLOCKED"}
        elif c == "scene":
            payload = {"name": self.name, "unique_id": obj, "command_topic": t["cmd"], "payload_on": "ON"}
        elif c in ("sensor", "binary_sensor"):
            payload |= {k: v for k, v in self.extra.items() if k in ("device_class", "unit_of_measurement", "value_template", "payload_on", "payload_off")}
        return {"topic": f"homeassistant/{c}/{obj}/config", "payload": payload}


def _z2m(obj: str, name: str, area: str, comp: str, ieee: str, features: tuple[str, ...] = (), **extra: Any) -> Device:
    base = f"zigbee2mqtt/{obj}"
    topics = {"cmd": f"{base}/set", "state": base}
    if comp == "cover":
        topics |= {"pos": f"{base}/set/position", "position_state": base}
    if comp == "climate":
        topics = {"temp": f"{base}/set/current_heating_setpoint", "mode": f"{base}/set/system_mode", "state": base}
    return Device(f"{comp}.{obj}", name, area, comp, "z2m", topics, features, {"ieee": ieee, **extra})


def _tasmota(obj: str, name: str, area: str, comp: str = "switch") -> Device:
    return Device(f"{comp}.{obj}", name, area, comp, "tasmota", {"cmd": f"cmnd/{obj}/POWER", "state": f"stat/{obj}/POWER"})


def _esphome(obj: str, name: str, area: str, comp: str = "light", features: tuple[str, ...] = ("brightness",)) -> Device:
    base = f"esphome/{obj}"
    topics = {"cmd": f"{base}/set", "state": f"{base}/state", "bri": f"{base}/brightness/set", "pct": f"{base}/speed/set"}
    return Device(f"{comp}.{obj}", name, area, comp, "esphome", topics, features, {"scale": 100})


def _ha(obj: str, name: str, area: str, comp: str, features: tuple[str, ...] = (), **extra: Any) -> Device:
    base = f"home/{obj}"
    topics = {"cmd": f"{base}/set", "state": f"{base}/state", "bri": f"{base}/brightness/set", "bri_state": f"{base}/brightness",
              "rgb": f"{base}/rgb/set", "rgb_state": f"{base}/rgb", "pos": f"{base}/position/set", "position_state": f"{base}/position",
              "mode": f"{base}/mode/set", "mode_state": f"{base}/mode", "temp": f"{base}/target/set", "temp_state": f"{base}/target",
              "current": f"{base}/current", "pct": f"{base}/speed/set", "pct_state": f"{base}/speed",
              "preset": f"{base}/preset/set", "preset_state": f"{base}/preset"}
    if comp in ("sensor", "binary_sensor"):
        topics = {"state": f"{base}/state"}
    if comp == "scene":
        topics = {"cmd": f"home/scenes/{obj}/set"}
    return Device(f"{comp}.{obj}", name, area, comp, "ha", topics, features, dict(extra))


def _mmp(obj: str, name: str, area: str) -> Device:
    base = f"media/{obj}"
    topics = {"state": f"{base}/state", "play": f"{base}/play", "pause": f"{base}/pause", "next": f"{base}/next",
              "previous": f"{base}/previous", "volume": f"{base}/volume"}
    return Device(f"media_player.{obj}", name, area, "media_player", "mmp", topics)


def build_home() -> list[Device]:
    ct, rgb, bri = ("color_temp",), ("color",), ("brightness",)
    return [
        # Kitchen
        _z2m("kitchen_light", "Kitchen light", "Kitchen", "light", "0x000b57fffec6a5b2", ct, min_mireds=250, max_mireds=454),
        _tasmota("kitchen_spotlights", "Kitchen spotlights", "Kitchen", "light"),
        _esphome("counter_light", "Counter light", "Kitchen"),
        _tasmota("coffee_maker", "Coffee maker", "Kitchen"),
        _tasmota("dishwasher", "Dishwasher", "Kitchen"),
        _z2m("kitchen_blind", "Kitchen blind", "Kitchen", "cover", "0x0017880104e45561"),
        _ha("back_door", "Back door", "Kitchen", "binary_sensor", device_class="door", payload_on="open", payload_off="closed"),
        _ha("kitchen_temperature", "Kitchen temperature", "Kitchen", "sensor", device_class="temperature", unit_of_measurement="°C"),
        _mmp("kitchen_radio", "Kitchen radio", "Kitchen"),
        # Living room
        _esphome("living_room_lamp", "Living room lamp", "Living Room"),
        _z2m("ceiling_light", "Ceiling light", "Living Room", "light", "0x001788010b22c7a1", rgb + ct),
        _z2m("floor_lamp", "Floor lamp", "Living Room", "light", "0x001788010b22c7a2"),
        _ha("tv_backlight", "TV backlight", "Living Room", "light", rgb + bri),
        _z2m("living_room_blinds", "Living room blinds", "Living Room", "cover", "0x0017880104e45551", ("position",)),
        _ha("living_room_fan", "Living room fan", "Living Room", "fan", ("percentage",)),
        _ha("living_room_temperature", "Living room temperature", "Living Room", "sensor", device_class="temperature", unit_of_measurement="°C"),
        _ha("living_room_humidity", "Living room humidity", "Living Room", "sensor", device_class="humidity", unit_of_measurement="%"),
        _mmp("living_room_speaker", "Living room speaker", "Living Room"),
        _ha("movie_night", "Movie night", "Living Room", "scene"),
        _ha("reading_time", "Reading time", "Living Room", "scene"),
        # Bedroom
        _z2m("bedroom_light", "Bedroom light", "Bedroom", "light", "0x0017880104e45553", ct),
        _tasmota("bedside_lamp", "Bedside lamp", "Bedroom", "light"),
        _ha("bedroom_fan", "Bedroom fan", "Bedroom", "fan", ("percentage", "presets"), presets=("sleep", "breeze", "auto")),
        _z2m("bedroom_curtains", "Bedroom curtains", "Bedroom", "cover", "0x0017880104e45562", ("position",), device_class="curtain"),
        _z2m("bedroom_radiator", "Bedroom radiator", "Bedroom", "climate", "0x0017882104a44559"),
        _tasmota("electric_blanket", "Electric blanket", "Bedroom"),
        _ha("bedroom_humidity", "Bedroom humidity", "Bedroom", "sensor", device_class="humidity", unit_of_measurement="%"),
        _ha("good_night", "Good night", "Bedroom", "scene"),
        # Office
        _z2m("desk_lamp", "Desk lamp", "Office", "light", "0x001788010b22c7a3", rgb),
        _ha("office_light", "Office light", "Office", "light", bri, scale=100),
        _tasmota("monitor", "Monitor", "Office"),
        _tasmota("printer", "Printer", "Office"),
        _ha("office_heater", "Office heater", "Office", "climate"),
        _ha("office_blinds", "Office blinds", "Office", "cover", ("position",)),
        _ha("office_temperature", "Office temperature", "Office", "sensor", device_class="temperature", unit_of_measurement="°C"),
        # Hallway
        _esphome("hallway_light", "Hallway light", "Hallway"),
        _ha("front_door", "Front door", "Hallway", "lock"),
        _ha("thermostat", "Thermostat", "Hallway", "climate"),
        _ha("hall_motion", "Hall motion", "Hallway", "binary_sensor", device_class="motion", payload_on="ON", payload_off="OFF"),
        _tasmota("porch_light", "Porch light", "Hallway", "light"),
        # Bathroom
        _ha("bathroom_light", "Bathroom light", "Bathroom", "light", bri),
        _tasmota("mirror_light", "Mirror light", "Bathroom", "light"),
        _tasmota("towel_rail", "Towel rail", "Bathroom"),
        _esphome("extractor_fan", "Extractor fan", "Bathroom", "fan", ()),
        _ha("bathroom_humidity", "Bathroom humidity", "Bathroom", "sensor", device_class="humidity", unit_of_measurement="%"),
        # Garage and garden
        _ha("garage_door", "Garage door", "Garage", "cover", device_class="garage"),
        _tasmota("garage_light", "Garage light", "Garage", "light"),
        _ha("garden_lights", "Garden lights", "Garden", "switch"),
        _ha("sprinkler", "Sprinkler", "Garden", "switch"),
        _ha("garden_temperature", "Garden temperature", "Garden", "sensor", device_class="temperature", unit_of_measurement="°C"),
        _ha("gate_sensor_battery", "Gate sensor battery", "Garden", "sensor", device_class="battery", unit_of_measurement="%"),
        # Kids' room
        _ha("night_light", "Night light", "Kids Room", "light", rgb + bri),
        _z2m("kids_room_light", "Kids room light", "Kids Room", "light", "0x001788010b22c7a4"),
        _esphome("kids_room_fan", "Kids room fan", "Kids Room", "fan", ("percentage",)),
    ]


def discovery_file(devices: list[Device]) -> dict[str, Any]:
    initial: list[dict[str, Any]] = [{"topic": "zigbee2mqtt/bridge/state", "payload": {"state": "online"}}]
    for d in devices:
        obj = d.id.split(".", 1)[1]
        if d.style == "esphome":
            initial.append({"topic": f"esphome/{obj}/status", "payload": "online"})
        elif d.style == "tasmota":
            initial.append({"topic": f"tele/{obj}/LWT", "payload": "Online"})
    readings = {"kitchen_temperature": "22.5", "living_room_temperature": "21.5", "office_temperature": "20.0",
                "garden_temperature": "8.5", "living_room_humidity": "45", "bedroom_humidity": "52",
                "bathroom_humidity": "68", "gate_sensor_battery": "81", "back_door": "closed", "hall_motion": "OFF"}
    for obj, value in readings.items():
        initial.append({"topic": f"home/{obj}/state", "payload": value})
    initial += [{"topic": "home/thermostat/current", "payload": "20.5"}, {"topic": "home/office_heater/current", "payload": "19.0"}]
    return {
        "description": "The bench e2e home (device/bench/e2e_home.py writes it): 54 devices over 9 areas as "
                       "zigbee2mqtt, Tasmota, ESPHome and Home Assistant's docs publish their discovery payloads.",
        "configs": [d.discovery() for d in devices],
        "initial": initial,
    }
