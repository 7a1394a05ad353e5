"""`voxhome bench aec`: echo cancellation on a synthetic echo set.

The set: the device "plays" local spoken answers and prompts (far end); they reach the microphone
through a synthetic room impulse response (exponential decay, RT60 set by --rt60) after the
playback latency, while a near-end talker says "okay nabu" every few seconds (other voices).
Printed in one run:
  ERLE (dB) on the echo-only microphone signal after the canceller has converged (target ≥ 20),
  wake recall on the near-end wake words during playback: clean near-end / mic without AEC /
  mic with AEC, and self-wakes (detections while only the device spoke) without and with AEC.
The wake detector is models.wake.WakeWordDetector (microWakeWord okay_nabu).
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass

import numpy as np

from device.bench.speech import VOICES, Voice, available, concat, silence, synthesize
from device.settings import WakeWordSettings
from device.voice.aec import EchoCanceller
from hal.audio import SAMPLE_RATE, float_to_pcm16, frames_from_pcm
from models.wake import WakeWordDetector, resolve_word

FAR_TEXTS = (
    "The bedroom temperature is twenty one degrees.",
    "The front door is locked.",
    "Turning on three lights in the living room.",
    "I can't reach the internet right now.",
    "Are you sure? This will unlock the front door.",
    "Say okay nabu when you need me again.",
    "The kitchen light is off and the heating is set to nineteen degrees.",
)
NEAR_VOICES = ("flite:slt", "flite:rms", "espeak-ng:en-gb", "flite:awb", "espeak-ng:en-us+f3")
FAR_VOICE = Voice("espeak-ng", "en-us")
CONVERGE_S = 8.0
"""Speex MDF needs a few seconds of far-end speech to converge; on a device it then keeps its filter."""
MATCH_S = 1.5
TARGET_ERLE_DB = 20.0


@dataclass(frozen=True, slots=True)
class EchoSet:
    far: np.ndarray
    echo: np.ndarray
    near: np.ndarray
    noise: np.ndarray
    word_ends_s: tuple[float, ...]

    @property
    def mic(self) -> np.ndarray:
        return self.echo + self.near + self.noise


def room_impulse_response(rt60_s: float, delay_ms: float, seed: int) -> np.ndarray:
    """Direct path after `delay_ms` (playback latency + 1 m of air), then a decaying diffuse tail."""
    rng = np.random.default_rng(seed)
    n = int(rt60_s * SAMPLE_RATE)
    t = np.arange(n) / SAMPLE_RATE
    tail = rng.standard_normal(n) * np.exp(-6.9 * t / rt60_s) * 0.3
    start = int(delay_ms * SAMPLE_RATE / 1000)
    rir = np.zeros(start + n)
    rir[start:] = tail
    rir[start] = 1.0
    return (rir / np.sqrt((rir**2).sum())).astype(np.float32)


def _voice(label: str) -> Voice:
    return next(v for v in VOICES if f"{v.engine}:{v.name}" == label)


def build_set(words: int, ser_db: float, rt60_s: float, delay_ms: float, seed: int) -> EchoSet:
    far_parts = [concat(synthesize(text, FAR_VOICE), silence(0.3)) for text in FAR_TEXTS]
    far = concat(silence(0.2), *far_parts)
    near_voices = [v for v in (_voice(label) for label in NEAR_VOICES) if available(v)]
    spacing = 4.0
    length = max(len(far), int((1.5 + words * spacing) * SAMPLE_RATE))
    while len(far) < length:
        far = concat(far, *far_parts)
    far = (far[:length] / max(1e-6, float(np.abs(far).max())) * 0.5).astype(np.float32)
    echo = np.convolve(far, room_impulse_response(rt60_s, delay_ms, seed))[:length].astype(np.float32)
    near = np.zeros(length, np.float32)
    ends: list[float] = []
    for i in range(words):
        clip = synthesize("okay nabu", near_voices[i % len(near_voices)])
        start = int((1.5 + i * spacing) * SAMPLE_RATE)
        near[start : start + len(clip)] += clip
        ends.append((start + len(clip)) / SAMPLE_RATE)
    # Scale the talker so that, while both speak, the echo is `-ser_db` louder than the talker.
    active = np.abs(near) > 1e-4
    near_rms = float(np.sqrt(np.mean(near[active] ** 2)))
    echo_rms = float(np.sqrt(np.mean(echo[active] ** 2)))
    near *= echo_rms * 10 ** (ser_db / 20) / near_rms
    noise = (np.random.default_rng(seed + 1).standard_normal(length) * 10 ** (-60 / 20)).astype(np.float32)
    return EchoSet(far, echo, near, noise, tuple(ends))


def erle_db(echo: np.ndarray, residual: np.ndarray, skip_s: float = CONVERGE_S) -> float:
    start = int(skip_s * SAMPLE_RATE)
    n = min(len(echo), len(residual))
    e = echo[start:n].astype(np.float64)
    r = residual[start:n].astype(np.float64)
    return float(10 * np.log10(np.sum(e**2) / max(np.sum(r**2), 1e-12)))


def detect(detector: WakeWordDetector, audio: np.ndarray) -> list[float]:
    detector.reset()
    found: list[float] = []
    for chunk in frames_from_pcm(float_to_pcm16(audio)):
        found += [d.timestamp_ms / 1000 for d in detector.process_streaming(chunk.audio, chunk.timestamp_ms)]
    return found


def recall(hits: list[float], ends: tuple[float, ...]) -> int:
    return sum(any(end - 0.5 <= hit <= end + MATCH_S for hit in hits) for end in ends)


def cancel(aec_filter_ms: int, mic: np.ndarray, far: np.ndarray, suppress: bool = False) -> np.ndarray:
    canceller = EchoCanceller(filter_ms=aec_filter_ms, suppress=suppress)
    try:
        return canceller.process_array(mic, far)
    finally:
        canceller.close()


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--words", type=int, default=8, help="near-end wake words during playback")
    parser.add_argument("--ser-db", type=float, nargs="+", default=[-6.0, 0.0, 6.0],
                        help="near-end talker levels relative to the echo (dB), one recall row each")
    parser.add_argument("--rt60", type=float, default=0.3, help="room reverberation time of the synthetic RIR (s)")
    parser.add_argument("--delay-ms", type=float, default=20.0, help="playback latency + air path before the echo")
    parser.add_argument("--filter-ms", type=int, default=200, help="echo canceller filter length")
    parser.add_argument("--suppress", action="store_true", help="also run speex's residual-echo suppressor")
    parser.add_argument("--seed", type=int, default=0)


def run(args: argparse.Namespace) -> int:
    if not 1 <= args.words <= 100 or not 0.05 <= args.rt60 <= 1.0 or not 0 <= args.delay_ms <= 150:
        sys.stderr.write("voxhome: error [bench-args]: --words 1..100, --rt60 0.05..1, --delay-ms 0..150\n")
        return 2
    out = sys.stdout
    detector = WakeWordDetector([resolve_word(WakeWordSettings("okay_nabu"))])
    erle = 0.0
    try:
        for index, ser in enumerate(args.ser_db):
            data = build_set(args.words, ser, args.rt60, args.delay_ms, args.seed)
            n = len(data.word_ends_s)
            late = tuple(e for e in data.word_ends_s if e > CONVERGE_S)
            if index == 0:
                # The echo path does not depend on the talker's level: ERLE and self-wakes once.
                residual = cancel(args.filter_ms, data.echo + data.noise, data.far, args.suppress)
                erle = erle_db(data.echo, residual)
                head = int(CONVERGE_S * SAMPLE_RATE)
                erle_start = erle_db(data.echo[:head], residual[:head], skip_s=0.0)
                self_raw = len(detect(detector, data.echo + data.noise))
                self_aec = len(detect(detector, residual))
                out.write(f"echo set: {len(data.far) / SAMPLE_RATE:.1f} s of playback, {n} near-end 'okay nabu', "
                          f"RT60 {args.rt60} s, delay {args.delay_ms:.0f} ms, filter {args.filter_ms} ms"
                          f"{', residual suppressor on' if args.suppress else ''}\n")
                out.write(f"ERLE (echo only) converged, after {CONVERGE_S:.0f} s: {erle:.1f} dB  "
                          f"(target >= {TARGET_ERLE_DB:.0f} dB: {'PASS' if erle >= TARGET_ERLE_DB else 'FAIL'});  "
                          f"while converging, first {CONVERGE_S:.0f} s: {erle_start:.1f} dB\n")
                out.write(f"self-wakes (device speech only, one answer says 'okay nabu'): "
                          f"without AEC {self_raw}, with AEC {self_aec}\n")
                out.write("wake recall during playback   near-end alone   mic without AEC   mic with AEC"
                          "   (with AEC, words after convergence)\n")
            cleaned = cancel(args.filter_ms, data.mic, data.far, args.suppress)
            clean_hits = detect(detector, data.near + data.noise)
            raw_hits = detect(detector, data.mic)
            aec_hits = detect(detector, cleaned)
            out.write(f"  talker {ser:+5.1f} dB to echo   {recall(clean_hits, data.word_ends_s):>7}/{n:<8}"
                      f"{recall(raw_hits, data.word_ends_s):>8}/{n:<9}{recall(aec_hits, data.word_ends_s):>7}/{n:<8}"
                      f"{recall(aec_hits, late):>10}/{len(late)}\n")
    finally:
        detector.close()
    return 0 if erle >= TARGET_ERLE_DB else 1
