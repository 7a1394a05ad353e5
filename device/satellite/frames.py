"""The ESPHome native API's wire: frames (plaintext or Noise) and the message table.

Sans-IO: a framer is fed bytes and returns decoded messages, and encodes messages into bytes; the
session (esphome_api.py) owns the socket. The message classes are aioesphomeapi's generated
protobuf module (what Home Assistant itself speaks), numbered by its own table, never by hand.

Plaintext frame: 0x00, varint payload length, varint message type, payload.
Noise frame: 0x01, 16-bit big-endian length, ciphertext of (16-bit type, 16-bit length, payload).
The Noise session is Noise_NNpsk0_25519_ChaChaPoly_SHA256 with the device as responder; the
client's empty hello frame is answered with the server hello (protocol 1, node name, MAC).
"""

from __future__ import annotations

import logging
from typing import Any

from aioesphomeapi.core import MESSAGE_TYPE_TO_PROTO
from google.protobuf.message import DecodeError, Message
from noise.connection import NoiseConnection

from device.errors import VoxError

log = logging.getLogger(__name__)

MESSAGE_IDS: dict[type[Message], int] = {cls: number for number, cls in MESSAGE_TYPE_TO_PROTO.items()}
MAX_FRAME_BYTES = 1 << 18
"""A real frame is a few KiB (an audio chunk is 1 KiB); anything bigger is an attack or a bug."""
NOISE_PROLOGUE = b"NoiseAPIInit\x00\x00"
NOISE_PROTOCOL = b"Noise_NNpsk0_25519_ChaChaPoly_SHA256"
MAC_FAILURE = b"\x01Handshake MAC failure"


class FrameError(VoxError):
    """The peer sent bytes that are not the API's framing; that connection is closed."""


class HandshakeError(FrameError):
    """The Noise handshake failed (almost always: HA has a different encryption key)."""


def decode(msg_type: int, payload: bytes) -> Message | None:
    """The message for a frame, or None for a type this device doesn't know (ignored, as ESPHome does)."""
    cls = MESSAGE_TYPE_TO_PROTO.get(msg_type)
    if cls is None:
        return None
    msg = cls()
    try:
        msg.ParseFromString(payload)
    except DecodeError as err:
        raise FrameError("esphome-bad-message", f"message type {msg_type} does not parse: {err}") from err
    return msg


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _read_varint(buf: bytearray, pos: int) -> tuple[int, int] | None:
    """(value, next position), or None when the buffer ends inside it."""
    value = shift = 0
    while pos < len(buf):
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7
        if shift > 28:
            raise FrameError("esphome-bad-frame", "varint longer than 4 bytes")
    return None


class PlainFramer:
    encrypted = False

    def __init__(self) -> None:
        self._buf = bytearray()

    def feed(self, data: bytes) -> tuple[list[tuple[int, bytes]], bytes]:
        """The complete frames in the bytes so far, and bytes to send back (none for plaintext)."""
        self._buf += data
        frames: list[tuple[int, bytes]] = []
        while self._buf:
            if self._buf[0] != 0x00:
                if self._buf[0] == 0x01:
                    raise FrameError("esphome-needs-key", "the client speaks Noise but no encryption_key is set")
                raise FrameError("esphome-bad-frame", f"bad preamble byte 0x{self._buf[0]:02x}")
            length = _read_varint(self._buf, 1)
            if length is None:
                break
            size, pos = length
            if size > MAX_FRAME_BYTES:
                raise FrameError("esphome-bad-frame", f"frame of {size} bytes (max {MAX_FRAME_BYTES})")
            kind = _read_varint(self._buf, pos)
            if kind is None or kind[1] + size > len(self._buf):
                break
            msg_type, pos = kind
            frames.append((msg_type, bytes(self._buf[pos:pos + size])))
            del self._buf[:pos + size]
        return frames, b""

    def encode(self, msg: Message) -> bytes:
        payload = msg.SerializeToString()
        return b"\x00" + _varint(len(payload)) + _varint(MESSAGE_IDS[type(msg)]) + payload


