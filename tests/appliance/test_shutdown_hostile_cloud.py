"""`voxhome run` as systemd runs it, stopped while a hostile realtime server holds a cloud turn open.

The real service process hears "okay nabu, what is the tallest mountain in the world" (espeak-ng,
paced like a live microphone), sends it to the cloud, and the server answers with a trickle of
audio (one delta every 400 ms: never silent long enough for the inactivity deadline, so the turn
would last its full 180 s) — or a flood of unrelated events that never ends the reply. SIGTERM
in the middle of that turn: STOPPING=1 on $NOTIFY_SOCKET at once, exit code 0 within a few seconds.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import soundfile

from device.bench.speech import concat, silence, synthesize
from device.cloud.fake_server import FakeRealtimeServer, Reply
from tests.appliance.test_lifecycle import Systemd

ROOT = Path(__file__).resolve().parents[2]


class ServerThread:
    """The fake realtime server on its own event loop, so the test can wait and signal meanwhile."""

    def __init__(self, reply: Reply) -> None:
        self.server = FakeRealtimeServer(replies=[reply])
        self.loop = asyncio.new_event_loop()
        ready = threading.Event()
        self.thread = threading.Thread(target=self._run, args=(ready,), daemon=True)
        self.thread.start()
        assert ready.wait(10)

    def _run(self, ready: threading.Event) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_until_complete(self.server.start())
        ready.set()
        self.loop.run_forever()

    def kinds(self) -> list[str]:
        return [e.get("type", "") for e in list(self.server.received)]

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self.server.stop(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


@pytest.fixture(scope="module")
def question(tmp_path_factory: pytest.TempPathFactory) -> Path:
    audio = tmp_path_factory.mktemp("audio") / "question.wav"
    soundfile.write(str(audio), concat(silence(0.7), synthesize("okay nabu"), silence(0.3),
                                       synthesize("what is the tallest mountain in the world"), silence(60.0)), 16000)
    return audio


@pytest.fixture
def hostile(request: pytest.FixtureRequest) -> Iterator[ServerThread]:
    server = ServerThread(request.param)
    try:
        yield server
    finally:
        server.stop()


@pytest.mark.parametrize("hostile", [
    Reply(audio_ms=180_000, pace_ms=400),  # a trickle
    Reply(flood='{"type":"rate_limits.updated","rate_limits":[]}', pace_ms=20),  # events, never the reply
], indirect=True, ids=["trickle", "flood"])
def test_sigterm_during_a_hostile_cloud_turn_stops_within_seconds(tmp_path: Path, question: Path, hostile: ServerThread) -> None:
    config = tmp_path / "config.toml"
    config.write_text(
        f"[device]\nid = 'hostile-stop'\nstate_dir = '{tmp_path / 'state'}'\n"
        "[mqtt]\nenabled = false\n[audio.speaker]\nbackend = 'null'\n[voice]\nengine = 'none'\n"
        f"[cloud]\nurl = '{hostile.server.url}'\napi_key = {{ env = 'TEST_CLOUD_KEY' }}\n"
    )
    systemd = Systemd(tmp_path / "notify")
    env = {"PATH": "/usr/bin:/bin", "HOME": str(Path.home()), "NOTIFY_SOCKET": str(systemd.path), "TEST_CLOUD_KEY": "not-a-secret"}
    env.update({k: os.environ[k] for k in ("XDG_CACHE_HOME", "LANG") if k in os.environ})
    proc = subprocess.Popen(
        [sys.executable, "-m", "device", "--config", str(config), "run", "--audio", str(question), "--realtime"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        systemd.wait_for("READY=1", timeout=300)
        # Wait until the turn is under way: the question committed and the reply being streamed.
        deadline = time.monotonic() + 60
        while "response.create" not in hostile.kinds() or hostile.server.deltas_sent + len(hostile.kinds()) < 8:
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            assert time.monotonic() < deadline, f"no cloud turn started; the server got {hostile.kinds()}"
            time.sleep(0.1)
        time.sleep(1.0)  # well inside the turn: the trickle keeps it alive for minutes
        assert proc.poll() is None
        sent = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        stopping = systemd.wait_for("STOPPING=1", timeout=10)
        code = proc.wait(20)
        exited = time.monotonic()
        stderr = proc.stderr.read() if proc.stderr else ""
        events = [json.loads(line) for line in (proc.stdout.read() if proc.stdout else "").splitlines() if line.startswith("{")]
        assert code == 0, stderr[-2000:]
        assert any(e["type"] == "route" and e["way"] == "cloud" for e in events), events  # the turn was the cloud's
        assert stopping - sent < 1.0
        assert exited - sent < 5.0, f"took {exited - sent:.1f} s to stop"
        assert "Traceback" not in stderr, stderr[-2000:]
        print(f"STOPPING after {stopping - sent:.3f} s, exit 0 after {exited - sent:.2f} s")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        systemd.sock.close()
