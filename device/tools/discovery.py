"""Home Assistant MQTT discovery: parse incoming configs and build our own announcement. Pure.

Two topic forms exist:

* ``<prefix>/<component>/[<node_id>/]<object_id>/config`` — one entity per message;
* ``<prefix>/device/<id>/config`` — a device with a ``cmps`` (components) map of entities.

A message is expanded (abbreviations → full keys, ``~`` base topic substituted), reduced to the
components we can drive, and returned as `DiscoveredEntity`s; an empty payload is a `Removal`.
Anything malformed raises `DiscoveryError`, which the registry logs and skips.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from device.errors import ToolError
from device.tools.abbreviations import ABBREVIATIONS, DEVICE_ABBREVIATIONS, ORIGIN_ABBREVIATIONS

COMPONENTS = frozenset(
    {"light", "switch", "lock", "cover", "climate", "fan", "scene", "sensor", "binary_sensor", "media_player"}
)
GUARDED_COMPONENTS = frozenset({"alarm_control_panel"})
"""Not driven by voxhome, but parsed: their command topics are guarded (an alias could disarm)."""
MAX_PAYLOAD = 64 * 1024
MAX_TOPIC = 256
_ID = re.compile(r"^[A-Za-z0-9_-]{1,128}$")
_ENTITY_ID = re.compile(r"^[a-z_]+\.[a-z0-9_]{1,128}$")


class DiscoveryError(ToolError):
    """A discovery message that can't be used (bad topic, JSON, structure); logged and skipped."""

    def __init__(self, message: str) -> None:
        super().__init__("discovery-invalid", message)


@dataclass(frozen=True, slots=True)
class DiscoveredEntity:
    """One entity from a discovery message, with every key expanded and `~` substituted."""

    key: str
    """Where it came from: '<component>/<node_id>/<object_id>' (node_id may be empty)."""
    component: str
    entity_id: str
    name: str
    area: str | None
    config: dict[str, Any] = field(hash=False, compare=True)
    device: dict[str, Any] = field(hash=False, compare=True, default_factory=dict)


@dataclass(frozen=True, slots=True)
class Removal:
    """An empty payload: the entities announced on this topic are gone."""

    topic: str


def parse_topic(topic: str, prefix: str = "homeassistant") -> tuple[str, str, str] | None:
    """(component, node_id, object_id) of a config topic, or None if it isn't one."""
    if len(topic) > MAX_TOPIC or not topic.startswith(prefix + "/") or not topic.endswith("/config"):
        return None
    parts = topic[len(prefix) + 1 : -len("/config")].split("/")
    if len(parts) == 2:
        component, node_id, object_id = parts[0], "", parts[1]
    elif len(parts) == 3:
        component, node_id, object_id = parts
    else:
        return None
    if not _ID.match(component) or not _ID.match(object_id) or (node_id and not _ID.match(node_id)):
        return None
    return component, node_id, object_id


