"""`voxhome sim home|cloud`: the virtual home on MQTT and the fake realtime server."""

from __future__ import annotations

from typing import Any

from device.cli.group import register_group

SIMULATORS = {
    "home": "device.sim.home",
    "cloud": "device.sim.cloud",
}


def register(sub: Any) -> None:
    register_group(sub, "sim", "run a simulator for demos and tests", SIMULATORS)
