"""The fresh held-out e2e set: it loads, it is what its generator writes, and every case can be scored."""

from __future__ import annotations

import argparse
import colorsys
import json
import re
from dataclasses import asdict
from typing import Any

import pytest

from device.bench.e2e import add_arguments, part_voices, select_cases
from device.bench.e2e_cases import load_cases
from device.bench.e2e_fresh import FRESH_FILE, build_fresh, load_fresh
from device.bench.e2e_home import build_home
from device.bench.e2e_score import Observed, score
from device.bench.voices import is_held_out
from device.errors import ConfigError

STATE_KEYS = ("state", "bri_state", "rgb_state", "position_state", "mode_state", "temp_state", "current", "pct_state", "preset_state")
WANTED_KINDS = {"on_off", "toggle", "brightness", "color", "area", "cover", "climate", "fan", "scene", "media", "query",
                "time", "timer", "unknown_device", "risky", "cloud"}


def _command_topics() -> set[str]:
    return {t for d in build_home() for k, t in d.topics.items() if k not in STATE_KEYS}


def _witness(spec: Any) -> str:
    """A wire payload that the matcher `spec` accepts (the first choice of a one_of, the centre of a tolerance)."""
    if isinstance(spec, str):
        return spec
    if "one_of" in spec:
        return _witness(spec["one_of"][0])
    if "number" in spec:
        return f"{spec['number']:g}"
    r, g, b = (round(c * 255) for c in colorsys.hsv_to_rgb(float(spec.get("hue", 0)) / 360, 1, 1))
    if "json" in spec:
        body = dict(spec["json"])
        if "hue" in spec:
            body["color"] = {"r": r, "g": g, "b": b}
        return json.dumps(body)
    return f"{r},{g},{b}"


def _normal(text: str) -> str:
    return re.sub(r"[^a-z0-9% ]", "", text.lower()).strip()


def test_the_set_loads_and_is_big_and_all_held_out() -> None:
    cases = load_fresh()
    assert len(cases) >= 200
    assert all(c.held_out for c in cases)
    assert len({c.id for c in cases}) == len(cases)
    assert WANTED_KINDS <= {c.kind for c in cases}
    counts = {k: sum(c.kind == k for c in cases) for k in WANTED_KINDS}
    assert min(counts.values()) >= 8, counts


def test_no_two_cases_say_the_same_and_none_repeats_the_templated_set() -> None:
    texts = [_normal(c.text) for c in load_fresh()]
    assert len(set(texts)) == len(texts)
    templated = {_normal(c.text) for c in load_cases()}
    assert [t for t in texts if t in templated] == []


def test_every_sentence_is_speakable() -> None:
    for case in load_fresh():
        assert re.fullmatch(r"[A-Za-z0-9' %,?]+", case.text), case.text
        assert not re.search(r"\d[.,]\d", case.text), case.text  # decimals are spoken ("19 point 5")


def test_publishes_are_on_real_command_topics_and_fit_the_outcome() -> None:
    topics = _command_topics()
    for case in load_fresh():
        assert case.outcome in ("publish", "local", "cloud"), case.id
        assert bool(case.publishes) == (case.outcome == "publish"), case.id
        for p in case.publishes + case.optional:
            assert p["topic"] in topics, (case.id, p["topic"])
        if case.kind == "cloud":
            assert case.outcome == "cloud"
        if case.kind in ("query", "time", "timer", "unknown_device"):
            assert case.outcome == "local", case.id


def test_risky_cases_never_expect_an_opening_publish() -> None:
    for case in load_fresh():
        if case.kind == "risky":
            assert all(_witness(p["payload"]) in ("LOCK", "CLOSE") for p in case.publishes), case.id
    assert any(c.kind == "risky" and c.outcome == "local" for c in load_fresh())


def test_every_case_can_be_scored_right_and_a_stray_publish_is_wrong() -> None:
    stray = ("cmnd/dishwasher/POWER", "ON")
    for case in load_fresh():
        seen = tuple((p["topic"], _witness(p["payload"])) for p in case.publishes)
        route = None if case.outcome == "publish" else case.outcome
        assert score(case, Observed(seen, route)).result == "right", case.id
        if case.outcome == "publish":
            assert score(case, Observed((), "local")).result == "miss", case.id
        if not any(p["topic"] == stray[0] for p in case.publishes + case.optional):
            assert score(case, Observed((*seen, stray), route)).result == "wrong_publish", case.id


def test_the_json_is_what_the_generator_writes() -> None:
    on_disk = json.loads(FRESH_FILE.read_text(encoding="utf-8"))
    assert [asdict(c) for c in build_fresh(build_home())] == on_disk


def test_a_broken_file_is_a_clear_error(tmp_path: Any) -> None:
    bad = tmp_path / "fresh.json"
    bad.write_text("[{\"id\": 1", encoding="utf-8")
    with pytest.raises(ConfigError):
        load_fresh(bad)


def test_bench_part_fresh_picks_these_cases_with_held_out_voices() -> None:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    assert parser.parse_args(["--part", "fresh"]).part == "fresh"
    cases = load_fresh()
    picked = select_cases(cases, "fresh", 40, 0)
    assert len(picked) == 40 and {c.kind for c in picked} == {c.kind for c in cases}
    assert select_cases(cases, "fresh", 0, 0) == cases
    assert all(is_held_out(v) for v in part_voices("fresh", ""))
