"""`voxhome bench latency`: from the true end of speech to the MQTT publish and to the first
sample of the confirmation, on the real path, paced like a live microphone.

Each endpointer runs the whole appliance (`voxhome run --realtime --audio` in-process: front end,
VAD, Whisper, understanding, MQTT tools) against a private mosquitto and the virtual demo home.
The user's audio is synthesized, so where each command's speech really ends is known to the
sample. Wall times all come from one monotonic clock in this process:

- the audio clock: the front end stamps its events with audio time; `wall - audio_time` over
  those events is smallest for the least-delayed one, which pins audio time 0 to within the
  front end's per-chunk processing (≈ 1 ms) — the latencies are at most that much too short;
- the publish: an MQTT subscriber on the same broker records when each command arrives;
- the confirmation: the speaker is the real playback path (the player thread → `hal.alsa`'s
  sink → libasound) on an ALSA `file` PCM, paced like a sound card; each audible block's time is
  taken as it is handed to ALSA, plus what the device still held before it (its first sample's
  time). The file is read back afterwards: what ALSA got must be what was timed.

Beside the times: the process's CPU time per second of audio, the decodes the early reader ran
(and how long each took), and how late the front end's VAD windows were handled (the always-on
path must keep up while Whisper reads in its worker thread).

The peers are the same path with a plain silence endpointer of 500 ms and of 700 ms (what
Home Assistant's satellites and most open-source speakers use), and early endpointing that reads
only at the pause (no re-reading while speaking), all measured in the same run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import paho.mqtt.client as mqtt
import soundfile

from device.appliance import RunOptions
from device.appliance import run as run_appliance
from device.bench.speech import VOICES, Voice, concat, silence, synthesize
from device.events import Detection, SpeechProbability, VoiceStarted, VoiceStopped
from device.settings import Settings, replace_path
from device.sim.broker import Mosquitto
from hal.audio import SAMPLE_RATE
from hal.player import AlsaOutput

WAKE = "okay nabu"
TAIL_S = 2.5
"""Quiet after each command: long enough for the slowest endpointer and the spoken answer."""


@dataclass(frozen=True, slots=True)
class Case:
    text: str
    topic: str
    payload: str
    """A substring the command's payload must hold (e.g. '"state": "ON"' or 'OFF')."""
    more: tuple[tuple[str, str], ...] = ()
    """Further (topic, payload substring) publishes of the same command: an area's other lights.
    The publish is timed at the last of them (every light of the room is switched by then)."""

    def expected(self) -> tuple[tuple[str, str], ...]:
        return ((self.topic, self.payload), *self.more)


