"""`voxhome bench wake`: wake-word detection and end-of-speech accuracy on synthesized speech.

Three measurements, all with the four built-in microWakeWord models listening at once (the
shipped configuration), through the same runner the device uses:
1. detection rate per voice and word, clean and with pink noise at 10 dB SNR;
2. false accepts over ≥30 minutes of speech that contains no wake word (sentences of the GPL-3
   text shipped with Debian, read by every voice in turn);
3. end-of-speech error on clean "okay nabu, <command>" clips: the pipeline's end-of-speech time
   minus the true end of the command's sound.
"""

from __future__ import annotations

import argparse
import dataclasses
import re
import statistics
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

from device.bench.speech import VOICES, Voice, available, concat, mix_at_snr, silence, synthesize
from device.events import Detection, VoiceStopped
from device.listening.frontend import Frontend
from device.listening.pipeline import Pipeline
from device.settings import VadSettings, WakeWordSettings
from hal.audio import float_to_pcm16, frames_from_pcm
from models.vad import SileroVad
from models.wake import WakeWordDetector, resolve_word

PHRASES: tuple[tuple[str, str], ...] = (
    ("okay_nabu", "okay nabu"),
    ("okay_nabu", "okay nah boo"),
    ("hey_jarvis", "hey jarvis"),
    ("alexa", "alexa"),
    ("hey_mycroft", "hey mycroft"),
)
COMMANDS = (
    "turn on the kitchen light",
    "set the thermostat to twenty one degrees",
    "close the living room blinds",
    "what time is it",
    "turn off all the lights downstairs",
    "play some music in the bedroom",
)
TEXT = Path("/usr/share/common-licenses/GPL-3")
SR = 16000


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--fa-minutes", type=float, default=30.0, help="minutes of wake-free speech (default 30)")
    parser.add_argument("--commands", type=int, default=3, help="commands per voice and word in the detection table")
    parser.add_argument("--snr", type=float, default=10.0, help="SNR of the noisy condition (dB)")


def _detector() -> WakeWordDetector:
    return WakeWordDetector(resolve_word(WakeWordSettings(w)) for w in ("okay_nabu", "hey_jarvis", "alexa", "hey_mycroft"))


def _detect(detector: WakeWordDetector, audio: np.ndarray) -> list[Detection]:
    detector.reset()
    found: list[Detection] = []
    for chunk in frames_from_pcm(float_to_pcm16(audio)):
        found += detector.process_streaming(chunk.audio, chunk.timestamp_ms)
    return found


class PymicroPeer:
    """pymicro-wakeword's own API on the same clips: says whether a miss is the model's or ours."""

    def __init__(self, words: tuple[str, ...]) -> None:
        from pymicro_wakeword import MicroWakeWord, Model

        self._words = words
        self._models = [MicroWakeWord.from_builtin(Model(w)) for w in words]

    def detect(self, audio: np.ndarray) -> set[str]:
        from pymicro_wakeword import MicroWakeWordFeatures

        features = MicroWakeWordFeatures()  # fresh state per clip, as _detect resets ours
        for model in self._models:
            model.reset()
        found: set[str] = set()
        for chunk in frames_from_pcm(float_to_pcm16(audio)):
            for feature in features.process_streaming(chunk.audio):
                for word, model in zip(self._words, self._models, strict=True):
                    if model.process_streaming(feature):
                        found.add(word)
        return found


RATES = {"espeak-ng": (None, 140, 210, 120, 190), "flite": (None, 85, 120, 95, 110)}
"""Per clip: espeak-ng words per minute, flite duration stretch x100 (festival has no knob here)."""


def _at_rate(voice: Voice, clip: int) -> Voice:
    rates = RATES.get(voice.engine)
    if not rates or clip == 0:
        return voice
    return dataclasses.replace(voice, rate=rates[clip % len(rates)])