def parse_message(topic: str, payload: bytes, prefix: str = "homeassistant") -> list[DiscoveredEntity] | Removal:
    """Parse one retained discovery message. Unknown components are skipped (empty list)."""
    where = parse_topic(topic, prefix)
    if where is None:
        raise DiscoveryError(f"not a discovery config topic: {topic[:100]!r}")
    if not payload:
        return Removal(topic)
    if len(payload) > MAX_PAYLOAD:
        raise DiscoveryError(f"{topic}: payload of {len(payload)} bytes is too large")
    try:
        raw = json.loads(payload.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as err:
        raise DiscoveryError(f"{topic}: not JSON: {str(err)[:80]}") from None
    if not isinstance(raw, dict):
        raise DiscoveryError(f"{topic}: payload must be a JSON object")
    component, node_id, object_id = where
    if component == "device":
        return _parse_device_form(topic, object_id, raw)
    if component not in COMPONENTS | GUARDED_COMPONENTS:
        return []
    config = expand(raw)
    return [_entity(f"{component}/{node_id}/{object_id}", component, object_id, config)]


def _parse_device_form(topic: str, device_key: str, raw: dict[str, Any]) -> list[DiscoveredEntity]:
    shared = expand({k: v for k, v in raw.items() if k not in ("cmps", "components")})
    components = raw.get("cmps", raw.get("components"))
    if not isinstance(components, dict):
        raise DiscoveryError(f"{topic}: a device config needs a 'cmps' object")
    out = []
    for comp_id, comp_raw in components.items():
        if not isinstance(comp_raw, dict) or not _ID.match(str(comp_id)):
            raise DiscoveryError(f"{topic}: component {str(comp_id)[:40]!r} is not a valid object")
        comp = expand(comp_raw)
        platform = comp.get("platform")
        if not isinstance(platform, str):
            raise DiscoveryError(f"{topic}: component {comp_id!r} has no 'platform'")
        if platform not in COMPONENTS | GUARDED_COMPONENTS or set(comp) <= {"platform"}:
            # A component reduced to {"p": ...} is how one component of a device is removed.
            continue
        # Shared keys (device, origin, availability, state_topic, '~') apply unless the component
        # sets its own.
        merged = {**{k: v for k, v in shared.items() if k != "~"}, **comp}
        base = comp_raw.get("~", raw.get("~"))
        if isinstance(base, str):
            merged = _substitute_base(merged, base)
        out.append(_entity(f"device/{device_key}/{comp_id}", platform, str(comp_id), merged))
    return out


def expand(raw: dict[str, Any]) -> dict[str, Any]:
    """Expand abbreviated keys (entity, device, origin, availability) and substitute `~`."""
    config: dict[str, Any] = {}
    for key, value in raw.items():
        full = ABBREVIATIONS.get(key, key)
        if full == "device" and isinstance(value, dict):
            value = {DEVICE_ABBREVIATIONS.get(k, k): v for k, v in value.items()}
        elif full == "origin" and isinstance(value, dict):
            value = {ORIGIN_ABBREVIATIONS.get(k, k): v for k, v in value.items()}
        elif full == "availability" and isinstance(value, list):
            value = [
                {ABBREVIATIONS.get(k, k): v for k, v in item.items()} if isinstance(item, dict) else item
                for item in value
            ]
        config[full] = value
    base = config.pop("~", None)
    if isinstance(base, str):
        config = _substitute_base(config, base)
    return config


def _substitute_base(config: dict[str, Any], base: str) -> dict[str, Any]:
    """`~` counts only at the start or end of a `*_topic` value (HA's rule), also in availability."""

    def sub(value: Any) -> Any:
        if not isinstance(value, str):
            return value
        if value.startswith("~"):
            value = base + value[1:]
        if value.endswith("~"):
            value = value[:-1] + base
        return value

    out = {k: sub(v) if k.endswith("_topic") else v for k, v in config.items()}
    if isinstance(out.get("availability"), list):
        out["availability"] = [
            {**item, "topic": sub(item.get("topic"))} if isinstance(item, dict) else item
            for item in out["availability"]
        ]
    return out


def _entity(key: str, component: str, object_id: str, config: dict[str, Any]) -> DiscoveredEntity:
    device = config.get("device") if isinstance(config.get("device"), dict) else {}
    assert isinstance(device, dict)
    name = _friendly_name(config, device, object_id)
    area = device.get("suggested_area")
    if not isinstance(area, str) or not area.strip():
        area = None
    return DiscoveredEntity(
        key=key,
        component=component,
        entity_id=_entity_id(component, config, device, name, object_id),
        name=name,
        area=area.strip() if area else None,
        config=config,
        device=device,
    )


def _friendly_name(config: dict[str, Any], device: dict[str, Any], object_id: str) -> str:
    """HA: a null (or absent) name means 'the device's name'."""
    name = config.get("name")
    device_name = device.get("name") if isinstance(device.get("name"), str) else None
    if isinstance(name, str) and name.strip():
        # Keep the entity's own name: 'Kitchen light' is what people say, not 'Hub Kitchen light'.
        return name.strip()[:100]
    if device_name and device_name.strip():
        device_class = config.get("device_class")
        if "name" not in config and isinstance(device_class, str) and device_class:
            # A nameless entity with a class is '<device> <class>' ('Kitchen temperature').
            return f"{device_name.strip()} {device_class.replace('_', ' ')}"[:100]
        return device_name.strip()[:100]
    return object_id.replace("_", " ")[:100]


def _entity_id(component: str, config: dict[str, Any], device: dict[str, Any], name: str, object_id: str) -> str:
    default = config.get("default_entity_id")
    if isinstance(default, str) and _ENTITY_ID.match(default) and default.startswith(component + "."):
        return default
    explicit = config.get("object_id")
    base = explicit if isinstance(explicit, str) and explicit else name
    slug = slugify(base) or slugify(object_id) or "entity"
    return f"{component}.{slug}"


def slugify(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")[:128]


# --- the speaker's own announcement -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OwnTopics:
    """The topics the speaker itself publishes and listens on (voxhome/<device_id>/...)."""

    device_id: str

    @property
    def base(self) -> str:
        return f"voxhome/{self.device_id}"

    @property
    def availability(self) -> str:
        return f"{self.base}/availability"

    @property
    def mute_state(self) -> str:
        return f"{self.base}/mute"

    @property
    def mute_command(self) -> str:
        return f"{self.base}/mute/set"

    @property
    def last_command(self) -> str:
        return f"{self.base}/last_command"


def announce_configs(device_id: str, name: str, version: str, prefix: str = "homeassistant") -> list[tuple[str, bytes]]:
    """Retained discovery configs that make the speaker show up as a device in Home Assistant."""
    own = OwnTopics(device_id)
    node = slugify(device_id) or "voxhome"
    device = {"ids": [f"voxhome_{device_id}"], "name": name, "mf": "voxhome", "mdl": "smart speaker", "sw": version}
    common = {"~": own.base, "avty_t": "~/availability", "dev": device, "o": {"name": "voxhome", "sw": version}}
    mute = {
        **common,
        "name": "Mute",
        "uniq_id": f"voxhome_{node}_mute",
        "cmd_t": "~/mute/set",
        "stat_t": "~/mute",
        "pl_on": "ON",
        "pl_off": "OFF",
        "ic": "mdi:microphone-off",
    }
    last = {**common, "name": "Last command", "uniq_id": f"voxhome_{node}_last_command", "stat_t": "~/last_command", "ic": "mdi:account-voice"}
    return [
        (f"{prefix}/switch/{node}/mute/config", json.dumps(mute).encode()),
        (f"{prefix}/sensor/{node}/last_command/config", json.dumps(last).encode()),
    ]