CASES: tuple[Case, ...] = (
    Case("turn on the kitchen light", "zigbee2mqtt/kitchen_light/set", "ON"),
    Case("switch off the bedroom light", "zigbee2mqtt/bedroom_light/set", "OFF"),
    Case("turn on the bedside lamp", "cmnd/bedside/POWER", "ON"),
    Case("turn off the coffee maker", "cmnd/coffee/POWER", "OFF"),
    Case("set the kitchen light to 40 percent", "zigbee2mqtt/kitchen_light/set", "brightness"),
    Case("close the living room blinds", "zigbee2mqtt/blinds/set", "CLOSE"),
    Case("set the thermostat to 19 degrees", "home/thermostat/target/set", "19"),
    Case("turn on the bedroom fan", "home/bedroom_fan/set", "ON"),
    Case("activate movie night", "home/scenes/movie_night/set", "ON"),
    Case("turn off the living room lamp", "esphome/livingroom_lamp/set", "OFF"),
    # Area-wide: the bedroom's two lights, one command; it names its area, so nothing can follow.
    Case("turn off the lights in the bedroom", "zigbee2mqtt/bedroom_light/set", "OFF", (("cmnd/bedside/POWER", "OFF"),)),
)
ENDPOINTERS: dict[str, dict[str, int]] = {
    "ours": {},
    "pause-read-only": {"vad.redecode_ms": 0, "vad.quick_ms": 0},
    "silence-500ms": {"vad.end_silence_ms": 500, "vad.early_ms": 0},
    "silence-700ms": {"vad.end_silence_ms": 700, "vad.early_ms": 0},
}
"""Settings over the shipped ones: ours (early endpointing, re-reading while speaking), early
endpointing that reads only once the pause is there, and plain silence endpointers."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--voices", type=int, default=2, help="how many of the tuning voices speak every command")
    parser.add_argument("--cases", type=int, default=len(CASES), help="how many commands")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    parser.add_argument("--endpointers", default=",".join(ENDPOINTERS), help="which of " + ", ".join(ENDPOINTERS))


def speech_end(audio: np.ndarray) -> float:
    """Seconds to the end of the last 10 ms frame within 35 dB of the loudest (the synthesizers'
    own trailing silence is not speech)."""
    frames = audio[: len(audio) // 160 * 160].reshape(-1, 160)
    energy = 10 * np.log10(np.mean(frames**2, axis=1) + 1e-12)
    loud = np.flatnonzero(energy > energy.max() - 35.0)
    return float((loud[-1] + 1) * 160 / 16000) if loud.size else 0.0


@dataclass(frozen=True, slots=True)
class Turn:
    case: Case
    voice: str
    wake_at_s: float
    end_of_speech_s: float


def script(cases: Sequence[Case], voices: Sequence[Voice]) -> tuple[np.ndarray, list[Turn]]:
    """One file for a run: per turn the wake word, a short pause, the command and quiet."""
    parts, turns, at = [silence(1.0)], [], 1.0
    for voice in voices:
        for case in cases:
            wake, command = synthesize(WAKE, voice), synthesize(case.text, voice)
            wake_at = at
            at += len(wake) / 16000 + 0.25
            turns.append(Turn(case, voice.label, wake_at, at + speech_end(command)))
            parts += [wake, silence(0.25), command, silence(TAIL_S)]
            at += len(command) / 16000 + TAIL_S
    return concat(*parts), turns


class _Recorder:
    """Outputs of the run: audio-clock anchoring from the front end's events, utterance ends."""

    def __init__(self) -> None:
        self.offsets: list[float] = []
        self.vad_offsets: list[float] = []
        self._woke_ms = 0
        self.ends_ms: list[int] = []
        self.stops: list[tuple[float, int]] = []
        """Each utterance's end: when it was decided (wall) and where the VAD put the end of speech (audio ms)."""
        self.early = 0
        """Utterances ended at a pause (early endpointing) rather than at the full silence."""

    def __call__(self, event: object) -> None:
        now = time.monotonic()
        if isinstance(event, SpeechProbability) and event.timestamp_ms >= self._woke_ms:
            # Handled once its window is all there (the pre-roll's windows, run at the wake word
            # in one go, are late by design and left out).
            self.vad_offsets.append(now - event.end_ms / 1000)
        if isinstance(event, Detection):
            self._woke_ms = event.timestamp_ms
        if isinstance(event, Detection | VoiceStarted | VoiceStopped):
            self.offsets.append(now - event.timestamp_ms / 1000)
        if isinstance(event, VoiceStopped):
            self.ends_ms.append(event.timestamp_ms)
            self.stops.append((now, event.timestamp_ms))
            self.early += event.reason == "early"

    @property
    def audio_zero(self) -> float:
        return min(self.offsets + self.vad_offsets)

    def vad_lag_ms(self) -> dict[str, float | None]:
        """How late each VAD window was handled after its audio was all there (ms)."""
        zero = self.audio_zero
        lags = sorted(1000 * (o - zero) for o in self.vad_offsets)
        if not lags:
            return {"median": None, "p99": None, "max": None}
        return {"median": round(statistics.median(lags), 1), "p99": round(lags[int(0.99 * (len(lags) - 1))], 1),
                "max": round(lags[-1], 1)}