def detection_table(voices: list[Voice], commands: int, snr: float) -> list[str]:
    detector = _detector()
    peer = PymicroPeer(("okay_nabu", "hey_jarvis", "alexa", "hey_mycroft"))
    hits: dict[tuple[str, str, str], list[int]] = defaultdict(list)
    peer_hits: dict[tuple[str, str], list[int]] = defaultdict(list)
    agree = clips = 0
    confusions = 0
    for v, voice in enumerate(voices):
        for p, (word, phrase) in enumerate(PHRASES):
            for c in range(commands):
                # TTS is deterministic: vary the speaking rate so clips differ like people do.
                said = _at_rate(voice, c)
                clip = concat(silence(0.5), synthesize(phrase, said), silence(0.3), synthesize(COMMANDS[c % len(COMMANDS)], said), silence(1.0))
                for cond, audio in (("clean", clip), (f"{snr:g}dB", mix_at_snr(clip, snr, seed=1000 * v + 10 * p + c))):
                    found = _detect(detector, audio)
                    ours = int(any(d.word == word for d in found))
                    hits[(voice.label, phrase, cond)].append(ours)
                    confusions += sum(d.word != word for d in found)
                    theirs = int(word in peer.detect(audio))
                    peer_hits[(phrase, cond)].append(theirs)
                    agree += ours == theirs
                    clips += 1
    conds = ("clean", f"{snr:g}dB")
    lines = [
        f"wake detection, 4 words listening, {commands} clips per cell (hits/clips; clip 1 at the voice's own rate,",
        "then other speaking rates for espeak-ng/flite; festival repeats its one rate), clean | "
        f"{snr:g} dB SNR pink noise",
    ]
    header = f"{'voice':<26}" + "".join(f"{phrase:>20}" for _, phrase in PHRASES)
    lines.append(header)
    for voice in voices:
        row = f"{voice.label:<26}"
        for _, phrase in PHRASES:
            a, b = (hits[(voice.label, phrase, c)] for c in conds)
            row += f"{f'{sum(a)}/{len(a)} | {sum(b)}/{len(b)}':>20}"
        lines.append(row)
    total = f"{'all voices':<26}"
    for _, phrase in PHRASES:
        a = [x for voice in voices for x in hits[(voice.label, phrase, conds[0])]]
        b = [x for voice in voices for x in hits[(voice.label, phrase, conds[1])]]
        total += f"{f'{100 * sum(a) / len(a):.0f}% | {100 * sum(b) / len(b):.0f}%':>20}"
    lines.append(total)
    peer_row = f"{'pymicro-wakeword, same':<26}"
    for _, phrase in PHRASES:
        a, b = (peer_hits[(phrase, c)] for c in conds)
        peer_row += f"{f'{100 * sum(a) / len(a):.0f}% | {100 * sum(b) / len(b):.0f}%':>20}"
    lines.append(peer_row)
    lines.append(f"same hit/miss as pymicro-wakeword's own API on {agree}/{clips} clips "
                 "(its default thresholds and window; ours from the model manifests)")
    lines.append(f"wrong-word detections in these clips: {confusions}")
    return lines


def sentences() -> list[str]:
    if TEXT.is_file():
        text = re.sub(r"\s+", " ", TEXT.read_text(encoding="utf-8", errors="replace"))
        parts = [re.sub(r"[^A-Za-z ,']", " ", s).strip() for s in re.split(r"[.;:!?]", text)]
        return [" ".join(s.split()) for s in parts if len(s.split()) >= 4]
    return [f"{a} {b}" for a in COMMANDS for b in ("please", "right now", "in a minute")]


def false_accepts(voices: list[Voice], minutes: float) -> list[str]:
    """Speech without any wake word, read by every voice in turn, streamed as one long file."""
    texts = sentences()
    parts: list[np.ndarray] = []
    total, i = 0, 0
    while total < minutes * 60 * SR:
        voice = voices[i % len(voices)]
        text = texts[i % len(texts)][:300]
        clip = concat(synthesize(text, voice), silence(0.4))
        parts.append(clip)
        total += len(clip)
        i += 1
    audio = np.concatenate(parts)
    found = _detect(_detector(), audio)
    hours = len(audio) / SR / 3600
    lines = [f"false accepts: {len(found)} in {60 * hours:.1f} min of wake-free speech ({i} sentences, {len(voices)} voices, 4 words listening)"]
    for d in found:
        lines.append(f"  {d.word} score {d.score:.3f} at {d.timestamp_ms / 1000:.1f} s")
    return lines


def active_end(audio: np.ndarray) -> float:
    loud = np.flatnonzero(np.abs(audio) > 0.01 * np.abs(audio).max())
    return (loud[-1] + 1) / SR


def end_of_speech(voices: list[Voice]) -> list[str]:
    settings = VadSettings()
    detector = _detector()
    vad = SileroVad.from_builtin()
    errors: list[float] = []
    missed = 0
    for voice in voices:
        for command in COMMANDS:
            wake = synthesize("okay nabu", voice)
            spoken = synthesize(command, voice)
            lead = 0.7 + len(wake) / SR + 0.4
            audio = concat(silence(0.7), wake, silence(0.4), spoken, silence(2.0))
            true_end_ms = 1000 * (lead + active_end(spoken))
            detector.reset()
            frontend = Frontend(detector, vad, Pipeline(settings))
            stops = [e for c in frames_from_pcm(float_to_pcm16(audio)) for e in frontend.process(c) if isinstance(e, VoiceStopped)]
            if not stops:
                missed += 1
                continue
            errors.append(stops[0].timestamp_ms - true_end_ms)
    absolute = [abs(e) for e in errors]
    within = sum(a <= 300 for a in absolute)
    return [
        f"end of speech on {len(errors)} clean commands ({len(voices)} voices x {len(COMMANDS)}; {missed} without wake/end): "
        f"error median {statistics.median(errors):+.0f} ms, mean |error| {statistics.mean(absolute):.0f} ms, "
        f"max |error| {max(absolute):.0f} ms, within 300 ms: {within}/{len(errors)}",
        f"  (the end is decided {settings.end_silence_ms} ms of silence later: vad.end_silence_ms)",
    ]


def run(args: argparse.Namespace) -> int:
    voices = [v for v in VOICES if available(v)]
    out = sys.stdout.write
    for line in detection_table(voices, args.commands, args.snr):
        out(line + "\n")
    out("\n")
    for line in false_accepts(voices, args.fa_minutes):
        out(line + "\n")
    out("\n")
    for line in end_of_speech(voices):
        out(line + "\n")
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m device.bench.wake_eval")
    add_arguments(parser)
    sys.exit(run(parser.parse_args()))
