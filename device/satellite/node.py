"""What the speaker is as an ESPHome node: its state, HA's hooks into it, its MAC, its zeroconf record."""

from __future__ import annotations

import logging
import socket
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal

log = logging.getLogger(__name__)

ESPHOME_VERSION = "2025.5.0"
"""What HA compares its feature checks against; the speaker implements that release's voice API."""
TimerKind = Literal["started", "updated", "cancelled", "finished"]
TIMER_KINDS: tuple[TimerKind, ...] = ("started", "updated", "cancelled", "finished")


@dataclass(frozen=True, slots=True)
class HaTimer:
    """One of HA's timer events for this satellite (HA keeps the timer; the device shows and rings it)."""

    kind: TimerKind
    timer_id: str
    name: str
    total_s: int
    left_s: int
    active: bool


@dataclass(frozen=True, slots=True)
class WakeWord:
    id: str
    phrase: str
    languages: tuple[str, ...] = ("en",)


@dataclass(frozen=True)
class SatelliteHooks:
    """What HA may do to the speaker; each is optional (None: HA's command is logged and ignored)."""

    mute: Callable[[bool], None] | None = None
    volume: Callable[[float], None] | None = None
    """0.0 - 1.0."""
    wake_words: Callable[[tuple[str, ...]], None] | None = None
    """The wake word ids HA selected."""
    timer: Callable[[HaTimer], Awaitable[None]] | None = None
    announce: Callable[[str, str, bool], Awaitable[bool]] | None = None
    """(media URL, preannounce URL, start a conversation after it) → played to the end."""


def node_mac() -> str:
    """The board's MAC as ESPHome writes it (HA's unique id for the device)."""
    node = uuid.getnode()
    return ":".join(f"{(node >> s) & 0xFF:02X}" for s in range(40, -1, -8))


@dataclass
class SpeakerState:
    muted: bool = False
    listening: bool = False
    volume: float = 0.5
    wake_words: tuple[WakeWord, ...] = ()
    active_wake_words: tuple[str, ...] = ()


async def announce(node_name: str, port: int, mac: str, *, encrypted: bool, friendly_name: str, version: str) -> Any:
    """Register `_esphomelib._tcp` (the AsyncZeroconf to close later), or None without multicast."""
    from zeroconf import IPVersion
    from zeroconf.asyncio import AsyncServiceInfo, AsyncZeroconf

    props = {"version": ESPHOME_VERSION, "mac": mac.replace(":", "").lower(), "platform": "voxhome",
             "board": "voxhome", "network": "ethernet", "friendly_name": friendly_name,
             "project_name": "voxhome.speaker", "project_version": version}
    if encrypted:
        props["api_encryption"] = "Noise_NNpsk0_25519_ChaChaPoly_SHA256"
    info = AsyncServiceInfo(
        "_esphomelib._tcp.local.", f"{node_name}._esphomelib._tcp.local.", port=port,
        properties=props, server=f"{node_name}.local.",
        addresses=[socket.inet_aton(a) for a in lan_addresses()],
    )
    try:
        zeroconf = AsyncZeroconf(ip_version=IPVersion.V4Only)
        await zeroconf.async_register_service(info, allow_name_change=True)
        return zeroconf
    except Exception as err:  # no multicast on this network (OSError, zeroconf's own): HA can still add it by address
        log.warning("can't announce over zeroconf (%s); add the speaker in HA by its address", err)
        return None


def lan_addresses() -> list[str]:
    import ifaddr

    found = [ip.ip for adapter in ifaddr.get_adapters() for ip in adapter.ips
             if isinstance(ip.ip, str) and not ip.ip.startswith("127.")]
    return found or ["127.0.0.1"]