class _TimedSpeaker:
    """The ALSA playback path, paced like a sound card (the file PCM's null slave doesn't wait);
    remembers when each audible block's first sample will be heard."""

    def __init__(self, device: str) -> None:
        self._alsa = AlsaOutput(device)
        self.audible: list[float] = []
        self.written = 0
        self.audible_samples = 0

    def write(self, audio: bytes) -> None:
        block = np.frombuffer(audio, dtype="<i2")
        if np.abs(block).max(initial=0) > 64:
            self.audible.append(time.monotonic() + self._alsa.queued_samples() / SAMPLE_RATE)
            self.audible_samples += len(block)
        self._alsa.write(audio)
        self.written += len(block)
        time.sleep(len(block) / SAMPLE_RATE)

    def queued_samples(self) -> int:
        return self._alsa.queued_samples()

    def close(self) -> None:
        self._alsa.close()


class _Decodes(logging.Handler):
    """The early reader's decodes, from its debug log ('read the command up to %d ms in %.0f ms')."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.ms: list[float] = []

    def emit(self, record: logging.LogRecord) -> None:
        args = record.args
        if isinstance(record.msg, str) and record.msg.startswith("read the command up to") and isinstance(args, tuple):
            took = args[1]
            if isinstance(took, float | int):
                self.ms.append(float(took))


def _alsa_file_pcms(directory: Path, names: Sequence[str]) -> dict[str, Path]:
    """One ALSA `file` PCM per endpointer (a null slave), for this process only."""
    files = {name: directory / f"speaker-{name}.raw" for name in names}
    conf = directory / "asoundrc"
    conf.write_text("".join(f'pcm.vox_{i} {{\n  type file\n  slave.pcm {{ type null }}\n  file "{path}"\n  format "raw"\n}}\n'
                            for i, path in enumerate(files.values())))
    os.environ["ALSA_CONFIG_PATH"] = str(conf)
    return files


@dataclass
class _Publishes:
    seen: list[tuple[float, str, str]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def on_message(self, _client: Any, _userdata: Any, message: Any) -> None:
        with self.lock:
            self.seen.append((time.monotonic(), message.topic, message.payload.decode(errors="replace")))


def _subscribe(broker: Mosquitto, topics: set[str]) -> tuple[mqtt.Client, _Publishes]:
    publishes = _Publishes()
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="voxhome-bench-latency-observer")
    client.on_message = publishes.on_message
    client.connect(broker.host, broker.port)
    for topic in sorted(topics):
        client.subscribe(topic, qos=1)
    client.loop_start()
    return client, publishes


def _settings(broker: Mosquitto, overrides: dict[str, int]) -> Settings:
    settings = Settings()
    settings = replace_path(settings, "device.id", "voxhome-bench-latency")
    settings = replace_path(settings, "mqtt.host", broker.host)
    settings = replace_path(settings, "mqtt.port", broker.port)
    settings = replace_path(settings, "cloud.enabled", False)
    # Beside the broker's files, not the machine's /var/lib/voxhome: no timer of another run rings here.
    settings = replace_path(settings, "device.state_dir", str(broker.conf.parent / "state"))
    for key, value in overrides.items():
        settings = replace_path(settings, key, value)
    return settings


def measure(broker: Mosquitto, audio_path: Path, turns: list[Turn], overrides: dict[str, int],
            device: str, speaker_file: Path) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Run the appliance once over the script; one row per turn, and the run's costs."""
    client, publishes = _subscribe(broker, {topic for t in turns for topic, _ in t.case.expected()})
    recorder, speaker, decodes = _Recorder(), _TimedSpeaker(device), _Decodes()
    reads_log = logging.getLogger("device.listening.reads")
    level = reads_log.level
    reads_log.addHandler(decodes)
    reads_log.setLevel(logging.DEBUG)
    cpu = time.process_time()
    try:
        asyncio.run(run_appliance(_settings(broker, overrides), RunOptions(audio=str(audio_path), realtime=True),
                        [recorder], speaker=speaker))
        time.sleep(0.3)  # the last publish's delivery to our subscriber
    finally:
        cpu = time.process_time() - cpu
        reads_log.removeHandler(decodes)
        reads_log.setLevel(level)
        client.loop_stop()
        client.disconnect()
    # What libasound wrote is what the player handed it: the timed path is the one that played.
    played = np.fromfile(speaker_file, dtype="<i2") if speaker_file.exists() else np.zeros(0, np.int16)
    if len(played) != speaker.written:
        raise RuntimeError(f"the ALSA file holds {len(played)} samples, the player wrote {speaker.written}")
    zero = recorder.audio_zero
    rows = []
    for i, turn in enumerate(turns):
        start, end = zero + turn.end_of_speech_s, zero + (turns[i + 1].wake_at_s if i + 1 < len(turns) else 1e9)
        with publishes.lock:
            window = [(t, topic, payload) for t, topic, payload in publishes.seen if zero + turn.wake_at_s <= t < end]
        right, wrong, hit = score(turn.case, window)
        heard = next((t for t in speaker.audible if start <= t < end), None)
        stop = next(((t, at) for t, at in recorder.stops if zero + turn.wake_at_s <= t < end), None)
        rows.append({
            "text": turn.case.text, "voice": turn.voice,
            "right": right, "wrong_publish": wrong,
            "publish_ms": None if hit is None else round((hit - start) * 1000, 1),
            "confirmation_ms": None if heard is None else round((heard - start) * 1000, 1),
            # Where the time goes: the VAD's end of speech against the true one (audio time), and
            # when the utterance was ended (wall) — the rest, to the publish, is reading and acting.
            "vad_end_ms": None if stop is None else round(stop[1] - 1000 * turn.end_of_speech_s, 1),
            "ended_ms": None if stop is None else round((stop[0] - start) * 1000, 1),
        })
    if rows:
        rows[0]["early_ends"] = recorder.early
    audio_s = turns[-1].end_of_speech_s + TAIL_S if turns else 1.0
    costs = {
        "cpu_per_audio_s": round(cpu / audio_s, 3),
        "decodes": len(decodes.ms),
        "decode_ms": _stats(decodes.ms),
        "vad_lag_ms": recorder.vad_lag_ms(),
        "speaker_audible_s": round(speaker.audible_samples / SAMPLE_RATE, 2),
    }
    return rows, costs


