"""TLS with a CA, a client certificate and a password from a Secret, against a real mosquitto."""

from __future__ import annotations

import asyncio
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from device.errors import ToolError
from device.sim.broker import Mosquitto
from device.tools.session import HomeSession
from tests.home.conftest import run_async, settings_for


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def make_pki(d: Path) -> None:
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    _openssl("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.crt", "-days", "2", "-subj", "/CN=voxhome test CA", cwd=d)
    (d / "san.ext").write_text("subjectAltName=IP:127.0.0.1\n")
    for name in ("server", "client"):
        _openssl("req", *ec, "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", f"/CN={name}", cwd=d)
        extra = ["-extfile", "san.ext"] if name == "server" else []
        _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
                 "-out", f"{name}.crt", "-days", "2", *extra, cwd=d)


@pytest.fixture
def tls_broker(tmp_path: Path) -> Iterator[Mosquitto]:
    make_pki(tmp_path)
    subprocess.run(["mosquitto_passwd", "-b", "-c", str(tmp_path / "passwd"), "speaker", "s3cret"], check=True, capture_output=True)
    broker = Mosquitto(tmp_path)
    # As root, mosquitto drops to user 'mosquitto', which can't read pytest's private tmp dir.
    user = "user root\n" if os.geteuid() == 0 else ""
    broker.conf.write_text(
        user + f"listener {broker.port} 127.0.0.1\npersistence false\nallow_anonymous false\n"
        f"password_file {tmp_path / 'passwd'}\ncafile {tmp_path / 'ca.crt'}\ncertfile {tmp_path / 'server.crt'}\n"
        f"keyfile {tmp_path / 'server.key'}\nrequire_certificate true\nlog_dest stderr\nlog_type error\n"
    )
    broker.start()
    yield broker
    broker.stop()


@run_async
async def test_tls_client_certificate_and_password_secret(tls_broker: Mosquitto, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VOXHOME_TEST_MQTT_PW", "s3cret")
    tls = {"tls": True, "ca_file": str(tmp_path / "ca.crt"), "cert_file": str(tmp_path / "client.crt"),
           "key_file": str(tmp_path / "client.key"), "username": "speaker", "password": {"env": "VOXHOME_TEST_MQTT_PW"}}
    async with HomeSession(settings_for(tls_broker, **tls)) as home:
        assert home.client.connected
    monkeypatch.setenv("VOXHOME_TEST_MQTT_PW", "wrong")
    session = HomeSession(settings_for(tls_broker, **tls))
    with pytest.raises(ToolError) as info:
        await session.open(connect_timeout_s=2.0)
    assert info.value.code == "mqtt-refused"
    await asyncio.sleep(0)
