"""The home tools: specs generated from the registry, and `HomeTools`, their executor.

The same specs go to the realtime model (function calling) and back the local understanding.
`execute` validates the arguments (jsonschema), resolves the entities (id, name, alias, area),
asks for confirmation where the policy says so, publishes each entity's own command, and waits for
its state topic to confirm. It never raises for bad input: the result says what happened, with a
short `message` a speaker can say.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any, Protocol

import jsonschema

from device.errors import ToolError
from device.events import ToolCall, ToolResult
from device.tools import colors, commands
from device.tools.api import ToolSpec
from device.tools.commands import spoken
from device.tools.confirm import ConfirmPolicy, Guard
from device.tools.registry import Entity, Registry, normalise

_LOGGER = logging.getLogger(__name__)

_NAME = {"type": "string", "minLength": 1, "maxLength": 100}
_TARGET = {
    "entity": {**_NAME, "description": "entity id or name, e.g. 'light.kitchen' or 'kitchen light'"},
    "area": {**_NAME, "description": "an area (room), for every matching device in it"},
}
ON_OFF = ("light", "switch", "fan", "climate")

# name → (description, components it acts on, action, value argument, value schema, area allowed)
_TOOLS: dict[str, tuple[str, tuple[str, ...], str, str | None, dict[str, Any] | None, bool]] = {
    "turn_on": ("Turn devices on (lights, switches, fans, climate).", ON_OFF, "turn_on", None, None, True),
    "turn_off": ("Turn devices off (lights, switches, fans, climate).", ON_OFF, "turn_off", None, None, True),
    "set_brightness": ("Set light brightness in percent (0 turns it off).", ("light",), "brightness", "brightness", {"type": "integer", "minimum": 0, "maximum": 100}, True),
    "set_color": ("Set a light's colour: a colour name (red, orange, yellow, green, cyan, blue, purple, pink, white, warm white, ...) or rgb [r, g, b].", ("light",), "color", "color", {"type": "string", "minLength": 1, "maxLength": 40}, True),
    "set_color_temp": ("Set a light's white color temperature in kelvin.", ("light",), "color_temp", "kelvin", {"type": "integer", "minimum": 1000, "maximum": 10000}, True),
    "lock": ("Lock a lock.", ("lock",), "lock", None, None, False),
    "unlock": ("Unlock a lock (needs the user's confirmation).", ("lock",), "unlock", None, None, False),
    "open_cover": ("Open a cover (blind, garage door, gate).", ("cover",), "open", None, None, True),
    "close_cover": ("Close a cover.", ("cover",), "close", None, None, True),
    "stop_cover": ("Stop a moving cover.", ("cover",), "stop", None, None, True),
    "set_cover_position": ("Move a cover to a position in percent open.", ("cover",), "position", "position", {"type": "integer", "minimum": 0, "maximum": 100}, False),
    "set_temperature": ("Set a thermostat's target temperature in degrees.", ("climate",), "temperature", "temperature", {"type": "number", "minimum": 0, "maximum": 40}, False),
    "set_hvac_mode": ("Set a thermostat's mode.", ("climate",), "hvac_mode", "mode", {"type": "string", "maxLength": 20}, False),
    "set_fan_speed": ("Set a fan's speed in percent.", ("fan",), "percentage", "percentage", {"type": "integer", "minimum": 0, "maximum": 100}, False),
    "set_fan_preset": ("Set a fan's preset mode.", ("fan",), "preset", "preset", {"type": "string", "maxLength": 40}, False),
    "activate_scene": ("Activate a scene.", ("scene",), "activate", None, None, False),
    "media_play": ("Play or resume a media player.", ("media_player",), "play", None, None, True),
    "media_pause": ("Pause a media player.", ("media_player",), "pause", None, None, True),
    "media_next": ("Skip to the next track on a media player.", ("media_player",), "next", None, None, True),
    "media_previous": ("Go back to the previous track on a media player.", ("media_player",), "previous", None, None, True),
    "set_media_volume": ("Set a media player's volume in percent.", ("media_player",), "volume", "volume", {"type": "integer", "minimum": 0, "maximum": 100}, True),
    "get_state": ("Read a device's current state (also sensors).", ("light", "switch", "fan", "climate", "lock", "cover", "sensor", "binary_sensor", "media_player"), "get_state", None, None, False),
}
_ALTERNATIVE: dict[str, tuple[str, dict[str, Any]]] = {
    "set_color": ("rgb", {"type": "array", "items": {"type": "integer", "minimum": 0, "maximum": 255}, "minItems": 3, "maxItems": 3,
                          "description": "red, green, blue, 0-255 each (instead of color)"}),
}
"""tool → a second value argument that may stand in for the first (exactly one of the two)."""


class CommandLink(Protocol):
    async def publish_command(self, topic: str, payload: bytes, *, within_s: float) -> None: ...

    def publish_own(self, suffix: str, payload: bytes, *, retain: bool = True) -> None: ...


def tool_specs(registry: Registry) -> list[ToolSpec]:
    """One spec per tool that at least one entity of the home can use."""
    present = {e.component for e in registry.entities()}
    specs = []
    for name, (description, components, _action, value_key, value_schema, area_ok) in _TOOLS.items():
        usable = [c for c in components if c in present]
        if not usable:
            continue
        props: dict[str, Any] = {"entity": _TARGET["entity"]}
        if area_ok:
            props["area"] = _TARGET["area"]
            props["domain"] = {"type": "string", "enum": usable, "description": "only devices of this kind"}
        required: list[str] = []
        if value_key and value_schema:
            props[value_key] = value_schema
            required.append(value_key)
        schema: dict[str, Any] = {"type": "object", "properties": props, "required": required, "additionalProperties": False}
        if value_key and name in _ALTERNATIVE:
            other, other_schema = _ALTERNATIVE[name]
            props[other] = other_schema
            required.remove(value_key)
            schema["oneOf"] = [{"required": [value_key]}, {"required": [other]}]
        if area_ok:
            schema["anyOf"] = [{"required": ["entity"]}, {"required": ["area"]}]
        elif name not in ("set_temperature", "set_hvac_mode", "set_fan_speed", "set_fan_preset"):
            schema["required"] = ["entity", *required]
        names = ", ".join(e.id for e in registry.entities() if e.component in usable)[:600]
        specs.append(ToolSpec(name, f"{description} Devices: {names}", schema))
    return specs


class HomeTools:
    """The ToolExecutor for the home."""

    def __init__(self, registry: Registry, link: CommandLink, *, policy: ConfirmPolicy | None = None,
                 timeout_s: float = 3.0, on_result: Callable[[ToolResult], None] | None = None) -> None:
        self.registry = registry
        self.link = link
        self.policy = policy or ConfirmPolicy()
        self.timeout_s = timeout_s
        self._on_result = on_result
        self.on_sent: Callable[[ToolCall], None] | None = None
        """Called once a call's commands are on the broker (before the devices confirm): the
        speaker's 'done' earcon starts there (set by the composition root)."""
        self._validators: dict[str, jsonschema.protocols.Validator] = {}
        self._validators_for: tuple[str, ...] | None = None
        self._guard_map: dict[str, tuple[Guard, ...]] = {}
        self._guards_for: int | None = None

    def specs(self) -> list[ToolSpec]:
        return tool_specs(self.registry)

    def _validator(self, name: str) -> jsonschema.protocols.Validator | None:
        # Compiling a schema costs ~2 ms; the specs only change when the home does.
        key = tuple(e.id for e in self.registry.entities())
        if key != self._validators_for:
            self._validators = {s.name: jsonschema.Draft202012Validator(s.parameters) for s in self.specs()}
            self._validators_for = key
        return self._validators.get(name)

    async def execute(self, call: ToolCall, *, confirmed: bool = False) -> ToolResult:
        try:
            result = await self._execute(call, confirmed)
        except ToolError as err:
            result = ToolResult(call.call_id, call.name, "error", {"code": err.code}, err.message)
        if self._on_result is not None:
            self._on_result(result)
        return result

    async def _execute(self, call: ToolCall, confirmed: bool) -> ToolResult:
        spec = _TOOLS.get(call.name)
        if spec is None:
            raise ToolError("tool-unknown", f"there is no tool called {call.name[:40]!r}")
        _desc, components, action, value_key, value_schema, area_ok = spec
        validator = self._validator(call.name)
        if validator is None:
            raise ToolError("tool-unknown", f"this home has nothing for {call.name}")
        try:
            validator.validate(call.arguments)
        except jsonschema.ValidationError as err:
            raise ToolError("tool-arguments", f"bad arguments for {call.name}: {err.message[:120]}") from None
        value = call.arguments.get(value_key) if value_key else None
        if action == "color":
            # Before anything is resolved or sent: an unknown colour name publishes nothing.
            value = colors.color_named(value) if isinstance(value, str) else colors.color_from_rgb(tuple(call.arguments["rgb"]))
        targets = self.resolve(call.arguments, components)
        if value_schema is not None and value_schema.get("type") == "integer" and isinstance(value, float):
            # JSON Schema counts 1.0 as an integer, and models send it; payloads want 1.
            value = int(value)
        if action == "get_state":
            return self._get_state(call, targets)
        built, skipped, first_error = [], [], None
        for entity in targets:
            try:
                if self.registry.is_available(entity.id) is False:
                    raise ToolError("entity-unavailable", f"The {spoken(entity.name)} is offline.")
                built.append((entity, commands.build(entity, action, value)))
            except ToolError as err:
                # 'Dim the bedroom' dims what can be dimmed; a named device that can't is an error.
                if "area" not in call.arguments:
                    raise
                skipped.append(entity.id)
                first_error = first_error or err
        if not built:
            assert first_error is not None
            raise first_error
        if not confirmed:
            asking = self._needs_confirmation(call, built, action)
            if asking is not None:
                return asking
        result = await self._run(call, built, action, value)
        if skipped:
            result.data["skipped"] = skipped
        return result

    def _needs_confirmation(self, call: ToolCall, built: list[tuple[Entity, commands.Command]], action: str) -> ToolResult | None:
        """By the entity's kind (unlock a lock) and by what would actually be published: a switch
        whose command topic is the lock's needs the same yes (risk belongs to the target)."""
        guards = self._guards()
        risky: list[Entity] = []
        reasons: list[str] = []
        for entity, command in built:
            if self.policy.needs_confirmation(entity.id, entity.component, action, entity.device_class):
                risky.append(entity)
                continue
            for topic, payload in command.publishes:
                reason = self.policy.publish_risk(topic, payload, guards)
                if reason is not None:
                    _LOGGER.warning("%s on %s needs a spoken yes: %s", call.name, entity.id, reason, extra={"code": "tool-risky-target"})
                    risky.append(entity)
                    reasons.append(reason)
                    break
        if not risky:
            return None
        question = self.policy.prompt(_join(e.name for e in risky), action)
        data: dict[str, Any] = {"entities": [e.id for e in risky], "question": question}
        if reasons:
            data["reasons"] = reasons
        return ToolResult(call.call_id, call.name, "needs_confirmation", data, question)

    def _guards(self) -> dict[str, tuple[Guard, ...]]:
        key = self.registry.generation
        if key != self._guards_for:
            self._guard_map = self.policy.guards(self.registry.guarded_entities())
            self._guards_for = key
        return self._guard_map

    def resolve(self, arguments: dict[str, Any], components: tuple[str, ...]) -> list[Entity]:
        """The entities a call means; ToolError('unknown-entity') names what wasn't found."""
        domain = arguments.get("domain")
        wanted = (domain,) if domain in components else components
        if "entity" in arguments:
            name = arguments["entity"]
            found = [e for e in self.registry.find(name) if e.component in wanted]
            if not found and "area" in arguments:
                # 'the bedroom lamp' said as entity + area: look for the name among the area's devices.
                found = [e for e in self.registry.in_area(arguments["area"]) if e.component in wanted and normalise(name) in map(normalise, e.names)]
            if not found:
                others = self.registry.find(name)
                if others:
                    raise ToolError("tool-unsupported", f"the {others[0].name} can't do that")
                raise ToolError("unknown-entity", f"I don't know a {name[:60]}")
            return found
        if "area" in arguments:
            area = arguments["area"]
            if normalise(area) in ("all", "everywhere", "house", "home", "whole house"):
                found = [e for e in self.registry.entities() if e.component in wanted]
                if not found:
                    raise ToolError("unknown-entity", "there's nothing like that in the home")
                return found
            found = [e for c in wanted for e in self.registry.in_area(area, c)]
            if not found:
                if not self.registry.in_area(area):
                    raise ToolError("unknown-area", f"I don't know a room called {area[:60]}")
                raise ToolError("unknown-entity", f"there's nothing like that in the {area[:60]}")
            return found
        only = [e for e in self.registry.entities() if e.component in wanted]
        if len(only) == 1:
            return only
        raise ToolError("tool-arguments", "which device do you mean?")

    def _get_state(self, call: ToolCall, targets: list[Entity]) -> ToolResult:
        items = []
        for e in targets:
            values = dict(self.registry.state(e.id).values)
            items.append({"entity": e.id, "name": e.name, "available": self.registry.is_available(e.id), "state": values})
        message = " ".join(describe(e, self.registry.state(e.id).values) for e in targets)
        return ToolResult(call.call_id, call.name, "ok", {"entities": items}, message)

    async def _run(self, call: ToolCall, built: list[tuple[Entity, commands.Command]], action: str, value: Any) -> ToolResult:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeout_s
        changed = asyncio.Event()

        def listener(entity_id: str) -> None:
            changed.set()

        self.registry.add_listener(listener)
        try:
            for _entity, command in built:
                for topic, payload in command.publishes:
                    await self.link.publish_command(topic, payload, within_s=max(0.1, deadline - loop.time()))
            _LOGGER.info("%s sent to %s", call.name, ", ".join(e.id for e, _ in built))
            if self.on_sent is not None:
                self.on_sent(call)
            while not all(self._confirmed(e, c) for e, c in built) and loop.time() < deadline:
                changed.clear()
                try:
                    await asyncio.wait_for(changed.wait(), deadline - loop.time())
                except TimeoutError:
                    break
        finally:
            self.registry.remove_listener(listener)
        items = []
        for entity, command in built:
            ok = self._confirmed(entity, command)
            status = "ok" if ok and (command.expect or command.stateless) else "unconfirmed"
            items.append({"entity": entity.id, "name": entity.name, "status": status, "state": dict(self.registry.state(entity.id).values)})
        status = "ok" if all(i["status"] == "ok" for i in items) else "unconfirmed"
        names = _join(e.name for e, _ in built)
        message = done_message(action, names, value)
        if status == "unconfirmed":
            message = f"I sent it, but the {names} didn't confirm."
        self.link.publish_own("last_command", f"{call.name} {names}"[:200].encode())
        return ToolResult(call.call_id, call.name, status, {"entities": items}, message)

    def _confirmed(self, entity: Entity, command: commands.Command) -> bool:
        values = self.registry.state(entity.id).values
        return all(values.get(attr) in accepted for attr, accepted in command.expect.items())


