"""The commented config template documents every setting, loads as shipped, and every example
value in it is valid; secrets come from systemd credentials."""

from __future__ import annotations

import dataclasses
import re
import tomllib
import typing
from pathlib import Path
from typing import Any

import pytest

from device.errors import ConfigError
from device.settings import Secret, Settings, load_settings, settings_from_dict

TEMPLATE = Path(__file__).resolve().parents[2] / "systemd/config.toml.example"


def _uncommented() -> dict[str, Any]:
    text = re.sub(r"^# (\[\[[\w.]+\]\]|\w+ = )", r"\1", TEMPLATE.read_text(), flags=re.M)
    return tomllib.loads(text)


def _leaf_keys(cls: type, prefix: str = "") -> set[str]:
    keys: set[str] = set()
    hints = typing.get_type_hints(cls)
    for field in dataclasses.fields(cls):
        tp = hints[field.name]
        args = typing.get_args(tp)
        item: type | None = args[0] if typing.get_origin(tp) is tuple and args and isinstance(args[0], type) else None
        if item is not None and not dataclasses.is_dataclass(item):
            item = None
        if isinstance(tp, type) and dataclasses.is_dataclass(tp) and tp is not Secret:
            keys |= _leaf_keys(tp, f"{prefix}{field.name}.")
        elif item is not None:
            keys |= _leaf_keys(item, f"{prefix}{field.name}[].")
        else:
            keys.add(prefix + field.name)
    return keys


def _present(data: Any, prefix: str = "") -> set[str]:
    keys: set[str] = set()
    for key, value in data.items():
        if isinstance(value, dict) and not (len(value) == 1 and value.keys() <= {"file", "env", "credential"}):
            keys |= _present(value, f"{prefix}{key}.")
        elif isinstance(value, list) and value and isinstance(value[0], dict):
            for entry in value:
                keys |= _present(entry, f"{prefix}{key}[].")
        else:
            keys.add(prefix + key)
    return keys


def test_template_loads_as_shipped() -> None:
    assert load_settings(TEMPLATE, required=True) == Settings()


def test_every_setting_is_documented_with_a_valid_example() -> None:
    data = _uncommented()
    assert _leaf_keys(Settings) - _present(data) == set()
    settings = settings_from_dict(data, source=str(TEMPLATE))
    assert settings.mqtt.password == Secret(credential="mqtt-password")
    assert settings.home.devices[0].id == "light.porch"


def test_secret_from_systemd_credential(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "mqtt-password").write_text("hunter2\n")
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(tmp_path))
    secret = Secret(credential="mqtt-password")
    assert secret.reveal() == "hunter2"
    assert "hunter2" not in repr(secret)
    with pytest.raises(ConfigError) as missing:
        Secret(credential="cloud-api-key").reveal()
    assert missing.value.code == "config-secret"
    monkeypatch.delenv("CREDENTIALS_DIRECTORY")
    with pytest.raises(ConfigError, match="CREDENTIALS_DIRECTORY"):
        secret.reveal()
    with pytest.raises(ValueError):
        Secret(credential="../etc/shadow")
    with pytest.raises(ValueError):
        Secret(file="/x", credential="y")
