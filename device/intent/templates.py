"""The sentence templates of one language, from three sources, checked at start-up.

home-assistant-intents (HA's own sentences and response templates) is the base; voxhome's files
(`sentences/<language>/*.yaml`) add what a speaker needs and HA lacks; the user's files (a
directory like HA's custom_sentences, `*.yaml` in it or in its `<language>/` folder) come last.
All are hassil's YAML format and are merged the way HA merges custom sentences (data lists
extend, lists and responses override). A file that can't be used fails loudly, naming the file
and line: broken YAML, a template hassil can't parse, a `{list}` or `<rule>` nobody defines, a
template that expands to nothing. A bad sentence file at start-up beats a speaker that silently
doesn't understand.
"""

from __future__ import annotations

import copy
import functools
import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from hassil import Intents
from hassil.expression import Expression, ListReference, RuleReference, Sentence
from hassil.parse_expression import parse_sentence
from hassil.sample import sample_expression
from hassil.util import merge_dict
from home_assistant_intents import get_intents, get_languages

from device.errors import ConfigError

_LOGGER = logging.getLogger(__name__)

OWN = Path(__file__).with_name("sentences")
HOME_LISTS = frozenset({"name", "area", "floor", "hvac_mode", "fan_preset"})
"""Lists filled from the home's registry at run time (language.py)."""


@dataclass(frozen=True)
class Templates:
    language: str
    intents: Intents
    responses: dict[str, Any] = field(hash=False)
    files: tuple[str, ...] = ()


def supported_languages() -> tuple[str, ...]:
    return tuple(get_languages())


def own_files(language: str) -> list[Path]:
    """voxhome's files for `language`: exact folder first ('de-CH'), else the base ('de')."""
    for code in (language, language.split("-", 1)[0]):
        folder = OWN / code
        if folder.is_dir():
            return sorted(folder.glob("*.yaml"))
    return []


def custom_files(directory: str | Path | None, language: str) -> list[Path]:
    if directory is None:
        return []
    root = Path(directory)
    if not root.is_dir():
        raise ConfigError("intent-custom-dir", f"{root}: the custom sentences directory does not exist")
    return sorted(root.glob("*.yaml")) + sorted((root / language).glob("*.yaml"))


@functools.cache
def _ha_data(language: str) -> dict[str, Any] | None:
    return get_intents(language)


def load_templates(language: str, custom_dir: str | Path | None = None, *, own: bool = True) -> Templates:
    """HA + voxhome + the user's templates for `language`, merged and checked (`own=False`:
    HA's alone, the stock Home Assistant peer of the benchmarks)."""
    base = _ha_data(language)
    if base is None:
        raise ConfigError("intent-language", f"no sentences for language {language!r}; supported: {', '.join(supported_languages())}")
    merged: dict[str, Any] = copy.deepcopy(base)
    if own:
        _drop_bare_names(merged)
    known_lists = set(merged.get("lists", {})) | HOME_LISTS
    known_rules = set(merged.get("expansion_rules", {}))
    sources = [*(own_files(language) if own else []), *custom_files(custom_dir, language)]
    loaded = [(path, _read(path)) for path in sources]
    for _path, data in loaded:
        known_lists |= set(data.get("lists", {}))
        known_rules |= set(data.get("expansion_rules", {}))
    for path, data in loaded:
        _check(path, data, known_lists, known_rules, merged.get("expansion_rules", {}))
        data = dict(data)
        data.pop("language", None)
        responses = data.pop("responses", None)
        merge_dict(merged, data)
        if isinstance(responses, dict):
            _override(merged.setdefault("responses", {}), responses)
    try:
        intents = Intents.from_dict(merged)
    except Exception as err:  # hassil raises bare exceptions for broken data; name the sources
        raise ConfigError("intent-sentences", f"sentence files {', '.join(map(str, sources))}: {err}") from None
    _LOGGER.info("language %s: %d intents from home-assistant-intents + %d files", language, len(intents.intents), len(sources))
    return Templates(language, intents, merged.get("responses", {}), tuple(map(str, sources)))


_OPTIONAL = re.compile(r"\[[^\[\]]*\]")


