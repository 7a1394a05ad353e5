"""The neural voices from their real bundles: they speak, they stream, and a broken one never silences the device."""

from __future__ import annotations

import json
import logging
import shutil
import threading
import time
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from device.errors import OtaError
from device.events import Say
from device.settings import SpeakerSettings, VoiceSettings
from device.voice.level import loudness_db, trim_silence
from device.voice.neural import NeuralTts
from device.voice.prompts import PromptBundle
from device.voice.render import SpeechCache, SpeechRenderer, open_voice
from device.voice.speaker import DeviceVoice
from device.voice.tts import Speech
from hal.audio import resample
from hal.player import Player
from models.manifest import write_manifest
from models.tts.factory import GOLDEN_TEXT, ensure_tts_bundle, load_runner
from models.tts.hibari import HibariOnnx
from models.tts.text import split_sentences
from ota.health import run_health_check
from tests.voice.conftest import RecordingOutput

VOICES = ("hibari-heart", "piper-joe")


@pytest.fixture(scope="module")
def bundles() -> dict[str, Path]:
    """The real bundles, built from the installed packages (cached after the first build)."""
    return {name: ensure_tts_bundle(name) for name in VOICES}


@pytest.mark.parametrize("name", VOICES)
def test_each_voice_speaks_from_its_built_bundle(bundles: dict[str, Path], name: str) -> None:
    runner = load_runner(bundles[name])
    try:
        raw = runner.synthesize(GOLDEN_TEXT)
        audio = trim_silence(resample(raw, runner.sample_rate))
    finally:
        runner.close()
    words = len(GOLDEN_TEXT.split())
    assert np.isfinite(raw).all()
    assert 0.2 * words <= len(audio) / 16000 <= 0.6 * words  # a person's pace, not a click or a drone
    assert loudness_db(audio) > -35.0
    # Speech, not a tone: its level moves (syllables and gaps) across 50 ms blocks.
    blocks = audio[: len(audio) // 800 * 800].reshape(-1, 800)
    assert np.std(20 * np.log10(np.sqrt(np.mean(blocks**2, axis=1)) + 1e-6)) > 3.0


def test_hibari_reads_its_lexicons_from_the_bundle_exactly_as_the_package_does(bundles: dict[str, Path]) -> None:
    from hibari.g2p import G2P

    from device.bench.tts import home_answers

    runner = load_runner(bundles["hibari-heart"])
    assert isinstance(runner, HibariOnnx)
    reference = G2P(oov=runner._g2p.oov)  # the package's own, JSON-loaded lexicons and tagger
    texts = [*home_answers(100, seed=3), "Dr. Smith will read the record live at 3:45 pm.", "I don't know a device called Zorblax."]
    assert [runner._g2p(t) for t in texts] == [reference(t) for t in texts]
    assert type(runner._g2p.lexicon.golds.d).__name__ == "Table"  # really the SQLite tables, not dicts
    runner.close()


def _voice_settings(**kwargs: object) -> VoiceSettings:
    return VoiceSettings(engine="hibari", **kwargs)  # type: ignore[arg-type]


def test_missing_bundle_falls_back_to_espeak_with_the_reason(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="device.voice.render"):
        renderer = open_voice(_voice_settings(tts_bundle=str(tmp_path / "no-such-bundle")))
    assert renderer is not None and renderer.name == "espeak-ng:en-us" and not renderer.neural
    [record] = [r for r in caplog.records if getattr(r, "code", None) == "tts-fallback"]
    assert "hibari-heart" in record.getMessage() and "manifest" in record.getMessage().lower()
    assert renderer.speak("The front door is locked.").duration_ms > 500


@pytest.mark.parametrize("damage", ["garbled-model", "truncated-model", "unknown-engine"])
def test_corrupt_bundle_falls_back_to_espeak_and_nothing_crashes(
    bundles: dict[str, Path], tmp_path: Path, caplog: pytest.LogCaptureFixture, damage: str,
) -> None:
    broken = tmp_path / "tts"
    shutil.copytree(bundles["hibari-heart"], broken)
    model = broken / "hibari.onnx"
    if damage == "garbled-model":
        model.write_bytes(bytes(reversed(model.read_bytes())))  # same size, wrong bytes
    elif damage == "truncated-model":
        model.write_bytes(model.read_bytes()[:4096])
    else:
        manifest = json.loads((broken / "manifest.json").read_text())
        manifest["metadata"]["engine"] = "tacotron"
        (broken / "manifest.json").write_text(json.dumps(manifest))
    with caplog.at_level(logging.WARNING, logger="device.voice.render"):
        renderer = open_voice(_voice_settings(tts_bundle=str(broken)))
    assert renderer is not None and renderer.name == "espeak-ng:en-us"
    reasons = [r.getMessage() for r in caplog.records if getattr(r, "code", None) == "tts-fallback"]
    assert len(reasons) == 1 and "espeak-ng speaks instead" in reasons[0]
    assert ("tacotron" in reasons[0]) if damage == "unknown-engine" else ("hibari.onnx" in reasons[0])
    assert renderer.speak("Turned on the kitchen light.").duration_ms > 500


class _TimedTts:
    """The real voice, with the time each sentence finished synthesizing written down."""

    neural = True

    def __init__(self, tts: NeuralTts) -> None:
        self._tts = tts
        self.done_at: list[float] = []
        self.started: float | None = None

    @property
    def name(self) -> str:
        return self._tts.name

    def reset(self) -> None:
        self.done_at, self.started = [], None

    def speak(self, text: str) -> Speech:
        if self.started is None:
            self.started = time.monotonic()
        speech = self._tts.speak(text)
        self.done_at.append(time.monotonic())
        return speech


class _TimedOutput(RecordingOutput):
    def __init__(self) -> None:
        super().__init__(realtime=True)
        self.first_write: float | None = None
        self.lock = threading.Lock()

    def write(self, audio: bytes) -> None:
        with self.lock:
            if self.first_write is None:
                self.first_write = time.monotonic()
        super().write(audio)


def test_streaming_plays_the_first_sentence_before_the_last_is_synthesized(
    bundles: dict[str, Path], prompt_bundle: Path,
) -> None:
    tts = _TimedTts(NeuralTts(load_runner(bundles["hibari-heart"])))
    tts.speak("Okay.")  # warm, as open_voice does at boot
    tts.reset()
    output = _TimedOutput()
    player = Player(output, SpeakerSettings(volume=1.0))
    voice = DeviceVoice(player, PromptBundle(prompt_bundle), SpeechRenderer(tts, target_db=-20.0))
    text = ("The kitchen light is on. The front door is locked. The thermostat is set to twenty one degrees. "
            "The garage door is closed. Both bedroom lamps are off.")
    spoken = voice.say(Say(prompt=None, text=text))
    assert len(tts.done_at) == len(split_sentences(text)) == 5
    assert output.first_write is not None
    assert output.first_write < tts.done_at[-1]  # audio was going out while the last sentence was made
    assert tts.started is not None
    assert spoken.synth_ms < (tts.done_at[-1] - tts.started) * 1000  # waited for one sentence, not the answer
    assert player.drain(30.0)
    player.close()
    assert abs(len(output.audio) / 16000 * 1000 - spoken.duration_ms) < 60


def test_frequent_answers_are_cached_after_first_use_within_bounds(bundles: dict[str, Path]) -> None:
    renderer = SpeechRenderer(NeuralTts(load_runner(bundles["piper-joe"])), target_db=-20.0,
                              cache=SpeechCache(max_items=3, max_bytes=8 << 20))
    first = renderer.render("Turned on the kitchen light.")
    again = renderer.render("Turned on  the kitchen light.")  # the same sentence, spaced differently
    assert first.synth_ms > 0 and again.synth_ms == 0 and renderer.cache.hits == 1
    assert np.array_equal(first.audio, again.audio)
    for room in ("hallway", "porch", "office", "attic"):
        renderer.render(f"Turned on the {room} light.")
    assert len(renderer.cache) == 3  # bounded: the least recently used went first
    assert renderer.render("Turned on the kitchen light.").synth_ms > 0


def _silent_piper_bundle(directory: Path) -> Path:
    """A well-formed Piper voice whose model outputs only zeros: it loads, runs, and says nothing."""
    directory.mkdir(parents=True)
    nodes = [
        helper.make_node("Mul", ["input_lengths", "hop"], ["samples"]),
        helper.make_node("Concat", ["lead", "samples"], ["shape"], axis=0),
        helper.make_node("ConstantOfShape", ["shape"], ["output"],
                         value=helper.make_tensor("zero", TensorProto.FLOAT, [1], [0.0])),
    ]
    graph = helper.make_graph(
        nodes, "silence",
        [helper.make_tensor_value_info("input", TensorProto.INT64, [1, "n"]),
         helper.make_tensor_value_info("input_lengths", TensorProto.INT64, [1]),
         helper.make_tensor_value_info("scales", TensorProto.FLOAT, [3])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, 1, None])],
        initializer=[helper.make_tensor("hop", TensorProto.INT64, [1], [256]),
                     helper.make_tensor("lead", TensorProto.INT64, [2], [1, 1])],
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), directory / "mute.onnx")
    ids = {c: [i] for i, c in enumerate("_^$ abcdefghijklmnopqrstuvwxyzæðŋɐɑɔəɛɪɹʃʊʌʒθˈˌː.,?!", start=0)}
    config = {"audio": {"sample_rate": 22050}, "num_speakers": 1, "espeak": {"voice": "en-us"}, "phoneme_id_map": ids}
    (directory / "mute.onnx.json").write_text(json.dumps(config), encoding="utf-8")
    write_manifest(directory, name="voxhome-tts-mute", kind="tts", version="9.9.9",
                   metadata={"voice": "piper-joe", "engine": "piper", "golden_text": GOLDEN_TEXT})
    return directory


