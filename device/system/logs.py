"""Logging set-up: structured entries to the systemd journal under systemd, plain lines elsewhere.

Under systemd, stderr is a stream into the journal ($JOURNAL_STREAM names it), which keeps only
the text. We then speak the journal's native protocol instead (one datagram of KEY=value fields
to /run/systemd/journal/socket — the few lines it takes, no extra package), so each entry carries
its priority, logger, source location and our own fields (VOXHOME_CODE for an error's code),
and `journalctl -u voxhome -p warning` or `journalctl VOXHOME_CODE=mqtt-offline` work.
Fields only ever hold what the message already holds: audio and secrets are never logged.
"""

from __future__ import annotations

import logging
import os
import socket
import struct
import sys
from collections.abc import Mapping

JOURNAL_SOCKET = "/run/systemd/journal/socket"
MAX_DATAGRAM = 48 * 1024
"""Well under the socket's limit; a longer message is cut (a log line, not a payload)."""

_PRIORITY = {logging.DEBUG: 7, logging.INFO: 6, logging.WARNING: 4, logging.ERROR: 3, logging.CRITICAL: 2}


def journal_fields(record: logging.LogRecord, message: str, identifier: str) -> dict[str, str]:
    """The journal fields of one record (pure)."""
    fields = {
        "MESSAGE": message,
        "PRIORITY": str(_PRIORITY.get(record.levelno, 6 if record.levelno < logging.WARNING else 3)),
        "SYSLOG_IDENTIFIER": identifier,
        "LOGGER": record.name,
        "CODE_FILE": record.pathname,
        "CODE_LINE": str(record.lineno),
        "CODE_FUNC": record.funcName,
        "THREAD_NAME": record.threadName or "",
    }
    code = getattr(record, "code", None)  # logger.warning(..., extra={"code": err.code})
    if isinstance(code, str):
        fields["VOXHOME_CODE"] = code
    return fields


def encode_fields(fields: Mapping[str, str]) -> bytes:
    """The journal's native datagram: KEY=value lines; values with a newline use the binary form
    (KEY, newline, little-endian 64-bit length, value, newline)."""
    out = bytearray()
    for key, value in fields.items():
        data = value.encode("utf-8", errors="replace")
        if b"\n" in data:
            out += key.encode() + b"\n" + struct.pack("<Q", len(data)) + data + b"\n"
        else:
            out += key.encode() + b"=" + data + b"\n"
    return bytes(out)


class JournalHandler(logging.Handler):
    """Sends each record to the journal's socket; falls back to stderr if the journal refuses."""

    def __init__(self, identifier: str = "voxhome", address: str = JOURNAL_SOCKET) -> None:
        super().__init__()
        self._identifier = identifier
        self._address = address
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = self.format(record)
            if len(message) > MAX_DATAGRAM:
                message = message[:MAX_DATAGRAM] + " …[cut]"
            self._sock.sendto(encode_fields(journal_fields(record, message, self._identifier)), self._address)
        except OSError:
            # The journal is restarting or full: the line must not be lost, nor the speaker stop.
            sys.stderr.write(f"<{_PRIORITY.get(record.levelno, 6)}>{record.name}: {record.getMessage()}\n")
        except Exception:
            self.handleError(record)

    def close(self) -> None:
        self._sock.close()
        super().close()


def stderr_is_journal(env: Mapping[str, str] | None = None) -> bool:
    """True when systemd connected our stderr to the journal ($JOURNAL_STREAM is 'dev:inode')."""
    stream = (os.environ if env is None else env).get("JOURNAL_STREAM", "")
    try:
        stat = os.fstat(sys.stderr.fileno())
    except (OSError, ValueError, AttributeError):
        return False
    return stream == f"{stat.st_dev}:{stat.st_ino}"


def setup_logging(verbose: int, *, identifier: str = "voxhome") -> None:
    """-v/-vv raise the level. In the journal INFO is kept by default (which way each utterance
    went and why); on a terminal only warnings, since stdout carries the commands' JSON lines."""
    journal = stderr_is_journal() and os.path.exists(JOURNAL_SOCKET)
    base = logging.INFO if journal else logging.WARNING
    level = max(logging.DEBUG, base - 10 * verbose)
    if journal:
        handler: logging.Handler = JournalHandler(identifier)
        handler.setFormatter(logging.Formatter("%(message)s"))
    else:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=level, handlers=[handler], force=True)