def _drop_bare_names(data: dict[str, Any]) -> None:
    """HA's sentences that are a name alone ("[the] {name}" turns it on) are dropped: spoken, a
    command whose verb was lost or misheard ("cut the hallway light" heard as "the whole way
    light") would still switch something. A user's custom sentence may say it on purpose."""
    for intent in data.get("intents", {}).values():
        for block in intent.get("data", []) if isinstance(intent, dict) else []:
            sentences = block.get("sentences") if isinstance(block, dict) else None
            if isinstance(sentences, list):
                block["sentences"] = [t for t in sentences if not (isinstance(t, str) and _OPTIONAL.sub("", t).strip() == "{name}")]


def _override(base: dict[str, Any], new: dict[str, Any]) -> None:
    """Responses: a key of ours replaces HA's (never concatenates two answers)."""
    for key, value in new.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            _override(base[key], value)
        else:
            base[key] = value


def _read(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError("intent-sentences-read", f"{path}: can't read: {err}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        raise ConfigError("intent-sentences-yaml", f"{where}: not valid YAML: {problem}") from None
    if not isinstance(data, dict) or not isinstance(data.get("intents", {}), dict):
        raise ConfigError("intent-sentences-format", f"{path}:1: expected a mapping with 'language' and 'intents'")
    return data


def _line(path: Path, needle: str) -> int:
    """The line a template is on (the first that contains it), for the error message."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError:
        return 1
    return next((i + 1 for i, line in enumerate(lines) if needle in line), 1)


def _check(path: Path, data: dict[str, Any], lists: set[str], rules: set[str], base_rules: dict[str, str]) -> None:
    all_rules: dict[str, Sentence] = {}
    for name, body in {**base_rules, **data.get("expansion_rules", {})}.items():
        try:
            all_rules[name] = parse_sentence(str(body), keep_text=True)
        except Exception as err:
            raise ConfigError("intent-bad-template", f"{path}:{_line(path, str(name) + ':')}: expansion rule <{name}>: {err}") from None
    for intent_name, intent in data.get("intents", {}).items():
        blocks = intent.get("data") if isinstance(intent, dict) else None
        if not isinstance(blocks, list):
            raise ConfigError("intent-sentences-format", f"{path}:{_line(path, str(intent_name))}: intent {intent_name} needs a 'data' list")
        for block in blocks:
            sentences = block.get("sentences") if isinstance(block, dict) else None
            if not isinstance(sentences, list) or not all(isinstance(s, str) for s in sentences):
                raise ConfigError("intent-sentences-format", f"{path}:{_line(path, str(intent_name))}: each data block of {intent_name} needs a list of sentences")
            local_lists = lists | set(block.get("lists", {}))
            local_rules = {**all_rules, **{k: parse_sentence(str(v), keep_text=True) for k, v in block.get("expansion_rules", {}).items()}}
            for text in sentences:
                _check_sentence(path, intent_name, text, local_lists, rules | set(local_rules), local_rules)


def _check_sentence(path: Path, intent: str, text: str, lists: set[str], rules: set[str], rule_bodies: dict[str, Sentence]) -> None:
    where = f"{path}:{_line(path, text)}"
    try:
        sentence = parse_sentence(text, keep_text=True)
    except Exception as err:
        raise ConfigError("intent-bad-template", f"{where}: {intent}: can't parse {text!r}: {err}") from None
    for ref in _references(sentence.expression):
        if isinstance(ref, ListReference) and ref.list_name not in lists:
            raise ConfigError("intent-unknown-list", f"{where}: {intent}: {text!r} uses the list {{{ref.list_name}}}, which no sentence file or the home defines")
        if isinstance(ref, RuleReference) and ref.rule_name not in rules:
            raise ConfigError("intent-unknown-rule", f"{where}: {intent}: {text!r} uses the rule <{ref.rule_name}>, which no sentence file defines")
    samples = sample_expression(sentence.expression, {}, rule_bodies, expand_lists=False)
    if not any(s.strip() for s in _first(samples, 50)):
        raise ConfigError("intent-empty-template", f"{where}: {intent}: {text!r} expands to nothing (every part is optional or empty)")


def _first(items: Iterable[str], n: int) -> list[str]:
    out = []
    for item in items:
        out.append(item)
        if len(out) >= n:
            break
    return out


def _references(expression: Expression) -> Iterable[ListReference | RuleReference]:
    if isinstance(expression, (ListReference, RuleReference)):
        yield expression
    for item in getattr(expression, "items", ()) or ():
        yield from _references(item)
