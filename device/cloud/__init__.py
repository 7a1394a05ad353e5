"""The cloud fallback: realtime speech-to-speech over WebSocket, used only when local can't answer."""

from device.cloud.decision import Route, RouteDecider
from device.cloud.realtime import CloudOutcome, RealtimeClient

__all__ = ["CloudOutcome", "RealtimeClient", "Route", "RouteDecider"]