def _join(names: Any) -> str:
    items = [spoken(n) for n in dict.fromkeys(names)]
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def done_message(action: str, names: str, value: Any) -> str:
    return {
        "turn_on": f"Turned on the {names}.",
        "turn_off": f"Turned off the {names}.",
        "brightness": f"Set the {names} to {value} percent.",
        "color_temp": f"Set the {names} to {value} kelvin.",
        "lock": f"Locked the {names}.",
        "unlock": f"Unlocked the {names}.",
        "open": f"Opening the {names}.",
        "close": f"Closing the {names}.",
        "stop": f"Stopped the {names}.",
        "position": f"Moved the {names} to {value} percent.",
        "temperature": f"Set the {names} to {value:g} degrees." if isinstance(value, (int, float)) else "Done.",
        "hvac_mode": f"Set the {names} to {value}.",
        "percentage": f"Set the {names} to {value} percent.",
        "preset": f"Set the {names} to {value}.",
        "activate": f"Activated {names}.",
        "color": f"Set the {names} to {value.name}." if isinstance(value, colors.Color) and value.name else f"Changed the colour of the {names}.",
        "play": f"Playing on the {names}.",
        "pause": f"Paused the {names}.",
        "next": f"Skipped to the next track on the {names}.",
        "previous": f"Back to the previous track on the {names}.",
        "volume": f"Set the {names} volume to {value} percent.",
    }.get(action, "Done.")


