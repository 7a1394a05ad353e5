"""The home as voxhome knows it now: entities, their names, areas and live state.

Fed one MQTT message at a time (`handle`) by the MQTT adapter; synchronous and I/O-free, so it is
tested on bytes. Discovery messages add, replace and remove entities; state and availability
messages update `EntityState`; devices from the config (`[[home.devices]]`) are entities too.
A malformed or hostile discovery message is logged and skipped.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from device.settings import HomeSettings
from device.tools import state as state_mod
from device.tools.confirm import OWN_PREFIX, reserved_topic
from device.tools.discovery import (
    GUARDED_COMPONENTS,
    DiscoveredEntity,
    DiscoveryError,
    Removal,
    expand,
    parse_message,
    parse_topic,
)
from device.tools.templates import MISSING, render_value

_LOGGER = logging.getLogger(__name__)
MAX_ENTITIES = 2000


@dataclass(frozen=True, slots=True)
class Entity:
    id: str
    component: str
    name: str
    area: str | None
    config: dict[str, Any] = field(hash=False)
    aliases: tuple[str, ...] = ()
    source: str = "discovery"
    key: str = ""

    @property
    def names(self) -> tuple[str, ...]:
        """Every way to call it: name, aliases and the id's object part ('front_door' → 'front door')."""
        spoken = self.id.split(".", 1)[1].replace("_", " ")
        return tuple(dict.fromkeys(n for n in (self.name, *self.aliases, spoken) if n))

    @property
    def command_topics(self) -> frozenset[str]:
        return frozenset(v for k, v in self.config.items() if is_command_key(self.component, k) and isinstance(v, str))

    @property
    def device_class(self) -> str | None:
        value = self.config.get("device_class")
        return value if isinstance(value, str) else None

    def availability(self) -> list[dict[str, Any]]:
        """Availability topics with their payloads, from both the list and the single-topic form."""
        out: list[dict[str, Any]] = []
        items = self.config.get("availability")
        if isinstance(items, list):
            out += [i for i in items if isinstance(i, dict) and isinstance(i.get("topic"), str)]
        topic = self.config.get("availability_topic")
        if isinstance(topic, str):
            out.append({"topic": topic, "value_template": self.config.get("availability_template")})
        return out


@dataclass(slots=True)
class EntityState:
    values: dict[str, Any] = field(default_factory=dict)
    available: dict[str, bool] = field(default_factory=dict)
    """Per availability topic; the entity is available by the configured mode."""


MEDIA_COMMAND_KEYS = frozenset({"play_topic", "pause_topic", "next_topic", "previous_topic", "volumeset_topic"})
"""The community mqtt_media_player convention: one command topic per verb."""


def is_command_key(component: str, key: str) -> bool:
    """A discovery key whose topic the speaker publishes to."""
    return key.endswith("command_topic") or key == "set_position_topic" or (component == "media_player" and key in MEDIA_COMMAND_KEYS)


