"""Opening the realtime WebSocket: URL, credentials, handshake faults → stable CloudError codes.

Also the retry policy (which codes are worth retrying, the backoff) and the map from error codes
to the local prompts the service speaks. The key is read when connecting and never logged.
"""

from __future__ import annotations

import logging
import os
import random
import socket
import ssl
from urllib.parse import urlsplit

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import InvalidHandshake, InvalidStatus, InvalidURI

from device.errors import CloudError
from device.settings import CloudSettings

log = logging.getLogger(__name__)

PROMPTS: dict[str, str] = {
    "cloud-disabled": "cloud_disabled", "cloud-no-key": "cloud_auth", "cloud-auth": "cloud_auth",
    "cloud-unreachable": "cloud_unreachable", "cloud-dns": "cloud_unreachable", "cloud-tls": "cloud_unreachable",
    "cloud-http": "cloud_unreachable", "cloud-rate-limited": "cloud_busy", "cloud-beta-rejected": "cloud_config",
    "cloud-session-rejected": "cloud_config", "cloud-response-failed": "cloud_error",
    "cloud-bad-event": "cloud_error", "cloud-dropped": "cloud_dropped", "cloud-timeout": "cloud_timeout",
    "cloud-expired": "cloud_expired", "cloud-turn-timeout": "cloud_timeout", "cloud-reply-too-long": "cloud_error",
    "cloud-overflow": "cloud_error",
}
"""CloudError code → the id of the local prompt the service speaks."""
RETRYABLE = frozenset({"cloud-unreachable", "cloud-dns", "cloud-tls", "cloud-http", "cloud-rate-limited",
                       "cloud-timeout", "cloud-dropped"})
"""Never retried: 401/403 (auth), 4xx and a rejected session.update (config), close 4000 (dialect)."""


class _NoDebugWire(logging.LoggerAdapter[logging.Logger]):
    """websockets logs every handshake header at DEBUG, the API key included: never let it."""

    def isEnabledFor(self, level: int) -> bool:  # noqa: N802 - logging's name
        return level > logging.DEBUG and self.logger.isEnabledFor(level)


_WIRE_LOG = _NoDebugWire(logging.getLogger(__name__ + ".ws"), {})


def backoff_delay(attempt: int, rng: random.Random) -> float:
    """Seconds before retry `attempt` (1-based): 0.5 s doubling to 8 s, times U(0.75, 1)."""
    return min(0.5 * 2 ** (attempt - 1), 8.0) * rng.uniform(0.75, 1.0)


def websocket_url(settings: CloudSettings) -> str:
    """The explicit URL (gateway, --cloud-url), else base_url with ws(s) scheme + /realtime?model=."""
    if settings.url:
        return settings.url
    base = settings.base_url.rstrip("/")
    if base.startswith("https://"):
        base = "wss://" + base[len("https://"):]
    elif base.startswith("http://"):
        base = "ws://" + base[len("http://"):]
    return f"{base}/realtime?model={settings.model}"


def api_key(settings: CloudSettings) -> str | None:
    if settings.api_key is not None:
        return settings.api_key.reveal()
    return os.environ.get("OPENAI_API_KEY") or None


def headers(settings: CloudSettings) -> dict[str, str]:
    key = api_key(settings)
    host = urlsplit(websocket_url(settings)).hostname or ""
    out: dict[str, str] = {}
    if key is None and host.endswith("openai.com"):
        raise CloudError("cloud-no-key", "no API key: set cloud.api_key or OPENAI_API_KEY")
    if key is not None:
        if host.endswith(".openai.azure.com"):
            out["api-key"] = key
        else:
            out["Authorization"] = f"Bearer {key}"
    if settings.dialect == "beta":
        out["OpenAI-Beta"] = "realtime=v1"
    return out


async def open_socket(settings: CloudSettings) -> ClientConnection:
    """Connect within `connect_timeout_s`; every failure is a CloudError with a stable code."""
    timeout = settings.connect_timeout_s
    try:
        # No compression, as the SDK does: base64 audio compresses poorly. Frames up to 4× the
        # frame cap arrive and are dropped by the reader; a larger one closes the socket (1009),
        # which bounds what a hostile server can make us hold: max_queue frames of max_size.
        return await connect(
            websocket_url(settings), additional_headers=headers(settings), max_size=4 * settings.max_frame_bytes,
            max_queue=4, compression=None, open_timeout=timeout, proxy=None, logger=_WIRE_LOG,
        )
    except InvalidStatus as err:
        status = err.response.status_code
        code = {401: "cloud-auth", 403: "cloud-auth", 429: "cloud-rate-limited"}.get(status)
        if code is None:
            code = "cloud-http" if status >= 500 else "cloud-session-rejected"
        raise CloudError(code, f"cloud handshake refused with HTTP {status}") from None
    except socket.gaierror as err:
        raise CloudError("cloud-dns", f"can't resolve the cloud host: {err.strerror}") from None
    except ssl.SSLError as err:
        raise CloudError("cloud-tls", f"TLS handshake with the cloud failed: {err.reason}") from None
    except TimeoutError:
        raise CloudError("cloud-timeout", f"no connection to the cloud within {timeout:g} s") from None
    except (OSError, InvalidHandshake, InvalidURI) as err:
        raise CloudError("cloud-unreachable", f"can't connect to the cloud: {err}") from None


def closed_error(code: int | None) -> CloudError:
    if code == 1009:  # we closed it: one frame was over 4× max_frame_bytes
        return CloudError("cloud-bad-event", "the cloud sent a frame too large to accept (close 1009)")
    if code == 4000:
        return CloudError("cloud-beta-rejected", "the endpoint rejected the beta dialect (close 4000); use dialect 'ga'")
    return CloudError("cloud-dropped", f"the cloud connection closed (code {code})")