def test_health_check_refuses_a_voice_that_speaks_silence(tmp_path: Path) -> None:
    mute = _silent_piper_bundle(tmp_path / "mute")
    runner = load_runner(mute)  # it really is a loadable, runnable voice ...
    assert len(runner.synthesize(GOLDEN_TEXT)) > 10000 and not runner.synthesize(GOLDEN_TEXT).any()
    with pytest.raises(OtaError) as refused:  # ... that the pre-switch check won't let speak
        run_health_check("tts", mute, timeout_s=60)
    assert "not speech" in refused.value.message


def test_health_check_passes_the_real_voice(bundles: dict[str, Path]) -> None:
    summary = run_health_check("tts", bundles["hibari-heart"], timeout_s=90)
    assert summary.startswith("tts ") and GOLDEN_TEXT in summary


def test_bench_measures_each_engine_in_its_own_process(tmp_path: Path) -> None:
    from device.bench.tts import home_answers, run_worker, short_answers, word_errors

    answers = home_answers(120)
    assert len(set(answers)) == 120 and len({a.split()[0] for a in answers}) >= 8  # many kinds of answer
    job = tmp_path / "job.json"
    job.write_text(json.dumps({"answers": answers[:3], "short": short_answers(2)}), encoding="utf-8")
    espeak, hibari = (run_worker(engine, job, tmp_path / engine) for engine in ("espeak-ng", "hibari"))
    for result in (espeak, hibari):
        assert len(result["first_ms"]) == 2 and all(ms > 0 for ms in result["first_ms"])
        assert 0 < result["rtf"] < 1 and result["audio_s"] > 3
        assert len(list((tmp_path / result["engine"]).glob("a*.npy"))) == 3
    # The voice's memory is the neural engine's own process; espeak-ng's is its short-lived CLI.
    assert hibari["rss_load_mb"] > 20 > espeak["rss_load_mb"] and espeak["child_peak_mb"] > 1
    assert word_errors("Set the thermostat to 21.5 degrees.", "set the thermostat to twenty-one point five degrees") == (0, 9)
    assert word_errors("The front door is locked.", "The front door is open.") == (1, 5)
