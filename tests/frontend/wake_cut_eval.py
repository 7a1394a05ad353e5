"""Does the command start where the wake word ends? "<wake word>, <command>" spoken by the tuning
voices, through the real front end (wake model + Silero + pipeline) and the real Whisper runner.

Each case is transcribed twice from the same run: the utterance the pipeline cut (`new`) and the
utterance the old pipeline handed over (the whole pre-roll in front of the detection, `old`), so
the two are compared on the same detection and the same end of speech.

    .venv/bin/python -m tests.frontend.wake_cut_eval [--voices 8] [--commands 4]

prints the counts for the report (remnants before/after, lost first words). The test
(test_wake_cut.py) runs a small slice of the same cases.
"""

from __future__ import annotations

import argparse
import difflib
import re
from dataclasses import dataclass

import numpy as np

from device.bench.conditions import apply, concat, condition, silence
from device.bench.voices import SAMPLE_RATE, TUNING_VOICES, Voice, synthesize
from device.events import Detection, SpeechProbability, VoiceStopped
from device.listening.frontend import Frontend
from device.listening.pipeline import Pipeline
from device.settings import VadSettings
from hal.audio import frames_from_pcm
from models.asr.runner import WhisperOnnx
from models.vad import SileroVad
from models.wake import WakeWordDetector

WAKE_PHRASE = "okay nabu"
COMMANDS = (
    "turn on the kitchen light",
    "close the garage door",
    "set the bedroom lamp to fifty percent",
    "what is the temperature in the living room",
)
PAUSES_S = {"none": 0.0, "tight": 0.06, "short": 0.12, "normal": 0.3}
"""Silence between the wake word's last sound and the command's first (both trimmed)."""
LEAD_S = 0.6


@dataclass(frozen=True, slots=True)
class Case:
    voice: Voice
    command: str
    pause: str
    condition: str


@dataclass(frozen=True, slots=True)
class Outcome:
    case: Case
    detected: bool
    new: str = ""
    old: str = ""
    cut_ms: int = 0
    """Where the pipeline started the utterance, relative to the wake word's true end."""
    command_ms: int = 0
    """Where the command's audio starts, relative to the wake word's true end."""


def _trim(audio: np.ndarray) -> np.ndarray:
    loud = np.flatnonzero(np.abs(audio) > 0.01 * np.abs(audio).max())
    return audio[loud[0] : loud[-1] + 1]


def render(case: Case, seed: int = 1) -> tuple[bytes, float, float]:
    """The case's audio (s16le) and the wake word's true end and the command's start (s)."""
    voice = case.voice
    wake = _trim(synthesize(WAKE_PHRASE, voice))
    command = _trim(synthesize(case.command, voice))
    pause = PAUSES_S[case.pause]
    dry = concat(silence(LEAD_S), wake, silence(pause), command, silence(1.2))
    audio = apply(dry, condition(case.condition), seed, voice)
    pcm = (np.clip(audio, -1.0, 1.0) * 32767.0).astype("<i2").tobytes()
    wake_end = LEAD_S + len(wake) / SAMPLE_RATE
    return pcm, wake_end, wake_end + pause


def run(case: Case, wake: WakeWordDetector, vad: SileroVad, asr: WhisperOnnx, settings: VadSettings | None = None) -> Outcome:
    pcm, wake_end_s, command_s = render(case)
    wake.reset()
    frontend = Frontend(wake, vad, Pipeline(settings or VadSettings()))
    events: list[object] = []
    position = 0
    for chunk in frames_from_pcm(pcm):
        events += frontend.process(chunk)
        position = chunk.end_ms
    events += frontend.finish(position)
    detection = next((e for e in events if isinstance(e, Detection)), None)
    stopped = next((e for e in events if isinstance(e, VoiceStopped)), None)
    if detection is None or stopped is None:
        return Outcome(case, detected=False)
    # The old pipeline's utterance: the whole backlog the VAD started on (the pre-roll).
    first = next(e for e in events if isinstance(e, SpeechProbability))
    end_ms = stopped.start_ms + len(stopped.audio) // 32
    samples = np.frombuffer(pcm, "<i2").astype(np.float32) / 32768.0
    old_audio = samples[first.timestamp_ms * 16 : end_ms * 16]
    new_audio = np.frombuffer(stopped.audio, "<i2").astype(np.float32) / 32768.0
    new_text, _ = asr.transcribe(new_audio)
    old_text, _ = asr.transcribe(old_audio)
    return Outcome(
        case,
        detected=True,
        new=new_text,
        old=old_text,
        cut_ms=round(stopped.start_ms - 1000 * wake_end_s),
        command_ms=round(1000 * (command_s - wake_end_s)),
    )