class NoiseFramer:
    """The responder's side; `feed` returns the handshake replies as bytes to send."""

    encrypted = True

    def __init__(self, psk: bytes, name: str, mac: str) -> None:
        self._buf = bytearray()
        self._hello = b"\x01" + name.encode() + b"\x00" + mac.encode() + b"\x00"
        self._state = "hello"
        self._unsent = b""
        self._proto: Any = NoiseConnection.from_name(NOISE_PROTOCOL)
        self._proto.set_as_responder()
        self._proto.set_psks(psk)
        self._proto.set_prologue(NOISE_PROLOGUE)
        self._proto.start_handshake()

    @property
    def ready(self) -> bool:
        return self._state == "ready"

    def feed(self, data: bytes) -> tuple[list[tuple[int, bytes]], bytes]:
        self._buf += data
        frames: list[tuple[int, bytes]] = []
        out = bytearray()
        while len(self._buf) >= 3:
            if self._buf[0] != 0x01:
                if self._buf[0] == 0x00:
                    raise FrameError("esphome-plaintext", "the client speaks plaintext but this speaker needs the encryption key")
                raise FrameError("esphome-bad-frame", f"bad preamble byte 0x{self._buf[0]:02x}")
            size = (self._buf[1] << 8) | self._buf[2]
            if len(self._buf) < 3 + size:
                break
            frame = bytes(self._buf[3:3 + size])
            del self._buf[:3 + size]
            if self._state == "hello":
                out += self._frame(self._hello)
                self._state = "handshake"
            elif self._state == "handshake":
                try:
                    out += self._handshake(frame)
                except HandshakeError:
                    self._unsent = bytes(out)  # the server hello must reach the client before the refusal
                    raise
            else:
                frames.append(self._decrypt(frame))
        return frames, bytes(out)

    def _handshake(self, frame: bytes) -> bytes:
        if not frame or frame[0] != 0x00:
            raise FrameError("esphome-bad-frame", "handshake frame without its 0x00 marker")
        try:
            self._proto.read_message(frame[1:])
        except Exception as err:  # InvalidTag (wrong key) or a broken message: both refuse the client
            self._state = "closed"
            raise HandshakeError(
                "esphome-wrong-key", f"Noise handshake failed ({type(err).__name__}): Home Assistant has a different encryption key",
            ) from err
        reply = self._frame(b"\x00" + bytes(self._proto.write_message()))
        self._state = "ready"
        return reply

    def refusal(self) -> bytes:
        """What ESPHome sends on a failed handshake, so HA says 'invalid encryption key'."""
        return self._unsent + self._frame(MAC_FAILURE)

    def _decrypt(self, frame: bytes) -> tuple[int, bytes]:
        try:
            msg = bytes(self._proto.decrypt(frame))
        except Exception as err:  # a frame that doesn't authenticate ends the session
            raise FrameError("esphome-bad-frame", f"frame does not decrypt ({type(err).__name__})") from err
        if len(msg) < 4:
            raise FrameError("esphome-bad-frame", f"decrypted frame of {len(msg)} bytes")
        return (msg[0] << 8) | msg[1], msg[4:]

    def encode(self, msg: Message) -> bytes:
        payload = msg.SerializeToString()
        msg_type = MESSAGE_IDS[type(msg)]
        inner = bytes(((msg_type >> 8) & 0xFF, msg_type & 0xFF, (len(payload) >> 8) & 0xFF, len(payload) & 0xFF)) + payload
        return self._frame(bytes(self._proto.encrypt(inner)))

    @staticmethod
    def _frame(data: bytes) -> bytes:
        if len(data) > 0xFFFF:
            raise FrameError("esphome-bad-frame", f"message of {len(data)} bytes does not fit a Noise frame")
        return bytes((0x01, (len(data) >> 8) & 0xFF, len(data) & 0xFF)) + data


Framer = PlainFramer | NoiseFramer
