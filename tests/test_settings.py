"""Config: typed defaults, and one clear message naming the key for every kind of mistake."""

from __future__ import annotations

from pathlib import Path

import pytest

from device.cli.common import apply_mqtt_url
from device.errors import ConfigError
from device.settings import Secret, Settings, load_settings, replace_path, settings_from_dict


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(text)
    return path


def test_defaults_when_default_file_is_absent(tmp_path: Path) -> None:
    settings = load_settings(tmp_path / "nope.toml", required=False)
    assert settings == Settings()
    assert settings.vad.end_silence_ms == 500
    assert settings.wake.words[0].model == "okay_nabu"


def test_full_file_is_parsed_into_typed_sections(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
[device]
id = "kitchen-speaker"
[audio.mic]
backend = "file"
file = "/tmp/x.wav"
period_frames = 320
[[wake.words]]
model = "hey_jarvis"
threshold = 0.9
[[wake.words]]
model = "alexa"
window = 7
[vad]
end_silence_ms = 700
[mqtt]
port = 8883
tls = true
password = { env = "VOX_TEST_PW" }
command_timeout_s = 2
""",
    )
    s = load_settings(path, required=True)
    assert s.device.id == "kitchen-speaker"
    assert s.audio.mic.backend == "file" and s.audio.mic.period_frames == 320
    assert [w.model for w in s.wake.words] == ["hey_jarvis", "alexa"]
    assert s.wake.words[0].threshold == 0.9 and s.wake.words[1].window == 7
    assert s.vad.end_silence_ms == 700
    assert isinstance(s.mqtt.command_timeout_s, float) and s.mqtt.command_timeout_s == 2.0
    assert s.mqtt.password == Secret(env="VOX_TEST_PW")


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("[vad]\nend_silence = 3\n", "unknown key 'vad.end_silence'"),
        ("[vadd]\n", "unknown key 'vadd'"),
        ("[mqtt]\nport = 'high'\n", "mqtt.port must be an integer"),
        ("[mqtt]\nport = 70000\n", "port must be between 1 and 65535"),
        ("[mqtt]\ntls = 1\n", "mqtt.tls must be true or false"),
        ("[audio.mic]\nbackend = 'pulse'\n", "audio.mic.backend must be one of"),
        ("[[wake.words]]\nmodel = 'alexa'\nthreshold = 1.5\n", "wake.words[0]: threshold must be between 0 and 1"),
        ("[wake]\nwords = []\n", "at least one wake word"),
        ("[vad]\nthreshold = true\n", "vad.threshold must be a number"),
        ("[mqtt]\npassword = { file = 'a', env = 'B' }\n", "exactly one of 'file' or 'env'"),
        ("[device]\nid = 'a/b'\n", "device"),
        ("vad = 3\n", "vad must be a table"),
        ("[vad\n", "not valid TOML"),
    ],
)
def test_bad_config_names_the_key(tmp_path: Path, text: str, needle: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(write(tmp_path, text), required=True)
    assert needle in str(info.value)
    assert str(tmp_path) in str(info.value)


def test_missing_explicit_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist") as info:
        load_settings(tmp_path / "missing.toml", required=True)
    assert info.value.code == "config-missing"


def test_secret_from_env_and_file_is_never_in_repr(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VOX_SECRET", "hunter2\n")
    secret_file = tmp_path / "pw"
    secret_file.write_text("s3cret\n")
    s = settings_from_dict({"mqtt": {"password": {"env": "VOX_SECRET"}}, "cloud": {"api_key": {"file": str(secret_file)}}})
    assert s.mqtt.password is not None and s.mqtt.password.reveal() == "hunter2"
    assert s.cloud.api_key is not None and s.cloud.api_key.reveal() == "s3cret"
    assert "hunter2" not in repr(s) and "s3cret" not in repr(s)


def test_unreadable_secret_names_its_source_not_a_value(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="VOX_NOT_SET"):
        Secret(env="VOX_NOT_SET").reveal()
    with pytest.raises(ConfigError, match="can't read secret file"):
        Secret(file=str(tmp_path / "none")).reveal()


def test_replace_path_keeps_everything_else() -> None:
    s = replace_path(Settings(), "audio.mic.device", "plughw:1,0")
    assert s.audio.mic.device == "plughw:1,0"
    assert s.audio.mic.period_frames == Settings().audio.mic.period_frames


@pytest.mark.parametrize(
    ("url", "host", "port", "tls", "user"),
    [
        ("mqtt://broker.lan", "broker.lan", 1883, False, None),
        ("mqtt://bob@10.0.0.2:1884", "10.0.0.2", 1884, False, "bob"),
        ("mqtts://h:8884", "h", 8884, True, None),
        ("mqtts://h", "h", 8883, True, None),
    ],
)
def test_mqtt_url_override(url: str, host: str, port: int, tls: bool, user: str | None) -> None:
    s = apply_mqtt_url(Settings(), url)
    assert (s.mqtt.host, s.mqtt.port, s.mqtt.tls, s.mqtt.username) == (host, port, tls, user)


@pytest.mark.parametrize("url", ["http://x", "mqtt://", "mqtt://u:pw@h", "mqtt://h:99999"])
def test_bad_mqtt_url_is_rejected(url: str) -> None:
    with pytest.raises(ConfigError):
        apply_mqtt_url(Settings(), url)
