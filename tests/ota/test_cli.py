"""The vendor and device commands end to end: keygen → models bundle → publish → provision → apply → status."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

import pytest

from device.__main__ import main
from device.errors import OtaError
from models.manifest import write_manifest
from ota.atomic import FileSystem
from ota.bundle import pack, unpack
from tests.ota.conftest import Serve


def lines(capsys: pytest.CaptureFixture[str]) -> list[dict[str, object]]:
    return [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.strip()]


def model_dir(base: Path, version: str) -> Path:
    directory = base / f"vad-{version}"
    directory.mkdir(parents=True)
    (directory / "model.bin").write_bytes(version.encode() * 500)
    (directory / "positive.wav").write_bytes(b"RIFF" + version.encode())
    return directory


def test_vendor_and_device_commands(tmp_path: Path, serve: Serve, capsys: pytest.CaptureFixture[str]) -> None:
    keys, repo = tmp_path / "keys", tmp_path / "repo"
    assert main(["ota", "keygen", "--keys", str(keys)]) == 0
    assert {Path(str(x["key"])).name for x in lines(capsys)} == {"root.pem", "targets.pem", "snapshot.pem", "timestamp.pem"}
    assert (keys / "root.pem").stat().st_mode & 0o777 == 0o600

    v1, v2 = model_dir(tmp_path, "1.0.0"), model_dir(tmp_path, "1.1.0")
    for directory, version in ((v1, "1.0.0"), (v2, "1.1.0")):
        assert main(["models", "bundle", str(directory), "--name", "hey-vox", "--kind", "vad", "--version", version,
                     "--golden", "positive.wav=hey vox"]) == 0
    assert lines(capsys)[-1]["files"] == 2

    assert main(["ota", "publish", "--repo", str(repo), "--keys", str(keys), "--init", "--expires", "timestamp=2"]) == 0
    # Routine publishing works without the root key: it stays offline.
    online = tmp_path / "online-keys"
    online.mkdir()
    for role in ("targets", "snapshot", "timestamp"):
        (online / f"{role}.pem").write_bytes((keys / f"{role}.pem").read_bytes())
    assert main(["ota", "publish", "--repo", str(repo), "--keys", str(online), str(v2)]) == 0
    published = lines(capsys)[-1]
    assert published["version"] == "1.1.0" and published["kind"] == "vad"
    # The cron job that keeps timestamp from expiring needs only the timestamp key.
    assert main(["ota", "publish", "--repo", str(repo), "--keys", str(online), "--refresh-timestamp"]) == 0
    assert lines(capsys)[-1]["timestamp_version"] == 3

    served = serve(repo)
    config = tmp_path / "config.toml"
    config.write_text(f'[device]\nstate_dir = "{tmp_path / "var"}"\n[mqtt]\nenabled = false\n'
                      f'[ota]\ntrusted_root = "{repo / "metadata" / "1.root.json"}"\nkinds = ["vad"]\n'
                      f'repository_url = "{served.url}"\n')
    base = ["--config", str(config), "ota"]
    assert main([*base, "provision", str(v1)]) == 0
    assert main([*base, "check"]) == 0
    assert lines(capsys)[-1]["action"] == "update"
    assert main([*base, "apply"]) == 0
    assert [s["state"] for s in lines(capsys)][-1] == "pending"
    assert main([*base, "status"]) == 0
    status = lines(capsys)
    assert status[0]["version"] == "1.1.0" and status[0]["trial"] == {"previous": "a", "attempts_left": 3}
    assert main([*base, "rollback", "vad"]) == 0
    assert lines(capsys)[-1]["state"] == "rolled-back"
    assert main(["ota", "publish", "--repo", str(repo), "--keys", str(online), str(v1)]) == 2  # older: refused
    assert "ota-downgrade" in capsys.readouterr().err


def test_unpack_rejects_members_not_in_the_manifest(tmp_path: Path) -> None:
    directory = model_dir(tmp_path, "1.0.0")
    write_manifest(directory, name="x", kind="vad", version="1.0.0")
    archive = tmp_path / "b.tar"
    pack(directory, archive)
    with tarfile.open(archive, "a") as tar:
        extra = tmp_path / "evil"
        extra.write_bytes(b"x")
        tar.add(extra, arcname="../evil")
    with pytest.raises(OtaError) as err:
        unpack(FileSystem(), archive, tmp_path / "out")
    assert err.value.code == "ota-bad-bundle"
    assert not (tmp_path / "evil.out").exists() and not (tmp_path / "out" / "manifest.json").exists()
