"""Local first: which utterances go to the cloud, and the logged reason (never the words)."""

from __future__ import annotations

import logging

import pytest

from device.cloud.decision import RouteDecider


@pytest.mark.parametrize(("kind", "conf", "asr", "way"), [
    ("tool", 0.9, 0.9, "local"),
    ("tool", 0.59, 0.9, "cloud"),
    ("tool", 0.9, 0.1, "cloud"),
    ("reject", 0.8, 1.0, "local"),
    ("reject", 0.3, 1.0, "cloud"),
    ("not_local", 0.9, 1.0, "cloud"),
    ("none", 0.0, 0.0, "cloud"),
])
def test_routes(kind: str, conf: float, asr: float, way: str) -> None:
    assert RouteDecider().decide(kind, conf, asr_confidence=asr).way == way  # type: ignore[arg-type]


def test_privacy_switch_keeps_everything_on_the_device() -> None:
    decider = RouteDecider(cloud_enabled=False)
    assert decider.decide("not_local", 0.9).way == "drop"
    assert decider.decide("tool", 0.9, asr_confidence=0.1).way == "local"
    assert decider.decide("tool", 0.2).way == "drop"


def test_reason_is_logged_without_the_utterance(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="device.cloud.decision")
    route = RouteDecider(min_local_confidence=0.7).decide("tool", 0.55)
    assert route.reason == "local command confidence 0.55 below 0.70"
    assert "route cloud: local command confidence 0.55 below 0.70" in caplog.text


def test_thresholds_validated() -> None:
    with pytest.raises(ValueError):
        RouteDecider(min_local_confidence=1.5)


def test_from_settings() -> None:
    from device.errors import ConfigError
    from device.settings import settings_from_dict

    cloud = settings_from_dict({"cloud": {"enabled": False, "local_min_confidence": 0.8}}).cloud
    decider = RouteDecider.from_settings(cloud)
    assert decider.min_local_confidence == 0.8 and decider.decide("not_local", 0.9).way == "drop"
    with pytest.raises(ConfigError, match="local_min_confidence"):
        settings_from_dict({"cloud": {"local_min_confidence": 2}})
