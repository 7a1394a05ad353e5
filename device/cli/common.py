"""Options and settings handling shared by the commands."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any
from urllib.parse import unquote, urlsplit

from device.errors import ConfigError
from device.events import to_json
from device.settings import Settings, load_settings, replace_path


def add_mqtt_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--mqtt", metavar="URL", help="broker to use instead of the configured one: mqtt://[user@]host[:port] or mqtts://…"
    )


def add_cloud_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--cloud-url", metavar="URL", help="realtime WebSocket endpoint to use instead of the configured one")


def settings_from_args(args: argparse.Namespace) -> Settings:
    """Load the config (an explicit --config must exist) and apply command-line overrides."""
    settings = load_settings(args.config, required=args.config is not None)
    mqtt_url = getattr(args, "mqtt", None)
    if mqtt_url:
        settings = apply_mqtt_url(settings, mqtt_url)
    cloud_url = getattr(args, "cloud_url", None)
    if cloud_url:
        if not cloud_url.startswith(("ws://", "wss://")):
            raise ConfigError("config-value", f"--cloud-url must be a ws:// or wss:// URL, not {cloud_url!r}")
        settings = replace_path(settings, "cloud.url", cloud_url)
    return settings


def apply_mqtt_url(settings: Settings, url: str) -> Settings:
    parts = urlsplit(url)
    if parts.scheme not in ("mqtt", "mqtts") or not parts.hostname:
        raise ConfigError("config-value", f"--mqtt must look like mqtt://[user@]host[:port], not {url!r}")
    if parts.password:
        # A password on the command line ends up in shell history and `ps`; refuse it.
        raise ConfigError("config-value", "--mqtt must not contain a password; use mqtt.password in the config")
    try:
        port = parts.port
    except ValueError:
        raise ConfigError("config-value", f"--mqtt has an invalid port: {url!r}") from None
    tls = parts.scheme == "mqtts"
    for key, value in (
        ("mqtt.host", parts.hostname),
        ("mqtt.port", port or (8883 if tls else 1883)),
        ("mqtt.tls", tls),
        ("mqtt.enabled", True),
    ):
        settings = replace_path(settings, key, value)
    if parts.username:
        settings = replace_path(settings, "mqtt.username", unquote(parts.username))
    return settings


def print_json(obj: Any) -> None:
    """One JSON line on stdout, flushed (the commands' output is read line by line)."""
    if not isinstance(obj, dict):
        obj = to_json(obj)
    sys.stdout.write(json.dumps(obj, separators=(",", ":"), default=str) + "\n")
    sys.stdout.flush()
