"""The status LED: which pattern each moment of a turn shows, mute above all, and the Linux LED
class backend on a directory laid out like /sys/class/leds/<name>."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from device.appliance import open_indicator
from device.errors import HardwareError
from device.events import (
    CloudReply,
    Detection,
    Error,
    ListenTimeout,
    Spoke,
    StartListening,
    ToolResult,
    Transcript,
    VoiceStopped,
)
from device.settings import LedSettings, Settings, replace_path
from device.system.doctor import check_leds
from device.voice.indicator import LedIndicator
from device.voice.mute import MuteSwitch
from hal.leds import LedPattern, NullLeds, SysfsLed, open_leds

P = LedPattern


class Recording:
    def __init__(self) -> None:
        self.shown: list[LedPattern] = []

    def show(self, pattern: LedPattern) -> None:
        self.shown.append(pattern)

    def close(self) -> None:
        self.shown.append(P.OFF)


def run_turn(events: list[object]) -> list[LedPattern]:
    leds = Recording()
    indicator = LedIndicator(leds)
    for event in events:
        indicator.handle(event)
    return leds.shown


WAKE = Detection("okay_nabu", 0.99, 1000)
CHIME = Spoke("wake", None, 150, 0)
END = VoiceStopped(timestamp_ms=2500, start_ms=1200, audio=b"")


def test_local_turn_listening_thinking_off() -> None:
    ok = ToolResult("c1", "turn_on", "ok", {})
    done = Spoke(None, "Turned on the kitchen light.", 900, 4)
    assert run_turn([WAKE, CHIME, END, Transcript("turn on the kitchen light", 2500), ok, done]) == [
        P.OFF, P.LISTENING, P.THINKING, P.OFF,
    ]


def test_confirmation_listens_again_then_ends() -> None:
    ask = ToolResult("c1", "unlock", "needs_confirmation", {})
    question = Spoke(None, "Do you want me to unlock the front door?", 1500, 5)
    events = [WAKE, END, ask, StartListening(5000, 5000, "confirm"), END, ToolResult("c2", "unlock", "ok", {})]
    # Asking is part of the turn: the LED never goes off between the question and the answer.
    assert run_turn([*events[:3], question, *events[3:]]) == [
        P.OFF, P.LISTENING, P.THINKING, P.SPEAKING, P.LISTENING, P.THINKING, P.OFF,
    ]


def test_timeout_and_failures() -> None:
    assert run_turn([WAKE, ListenTimeout(6000)]) == [P.OFF, P.LISTENING, P.OFF]
    assert run_turn([WAKE, END, CloudReply("failed", code="cloud-timeout")])[-1] is P.ERROR
    assert run_turn([WAKE, END, ToolResult("c", "turn_on", "unconfirmed", {})])[-1] is P.ERROR
    assert run_turn([Error("audio-device", "gone"), WAKE]) == [P.OFF, P.ERROR, P.LISTENING]


def test_mute_wins_over_the_turn_and_unmute_clears_it() -> None:
    leds = Recording()
    indicator = LedIndicator(leds)
    mute = MuteSwitch(False, leds=indicator)
    indicator.handle(WAKE)
    mute.set(True, "mqtt")
    indicator.handle(END)  # a turn already under way doesn't override the mute pattern
    assert indicator.pattern is P.MUTED
    mute.set(False, "voice")
    assert leds.shown == [P.OFF, P.LISTENING, P.MUTED, P.OFF]


def fake_led(root: Path, name: str = "led0") -> Path:
    led = root / name
    led.mkdir(parents=True)
    (led / "max_brightness").write_text("255\n")
    (led / "brightness").write_text("0\n")
    (led / "trigger").write_text("[none] timer heartbeat\n")
    return led


def test_sysfs_led_steady_and_blinking(tmp_path: Path) -> None:
    led_dir = fake_led(tmp_path)
    led = open_leds(LedSettings(backend="sysfs", sysfs_root=str(tmp_path)))
    assert isinstance(led, SysfsLed)
    led.show(P.LISTENING)
    assert (led_dir / "trigger").read_text() == "none" and (led_dir / "brightness").read_text() == "255"
    led.show(P.MUTED)
    assert (led_dir / "trigger").read_text() == "timer"
    assert ((led_dir / "delay_on").read_text(), (led_dir / "delay_off").read_text()) == ("50", "1950")
    led.close()
    assert (led_dir / "trigger").read_text() == "none" and (led_dir / "brightness").read_text() == "0"


def test_an_led_that_refuses_writes_is_logged_once_never_raised(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    led_dir = fake_led(tmp_path)
    (led_dir / "trigger").unlink()
    (led_dir / "trigger").mkdir()  # writing it fails (EISDIR), as a sandboxed /sys would (EROFS)
    led = SysfsLed(led_dir)
    with caplog.at_level(logging.WARNING):
        for pattern in (P.LISTENING, P.THINKING, P.OFF):
            led.show(pattern)
    assert sum("not writable" in r.message for r in caplog.records) == 1


def test_a_missing_led_is_a_clear_error_and_the_service_runs_without_it(tmp_path: Path) -> None:
    settings = LedSettings(backend="sysfs", name="nope", sysfs_root=str(tmp_path))
    with pytest.raises(HardwareError) as err:
        open_leds(settings)
    assert err.value.code == "led-missing" and "nope" in err.value.message
    indicator = open_indicator(replace_path(Settings(), "leds", settings))
    indicator.handle(WAKE)
    assert indicator.pattern is P.LISTENING
    assert isinstance(open_leds(LedSettings()), NullLeds)
    with pytest.raises(ValueError):
        LedSettings(name="../../etc")


def test_doctor_reports_the_led(tmp_path: Path) -> None:
    assert check_leds(Settings()).status == "skip"
    fake_led(tmp_path)
    found = check_leds(replace_path(Settings(), "leds", LedSettings(backend="sysfs", sysfs_root=str(tmp_path))))
    assert found.status == "ok"
    gone = check_leds(replace_path(Settings(), "leds", LedSettings(backend="sysfs", name="x", sysfs_root=str(tmp_path))))
    assert gone.status == "fail" and gone.fix