def score(case: Case, window: Sequence[tuple[float, str, str]]) -> tuple[bool, bool, float | None]:
    """One turn's publishes (time, topic, payload): right (every expected one and nothing else),
    a wrong publish among them, and when the command was done (its last expected publish)."""
    expected = case.expected()
    hits = [next((t for t, topic, p in window if topic == want and part in p), None) for want, part in expected]
    done = None if any(t is None for t in hits) else max(t for t in hits if t is not None)
    wrong = any(not any(topic == want and part in p for want, part in expected) for _, topic, p in window)
    return done is not None and len(window) == len(expected), wrong, done


def _stats(values: list[float]) -> dict[str, float | None]:
    if not values:
        return {"median": None, "p90": None}
    ordered = sorted(values)
    return {"median": round(statistics.median(ordered), 1), "p90": round(ordered[min(len(ordered) - 1, int(0.9 * len(ordered)))], 1)}


def summarize(rows: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "turns": len(rows),
        "early_ends": sum(r.get("early_ends", 0) for r in rows),
        "accuracy": round(sum(r["right"] for r in rows) / max(1, len(rows)), 3),
        "wrong_publishes": sum(r["wrong_publish"] for r in rows),
        "publish_ms": _stats([r["publish_ms"] for r in rows if r["right"]]),
        "confirmation_ms": _stats([r["confirmation_ms"] for r in rows if r["right"] and r["confirmation_ms"] is not None]),
        "vad_end_ms": _stats([r["vad_end_ms"] for r in rows if r["right"] and r.get("vad_end_ms") is not None]),
        "ended_ms": _stats([r["ended_ms"] for r in rows if r["right"] and r.get("ended_ms") is not None]),
    }


