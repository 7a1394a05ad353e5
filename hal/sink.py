"""Audio sinks: where the device's voice goes.

`AudioSink` is the one output interface (prompts, local answers and the cloud's streamed reply
all go through it); implementations: the ALSA speaker through the player, a WAV file, a recording
list (tests), null.
"""

from __future__ import annotations

from typing import Protocol

from device.events import AudioChunk


class AudioSink(Protocol):
    def play(self, chunk: AudioChunk) -> None:
        """Queue 16 kHz mono s16le audio for playback; never blocks on the device."""
        ...

    def flush(self) -> None:
        """The stream's last audio is queued: play it out, padding a part-filled block with silence."""
        ...

    def stop(self) -> int:
        """Stop at once (short fade), drop everything queued; return the ms played of the stream."""
        ...

    @property
    def played_ms(self) -> int:
        """Audio actually played since the current stream started (what the listener heard)."""
        ...

    def close(self) -> None: ...