def describe(entity: Entity, values: dict[str, Any]) -> str:
    """One spoken sentence about an entity's state."""
    if not values:
        return f"I don't know the state of the {spoken(entity.name)} yet."
    if entity.component == "sensor":
        unit = entity.config.get("unit_of_measurement")
        return f"The {spoken(entity.name)} is {values.get('state')}{' ' + str(unit) if isinstance(unit, str) else ''}."
    if entity.component == "climate":
        parts = []
        if "current_temperature" in values:
            parts.append(f"it's {values['current_temperature']:g} degrees")
        if "temperature" in values:
            parts.append(f"set to {values['temperature']:g}")
        if "mode" in values:
            parts.append(f"mode {values['mode']}")
        return f"The {spoken(entity.name)}: {', '.join(parts)}." if parts else f"I don't know the state of the {spoken(entity.name)} yet."
    state = values.get("state")
    if entity.component == "binary_sensor" and entity.device_class in ("door", "window", "opening", "garage_door"):
        state = {"on": "open", "off": "closed"}.get(str(state), state)
    extra = f" at {values['brightness']} percent" if entity.component == "light" and state == "on" and "brightness" in values else ""
    if entity.component == "light" and state == "on" and "hue" in values and "saturation" in values:
        extra += f", {colors.nearest_name(values['hue'], values['saturation'])}"
    if entity.component == "media_player" and "volume" in values:
        extra = f" at volume {values['volume']} percent"
    return f"The {spoken(entity.name)} is {state}{extra}."
