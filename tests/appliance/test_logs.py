"""Structured journal entries over the journal's native protocol, parsed from a real socket."""

from __future__ import annotations

import logging
import struct
import subprocess
import sys
from pathlib import Path

from device.system.logs import JournalHandler, encode_fields, stderr_is_journal
from tests.appliance.conftest import BindDatagram


def parse_datagram(data: bytes) -> dict[str, str]:
    """The journal's side of the protocol (what systemd-journald does with our datagram)."""
    fields: dict[str, str] = {}
    while data:
        line, sep, rest = data.partition(b"\n")
        if b"=" in line:
            key, _, value = line.partition(b"=")
            fields[key.decode()] = value.decode()
            data = rest
        else:  # binary form: KEY \n <u64 length> value \n
            (size,) = struct.unpack("<Q", rest[:8])
            fields[line.decode()] = rest[8 : 8 + size].decode()
            assert rest[8 + size : 9 + size] == b"\n"
            data = rest[9 + size :]
    return fields


def test_records_arrive_as_journal_fields(unix_datagram: BindDatagram) -> None:
    journal, path = unix_datagram("journal", 5.0)
    handler = JournalHandler("voxhome", address=path)
    handler.setFormatter(logging.Formatter("%(message)s"))
    logger = logging.getLogger("device.test_logs")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        logger.warning("broker %s unreachable", "homeassistant.local", extra={"code": "mqtt-offline"})
        entry = parse_datagram(journal.recv(65536))
        assert entry["MESSAGE"] == "broker homeassistant.local unreachable"
        assert entry["PRIORITY"] == "4" and entry["SYSLOG_IDENTIFIER"] == "voxhome"
        assert entry["LOGGER"] == "device.test_logs" and entry["VOXHOME_CODE"] == "mqtt-offline"
        assert entry["CODE_FUNC"] == "test_records_arrive_as_journal_fields" and int(entry["CODE_LINE"]) > 0

        try:
            raise ValueError("bad\nvalue")
        except ValueError:
            logger.exception("two\nlines")
        entry = parse_datagram(journal.recv(65536))
        assert entry["PRIORITY"] == "3"
        assert entry["MESSAGE"].startswith("two\nlines\nTraceback") and "ValueError: bad" in entry["MESSAGE"]
    finally:
        logger.removeHandler(handler)
        handler.close()


def test_a_gone_journal_falls_back_to_stderr_with_a_priority_prefix(tmp_path: Path) -> None:
    code = (
        "import logging\n"
        "from device.system.logs import JournalHandler\n"
        f"h = JournalHandler(address={str(tmp_path / 'absent')!r})\n"
        "logging.getLogger().addHandler(h)\n"
        "logging.getLogger('x').error('still here')\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30)
    assert done.stderr.strip() == "<3>x: still here"


def test_binary_form_only_for_multiline_values() -> None:
    assert encode_fields({"A": "1"}) == b"A=1\n"
    assert encode_fields({"A": "x\ny"}) == b"A\n" + struct.pack("<Q", 3) + b"x\ny\n"


def test_journal_stream_must_match_our_stderr() -> None:
    assert not stderr_is_journal({})
    assert not stderr_is_journal({"JOURNAL_STREAM": "1:2"})