# -- scoring ---------------------------------------------------------------------------------

NUMBERS = {"50": "fifty", "50%": "fifty percent"}


def words(text: str) -> list[str]:
    text = text.lower().replace("%", " percent")
    out: list[str] = []
    for word in re.findall(r"[a-z0-9']+", text):
        out += NUMBERS.get(word, word).split()
    return out


def _same(a: str, b: str) -> bool:
    return a == b or difflib.SequenceMatcher(None, a, b).ratio() >= 0.75


def first_command_word(transcript: str, command: str) -> int | None:
    """Index in the transcript of the first word that is the command's first or second word."""
    heard, said = words(transcript), words(command)
    for i, word in enumerate(heard):
        if _same(word, said[0]) or (len(said) > 1 and _same(word, said[1])):
            return i
    return None


def starts_with_remnant(transcript: str, command: str) -> bool:
    """Something comes before the command: a wake-word tail ("bu", "nabu", "who", …) or any
    word that is not the command's own start."""
    heard = words(transcript)
    if not heard:
        return False
    i = first_command_word(transcript, command)
    return i is None or i > 0


def lost_first_word(transcript: str, command: str) -> bool:
    heard, said = words(transcript), words(command)
    i = first_command_word(transcript, command)
    return i is None or not _same(heard[i], said[0])


def command_recall(transcript: str, command: str) -> float:
    """Share of the command's words heard (in any order)."""
    heard = words(transcript)
    said = words(command)
    return sum(any(_same(h, s) for h in heard) for s in said) / len(said)


def load_models() -> tuple[WakeWordDetector, SileroVad, WhisperOnnx]:
    from device.settings import WakeSettings
    from models.asr.factory import ensure_asr_bundle

    return (
        WakeWordDetector.from_settings(WakeSettings()),
        SileroVad.from_builtin(),
        WhisperOnnx.load(ensure_asr_bundle()),
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--voices", type=int, default=len(TUNING_VOICES))
    parser.add_argument("--commands", type=int, default=len(COMMANDS))
    parser.add_argument("--conditions", default="clean,pink10")
    parser.add_argument("--pauses", default=",".join(PAUSES_S))
    parser.add_argument("--preroll-ms", type=int, default=VadSettings().preroll_ms)
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args()
    wake, vad, asr = load_models()
    outcomes: list[Outcome] = []
    for cond in args.conditions.split(","):
        for pause in args.pauses.split(","):
            for voice in TUNING_VOICES[: args.voices]:
                for command in COMMANDS[: args.commands]:
                    outcome = run(Case(voice, command, pause, cond), wake, vad, asr, VadSettings(preroll_ms=args.preroll_ms))
                    outcomes.append(outcome)
                    if args.verbose:
                        print(f"{cond:7} {pause:6} {voice.label:26} cut {outcome.cut_ms:+5d} cmd {outcome.command_ms:+4d} | new {outcome.new!r} | old {outcome.old!r}" if outcome.detected else f"{cond:7} {pause:6} {voice.label:26} no detection")
    print(f"{'condition':9} {'pause':6} {'cases':>5} {'woke':>4} {'remnant old':>11} {'remnant new':>11} {'lost 1st old':>12} {'lost 1st new':>12} {'recall old':>10} {'recall new':>10}")
    groups = sorted({(o.case.condition, o.case.pause) for o in outcomes}, key=lambda g: (args.conditions.index(g[0]), list(PAUSES_S).index(g[1])))
    for cond, pause in [*groups, ("all", "all")]:
        group = [o for o in outcomes if (cond == "all" or (o.case.condition, o.case.pause) == (cond, pause))]
        woke = [o for o in group if o.detected]
        n = len(woke)
        if not n:
            print(f"{cond:9} {pause:6} {len(group):5d} {0:4d}")
            continue
        print(
            f"{cond:9} {pause:6} {len(group):5d} {n:4d}"
            f" {sum(starts_with_remnant(o.old, o.case.command) for o in woke):11d}"
            f" {sum(starts_with_remnant(o.new, o.case.command) for o in woke):11d}"
            f" {sum(lost_first_word(o.old, o.case.command) for o in woke):12d}"
            f" {sum(lost_first_word(o.new, o.case.command) for o in woke):12d}"
            f" {np.mean([command_recall(o.old, o.case.command) for o in woke]):10.2f}"
            f" {np.mean([command_recall(o.new, o.case.command) for o in woke]):10.2f}"
        )


if __name__ == "__main__":
    main()
