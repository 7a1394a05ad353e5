"""Which actions need a "yes" first. Pure policy.

Opening the house is risky: unlocking a lock, opening a garage/door/gate cover, disarming an alarm,
and whatever the user lists in `mqtt.risky`. Such a call returns 'needs_confirmation' until it is
repeated with `confirmed=True` (a spoken yes locally, or the cloud model asking the user).
Closing and locking are never risky: they make the home safer.
"""

from __future__ import annotations

from dataclasses import dataclass

RISKY_COVER_CLASSES = frozenset({"garage", "door", "gate"})


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

    def prompt(self, name: str, action: str) -> str:
        """The question a speaker asks before doing it."""
        verb = {"unlock": "unlock", "open": "open", "position": "move", "disarm": "disarm"}.get(action, action.replace("_", " "))
        return f"Do you want me to {verb} the {name}?"
