"""`voxhome bench satellite` runs end to end and reports every row (numbers are not judged here)."""

from __future__ import annotations

import argparse
import json

import pytest

from device.bench import satellite


def test_bench_satellite_reports_ours_and_the_peers(capsys: pytest.CaptureFixture[str]) -> None:
    parser = argparse.ArgumentParser()
    satellite.add_arguments(parser)
    assert satellite.run(parser.parse_args(["--turns", "2", "--wake-turns", "1", "--json"])) == 0
    report = json.loads(capsys.readouterr().out)
    rows = report["medians_ms"]
    assert set(rows) == {"plaintext wav", "noise wav", "noise mp3", "peer: GET + decode wav", "peer: GET + decode mp3"}
    for name in ("plaintext wav", "noise wav", "noise mp3"):
        assert set(rows[name]) == {"to_ha_first_byte_ms", "to_ha_last_byte_ms", "url_to_first_sample_ms"}
        assert 0 < rows[name]["to_ha_first_byte_ms"] <= rows[name]["to_ha_last_byte_ms"]
    assert report["command_ms"] > 1000
    wake = report["wake_to_ha_ms"]
    assert set(wake) == {"live (mode ha)", "live (mode ha), no pause after the wake", "after the endpoint (local-first, before)"}
    for row in wake.values():
        assert set(row) == {"wake_to_first_byte_ms", "endpoint_to_last_byte_ms", "audio_at_ha_ms"}
        assert row["audio_at_ha_ms"] > report["command_ms"] * 0.8