def run(args: argparse.Namespace) -> int:
    voices = [v for v in VOICES if v.engine != "festival"][: max(1, args.voices)]
    cases = CASES[: max(1, args.cases)]
    names = [n.strip() for n in args.endpointers.split(",") if n.strip()]
    unknown = [n for n in names if n not in ENDPOINTERS]
    if unknown or not names:
        sys.stderr.write(f"unknown endpointer {', '.join(unknown) or '(none)'}; known: {', '.join(ENDPOINTERS)}\n")
        return 2
    audio, turns = script(cases, voices)
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="voxhome-latency-") as tmp:
        audio_path = Path(tmp) / "user.wav"
        soundfile.write(str(audio_path), audio, 16000, subtype="PCM_16")
        speaker_files = _alsa_file_pcms(Path(tmp), names)
        broker = Mosquitto(Path(tmp))
        broker.start()
        home = subprocess.Popen([sys.executable, "-m", "device.sim.home", "--mqtt", broker.url],
                                stdout=subprocess.PIPE, text=True)
        try:
            assert home.stdout is not None
            home.stdout.readline()  # ready: its discovery is retained on the broker
            for i, name in enumerate(names):
                rows, costs = measure(broker, audio_path, turns, ENDPOINTERS[name], f"vox_{i}", speaker_files[name])
                results[name] = {**summarize(rows), **costs, "rows": rows}
        finally:
            home.terminate()
            home.wait(10)
            broker.stop()
    _report(results, len(turns), args.json)
    return 0


def _report(results: dict[str, Any], turns: int, as_json: bool) -> None:
    out = sys.stdout.write
    if as_json:
        out(json.dumps({"turns": turns, "results": results}) + "\n")  # with every turn's row
        return

    def ms(v: float | None) -> str:
        return "-" if v is None else f"{v:.0f}"

    out(f"end of speech → MQTT publish / first sample of the confirmation (ALSA), {turns} spoken commands, paced in real time\n")
    out(f"  {'endpointer':<16} {'right':>6} {'wrong':>6} {'early':>6} {'publish med':>12} {'p90':>6} {'confirm med':>12} {'p90':>6}"
        f" {'cpu/s':>6} {'decodes':>8} {'decode med':>11} {'vad lag p99':>12} {'max':>6}\n")
    for name, r in results.items():
        out(f"  {name:<16} {r['accuracy']:>6.1%} {r['wrong_publishes']:>6} {r['early_ends']:>6} {ms(r['publish_ms']['median']):>12} "
            f"{ms(r['publish_ms']['p90']):>6} {ms(r['confirmation_ms']['median']):>12} {ms(r['confirmation_ms']['p90']):>6}"
            f" {r['cpu_per_audio_s']:>6.2f} {r['decodes']:>8} {ms(r['decode_ms']['median']):>11}"
            f" {ms(r['vad_lag_ms']['p99']):>12} {ms(r['vad_lag_ms']['max']):>6}\n")
    out("  where it goes (medians, ms after the true end of speech): the VAD's end of speech / the utterance ended / the publish\n")
    for name, r in results.items():
        out(f"  {name:<16} {ms(r['vad_end_ms']['median']):>6} {ms(r['ended_ms']['median']):>6} {ms(r['publish_ms']['median']):>6}\n")
    out("  targets: publish median ≤ 300 ms, p90 ≤ 450 ms, accuracy within 1 point of silence-500ms\n")


if __name__ == "__main__":
    _parser = argparse.ArgumentParser(prog="python -m device.bench.latency")
    add_arguments(_parser)
    sys.exit(run(_parser.parse_args()))
