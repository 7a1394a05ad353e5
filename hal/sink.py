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

    def stop(self) -> int:
        """Stop at once (short fade), drop everything queued; return the ms played of the stream."""
        ...

    @property
    def played_ms(self) -> int:
        """Audio actually played since the current stream started (what the listener heard)."""
        ...

    def close(self) -> None: ...


class RecordingSink:
    """Keeps everything played (tests, the demo) and can write it out as a WAV file.

    Playback is instantaneous: `played_ms` counts what was handed over since the last `stop()`,
    as a device with no queue would report it.
    """

    def __init__(self) -> None:
        self._audio = bytearray()
        self._stream_samples = 0
        self.stops = 0

    def play(self, chunk: AudioChunk) -> None:
        self._audio += chunk.audio
        self._stream_samples += chunk.samples

    def stop(self) -> int:
        played = self.played_ms
        self._stream_samples = 0
        self.stops += 1
        return played

    @property
    def played_ms(self) -> int:
        return self._stream_samples * 1000 // 16000

    @property
    def audio(self) -> bytes:
        return bytes(self._audio)

    def write_wav(self, path: str) -> None:
        import wave

        with wave.open(path, "wb") as wav:
            wav.setnchannels(1)
            wav.setsampwidth(2)
            wav.setframerate(16000)
            wav.writeframes(self._audio)

    def close(self) -> None:
        pass
