"""Whisper base (multilingual) from its two packaged wheels: built by the factory, run by the same
runner as tiny.en, prompted with the configured language; German commands by voice."""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path

import numpy as np
import pytest

from device.appliance import load_recognizer
from device.assistant import Assistant
from device.bench.speech import VOICES, synthesize
from device.cloud.decision import RouteDecider
from device.errors import ConfigError, ModelError
from device.events import ToolCall, VoiceStopped
from device.intent.language import HomeLanguage
from device.settings import settings_from_dict
from device.tools.registry import Registry
from hal.source import read_audio_file
from models.asr.factory import ensure_asr_bundle, normalize
from models.asr.runner import WhisperOnnx
from models.manifest import verify_bundle
from tests.home.conftest import demo_language


@pytest.fixture(scope="module")
def base_bundle() -> Path:
    """Built from the packaged weights on first use (~35 s), then reused from the cache."""
    return ensure_asr_bundle(model="base")


@pytest.fixture(scope="module")
def german() -> WhisperOnnx:
    """As the appliance loads it for `[intent] language = "de"` (no [asr] model: base is picked)."""
    runner = load_recognizer(settings_from_dict({"intent": {"language": "de"}}))
    assert isinstance(runner, WhisperOnnx)
    return runner


def test_the_factory_builds_base_with_its_own_sizes(base_bundle: Path, asr_bundle: Path) -> None:
    manifest = verify_bundle(base_bundle, hashes=True)
    assert manifest.name == "whisper-base" and base_bundle != asr_bundle
    assert manifest.metadata["multilingual"] is True and manifest.metadata["model"] == "base"
    assert manifest.metadata["dims"] == {"d_model": 512, "heads": 8, "encoder_layers": 6, "decoder_layers": 6,
                                         "vocab": 51865}
    assert len(manifest.metadata["source_sha256"]) == 2  # both parts of model.bin
    runner = WhisperOnnx.load(base_bundle)
    assert (runner.layers, runner.heads, runner.head_dim, runner.d_model) == (6, 8, 64, 512)
    special = runner.tokenizer.special
    assert runner.prompt == (special["<|startoftranscript|>"], special["<|en|>"], special["<|transcribe|>"],
                             special["<|notimestamps|>"])
    tiny = WhisperOnnx.load(asr_bundle)  # unchanged: no language slot in the English-only prompt
    assert (tiny.layers, tiny.d_model, len(tiny.prompt), tiny.multilingual) == (4, 384, 2, False)


def test_base_transcribes_and_searches_a_spoken_english_command(base_bundle: Path) -> None:
    runner = WhisperOnnx.load(base_bundle)
    golden = verify_bundle(base_bundle).golden[0]
    text, _ = runner.transcribe(read_audio_file(base_bundle / golden.audio))
    assert normalize(text) == golden.expected
    search = runner.prepare(demo_language().graph())
    audio = synthesize("set the thermostat to 21 degrees", VOICES[4]).astype(np.float32)
    _, details = runner.transcribe(audio, search)
    assert normalize(details.grammar[0].text) == "set the thermostat to 21 degrees"


def _german_home() -> HomeLanguage:
    registry = Registry()
    for topic, payload in (
        ("homeassistant/light/kueche/config", '{"name": "Küchenlicht", "cmd_t": "k/set"}'),
        ("homeassistant/light/wohnzimmer/config", '{"name": "Wohnzimmerlampe", "cmd_t": "w/set"}'),
        ("homeassistant/climate/heizung/config", '{"name": "Heizung", "temp_cmd_t": "h/set"}'),
    ):
        registry.handle(topic, payload.encode())
    return HomeLanguage(registry, language="de")


def _espeak_de(text: str, tmp: Path) -> bytes:
    wav = tmp / "de.wav"
    subprocess.run(["espeak-ng", "-v", "de", "-w", str(wav), text], check=True, timeout=30)
    return (np.clip(read_audio_file(wav), -1, 1) * 32767).astype("<i2").tobytes()


def test_german_commands_by_voice(german: WhisperOnnx, tmp_path: Path) -> None:
    assert german.language == "de" and german.prompt[1] == german.tokenizer.special["<|de|>"]
    asyncio.run(asyncio.wait_for(_say_in_german(german, tmp_path), 120))


async def _say_in_german(german: WhisperOnnx, tmp_path: Path) -> None:
    """espeak-ng's German voice through the assistant: free reading, the German grammar's search, hassil, policy."""
    events: list[object] = []

    async def emit(event: object) -> None:
        events.append(event)

    assistant = Assistant(emit=emit, listen=lambda ms, why: None, decider=RouteDecider(cloud_enabled=False),
                          recognizer=german, language=_german_home())
    await assistant.prepare()
    said = {
        "Schalte das Küchenlicht ein": ("turn_on", {"entity": "light.k_chenlicht"}),
        "Schalte die Wohnzimmerlampe aus": ("turn_off", {"entity": "light.wohnzimmerlampe"}),
        "Stelle die Heizung auf 21 Grad": ("set_temperature", {"entity": "climate.heizung", "temperature": 21}),
    }
    for text, call in said.items():
        events.clear()
        await assistant.handle(VoiceStopped(timestamp_ms=5000, start_ms=1000, audio=_espeak_de(text, tmp_path)))
        await assistant.drain()
        assert [(e.name, e.arguments) for e in events if isinstance(e, ToolCall)] == [call], text


def test_tiny_en_refuses_other_languages(asr_bundle: Path, base_bundle: Path) -> None:
    with pytest.raises(ConfigError) as config:
        settings_from_dict({"intent": {"language": "de"}, "asr": {"model": "tiny.en"}})
    assert config.value.code == "config-value" and "asr.model 'tiny.en' understands English only" in config.value.message
    with pytest.raises(ModelError) as model:  # a bundle configured by path is checked when it loads
        WhisperOnnx.load(asr_bundle, language="de")
    assert model.value.code == "asr-language" and "English only" in model.value.message
    with pytest.raises(ModelError) as unknown:
        WhisperOnnx.load(base_bundle, language="xx")
    assert unknown.value.code == "asr-language"
