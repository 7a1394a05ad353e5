"""The sentence sources load per language, and bad custom sentence files stop start-up by file and line."""

from __future__ import annotations

from pathlib import Path

import pytest

from device.errors import VoxError
from device.intent.templates import load_templates, supported_languages


def test_english_and_german_load_from_home_assistant_intents() -> None:
    assert {"en", "de"} <= set(supported_languages())
    for language in ("en", "de"):
        templates = load_templates(language, None)
        assert "HassTurnOn" in templates.intents.intents


def _custom(tmp_path: Path, body: str) -> Path:
    (tmp_path / "mine.yaml").write_text(body)
    return tmp_path


def test_a_template_naming_an_unknown_list_is_refused_with_file_and_line(tmp_path: Path) -> None:
    body = 'language: en\nintents:\n  HassTurnOn:\n    data:\n      - sentences:\n          - "switch [on] {nosuchlist}"\n'
    with pytest.raises(VoxError) as err:
        load_templates("en", str(_custom(tmp_path, body)))
    assert err.value.code == "intent-unknown-list"
    assert "mine.yaml:6" in err.value.message


def test_broken_yaml_is_refused_naming_the_file(tmp_path: Path) -> None:
    with pytest.raises(VoxError) as err:
        load_templates("en", str(_custom(tmp_path, "language: en\nintents: [\n")))
    assert err.value.code.startswith("intent-") and "mine.yaml" in err.value.message
