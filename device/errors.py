"""The error taxonomy: every failure the product reports has a stable code and a clear message.

Errors are wrapped at the boundary where they happen (a file, a socket, a model) into one of these,
so callers catch `VoxError` and the service turns it into an `Error` event; the run always ends.
"""

from __future__ import annotations


class VoxError(Exception):
    """Base of all voxhome errors: `code` is stable (for logs, tests, the status topic)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    def __str__(self) -> str:
        return self.message


class ConfigError(VoxError):
    """The config file or a command-line override is wrong; the message names the key."""


class AudioError(VoxError):
    """An audio source or sink can't be opened, read or written, or the audio is unusable."""


class HardwareError(VoxError):
    """A board part other than audio (LEDs, buttons) is missing or unusable."""


class ModelError(VoxError):
    """A model file is missing, corrupt, of the wrong shape, or its runtime is unavailable."""


class ToolError(VoxError):
    """A home tool call is invalid, not allowed, or could not be carried out."""


class CloudError(VoxError):
    """The cloud session failed: connect, auth, protocol or server error."""


class OtaError(VoxError):
    """An update could not be verified, downloaded, installed or switched."""


class TimerError(VoxError):
    """A timer request can't be carried out: no such timer, several match, a bad duration, too many."""
