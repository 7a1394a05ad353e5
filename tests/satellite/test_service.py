"""The satellites as the appliance starts them: settings in, the assistant's seam out; HA first,
the (fake, remote) cloud when HA is not connected, 'can't reach HA' when neither is."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from device.cloud.realtime import CloudOutcome
from device.satellite.health import check_esphome
from device.satellite.service import open_satellites
from device.settings import settings_from_dict
from hal.player import Player, WavOutput

from .conftest import MediaServer, encoded, utterance
from .test_esphome import ANSWER, COMMAND, FakeHa, connected


class RemoteCloud:
    """Stands in for the remote realtime service only: it answers every turn."""

    def __init__(self) -> None:
        self.turns = 0

    async def turn(self, utterance: bytes) -> CloudOutcome:
        self.turns += 1
        return CloudOutcome("ok", reply_text="from the cloud")

    async def interrupt(self, reason: str = "wake") -> int:
        return 0


def test_open_satellites_routes_to_ha_then_the_cloud(media: MediaServer, tmp_path: Path) -> None:
    media.files["/tts/answer.wav"] = encoded(ANSWER, "WAV")
    command = utterance(COMMAND)
    settings = settings_from_dict({
        "device": {"id": "hall", "state_dir": str(tmp_path)},
        "esphome": {"enabled": True, "port": 0, "mode": "ha"},
        "wyoming": {"enabled": True, "port": 0},
    })

    async def go() -> dict[str, Any]:
        async def emit(event: object) -> None:
            pass

        player = Player(WavOutput(tmp_path / "out.wav"))
        cloud = RemoteCloud()
        sats = await open_satellites(settings, player, emit=emit, cloud=cloud)
        assert sats is not None and sats.esphome is not None and sats.wyoming is not None
        r: dict[str, Any] = {"local": sats.local}
        try:
            r["offline"] = await sats.turns.turn(command)
            r["cloud_turns"] = cloud.turns
            client = await connected(sats.esphome)
            FakeHa(client, media)
            for _ in range(100):
                if sats.esphome.voice is not None:
                    break
                await asyncio.sleep(0.02)
            r["ha"] = await sats.turns.turn(command)
            on_port = settings_from_dict({"device": {"state_dir": str(tmp_path)},
                                          "esphome": {"enabled": True, "port": sats.esphome.port}})
            r["doctor"] = await asyncio.to_thread(check_esphome, on_port)
            await client.disconnect()
        finally:
            await sats.close()
            player.close()
        return r

    r = asyncio.run(asyncio.wait_for(go(), 30))
    assert r["local"] is False
    assert r["offline"].reply_text == "from the cloud" and r["cloud_turns"] == 1
    assert r["ha"].status == "ok" and r["ha"].reply_text == ANSWER
    assert r["doctor"].status == "ok" and "voice pipeline" in r["doctor"].detail