def normalise(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", " ", text.lower()).strip()


class Registry:
    def __init__(self, home: HomeSettings | None = None, *, prefix: str = "homeassistant",
                 ignore: frozenset[str] = frozenset()) -> None:
        self.prefix = prefix
        self._ignore = ignore
        """Discovery topics to leave alone (the speaker's own announcement)."""
        self._home = home or HomeSettings()
        self._entities: dict[str, Entity] = {}
        self._guarded_only: dict[str, Entity] = {}
        """Entities voxhome doesn't drive (alarm panels) whose command topics are still guarded."""
        self._retired: dict[tuple[str, tuple[str, ...]], Entity] = {}
        """Earlier versions of replaced or removed entities, by id and command topics: still guarded."""
        self.generation = 0
        """Bumped whenever an entity is added, replaced or removed (caches key on it)."""
        self._by_key: dict[str, list[str]] = {}
        self._states: dict[str, EntityState] = {}
        self._listeners: list[Callable[[str], None]] = []
        self._overrides = {e.id: e for e in self._home.entities}
        for device in self._home.devices:
            self._add_static(device)

    # --- reading -------------------------------------------------------------------------------

    def entities(self) -> list[Entity]:
        return sorted(self._entities.values(), key=lambda e: e.id)

    def get(self, entity_id: str) -> Entity | None:
        return self._entities.get(entity_id)

    def state(self, entity_id: str) -> EntityState:
        return self._states.setdefault(entity_id, EntityState())

    def is_available(self, entity_id: str) -> bool | None:
        """True/False from the availability topics, None when unknown or not reported."""
        entity = self._entities.get(entity_id)
        if entity is None:
            return None
        known = self.state(entity_id).available
        topics = [a["topic"] for a in entity.availability()]
        if not topics or not any(t in known for t in topics):
            return None
        mode = entity.config.get("availability_mode", "latest")
        values = [known[t] for t in topics if t in known]
        if mode == "all":
            return all(values) and len(values) == len(topics)
        if mode == "any":
            return any(values)
        return values[-1]

    def areas(self) -> list[str]:
        return sorted({e.area for e in self._entities.values() if e.area})

    def find(self, text: str) -> list[Entity]:
        """Entities whose id, name or alias is `text` (case and punctuation ignored)."""
        wanted = normalise(text)
        if text in self._entities:
            return [self._entities[text]]
        return [e for e in self.entities() if any(normalise(n) == wanted for n in e.names)]

    def in_area(self, area: str, component: str | None = None) -> list[Entity]:
        wanted = normalise(area)
        return [
            e for e in self.entities()
            if e.area and normalise(e.area) == wanted and (component is None or e.component == component)
        ]

    def command_topics(self) -> frozenset[str]:
        """The allow-list: nothing else may ever be published for a tool call."""
        return frozenset(t for e in self._entities.values() for t in e.command_topics if reserved_topic(t, self.prefix) is None)

    def guarded_entities(self) -> list[Entity]:
        """Every entity whose command topics the risk policy must know, driven or not."""
        # Retired versions too: a garage door re-announced onto another topic must not leave the
        # one the real door still listens on open to an alias ("Garage lamp" → OPEN there).
        # A version announced again unchanged (Home Assistant restarting) is the current one; one
        # whose payloads changed stays, so a lock re-announced with payload_lock = OPEN still asks.
        current = [*self.entities(), *sorted(self._guarded_only.values(), key=lambda e: e.id)]
        now = {(e.id, tuple(sorted(e.command_topics))): e.config for e in current}
        return current + [e for key, e in self._retired.items() if now.get(key) != e.config]

    def subscriptions(self) -> set[str]:
        """Topics to follow: discovery, HA's birth message, and every entity's state/availability."""
        topics: set[str] = set()
        for e in self._entities.values():
            topics |= state_mod.state_topics(e.component, e.config)
            topics |= {a["topic"] for a in e.availability()}
        topics = {t for t in topics if _plain_topic(t)}
        topics.add(f"{self.prefix}/status")
        if self._home.discovery:
            topics |= {f"{self.prefix}/+/+/config", f"{self.prefix}/+/+/+/config"}
        return topics

    def add_listener(self, listener: Callable[[str], None]) -> None:
        """Called with an entity id after its state or availability changed."""
        self._listeners.append(listener)

    def remove_listener(self, listener: Callable[[str], None]) -> None:
        if listener in self._listeners:
            self._listeners.remove(listener)

    # --- feeding -------------------------------------------------------------------------------

    def handle(self, topic: str, payload: bytes) -> bool:
        """Process one message. True when the set of entities changed (resubscribe needed)."""
        changed = False
        if self._home.discovery and topic not in self._ignore and parse_topic(topic, self.prefix) is not None:
            changed = self._handle_discovery(topic, payload)
        for entity in list(self._entities.values()):
            self._handle_state(entity, topic, payload)
        return changed

    def _handle_discovery(self, topic: str, payload: bytes) -> bool:
        try:
            parsed = parse_message(topic, payload, self.prefix)
        except DiscoveryError as err:
            _LOGGER.warning("skipping discovery message: %s", err.message, extra={"code": err.code})
            return False
        old = self._by_key.pop(topic, [])
        for entity_id in old:
            for table in (self._entities, self._guarded_only):
                gone = table.pop(entity_id, None)
                if gone is not None and gone.command_topics:
                    self._retired[(gone.id, tuple(sorted(gone.command_topics)))] = gone
        while len(self._retired) > MAX_ENTITIES:  # bounded against a flood of re-announcements
            self._retired.pop(next(iter(self._retired)))
        self.generation += 1
        if isinstance(parsed, Removal):
            if old:
                _LOGGER.info("removed %s", ", ".join(old))
            return bool(old)
        added = []
        for found in parsed:
            if len(self._entities) >= MAX_ENTITIES:
                _LOGGER.warning("ignoring %s: more than %d entities", found.entity_id, MAX_ENTITIES)
                break
            entity = self._from_discovery(found)
            if not self._acceptable(topic, entity):
                continue
            if entity.component in GUARDED_COMPONENTS:
                self._guarded_only[entity.id] = entity
            else:
                self._entities[entity.id] = entity
            added.append(entity.id)
        self._by_key[topic] = added
        return set(old) != set(added) or bool(added)

    def _acceptable(self, topic: str, entity: Entity) -> bool:
        """Refuse an entity that would make the speaker publish onto a reserved topic; flag one
        that shares a command topic with another (it inherits that entity's risk, by topic)."""
        for command_topic in sorted(entity.command_topics):
            why = reserved_topic(command_topic, self.prefix)
            if why is not None:
                # A speaker's own announcements (its mute switch) come back to it through discovery:
                # expected, so not a warning; it is refused all the same (it is driven by voice directly).
                level = logging.DEBUG if command_topic.startswith(OWN_PREFIX) else logging.WARNING
                _LOGGER.log(
                    level, "refusing discovered %s from %s: its command topic %r is %s",
                    entity.id, topic[:100], command_topic[:100], why, extra={"code": "discovery-reserved-topic"},
                )
                return False
        for other in self.guarded_entities():
            shared = entity.command_topics & other.command_topics
            if shared:
                _LOGGER.warning(
                    "discovered %s shares command topic %s with %s; its commands count as %s's",
                    entity.id, ", ".join(sorted(shared))[:200], other.id, other.id, extra={"code": "discovery-topic-alias"},
                )
        return True

    def _from_discovery(self, found: DiscoveredEntity) -> Entity:
        entity_id = found.entity_id
        n = 2
        while entity_id in self._entities or entity_id in self._guarded_only:
            # Two devices that slug to the same id (two 'Kitchen' sensors) both stay reachable.
            entity_id = f"{found.entity_id}_{n}"
            n += 1
        override = self._overrides.get(entity_id)
        return Entity(
            id=entity_id,
            component=found.component,
            name=found.name,
            area=(override.area if override and override.area else found.area),
            config=found.config,
            aliases=override.aliases if override else (),
            source="discovery",
            key=found.key,
        )

    def _add_static(self, device: Any) -> None:
        component = device.id.split(".", 1)[0]
        extra: dict[str, Any] = {}
        if device.config:
            try:
                loaded = json.loads(device.config)
            except ValueError as err:
                raise DiscoveryError(f"home.devices {device.id}: config is not JSON: {err}") from None
            except RecursionError:
                raise DiscoveryError(f"home.devices {device.id}: config is nested too deeply") from None
            if isinstance(loaded, dict):
                extra = expand(loaded)
        config: dict[str, Any] = {
            "payload_on": device.payload_on,
            "payload_off": device.payload_off,
            "brightness_scale": device.brightness_scale,
            **({"schema": "json"} if device.schema == "json" else {}),
            **{k: getattr(device, k) for k in ("command_topic", "state_topic", "availability_topic", "device_class") if getattr(device, k)},
            **extra,
        }
        self._entities[device.id] = Entity(
            id=device.id, component=component, name=device.name, area=device.area,
            config=config, aliases=device.aliases, source="config",
        )

    def _handle_state(self, entity: Entity, topic: str, payload: bytes) -> None:
        touched = False
        for avail in entity.availability():
            if avail["topic"] != topic:
                continue
            template = avail.get("value_template")
            value = render_value(template if isinstance(template, str) else None, payload.decode("utf-8", "replace"))
            if value is MISSING:
                continue
            online = str(avail.get("payload_available", entity.config.get("payload_available", "online")))
            offline = str(avail.get("payload_not_available", entity.config.get("payload_not_available", "offline")))
            if str(value) in (online, offline):
                self.state(entity.id).available[topic] = str(value) == online
                touched = True
        updates = state_mod.interpret(entity.component, entity.config, topic, payload)
        if updates:
            self.state(entity.id).values.update(updates)
            touched = True
        if touched:
            for listener in list(self._listeners):
                listener(entity.id)


def _plain_topic(topic: str) -> bool:
    """A state topic from a discovery payload becomes a subscription: no wildcards, bounded."""
    return 0 < len(topic) <= 256 and not any(c in topic for c in "+#\x00")
