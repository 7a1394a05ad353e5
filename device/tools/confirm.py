"""Which actions need a "yes" first, and which topics a tool may never touch. Pure policy.

Opening the house is risky: unlocking a lock, opening a garage/door/gate cover, disarming an alarm,
and whatever the user lists in `mqtt.risky`. Such a call returns 'needs_confirmation' until it is
repeated with `confirmed=True` (a spoken yes locally, or the cloud model asking the user).
Closing and locking are never risky: they make the home safer.

Risk belongs to the target, not to the tool: a discovered "Porch fan" whose command topic is the
lock's and whose ON payload is UNLOCK opens the door just the same. So every publish is checked
against the *guards*: the command topics of every risky entity, each with the payloads that only
make the home safer (LOCK, CLOSE, STOP, ARM_*). Any other payload on a guarded topic needs the
spoken yes whichever entity asked, and so does an UNLOCK/DISARM-like payload on any topic.

Some topics are never a tool's to publish on (`reserved_topic`): the discovery prefix (an empty
payload there deletes an entity in Home Assistant), `<prefix>/status`, `$`-topics, wildcards and
the speakers' own `voxhome/...` topics (OTA notify, mute).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

RISKY_COVER_CLASSES = frozenset({"garage", "door", "gate"})
RISKY_COVER_NAME = re.compile(r"\b(garage|gate|door)\b", re.IGNORECASE)
"""A cover without a device class but called 'Garage' is treated as a garage."""
OPENING_PAYLOAD = re.compile(rb"unlock|disarm|unlatch", re.IGNORECASE)
"""Payloads that open the house on any topic (a lock or alarm voxhome doesn't know of)."""
OWN_PREFIX = "voxhome/"
ALARM_SAFE_KEYS = ("payload_arm_away", "payload_arm_home", "payload_arm_night", "payload_arm_vacation", "payload_arm_custom_bypass")


@dataclass(frozen=True, slots=True)
class Guard:
    """One risky entity's command topic."""

    entity_id: str
    reason: str
    safe: frozenset[bytes]
    """Payloads that only make the home safer; anything else on this topic needs a yes."""


class GuardedEntity(Protocol):
    """What the policy needs to know of an entity (a registry Entity satisfies it)."""

    @property
    def id(self) -> str: ...

    @property
    def component(self) -> str: ...

    @property
    def name(self) -> str: ...

    @property
    def config(self) -> Mapping[str, Any]: ...


def _payload(config: Mapping[str, Any], key: str, default: str) -> bytes:
    return str(config.get(key, default)).encode("utf-8")


def reserved_topic(topic: str, prefix: str = "homeassistant") -> str | None:
    """Why a tool may never publish to `topic`, or None when it may."""
    if not topic or any(c in topic for c in "+#\x00"):
        return "a wildcard or empty topic"
    if topic.startswith("$"):
        return "a broker system ($) topic"
    if topic == prefix or topic.startswith(prefix + "/"):
        return f"Home Assistant's discovery/status topic ({prefix}/...)"
    if topic.startswith(OWN_PREFIX) or topic == OWN_PREFIX.rstrip("/"):
        return "a voxhome speaker's own topic"
    return None


@dataclass(frozen=True, slots=True)
class ConfirmPolicy:
    extra: frozenset[str] = frozenset()
    """Entity ids that need confirmation for any state-changing action."""

    def needs_confirmation(self, entity_id: str, component: str, action: str, device_class: str | None) -> bool:
        if action == "get_state":
            return False
        if entity_id in self.extra:
            return True
        if component == "lock" and action == "unlock":
            return True
        if component == "cover" and device_class in RISKY_COVER_CLASSES and action in ("open", "position"):
            return True
        return component == "alarm_control_panel" and action == "disarm"

    def guards_of(self, entity: GuardedEntity) -> dict[str, Guard]:
        """The command topics of `entity` that are guarded (empty for a harmless entity)."""
        config = entity.config
        topics = {k: v for k, v in config.items() if isinstance(v, str) and (k.endswith("command_topic") or k == "set_position_topic")}
        if entity.id in self.extra:
            return {t: Guard(entity.id, "listed in mqtt.risky", frozenset()) for t in topics.values()}
        if entity.component == "lock":
            safe = frozenset({_payload(config, "payload_lock", "LOCK")})
            return {t: Guard(entity.id, "a lock", safe if k == "command_topic" else frozenset()) for k, t in topics.items()}
        # A discovered device_class may be any JSON (a list is unhashable): only a string names a class.
        device_class = config.get("device_class")
        if entity.component == "cover" and ((isinstance(device_class, str) and device_class in RISKY_COVER_CLASSES)
                                            or RISKY_COVER_NAME.search(entity.name)):
            safe = frozenset({_payload(config, "payload_close", "CLOSE"), _payload(config, "payload_stop", "STOP")})
            return {t: Guard(entity.id, "a garage/door/gate cover", safe if k == "command_topic" else frozenset()) for k, t in topics.items()}
        if entity.component == "alarm_control_panel":
            defaults = ("ARM_AWAY", "ARM_HOME", "ARM_NIGHT", "ARM_VACATION", "ARM_CUSTOM_BYPASS")
            safe = frozenset(_payload(config, k, d) for k, d in zip(ALARM_SAFE_KEYS, defaults, strict=True))
            return {t: Guard(entity.id, "an alarm panel", safe) for t in topics.values()}
        return {}

    def guards(self, entities: Iterable[GuardedEntity]) -> dict[str, tuple[Guard, ...]]:
        """Every guarded topic of the home → the guards on it."""
        out: dict[str, list[Guard]] = {}
        for entity in entities:
            for topic, guard in self.guards_of(entity).items():
                out.setdefault(topic, []).append(guard)
        return {t: tuple(g) for t, g in out.items()}

    def publish_risk(self, topic: str, payload: bytes, guards: Mapping[str, tuple[Guard, ...]]) -> str | None:
        """Why publishing `payload` on `topic` needs a spoken yes, or None when it doesn't."""
        for guard in guards.get(topic, ()):
            if payload not in guard.safe:
                return f"{topic} commands {guard.entity_id} ({guard.reason})"
        if OPENING_PAYLOAD.search(payload) and not any(payload in g.safe for g in guards.get(topic, ())):
            return f"the payload {payload[:40]!r} opens or disarms something"
        return None

    def prompt(self, name: str, action: str) -> str:
        """The question a speaker asks before doing it."""
        verb = {"unlock": "unlock", "open": "open", "position": "move", "disarm": "disarm"}.get(action, action.replace("_", " "))
        return f"Do you want me to {verb} the {name}?"
