"""Whisper's log-mel front end in numpy: 25 ms Hann windows every 10 ms, 80 Slaney mels, log10.

The numbers must match what Whisper was trained on, so this follows its recipe exactly: periodic
Hann window of 400 samples, centred frames with reflect padding (the last frame dropped), power
spectrum, a Slaney-normalised mel filterbank up to 8 kHz, log10 floored at 1e-10, a dynamic range
of 8 (log10 units) below the loudest bin, then (x + 4) / 4.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

SAMPLE_RATE = 16000
N_FFT = 400
HOP = 160
N_MELS = 80
MAX_FRAMES = 3000
"""30 s: the longest input the encoder's positional table covers."""


def hz_to_mel(hz: np.ndarray) -> np.ndarray:
    """Slaney's mel scale: linear below 1 kHz (3 mels per 200 Hz), logarithmic above."""
    hz = np.asarray(hz, dtype=np.float64)
    linear = hz / (200.0 / 3)
    log_step = np.log(6.4) / 27.0
    return np.where(hz >= 1000.0, 15.0 + np.log(np.maximum(hz, 1e-12) / 1000.0) / log_step, linear)


def mel_to_hz(mel: np.ndarray) -> np.ndarray:
    mel = np.asarray(mel, dtype=np.float64)
    log_step = np.log(6.4) / 27.0
    return np.where(mel >= 15.0, 1000.0 * np.exp(log_step * (mel - 15.0)), mel * (200.0 / 3))


def mel_filterbank(n_mels: int = N_MELS, n_fft: int = N_FFT, rate: int = SAMPLE_RATE) -> np.ndarray:
    """Triangular filters [n_mels, n_fft//2 + 1], each scaled to unit area (Slaney norm)."""
    fft_hz = np.linspace(0.0, rate / 2, n_fft // 2 + 1)
    edges = mel_to_hz(np.linspace(hz_to_mel(np.array(0.0)), hz_to_mel(np.array(rate / 2)), n_mels + 2))
    widths = np.diff(edges)
    rising = (fft_hz[None, :] - edges[:-2, None]) / widths[:-1, None]
    falling = (edges[2:, None] - fft_hz[None, :]) / widths[1:, None]
    filters = np.maximum(0.0, np.minimum(rising, falling))
    filters *= (2.0 / (edges[2:] - edges[:-2]))[:, None]
    return filters.astype(np.float32)


@dataclass(frozen=True)
class LogMel:
    """Stateless feature extractor; the filterbank and window are computed once."""

    filters: np.ndarray = field(default_factory=mel_filterbank)
    window: np.ndarray = field(
        default_factory=lambda: (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(N_FFT) / N_FFT)).astype(np.float32)
    )

    def __call__(self, audio: np.ndarray, pad_samples: int = 0) -> np.ndarray:
        """float32 16 kHz mono → [80, frames] with frames = (len + pad) // 160, at most 3000.

        `pad_samples` of trailing zeros stand in for the silence Whisper saw after speech in
        training (it pads every input to 30 s); a little of it steadies the last words.
        """
        audio = np.asarray(audio, dtype=np.float32).reshape(-1)
        if pad_samples:
            audio = np.concatenate([audio, np.zeros(pad_samples, np.float32)])
        n_frames = min(len(audio) // HOP, MAX_FRAMES)
        if n_frames == 0:
            return np.zeros((N_MELS, 0), np.float32)
        half = N_FFT // 2
        if len(audio) > half:
            padded = np.pad(audio, (half, half), mode="reflect")
        else:  # too short to reflect; zeros are what the model saw around speech anyway
            padded = np.pad(audio, (half, half))
        frames = np.lib.stride_tricks.sliding_window_view(padded, N_FFT)[:: HOP][:n_frames]
        spectrum = np.fft.rfft(frames * self.window, axis=-1)
        power = (spectrum.real**2 + spectrum.imag**2).astype(np.float32)
        mel = self.filters @ power.T
        log_mel = np.log10(np.maximum(mel, 1e-10))
        log_mel = np.maximum(log_mel, log_mel.max() - 8.0)
        return ((log_mel + 4.0) / 4.0).astype(np.float32)
